"""Saved, renewed, churned or pending: what became of each alert episode, in event time."""

from __future__ import annotations

import random

import orjson
import pytest

from schemas.events import BILLING_TYPES, decode_event
from stream.core.alert_outcomes import SAVED_AFTER_DAYS, AlertOutcomes
from stream.core.engine import PartitionedEngine
from stream.core.policy import load_policy
from stream.core.portfolio import Portfolio
from stream.devtools.simulator import SimConfig, generate, serialize
from stream.run.replay import replay
from tests.helpers import at, event, model


@pytest.fixture(scope="module")
def replayed_log() -> tuple[list, list[dict]]:
    """A seeded log's billing events and the alert records replay publishes for it."""
    lines = list(serialize(generate(SimConfig(accounts=200, days=150, seed=13))))
    out: list[bytes] = []
    replay(enumerate(lines, 1), PartitionedEngine(load_policy(None)), out.append, lambda _: None)
    events = [decode_event(line) for line in lines]
    return [e for e in events if e.type in BILLING_TYPES], [orjson.loads(x) for x in out]


def _iso(day: float) -> str:
    return at(day).isoformat().replace("+00:00", "Z")


def record(account: str, kind: str, day: float, start: float, alert_id: str | None = None) -> dict:
    """The fields of a published alert record outcomes read."""
    return {"alert_id": alert_id or f"al-{account}-{start}", "account_id": account,
            "kind": kind, "ts": _iso(day), "episode_start": _iso(start)}  # fmt: skip


def billing(kind: str, account: str, day: float, **fields) -> object:
    if kind in ("subscription_started", "subscription_renewed"):
        fields = {"plan": "pro", "mrr": 100.0, **fields}
    return model(event(kind, account, at(day), **fields))


def _fold(alerts: list[dict], events: list) -> AlertOutcomes:
    folded = AlertOutcomes()
    for item in [*alerts, *events]:
        (folded.alert if isinstance(item, dict) else folded.observe)(item)
    return folded


def _only(folded: AlertOutcomes) -> dict:
    (row,) = folded.report().values()
    return row


def test_a_cancellation_while_open_is_churned_with_its_reason_group():
    alerts = [record("a", "opened", 1, 1), record("a", "churned", 10, 1)]
    events = [billing("subscription_started", "a", 0),
              billing("subscription_cancelled", "a", 10, reason="too expensive")]  # fmt: skip
    row = _only(_fold(alerts, events))
    assert (row["alerted"], row["churned"], row["churned_by_reason"]) == (1, 1, {"price": 1})


def test_saved_needs_the_whole_window_after_resolving_without_a_cancellation():
    alerts = [record("a", "opened", 1, 1), record("a", "resolved", 5, 1)]
    start = [billing("subscription_started", "a", 0)]
    # The clock (newest record) one day short of the window's end: not yet known.
    short = _only(_fold(alerts, [*start, billing("invoice_paid", "a", 4 + SAVED_AFTER_DAYS)]))
    assert short["pending"] == 1 and short["saved"] == 0
    done = _only(_fold(alerts, [*start, billing("invoice_paid", "a", 5 + SAVED_AFTER_DAYS)]))
    assert done["saved"] == 1 and done["pending"] == 0
    # A cancellation inside the window makes it churned, whatever came after.
    late = [*start, billing("subscription_cancelled", "a", 20, reason="budget cut"),
            billing("invoice_paid", "a", 90)]  # fmt: skip
    row = _only(_fold(alerts, late))
    assert row["churned"] == 1 and row["churned_by_reason"] == {"budget": 1}
    # One after the window does not undo the save.
    after = [*start, billing("subscription_cancelled", "a", 6 + SAVED_AFTER_DAYS)]
    assert _only(_fold(alerts, after))["saved"] == 1


def test_a_renewal_after_the_alert_counts_until_the_episode_is_saved_or_churned():
    events = [billing("subscription_started", "a", 0), billing("subscription_renewed", "a", 8)]
    assert _only(_fold([record("a", "opened", 10, 10)], events))["pending"] == 1, "renewed before"
    assert _only(_fold([record("a", "opened", 5, 5)], events))["renewed"] == 1
    churn = [*events, billing("subscription_cancelled", "a", 30)]
    assert _only(_fold([record("a", "opened", 5, 5)], churn))["churned"] == 1


def test_an_episode_that_ended_churned_counts_before_its_cancellation_arrives():
    row = _only(_fold([record("a", "opened", 1, 1), record("a", "churned", 9, 1)], []))
    assert row["churned"] == 1 and row["churned_by_reason"] == {"not_given": 1}


def test_episodes_count_in_the_month_they_started():
    alerts = [record("a", "opened", 3, 3), record("b", "opened", 40, 40),
              record("b", "updated", 50, 40)]  # fmt: skip
    report = _fold(alerts, [billing("subscription_started", "a", 0)]).report()
    assert {m: r["alerted"] for m, r in report.items()} == {"2026-01": 1, "2026-02": 1}


def test_order_and_redelivery_change_nothing(replayed_log):
    events, alerts = replayed_log
    expected = _fold(alerts, events).report()
    totals = {k: sum(r[k] for r in expected.values()) for k in
              ("alerted", "saved", "renewed", "churned", "pending")}  # fmt: skip
    assert totals["alerted"] == sum(totals[k] for k in ("saved", "renewed", "churned", "pending"))
    assert min(totals.values()) > 0, totals  # the log has every outcome
    rng = random.Random(3)
    for _ in range(3):
        items = [*alerts, *events, *rng.sample(alerts, 50), *rng.sample(events, 50)]
        rng.shuffle(items)
        folded = AlertOutcomes()
        for item in items:
            (folded.alert if isinstance(item, dict) else folded.observe)(item)
        assert folded.report() == expected


def test_the_portfolio_rows_carry_the_outcomes_only_once_alerts_came():
    portfolio = Portfolio()
    portfolio.observe(billing("subscription_started", "a", 0))
    assert "alert_outcomes" not in portfolio.report()[0]
    portfolio.alert(record("a", "opened", 40, 40))  # a month billing never touched
    rows = portfolio.report()
    assert [r["month"] for r in rows] == ["2026-01", "2026-02"]
    assert rows[0]["alert_outcomes"]["alerted"] == 0 and rows[1]["alert_outcomes"]["pending"] == 1
    assert rows[1]["accounts_at_start"] == 1 and rows[1]["lost"] == 0
