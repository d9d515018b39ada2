"""The backtest's definitions, on hand-made alerts and outcomes where every number is known."""

from __future__ import annotations

import pytest

from stream.core.timeutil import DAY_MS
from stream.offline.backtest import OVERALL, Mark, Scoring, Split, score
from stream.offline.marks import AlertMarks
from stream.offline.outcomes import AccountOutcome, LabelsError, OutcomeObserver, apply_labels_file
from tests.helpers import Harness, at, event, model

D = DAY_MS
END = 200 * D


def outcome(account: str, first_day: int, cancel_day: int | None = None) -> AccountOutcome:
    out = AccountOutcome(account, first_day * D)
    out.cancel_ms = None if cancel_day is None else cancel_day * D
    return out


def run(marks, outcomes):
    table = {o.account_id: o for o in outcomes}
    return score(marks, table, 0, END, Scoring(60, 14), Split())["signals"]


def test_precision_counts_accounts_that_cancelled_within_the_horizon():
    outcomes = [
        outcome("hit", 0, cancel_day=100),  # alerted 30 days before: a hit
        outcome("late", 0, cancel_day=150),  # alerted 80 days before: a false alarm
        outcome("stayed", 0),  # never cancelled, horizon over: a false alarm
        outcome("unknown", 0),  # alerted 20 days before the end: censored
    ]
    marks = [
        Mark("hit", "danger_zone", "opened", 70 * D),
        Mark("late", "danger_zone", "opened", 70 * D),
        Mark("stayed", "danger_zone", "opened", 70 * D),
        Mark("unknown", "danger_zone", "opened", 180 * D),
    ]
    s = run(marks, outcomes)["danger_zone"]
    assert (s["hits"], s["false_alarms"], s["censored"]) == (1, 2, 1)
    assert s["precision"] == pytest.approx(1 / 3, abs=1e-4)


def test_recall_needs_the_alert_between_horizon_and_lead_days_before_cancelling():
    outcomes = [
        outcome("early_enough", 0, cancel_day=100),
        outcome("too_late", 0, cancel_day=100),
        outcome("too_early", 0, cancel_day=100),
        outcome("missed", 0, cancel_day=100),
        outcome("too_new", 95, cancel_day=100),  # seen 5 days: could not be warned 14 ahead
    ]
    marks = [
        Mark("early_enough", "engagement_drop", "opened", 80 * D),
        Mark("too_late", "engagement_drop", "opened", 95 * D),
        Mark("too_early", "engagement_drop", "opened", 20 * D),
    ]
    s = run(marks, outcomes)["engagement_drop"]
    assert (s["churners_detected"], s["churners_eligible"]) == (1, 4)
    assert s["lead_days"]["median"] == pytest.approx(12.5)  # leads 20 and 5 days


def test_overall_is_the_union_and_volume_is_per_account_month():
    outcomes = [outcome("a", 0, cancel_day=60), outcome("b", 0)]  # 60 + 200 days observed
    marks = [
        Mark("a", "danger_zone", "opened", 30 * D),
        Mark("a", "engagement_drop", "opened", 35 * D),
        Mark("b", "nps_detractor", "opened", 10 * D),
        Mark("b", "nps_detractor", "resolved", 20 * D),
    ]
    s = run(marks, outcomes)
    overall = s[OVERALL]
    assert overall["openings"] == 3 and overall["alerted_accounts"] == 2
    assert overall["per_100_accounts_per_month"] == pytest.approx(3 / 260 * 30 * 100, abs=1e-3)
    assert overall["recall"] == 1.0 and overall["precision"] == 0.5
    assert s["nps_detractor"]["recovered_accounts"] == 1


def _story(episodes: str) -> list:
    """Two signals overlapping on one account: a failed payment, then a detractor answer
    while it is unpaid, the payment, and a happy answer."""
    at_once = {"payment_failed": {"grace_days": 0}}  # alert on the failure itself
    h = Harness(episodes=episodes, defaults=at_once)
    h.subscribe(day=0)
    h.send("payment_failed", ts=at(2, 9), invoice_id="i-1")
    h.send("nps_response", ts=at(5), score=2, user_id="u")
    h.send("invoice_paid", ts=at(8, 9), invoice_id="i-1")
    h.send("nps_response", ts=at(12), score=8, user_id="u")
    return h.alerts


def _ms(day: float, hour: float) -> int:
    return int(at(day, hour).timestamp() * 1000)


