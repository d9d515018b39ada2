"""Health snapshots in the read model, on a real redis-server, against the in-memory oracle.

The rules under test (stream/sinks/health_model.py): the latest snapshot moves only to the
same or a later day; the history holds each account's newest 180 days, one fixed-width slot a
day, whatever order the snapshots come in; applying anything twice changes nothing; every
account of the log is in the read model, alerted or not.
"""

from __future__ import annotations

import random
from datetime import date, timedelta

import orjson
import pytest

from schemas.events import decode_event
from schemas.health import AccountHealth
from stream.sinks.account_rows import ACCOUNT_SORTS, ListQuery, select
from stream.sinks.health_model import (
    HISTORY_DAYS,
    SLOT,
    HealthModel,
    decode_slot,
    encode_slot,
    list_fields,
    parse_snapshot,
)
from stream.sinks.readmodel import by_severity, fold

START = date(2026, 1, 1)


def snap(account: str, day: int, **changes) -> dict:
    """A valid snapshot of ``account`` on ``START + day`` (checked against the contract)."""
    when = START + timedelta(days=day)
    health = {"overall": 80, "status": "healthy", "usage": 80, "adoption": 90, "billing": 100,
              "support": 100, "sentiment": 100, **changes.pop("health", {})}  # fmt: skip
    activity = {"logins": 3, "active_users": 2, "minutes": 40, "feature_uses": 5, "tickets": 0,
                "nps_score": None, "invoice_paid": False, "payments_failed": 0,
                "invoices_overdue": 0, **changes.pop("activity", {})}  # fmt: skip
    value = {
        "schema_version": 1, "account_id": account, "day": when.isoformat(),
        "ts": f"{when + timedelta(days=1)}T00:00:00Z", "status": "active",
        "account_name": f"Name of {account}", "owner": "Dana Reyes", "segment": "pro",
        "plan": "pro", "stage": "established", "mrr": 500.0, "seats": 10, "tenure_days": 400,
        "billing_period": "monthly", "renewal_date": "2026-09-01",
        "last_activity": f"{when}T12:00:00Z", "health": health, "risk_estimate": None,
        "open_signals": [],
        "metrics": {"logins_7d": 20, "logins_28d": 80, "active_users_28d": 8,
                    "active_days_28d": 20, "minutes_28d": 900, "feature_uses_28d": 60,
                    "tickets_28d": 1, "days_since_last_use": 0, "nps_score": None,
                    "unpaid_failed_payment": False},
        "activity": activity,
        **changes,
    }  # fmt: skip
    return orjson.loads(AccountHealth.model_validate(value).model_dump_json())


def _redis_view(store, account: str) -> tuple[dict | None, list[dict]]:
    return store.health.latest(account)


def _oracle_view(model: HealthModel, account: str) -> tuple[dict | None, list[dict]]:
    return model.latest.get(account), model.history(account)


