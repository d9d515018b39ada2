"""One episode per account at risk: the records CS receives for hand-made engine inputs.

Billing and NPS signals fire on the event itself, which makes every step below one call: a
failed payment, a detractor answer, a payment, a newer answer.
"""

from __future__ import annotations

from stream.core.alert_builder import alert_id
from stream.core.engine import PartitionEngine
from stream.core.state_codec import decode_state, encode_state
from tests.helpers import Harness, at

AT_RISK = "account_at_risk"


# The steps below need each of these to alert on the event itself, whatever the defaults.
AT_ONCE = {"payment_failed": {"grace_days": 0}, "nps_detractor": {"alert_mild": True}}


def _harness(episodes: str) -> Harness:
    h = Harness(episodes=episodes, defaults=AT_ONCE)
    h.subscribe(day=0)
    return h


def _account() -> Harness:
    return _harness("account")


def _ms(day: float, hour: float) -> int:
    return int(at(day, hour).timestamp() * 1000)


def _reasons(alert) -> list[tuple[str, str]]:
    return [(r.signal, r.severity) for r in alert.reasons]


def test_two_signals_one_clears_then_the_other_one_episode_throughout():
    h = _account()
    (opened,) = h.send("payment_failed", ts=at(1, 9), invoice_id="i-1")
    assert (opened.signal, opened.kind, opened.sequence, opened.severity) == (
        AT_RISK, "opened", 0, "medium",
    )  # fmt: skip
    assert opened.alert_id == alert_id("acct-1", AT_RISK, _ms(1, 9))
    assert _reasons(opened) == [("payment_failed", "medium")]
    assert opened.explanation == opened.reasons[0].explanation
    assert opened.evidence.facts[0].description == "payment failed"
    assert (opened.metric, opened.dimension) == ("failed_payments", "billing")

    # A detractor answer joins as the more severe reason: it leads, and the episode escalates.
    (joined,) = h.send("nps_response", ts=at(2), score=2, user_id="u")
    assert (joined.kind, joined.sequence, joined.severity) == ("updated", 1, "high")
    assert _reasons(joined) == [("nps_detractor", "high"), ("payment_failed", "medium")]
    assert joined.reasons[1].since == at(1, 9) and joined.reasons[0].since == at(2)
    assert (joined.metric, joined.dimension, joined.value) == ("nps", "sentiment", 2.0)
    assert joined.explanation == "NPS answer 2 (detractor: 0-6); and 1 more: payment_failed"
    assert joined.playbook.startswith("Detractor")
    assert joined.reasons[1].explanation == opened.reasons[0].explanation, "kept as published"

    # The payment clears one reason; the other stays, and so does the episode.
    (left,) = h.send("invoice_paid", ts=at(3, 9), invoice_id="i-1")
    assert (left.kind, left.sequence, left.severity) == ("updated", 2, "high")
    assert _reasons(left) == [("nps_detractor", "high")]
    assert left.explanation.endswith(". Recovered: payment_failed")

    # A newer, happy answer clears the last reason: the episode resolves.
    (resolved,) = h.send("nps_response", ts=at(4), score=8, user_id="u")
    assert (resolved.kind, resolved.sequence, resolved.severity) == ("resolved", 3, "high")
    assert _reasons(resolved) == [("nps_detractor", "high")]
    assert resolved.reasons[0].explanation == "newer NPS answer 8"
    assert resolved.resolution == (
        "No signal is firing any more. Last to recover: nps_detractor: newer NPS answer 8"
    )
    assert resolved.explanation == f"Resolved: {resolved.resolution}"
    assert {a.alert_id for a in h.alerts} == {opened.alert_id}


def test_severity_escalates_with_a_reason_and_never_falls_back_within_the_episode():
    h = _account()
    h.send("nps_response", ts=at(1), score=2, user_id="u")  # high
    (joined,) = h.send("payment_failed", ts=at(2, 9), invoice_id="i-1")  # medium joins
    assert (joined.kind, joined.severity) == ("updated", "high")
    assert _reasons(joined) == [("nps_detractor", "high"), ("payment_failed", "medium")]
    # A second failure escalates payment_failed to high: no worse than the episode, no record...
    assert h.send("payment_failed", ts=at(5, 9), invoice_id="i-1") == []
    # ...but the next record shows it as it is now. The detractor leaving does not lower the
    # episode's severity.
    (left,) = h.send("nps_response", ts=at(6), score=9, user_id="u")
    assert (left.kind, left.severity) == ("updated", "high")
    assert _reasons(left) == [("payment_failed", "high")]
    assert left.reasons[0].explanation.startswith("2 failed payments in the last 30 days")


def test_an_escalating_reason_updates_the_episode():
    h = _account()
    (opened,) = h.send("payment_failed", ts=at(1, 9), invoice_id="i-1")
    (escalated,) = h.send("payment_failed", ts=at(4, 9), invoice_id="i-1")
    assert (escalated.kind, escalated.sequence, escalated.severity) == ("updated", 1, "high")
    assert escalated.alert_id == opened.alert_id
    assert _reasons(escalated) == [("payment_failed", "high")]
    assert escalated.reasons[0].since == at(1, 9), "still the episode that opened on day 1"


