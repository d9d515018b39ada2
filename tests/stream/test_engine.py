"""The engine around the detectors: clock, episodes, cooldowns, cancellation, partitions."""

from __future__ import annotations

from stream.core.alert_builder import alert_id
from stream.core.engine import PartitionedEngine, partition_for
from stream.core.health import health, status_of
from stream.core.state import AccountState
from tests.helpers import Harness, at, event, model


def _at_once() -> Harness:
    """A failed payment alerts on the event itself, with no grace for the retry."""
    return Harness(defaults={"payment_failed": {"grace_days": 0}})


def _fail_and_pay(h: Harness, day: int) -> None:
    h.send("payment_failed", ts=at(day, 9))
    h.send("invoice_paid", ts=at(day, 10))


def test_cooldown_limits_openings_per_period():
    h = _at_once()
    h.subscribe(day=0)
    for day in (1, 3, 5, 40):
        _fail_and_pay(h, day)
    opened = h.of("payment_failed", "opened")
    assert [a.ts for a in opened] == [at(1, 9), at(3, 9), at(40, 9)]
    assert h.engine.stats["suppressed_by_cooldown"] == 1


def test_alert_id_is_derived_from_account_signal_and_episode_start():
    h = _at_once()
    h.subscribe(day=0)
    out = h.send("payment_failed", ts=at(2, 9))
    start_ms = int(at(2, 9).timestamp() * 1000)
    assert out[0].alert_id == alert_id("acct-1", "payment_failed", start_ms)
    assert out[0].episode_start == at(2, 9)

    # The same input through a fresh engine (a restart with no state) gives the same id.
    again = _at_once()
    again.subscribe(day=0)
    assert again.send("payment_failed", ts=at(2, 9))[0].alert_id == out[0].alert_id


def test_severity_only_escalates_within_an_episode():
    h = Harness()
    h.subscribe(day=0)
    h.send("nps_response", ts=at(1), score=2, user_id="u")  # high
    h.send("nps_response", ts=at(2), score=6, user_id="u")  # medium band: no record
    records = h.of("nps_detractor")
    assert [(r.kind, r.severity) for r in records] == [("opened", "high")]


def test_cancellation_ends_every_open_episode_as_churned_and_stops_judging():
    h = _at_once()
    h.subscribe(day=0)
    h.send("payment_failed", ts=at(1, 9))
    h.send("nps_response", ts=at(1, 10), score=3, user_id="u")
    out = h.send("subscription_cancelled", ts=at(2, 9), voluntary=False, reason="project ended")
    assert sorted((a.signal, a.kind) for a in out) == [
        ("nps_detractor", "churned"),
        ("payment_failed", "churned"),
    ]
    assert all(
        a.resolution
        == "The subscription was cancelled; reason given: 'project ended' (unclassified)."
        for a in out
    )
    h.tick(at(80))
    assert [a for a in h.alerts if a.ts > at(2, 9)] == [], "no alerts about a gone customer"


def test_cancelled_account_is_forgotten_after_the_history_window():
    h = Harness()
    h.subscribe(day=0)
    h.send("subscription_cancelled", ts=at(1, 9))
    h.tick(at(100))
    assert "acct-1" in h.engine.accounts
    h.tick(at(125))
    assert "acct-1" not in h.engine.accounts
    assert h.engine.stats["evicted"] == 1


def test_unknown_event_types_are_counted_ignored_and_still_move_the_clock():
    h = Harness()
    out = h.feed(event("screen_viewed", ts=at(3), screen="home"))
    assert out == []
    assert h.engine.stats["unknown_type"] == 1
    assert "acct-1" not in h.engine.accounts
    assert h.engine.clock_ms == int(at(3).timestamp() * 1000)


def test_health_follows_the_worst_dimension():
    acct = AccountState("a", 0)
    acct.set_risk("engagement_drop", 30)
    acct.set_risk("payment_failed", 80)
    snapshot = health(acct.risk)
    assert snapshot.usage == 70 and snapshot.billing == 20
    assert snapshot.overall == 20 and snapshot.status == "critical"
    assert health(bytes(len(acct.risk))).overall == 100
    assert [status_of(s) for s in (100, 74, 49, 25)] == ["healthy", "watch", "at_risk", "critical"]


def test_partition_for_matches_kafkas_default_partitioner():
    # Test vectors of the Java client's Utils.murmur2 (signed 32-bit results).
    from kafka.partitioner.default import murmur2

    vectors = {"21": -973932308, "foobar": -790332482, "a-little-bit-long-string": -985981536}
    for key, signed in vectors.items():
        assert (murmur2(key.encode()) ^ 0x80000000) - 0x80000000 == signed
        assert partition_for(key, 12) == (signed & 0x7FFFFFFF) % 12
    assert partition_for("acct-00001", 1) == 0
    assert {partition_for(f"acct-{i:05d}", 6) for i in range(200)} == set(range(6))


def test_partitioned_engine_keeps_an_account_on_one_partition():
    engine = PartitionedEngine(Harness().policy, partitions=4)
    for day in range(3):
        engine.process(model(event("login", "acct-7", at(day))))
    holders = [p for p in engine.partitions if "acct-7" in p.accounts]
    assert len(holders) == 1
    assert holders[0] is engine.partitions[partition_for("acct-7", 4)]
