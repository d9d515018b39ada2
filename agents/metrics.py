"""The worker's Prometheus figures, served as ``GET /metrics`` by the Faust web server.

Per record the agent only observes its latency; the counts of events, dead letters and alerts
are plain dict counters of :class:`~stream.run.live.LiveProcessor`, and the consumer lag is
computed from the high watermarks and the delivery gate's positions, all copied into the
registry at scrape time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from faust.exceptions import ConsumerNotStarted

from stream.run.delivery import DeliveryGate
from stream.run.live import LiveProcessor
from stream.run.metrics import Registry

EVENTS = "churnwatch_worker_events_total"
DEAD_LETTERS = "churnwatch_worker_dead_letters_total"
ALERTS = "churnwatch_worker_alerts_total"
LATENCY = "churnwatch_worker_processing_seconds"
LAG = "churnwatch_worker_consumer_lag"
HELD = "churnwatch_worker_held_records"
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


def describe_metrics(metrics: Registry) -> None:
    metrics.describe(EVENTS, "counter", "input records processed, by topic and event type")
    metrics.describe(DEAD_LETTERS, "counter", "records sent to the dead-letter topic, by reason")
    metrics.describe(ALERTS, "counter", "alerts published, by signal, severity and kind")
    metrics.describe(HELD, "gauge", "records waiting for the other input topic of their "
                     "partition, so that usage and billing go in event-time order")  # fmt: skip
    metrics.describe(LATENCY, "histogram", "seconds from taking a record to its alerts being "
                     "confirmed by Kafka", buckets=LATENCY_BUCKETS)  # fmt: skip


class WorkerMetrics:
    def __init__(
        self,
        metrics: Registry,
        processor: LiveProcessor,
        gate: DeliveryGate,
        topics: tuple[str, str],
        consumer: Callable[[], Any],
    ) -> None:
        describe_metrics(metrics)
        self.metrics = metrics
        self.processor = processor
        self.gate = gate
        self.topics = topics
        self.sources = {topic: source for source, topic in enumerate(topics)}
        self.consumer = consumer  # Faust creates its consumer lazily: ask for it each scrape
        self.observe_latency = lambda seconds: metrics.observe(LATENCY, seconds)

    def render(self) -> str:
        metrics, processor = self.metrics, self.processor
        for source, counts in enumerate(processor.processed):
            for kind, n in list(counts.items()):
                metrics.set(EVENTS, n, topic=self.topics[source], type=kind)
        for kind, n in list(processor.dead_letter_kinds.items()):
            metrics.set(DEAD_LETTERS, n, reason=kind)
        for (signal, severity, kind), n in list(processor.alert_counts.items()):
            metrics.set(ALERTS, n, signal=signal, severity=severity, kind=kind)
        metrics.set(HELD, processor.held())
        return self._lag().render() + metrics.render()

    def _lag(self) -> Registry:
        """A registry of its own per scrape, so a revoked partition's series goes away instead
        of freezing: the lag has a series per input partition this worker holds now."""
        lag = Registry()
        lag.describe(LAG, "gauge", "records in the input partition after the next offset "
                     "the worker expects (high watermark minus that offset)")  # fmt: skip
        consumer = self.consumer()
        try:
            assigned = consumer.assignment()
        except ConsumerNotStarted:
            assigned = set()
        for tp in assigned:
            source = self.sources.get(tp.topic)
            highwater = consumer.highwater(tp) if source is not None else None
            if highwater is None:
                continue  # not an input topic, or nothing fetched from it yet
            position = self.gate.expected(tp.partition, source)
            if position is None:  # no record handed over since the partition was assigned
                # Private: Faust's record of the committed offsets (see agents/__init__.py).
                position = consumer._committed_offset.get(tp)
            lag.set(LAG, max(highwater - (position or 0), 0), topic=tp.topic,
                    partition=str(tp.partition))  # fmt: skip
        return lag
