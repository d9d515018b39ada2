"""The worker's /metrics without a broker: the processor's counts, the held records, the lag
and the latency histogram read at scrape time, beside prometheus_client's process collectors."""

from __future__ import annotations

from collections import namedtuple

from faust.exceptions import ConsumerNotStarted
from prometheus_client.parser import text_string_to_metric_families

from agents.metrics import LATENCY_BUCKETS, WorkerMetrics
from stream.core.policy import load_policy
from stream.run.delivery import DeliveryGate
from stream.run.live import LiveProcessor
from stream.run.metrics import Registry

TP = namedtuple("TP", "topic partition")
TOPICS = ("usage", "billing")


class FakeConsumer:
    """What the lag reads of Faust's consumer: assignment, high watermarks, committed offsets."""

    def __init__(self, highwater: dict[TP, int], committed: dict[TP, int]) -> None:
        self._highwater = highwater
        self._committed_offset = committed
        self.started = True

    def assignment(self) -> set[TP]:
        if not self.started:
            raise ConsumerNotStarted("not yet")
        return set(self._highwater)

    def highwater(self, tp: TP) -> int | None:
        return self._highwater[tp]


def _parse(body: bytes) -> tuple[dict[str, str], dict[str, list[tuple[dict[str, str], float]]]]:
    kinds, samples = {}, {}
    for family in text_string_to_metric_families(body.decode()):
        kinds[family.name] = family.type
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return kinds, samples


def _worker(consumer: FakeConsumer) -> tuple[WorkerMetrics, LiveProcessor, DeliveryGate]:
    processor = LiveProcessor(load_policy(None), 2, max_idle_ms=0)
    gate = DeliveryGate()
    return WorkerMetrics(Registry(), processor, gate, TOPICS, lambda: consumer), processor, gate


def test_scrape_reads_the_processors_counts_without_copying_them():
    consumer = FakeConsumer(
        {TP("usage", 0): 10, TP("billing", 0): 4, TP("usage", 1): 7, TP("elsewhere", 0): 99},
        {TP("usage", 1): 5},
    )
    metrics, processor, gate = _worker(consumer)
    processor.processed[0]["login"] = 1_234_567
    processor.processed[1]["invoice_paid"] = 3
    processor.dead_letter_kinds["not valid JSON"] = 2
    processor.alert_counts[("danger_zone", "high", "opened")] = 4
    gate.check(0, 0, 7)  # usage partition 0: next expected offset 8
    gate.check(0, 1, 1)  # billing partition 0: next expected offset 2
    for seconds in (0.0002, 0.003, 2.0):
        metrics.observe_latency(seconds)

    body, content_type = metrics.render()
    assert content_type.startswith("text/plain") and "charset=utf-8" in content_type
    kinds, samples = _parse(body)
    assert kinds["churnwatch_worker_events"] == "counter"
    assert kinds["churnwatch_worker_processing_seconds"] == "histogram"
    assert kinds["churnwatch_worker_consumer_lag"] == "gauge"
    assert kinds["churnwatch_worker_held_records"] == "gauge"
    assert samples["churnwatch_worker_events_total"] == [
        ({"topic": "usage", "type": "login"}, 1_234_567),
        ({"topic": "billing", "type": "invoice_paid"}, 3),
    ]
    assert samples["churnwatch_worker_dead_letters_total"] == [({"reason": "not valid JSON"}, 2)]
    assert samples["churnwatch_worker_alerts_total"] == [
        ({"signal": "danger_zone", "severity": "high", "kind": "opened"}, 4)
    ]
    assert samples["churnwatch_worker_held_records"] == [({}, 0)]
    # Input partitions only; the gate's position, else the committed offset.
    assert samples["churnwatch_worker_consumer_lag"] == [
        ({"topic": "billing", "partition": "0"}, 2),
        ({"topic": "usage", "partition": "0"}, 2),
        ({"topic": "usage", "partition": "1"}, 2),
    ]
    buckets = samples["churnwatch_worker_processing_seconds_bucket"]
    assert [labels["le"] for labels, _ in buckets][-1] == "+Inf"
    assert len(buckets) == len(LATENCY_BUCKETS) + 1
    assert [value for _, value in buckets] == [1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3]
    assert samples["churnwatch_worker_processing_seconds_count"] == [({}, 3)]
    assert samples["process_resident_memory_bytes"][0][1] > 0
    assert "python_gc_objects_collected_total" in samples

    # Counts that move are read again at the next scrape, not added to what was read before.
    processor.processed[0]["login"] += 1
    _, again = _parse(metrics.render()[0])
    assert again["churnwatch_worker_events_total"][0] == (
        {"topic": "usage", "type": "login"},
        1_234_568,
    )


def test_a_revoked_partition_leaves_the_lag_and_a_consumer_not_started_has_none():
    consumer = FakeConsumer({TP("usage", 0): 3, TP("usage", 1): 3}, {})
    metrics, _, _ = _worker(consumer)
    _, samples = _parse(metrics.render()[0])
    assert len(samples["churnwatch_worker_consumer_lag"]) == 2
    del consumer._highwater[TP("usage", 1)]
    _, samples = _parse(metrics.render()[0])
    assert samples["churnwatch_worker_consumer_lag"] == [({"topic": "usage", "partition": "0"}, 3)]
    consumer.started = False
    _, samples = _parse(metrics.render()[0])
    assert "churnwatch_worker_consumer_lag" not in samples
    assert samples["churnwatch_worker_held_records"] == [({}, 0)]


def test_two_workers_in_one_process_keep_their_own_figures():
    consumer = FakeConsumer({}, {})
    (one, first, _), (two, second, _) = _worker(consumer), _worker(consumer)
    first.processed[0]["login"] = 1
    second.processed[0]["login"] = 2
    one.observe_latency(0.01)
    for metrics, n, count in ((one, 1, 1), (two, 2, 0)):
        _, samples = _parse(metrics.render()[0])
        assert samples["churnwatch_worker_events_total"] == [
            ({"topic": "usage", "type": "login"}, n)
        ]
        assert samples["churnwatch_worker_processing_seconds_count"] == [({}, count)]


def test_the_latency_counts_write_what_a_prometheus_client_histogram_writes():
    from prometheus_client import CollectorRegistry, Histogram, generate_latest

    from agents.metrics import LATENCY, LatencyCounts

    reference = CollectorRegistry()
    histogram = Histogram(LATENCY, "x", buckets=LATENCY_BUCKETS, registry=reference)
    counts = LatencyCounts()
    for seconds in (0.0002, 0.0005, 0.003, 0.0031, 1.0, 2.0, 0.0):  # bounds count in their bucket
        histogram.observe(seconds)
        counts.observe(seconds)

    class Counts:
        def collect(self):
            yield counts.family()

    ours = CollectorRegistry()
    ours.register(Counts())

    def lines(registry: CollectorRegistry) -> list[str]:
        suffixes = ("_bucket", "_count", "_sum")
        text = generate_latest(registry).decode().splitlines()
        return [line for line in text if line.split("{")[0].split(" ")[0].endswith(suffixes)]

    assert lines(ours) == lines(reference) and len(lines(ours)) == len(LATENCY_BUCKETS) + 3