def test_the_store_equals_the_oracle_on_a_replayed_logs_snapshots(store, replayed, replayed_health):
    log, _ = replayed
    alerts, snapshots = replayed_health
    oracle = HealthModel()
    for s in snapshots:
        oracle.apply(s)
    for start in range(0, len(snapshots), 997):
        store.apply_health(snapshots[start : start + 997])
        if start % 5 == 0:
            store.apply(alerts[start // 100 : start // 100 + 50])  # interleaved, as the feed
    store.apply(alerts)
    accounts = {decode_event(line).account_id for line in log.read_bytes().splitlines()}
    assert set(oracle.latest) == accounts  # every account of the log has a snapshot
    for account in sorted(accounts):
        assert _redis_view(store, account) == _oracle_view(oracle, account), account
    # The lists: every account, alerted or not, each row as the oracle joins alert and snapshot.
    model = fold(alerts)
    rows = [model.row(a, list_fields(oracle.latest[a])) for a in accounts]
    for sort in ACCOUNT_SORTS:
        got = store.accounts_list(ListQuery(limit=1000, sort=sort))
        want, _, _ = select(rows, ListQuery(limit=1000, sort=sort))
        assert got.rows == want, sort
        assert got.totals["accounts"] == len(accounts)
    alerted = {a for a, open_ in model.open_alerts.items() if open_}
    assert {r["account_id"] for r in store.risk_list(ListQuery(limit=1000)).rows} == alerted
    assert alerted < accounts  # some accounts were never (or are no longer) at risk
    never = sorted(accounts - set(model.accounts))
    assert never, "the log should have accounts that were never alerted"
    view = store.account(never[0])
    assert view["open_alerts"] == [] and view["episodes"] == [] and view["last_alert_ts"] is None
    assert view["snapshot"] == oracle.latest[never[0]]
    assert view["history"] == oracle.history(never[0]) and len(view["history"]) > 100
    alerted_one = sorted(alerted)[0]
    detail = store.account(alerted_one)
    assert detail["open_alerts"] == by_severity(model.open_alerts[alerted_one].values())


def test_applying_snapshots_twice_changes_nothing(store, replayed_health):
    _, snapshots = replayed_health
    some = snapshots[:3000]
    assert store.apply_health(some) == len(some)
    keys = sorted(store.r.scan_iter(match=f"{store.p}:*"))
    before = {k: store.r.dump(k) for k in keys}
    assert store.apply_health(some) == 0
    rng = random.Random(7)
    assert store.apply_health(rng.sample(some, 500)) == 0  # redelivered out of order
    assert {k: store.r.dump(k) for k in keys} == before


def test_an_older_snapshot_does_not_roll_the_latest_back_and_a_tie_goes_to_the_later(store):
    store.apply_health([snap("a", 10, health={"overall": 40, "usage": 40})])
    assert store.apply_health([snap("a", 9, health={"overall": 90, "usage": 90})]) == 1
    latest, points = store.health.latest("a")
    assert latest["day"] == "2026-01-11" and latest["health"]["overall"] == 40
    # The older day still fills its own (empty) slot of the trend.
    assert [(p["day"], p["health"]["overall"]) for p in points] == [
        ("2026-01-10", 90), ("2026-01-11", 40)]  # fmt: skip
    assert store.account("a")["health"]["overall"] == 40
    # Same day again with other values: the later arrival wins, in the latest and the slot.
    store.apply_health([snap("a", 10, health={"overall": 55, "usage": 55})])
    latest, points = store.health.latest("a")
    assert latest["health"]["overall"] == 55 and points[-1]["health"]["overall"] == 55


def test_history_is_bounded_at_180_days_ordered_and_each_slot_moves_only_forward(store):
    rng = random.Random(11)
    days = list(range(400))
    rng.shuffle(days)
    days += rng.sample(range(400), 50)  # some redelivered, late
    oracle = HealthModel()
    for day in days:
        s = snap("b", day, health={"overall": day % 101, "usage": day % 101},
                 activity={"logins": day})  # fmt: skip
        oracle.apply(s)
        store.apply_health([s])
    latest, points = store.health.latest("b")
    assert latest["day"] == (START + timedelta(days=399)).isoformat()
    assert len(points) == HISTORY_DAYS
    got = [date.fromisoformat(p["day"]) for p in points]
    assert got == [START + timedelta(days=d) for d in range(400 - HISTORY_DAYS, 400)]
    assert [p["activity"]["logins"] for p in points] == list(range(220, 400))
    assert points == oracle.history("b")
    assert store.r.strlen(f"{store.p}:hist:b") == HISTORY_DAYS * SLOT.size
    # A snapshot 200 days old shares a slot with a newer day: it does not overwrite it.
    assert store.apply_health([snap("b", 199, activity={"logins": 9999})]) == 0
    assert store.health.latest("b")[1] == points


def test_a_slot_round_trips_and_saturates_instead_of_overflowing():
    s = snap("c", 3, risk_estimate=0.4321,
             activity={"logins": 70_000, "nps_score": 4, "invoice_paid": True,
                       "payments_failed": 2, "minutes": 5_000_000})  # fmt: skip
    point = decode_slot(encode_slot(s))
    assert point["day"] == "2026-01-04" and point["risk_estimate"] == 0.4321
    assert point["activity"]["logins"] == 0xFFFF and point["activity"]["minutes"] == 5_000_000
    assert point["activity"]["nps_score"] == 4 and point["activity"]["invoice_paid"] is True
    assert decode_slot(bytes(SLOT.size)) is None


@pytest.mark.parametrize(
    "value",
    [b"", b"not json", b"[]", b"{}", b'{"account_id": "x"}',
     orjson.dumps({**snap("d", 1), "day": "yesterday"}),
     orjson.dumps({**snap("d", 1), "health": {"overall": 300}}),
     orjson.dumps({**snap("d", 1), "schema_version": 2}),
     orjson.dumps({**snap("d", 1), "activity": None})],
)  # fmt: skip
def test_a_value_that_is_not_a_snapshot_is_refused(value):
    assert parse_snapshot(value) is None


def test_a_valid_snapshot_is_parsed_as_sent():
    assert parse_snapshot(orjson.dumps(snap("d", 1))) == snap("d", 1)
