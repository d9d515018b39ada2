"""Alert outcomes in Redis equal the backtests' fold, whichever topic the feed reads first."""

from __future__ import annotations

import orjson
import pytest

from schemas.events import BILLING_TYPES, decode_event
from stream.core.portfolio import Portfolio


def _billing(log) -> list:
    events = [decode_event(line) for line in log.read_bytes().splitlines()]
    return [(0, offset, e) for offset, e in enumerate(e for e in events if e.type in BILLING_TYPES)]


@pytest.fixture
def reference(replayed) -> tuple[list, list[dict], list[dict]]:
    log, alerts = replayed
    records = _billing(log)
    folio = Portfolio()
    for _, _, event in records:
        folio.observe(event)
    for alert in alerts:
        folio.alert(alert)
    return records, alerts, folio.report()


def test_alerts_before_billing_with_redeliveries_equal_the_backtest(store, reference):
    records, alerts, expected = reference
    third = len(alerts) // 3
    store.portfolio.apply_alerts(alerts[: 2 * third])
    store.portfolio.apply_alerts(alerts[:third])  # a batch delivered again
    half = len(records) // 2
    store.portfolio.apply(records[:half])
    store.portfolio.apply_alerts(alerts[2 * third :])
    store.portfolio.apply(records[half - 50 :])  # overlapping redelivery, then the rest
    assert store.portfolio.report() == expected
    outcomes = [row["alert_outcomes"] for row in expected]
    assert sum(o["alerted"] for o in outcomes) == len({a["alert_id"] for a in alerts})
    assert all(sum(o[k] for k in ("saved", "renewed", "churned", "pending")) == o["alerted"]
               for o in outcomes)  # fmt: skip
    assert all(sum(o[k] for o in outcomes) > 0 for k in ("saved", "churned", "pending"))


def test_billing_before_alerts_in_reverse_equals_the_backtest(store, reference):
    records, alerts, expected = reference
    store.portfolio.apply(records)
    store.portfolio.apply_alerts(reversed(alerts))  # an ending record before its opening
    assert store.portfolio.report() == expected


def test_served_portfolio_shows_the_outcomes(store, reference):
    records, alerts, expected = reference
    store.portfolio.apply(records)
    store.portfolio.apply_alerts(alerts)
    body = orjson.loads(orjson.dumps(store.portfolio_report()))
    assert body["months"] == expected and body["months"][0]["by_reason"] is not None


def test_a_kept_report_is_reused_only_while_nothing_was_written_or_for_its_max_age(
    store, reference
):
    from stream.sinks.outcomes_store import RedisOutcomes

    records, alerts, expected = reference
    events = [event for _, _, event in records]
    half = len(alerts) // 2
    store.portfolio.apply(records)
    store.portfolio.apply_alerts(alerts[:half])
    patient = RedisOutcomes(store.r, store.p, store.portfolio.reasons, max_age_seconds=3600)
    eager = RedisOutcomes(store.r, store.p, store.portfolio.reasons, max_age_seconds=0)
    before = patient.report()
    assert eager.report() == before
    store.portfolio.apply_alerts(alerts[half:])
    assert patient.report() is before, "within its max age the kept report stands"
    assert eager.report() == {row["month"]: row["alert_outcomes"] for row in expected
                              if row["alert_outcomes"]["alerted"]}  # fmt: skip
    assert eager.report() != before
    store.portfolio.outcomes.apply_billing(events[:10])  # a redelivery still bumps the version
    assert eager.report() == {row["month"]: row["alert_outcomes"] for row in expected
                              if row["alert_outcomes"]["alerted"]}  # fmt: skip