def test_cancellation_ends_the_account_episode_as_churned_once_with_every_reason():
    h = _account()
    h.send("payment_failed", ts=at(1, 9), invoice_id="i-1")
    h.send("nps_response", ts=at(1, 10), score=3, user_id="u")
    out = h.send("subscription_cancelled", ts=at(2, 9), voluntary=False, reason="card declined")
    assert [(a.signal, a.kind, a.sequence) for a in out] == [(AT_RISK, "churned", 2)]
    assert out[0].resolution == (
        "The subscription was cancelled: Payment failure (unmanaged churn)."
    )
    assert out[0].explanation.startswith("Churned: The subscription was cancelled")
    assert _reasons(out[0]) == [("nps_detractor", "high"), ("payment_failed", "medium")]
    h.tick(at(80))
    assert [a for a in h.alerts if a.ts > at(2, 9)] == [], "no alerts about a gone customer"
    assert AT_RISK not in h.engine.accounts["acct-1"].episodes, "nothing kept once resolved"


def test_never_two_open_episodes_and_cooldowns_still_apply_per_signal():
    h = _account()
    for day in (1, 3, 5):
        h.send("payment_failed", ts=at(day, 9), invoice_id=f"i-{day}")
        h.send("invoice_paid", ts=at(day, 10), invoice_id=f"i-{day}")
    # The third failure is within the cooldown (2 openings per 30 days): no episode at all.
    assert [(a.kind, a.ts) for a in h.alerts] == [
        ("opened", at(1, 9)), ("resolved", at(1, 10)),
        ("opened", at(3, 9)), ("resolved", at(3, 10)),
    ]  # fmt: skip
    assert h.engine.stats["suppressed_by_cooldown"] == 1
    ids = [a.alert_id for a in h.alerts if a.kind == "opened"]
    assert ids == [alert_id("acct-1", AT_RISK, _ms(d, 9)) for d in (1, 3)]

    # No logins at all: after 28 days two usage signals fire in the same day close. One
    # episode opens, with both reasons.
    h.alerts.clear()
    h.tick(at(29, 1))
    (opened,) = h.alerts
    assert (opened.kind, opened.trigger, opened.ts) == ("opened", "day_close", at(28, 0))
    assert _reasons(opened) == [("danger_zone", "high"), ("footprint_shrink", "high")]
    assert opened.explanation.endswith("; and 1 more: footprint_shrink")
    # A failed payment while it is open joins it, under the same id, rather than opening another.
    (joined,) = h.send("payment_failed", ts=at(40, 9), invoice_id="i-40")
    assert (joined.kind, joined.sequence, joined.alert_id) == ("updated", 1, opened.alert_id)
    assert [r.signal for r in joined.reasons][-1] == "payment_failed"
    assert sum(a.kind == "opened" for a in h.alerts) == 1


def test_replaying_the_same_input_gives_the_same_ids_and_records():
    def records():
        h = _account()
        h.send("payment_failed", ts=at(1, 9), invoice_id="i-1")
        h.send("nps_response", ts=at(2), score=2, user_id="u")
        h.send("invoice_paid", ts=at(3, 9), invoice_id="i-1")
        return [a.model_dump_json() for a in h.alerts]

    assert records() == records()


def test_the_same_input_per_signal_publishes_each_signal_as_before():
    h = _harness("signal")
    h.send("payment_failed", ts=at(1, 9), invoice_id="i-1")
    h.send("nps_response", ts=at(2), score=2, user_id="u")
    h.send("invoice_paid", ts=at(3, 9), invoice_id="i-1")
    h.send("nps_response", ts=at(4), score=8, user_id="u")
    assert [(a.signal, a.kind, a.sequence, a.severity) for a in h.alerts] == [
        ("payment_failed", "opened", 0, "medium"),
        ("nps_detractor", "opened", 0, "high"),
        ("payment_failed", "resolved", 1, "medium"),
        ("nps_detractor", "resolved", 1, "high"),
    ]
    assert all([r.signal for r in a.reasons] == [a.signal] for a in h.alerts)
    assert AT_RISK not in h.engine.accounts["acct-1"].episodes


def test_the_open_episode_survives_the_state_bytes_and_carries_on():
    h = _account()
    h.send("payment_failed", ts=at(1, 9), invoice_id="i-1")
    h.send("nps_response", ts=at(2), score=2, user_id="u")
    stored = decode_state(encode_state(h.engine.accounts["acct-1"]))
    restored = Harness(h.policy)
    restored.engine = PartitionEngine(h.policy, {"acct-1": stored}, h.engine.clock_ms)
    for harness in (h, restored):
        harness.send("invoice_paid", ts=at(3, 9), invoice_id="i-1", event_id="paid")
    assert restored.alerts == h.alerts[-1:]
    assert restored.alerts[0].sequence == 2


def test_signal_episodes_opened_before_a_switch_to_account_episodes_are_still_listed():
    """A policy switched from per-signal episodes while one was open: its numbers were not
    kept, so it is listed by name and date, and the record is still valid."""
    before = _harness("signal")
    before.send("payment_failed", ts=at(1, 9), invoice_id="i-1")
    after = Harness(episodes="account", defaults=AT_ONCE)
    after.engine = PartitionEngine(after.policy, before.engine.accounts, before.engine.clock_ms)
    (opened,) = after.send("nps_response", ts=at(2), score=5, user_id="u")
    assert opened.kind == "opened"
    assert _reasons(opened) == [("payment_failed", "medium"), ("nps_detractor", "medium")]
    assert opened.reasons[0].explanation == "payment_failed firing since 2026-01-06"
