"""Account-health snapshots: one per account per closed day, built from the state alone."""

from __future__ import annotations

from datetime import date

import orjson
import pytest

from schemas.health import AccountHealth
from stream.core.engine import PartitionEngine
from stream.core.health_snapshot import add_months, renewal_date
from stream.core.state import AccountState
from stream.core.state_codec import decode_state, encode_state
from stream.core.timeutil import DAY_MS, day_of_date, to_ms
from tests.core.test_churn_risk import _harness
from tests.helpers import Harness, at


def _with_snapshots(h: Harness) -> Harness:
    h.engine = PartitionEngine(h.policy, snapshots=True)
    return h


def _taken(h: Harness) -> list[dict]:
    return [orjson.loads(raw) for _, raw in h.engine.take_snapshots()]


def test_every_closed_day_gives_one_snapshot_per_account_with_that_days_activity():
    h = _with_snapshots(Harness())
    h.subscribe("acct-1", day=0)
    h.subscribe("acct-2", day=0)
    h.daily_logins(range(0, 10), {d: d % 3 + 1 for d in range(10)}, account="acct-1")
    h.tick(at(10, 0.5))  # the clock passes day 9 by more than the lateness: days 0-9 close
    snaps = _taken(h)
    by_account: dict[str, list[dict]] = {}
    for snap in snaps:
        AccountHealth.model_validate(snap)
        by_account.setdefault(snap["account_id"], []).append(snap)
    assert set(by_account) == {"acct-1", "acct-2"}, "a never-alerted, silent account has them too"
    days = [s["day"] for s in by_account["acct-1"]]
    assert days == [date(2026, 1, 5 + d).isoformat() for d in range(10)]
    assert [s["activity"]["logins"] for s in by_account["acct-1"]] == [d % 3 + 1 for d in range(10)]
    assert [s["activity"]["logins"] for s in by_account["acct-2"]] == [0] * 10
    last = by_account["acct-1"][-1]
    assert last["metrics"]["logins_7d"] == sum(d % 3 + 1 for d in range(3, 10))
    assert last["ts"] == "2026-01-15T00:00:00Z" and last["status"] == "active"
    assert last["metrics"]["days_since_last_use"] == 0
    assert by_account["acct-2"][-1]["metrics"]["days_since_last_use"] is None
    assert h.engine.take_snapshots() == [], "taken once"


def test_without_snapshots_the_engine_makes_none():
    h = Harness()
    h.subscribe(day=0)
    h.tick(at(5, 0.5))
    assert h.engine.health_out is None and h.engine.take_snapshots() == []


def test_name_and_owner_from_any_event_reach_snapshots_alerts_and_the_stored_state():
    h = _with_snapshots(Harness(defaults={"payment_failed": {"grace_days": 0}}))
    h.subscribe(day=0)
    h.send("login", ts=at(1), user_id="u1", account_name="Acme Labs", owner="Priya Shah")
    h.send("login", ts=at(2), user_id="u1", owner="Tom Becker")  # reassigned; the name stays
    alerts = h.send("payment_failed", ts=at(2, 12), invoice_id="inv-1", amount=10.0)
    assert alerts and alerts[0].account.name == "Acme Labs"
    assert alerts[0].account.owner == "Tom Becker"
    h.tick(at(4, 0.5))
    last = _taken(h)[-1]
    assert (last["account_name"], last["owner"]) == ("Acme Labs", "Tom Becker")
    acct = h.engine.accounts["acct-1"]
    again = decode_state(encode_state(acct))
    assert (again.name, again.owner) == ("Acme Labs", "Tom Becker")


def test_a_cancellation_publishes_one_last_snapshot_with_health_as_it_stood():
    h = _with_snapshots(Harness(defaults={"payment_failed": {"grace_days": 0}}))
    h.subscribe(day=0)
    h.send("payment_failed", ts=at(3), invoice_id="inv-1", amount=10.0)
    h.send("subscription_cancelled", ts=at(5))
    h.tick(at(20, 0.5))
    snaps = _taken(h)
    cancelled = [s for s in snaps if s["status"] == "cancelled"]
    assert len(cancelled) == 1
    assert cancelled[0]["day"] == "2026-01-10" and snaps[-1] is cancelled[0]
    assert cancelled[0]["health"]["billing"] < 100, "what was firing when the customer left"
    assert "payment_failed" in cancelled[0]["open_signals"]


def test_the_risk_estimate_is_the_learned_probability_the_detector_scored():
    h = _with_snapshots(_harness())
    h.subscribe(day=0, plan="pro")
    h.daily_logins(range(0, 20), 3)
    h.tick(at(30, 0.5))
    snaps = _taken(h)
    opened = h.of("churn_risk", "opened")[0]
    same_day = [s for s in snaps if s["ts"] == opened.ts.isoformat().replace("+00:00", "Z")]
    assert same_day[0]["risk_estimate"] == opened.value
    assert snaps[-1]["risk_estimate"] > snaps[5]["risk_estimate"]
    assert all(s["risk_estimate"] is None for s in _snapshots_without_a_model())


def _snapshots_without_a_model() -> list[dict]:
    h = _with_snapshots(Harness())
    h.subscribe(day=0)
    h.tick(at(6, 0.5))
    return _taken(h)


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [(date(2026, 1, 31), 1, date(2026, 2, 28)), (date(2024, 1, 31), 1, date(2024, 2, 29)),
     (date(2025, 11, 15), 3, date(2026, 2, 15)), (date(2025, 12, 1), 12, date(2026, 12, 1))],
)  # fmt: skip
def test_months_are_added_on_the_calendar(start, months, expected):
    assert add_months(start, months) == expected


def test_the_renewal_date_is_the_next_whole_billing_period_after_the_day():
    acct = AccountState("a", 0)
    assert renewal_date(acct, 20_000) is None, "unknown before a subscription event"
    acct.created_ms = day_of_date(date(2024, 1, 31)) * DAY_MS
    acct.billing_period = "monthly"
    assert renewal_date(acct, day_of_date(date(2026, 2, 10))) == date(2026, 2, 28)
    assert renewal_date(acct, day_of_date(date(2026, 2, 28))) == date(2026, 3, 31)
    acct.billing_period = "annual"
    assert renewal_date(acct, day_of_date(date(2026, 2, 10))) == date(2027, 1, 31)
    acct.created_ms = to_ms(at(0))
    assert renewal_date(acct, day_of_date(date(2026, 1, 5))) == date(2027, 1, 5)
