"""However the feed arrives: the README's quick-start order (the worker first, then a fast
``produce --rate``) gives replay's alerts with nothing dropped, and a record that really is too
late is dead-lettered with its reason and counted."""

from __future__ import annotations

import orjson
import pytest
from kafka import KafkaProducer

from stream.devtools.brokers import free_port
from stream.devtools.deployment import Deployment
from tests.pipeline.conftest import PARTITIONS, ROCKSDB, start_worker
from tests.pipeline.test_worker_metrics import _answers, _by, _scrape

pytestmark = pytest.mark.slow


def _started(dep: Deployment) -> int:
    """Start a worker with /metrics and wait until it holds every input partition."""
    port = free_port()
    start_worker(dep, CHURNWATCH_WEB_ENABLED="true", CHURNWATCH_WEB_PORT=str(port))
    dep.wait_for(lambda: _answers(port), 60, "/metrics to answer")
    dep.wait_for(
        lambda: len(_scrape(port)[1].get("churnwatch_worker_consumer_lag", ())) == 2 * PARTITIONS,
        90,
        "the worker to be assigned every input partition",
    )
    return port


def test_worker_first_then_a_fast_producer_gives_replays_alerts(kafka, simulated, tmp_path):
    log, expected = simulated
    dep = Deployment(kafka, tmp_path, partitions=PARTITIONS, **ROCKSDB)
    try:
        port = _started(dep)
        dep.cli("produce", str(log), "--rate", "4000", "-q")
        dep.wait_for(lambda: dep.progress() >= 1.0, 300, "the worker to finish the feed")
        dep.wait_for(lambda: _by(_scrape(port)[1], "churnwatch_worker_held_records") ==
                     {(): 0}, 30, "no record to be held")  # fmt: skip
        samples = _scrape(port)[1]
        assert dep.read("dead_letter") == []
        assert _by(samples, "churnwatch_worker_dead_letters_total", "reason") == {}
        payloads = [r.value for r in dep.read("alerts")]
        assert sorted(payloads) == sorted(expected)
    finally:
        dep.stop_all()


def test_a_record_that_really_is_too_late_is_dead_lettered_and_counted(kafka, tmp_path):
    dep = Deployment(kafka, tmp_path, partitions=PARTITIONS, **ROCKSDB)
    try:
        port = _started(dep)
        producer = KafkaProducer(bootstrap_servers=dep.bootstrap)

        def send(topic: str, kind: str, ts: str, event_id: str) -> bytes:
            value = orjson.dumps({"type": kind, "event_id": event_id,
                                  "account_id": "acct-late", "ts": ts})  # fmt: skip
            producer.send(dep.topics[topic], key=b"acct-late", value=value).get(10)
            return value

        send("usage", "login", "2026-03-05T09:00:00Z", "on-time")
        dep.wait_for(lambda: dep.progress() >= 1.0, 60, "the first record to be done")
        late = send("billing", "invoice_paid", "2026-03-01T09:00:00Z", "late")
        producer.close()
        dep.wait_for(lambda: dep.progress() >= 1.0, 60, "the late record to be done")
        (letter,) = dep.read("dead_letter")
        assert letter.value == late
        headers = dict(letter.headers)
        assert headers["churnwatch-reason"] == (
            b"too late: 345,600 s behind its partition's event time, 300 s allowed"
        )
        assert headers["churnwatch-source-topic"] == dep.topics["billing"].encode()
        dead = _by(_scrape(port)[1], "churnwatch_worker_dead_letters_total", "reason")
        assert dead == {("too late",): 1}
    finally:
        dep.stop_all()