def test_account_episodes_count_overall_and_their_reasons_count_per_signal():
    to_marks = AlertMarks()
    marks = [m for alert in _story("account") for m in to_marks(alert)]
    assert [(m.signal, m.kind, m.ts_ms, m.overall) for m in marks] == [
        ("account_at_risk", "opened", _ms(2, 9), True),
        ("payment_failed", "opened", _ms(2, 9), False),
        ("account_at_risk", "updated", _ms(5, 10), True),
        ("nps_detractor", "opened", _ms(5, 10), False),
        ("account_at_risk", "updated", _ms(8, 9), True),
        ("payment_failed", "resolved", _ms(8, 9), False),
        ("account_at_risk", "resolved", _ms(12, 10), True),
        ("nps_detractor", "resolved", _ms(12, 10), False),
    ]
    start = _ms(0, 0)
    account = AccountOutcome("acct-1", start)
    account.cancel_ms = _ms(50, 0)  # 48 days after the opening
    scored = score(marks, {"acct-1": account}, start, _ms(200, 0), Scoring(60, 14), Split())
    s = scored["signals"]
    assert (s[OVERALL]["openings"], s[OVERALL]["alerted_accounts"]) == (1, 1)
    assert s[OVERALL]["per_100_accounts_per_month"] == pytest.approx(1 / 50 * 30 * 100, abs=1e-3)
    for signal in ("payment_failed", "nps_detractor"):
        assert (s[signal]["openings"], s[signal]["hits"], s[signal]["churners_detected"]) == (
            1, 1, 1,
        )  # fmt: skip
    assert s["nps_detractor"]["lead_days"]["median"] == pytest.approx(44.58, abs=0.01)
    assert scored["weekly_openings"] == {"2026-01-05": {"account_at_risk": 1}}

    # Per signal, the figures are those of per-signal episodes on the same input; overall,
    # per-signal episodes count two openings where CS received one account episode.
    to_marks = AlertMarks()
    per_signal = [m for alert in _story("signal") for m in to_marks(alert)]
    again = score(per_signal, {"acct-1": account}, start, _ms(200, 0), Scoring(60, 14), Split())
    for signal in ("payment_failed", "nps_detractor"):
        assert again["signals"][signal] == s[signal]
    assert again["signals"][OVERALL]["openings"] == 2


def test_split_halves_are_disjoint_seeded_and_cover_everyone():
    ids = [f"acct-{i:05d}" for i in range(2000)]
    train, test = Split("train", 3), Split("test", 3)
    assert all(train(a) != test(a) for a in ids)
    assert 900 < sum(map(test, ids)) < 1100
    assert [Split("test", 4)(a) for a in ids] != [test(a) for a in ids]


def test_cancellations_in_the_log_are_the_default_labels():
    obs = OutcomeObserver()
    for raw in (
        event("login", "a", user_id="u1"),
        event("payment_failed", "b", ts=None, invoice_id="i1", amount=10.0),
        event("subscription_cancelled", "b"),
        event("subscription_cancelled", "c", voluntary=True),
    ):
        obs(model(raw))
    assert obs.accounts["a"].cancel_ms is None
    assert obs.accounts["b"].involuntary is True  # an unpaid failure before cancelling
    assert obs.accounts["c"].involuntary is False


def test_a_labels_file_replaces_the_logs_cancellations_and_bad_lines_are_named():
    obs = OutcomeObserver()
    obs(model(event("subscription_cancelled", "a")))
    obs(model(event("login", "b", user_id="u1")))
    seen = apply_labels_file(
        obs,
        b'{"account_id": "a", "outcome": "retained"}\n'
        b'{"account_id": "b", "cancel_ts": "2026-02-01T00:00:00Z"}\n'
        b'{"account_id": "not-in-log", "cancel_ts": null}\n',
        "labels.jsonl",
    )
    assert seen == 2
    assert obs.accounts["a"].cancel_ms is None and obs.accounts["b"].cancel_ms is not None
    with pytest.raises(LabelsError, match=r"labels\.jsonl:2: a churned account needs cancel_ts"):
        apply_labels_file(obs, b'{"account_id": "a"}\n{"account_id": "b", "outcome": "churned"}\n',
                          "labels.jsonl")  # fmt: skip
    with pytest.raises(LabelsError, match=r"labels\.jsonl:1: not JSON"):
        apply_labels_file(obs, b"nope\n", "labels.jsonl")
