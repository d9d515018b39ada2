"""The worker's Prometheus figures, served as ``GET /metrics`` by the Faust web server.

Per record the agent only observes its latency, into :class:`LatencyCounts` (a list of bucket
counts and a sum: a ``prometheus_client`` ``Histogram`` takes a lock per bucket and cost 1.7%
of the worker under load). The counts of events, dead letters and alerts stay plain dict
counters of
:class:`~stream.run.live.LiveProcessor`, and the consumer lag is computed from the high
watermarks and the delivery gate's positions: :class:`WorkerCollector` reads them at scrape
time, so nothing is counted twice. The registry also holds ``prometheus_client``'s process,
platform and GC collectors (see :mod:`stream.run.metrics`).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator
from typing import Any

from faust.exceptions import ConsumerNotStarted
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from stream.run.delivery import DeliveryGate
from stream.run.live import LiveProcessor
from stream.run.metrics import exposition

EVENTS = "churnwatch_worker_events_total"
DEAD_LETTERS = "churnwatch_worker_dead_letters_total"
ALERTS = "churnwatch_worker_alerts_total"
LATENCY = "churnwatch_worker_processing_seconds"
LAG = "churnwatch_worker_consumer_lag"
HELD = "churnwatch_worker_held_records"
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)

_EVENTS_HELP = "input records processed, by topic and event type"
_DEAD_LETTERS_HELP = "records sent to the dead-letter topic, by reason"
_ALERTS_HELP = "alerts published, by signal, severity and kind"
_HELD_HELP = ("records waiting for the other input topic of their partition, so that usage "
              "and billing go in event-time order")  # fmt: skip
_LATENCY_HELP = "seconds from taking a record to handing its sends to the producer"
_LAG_HELP = ("records in the input partition after the next offset the worker expects "
             "(high watermark minus that offset)")  # fmt: skip


class LatencyCounts:
    """A latency histogram as plain numbers: one list index per observation, read at scrape
    time as Prometheus' cumulative buckets (an observation equal to a bound counts in it)."""

    def __init__(self, bounds: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one: above every bound
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(self.bounds, seconds)] += 1
        self.total += seconds

    def family(self) -> HistogramMetricFamily:
        buckets, running = [], 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += count
            buckets.append((_le(bound), running))
        return HistogramMetricFamily(LATENCY, _LATENCY_HELP, buckets=buckets, sum_value=self.total)


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(float(bound))


class WorkerCollector(Collector):
    """The processor's counts, the held records and the consumer lag, read at each scrape.

    The lag has a series per input partition this worker holds at the time of the scrape,
    so a revoked partition's series goes away instead of freezing.
    """

    def __init__(
        self,
        processor: LiveProcessor,
        gate: DeliveryGate,
        topics: tuple[str, str],
        consumer: Callable[[], Any],
        latency: LatencyCounts | None = None,
    ) -> None:
        self.processor = processor
        self.latency = latency or LatencyCounts()
        self.gate = gate
        self.topics = topics
        self.sources = {topic: source for source, topic in enumerate(topics)}
        self.consumer = consumer  # Faust creates its consumer lazily: ask for it each scrape

    @staticmethod
    def _families() -> tuple[CounterMetricFamily, ...]:
        return (
            CounterMetricFamily(EVENTS, _EVENTS_HELP, labels=("topic", "type")),
            CounterMetricFamily(DEAD_LETTERS, _DEAD_LETTERS_HELP, labels=("reason",)),
            CounterMetricFamily(ALERTS, _ALERTS_HELP, labels=("signal", "severity", "kind")),
        )

    def describe(self) -> Iterator[Any]:
        """The names, for the registry's duplicate check (without touching the consumer)."""
        yield from self._families()
        yield HistogramMetricFamily(LATENCY, _LATENCY_HELP)
        yield GaugeMetricFamily(HELD, _HELD_HELP)
        yield GaugeMetricFamily(LAG, _LAG_HELP, labels=("topic", "partition"))

    def collect(self) -> Iterator[Any]:
        processor = self.processor
        events, dead_letters, alerts = self._families()
        for source, counts in enumerate(processor.processed):
            for kind, n in list(counts.items()):
                events.add_metric((self.topics[source], kind), n)
        for kind, n in list(processor.dead_letter_kinds.items()):
            dead_letters.add_metric((kind,), n)
        for (signal, severity, kind), n in list(processor.alert_counts.items()):
            alerts.add_metric((signal, severity, kind), n)
        yield from (events, dead_letters, alerts)
        yield self.latency.family()
        yield GaugeMetricFamily(HELD, _HELD_HELP, value=processor.held())
        yield self._lag()

    def _lag(self) -> GaugeMetricFamily:
        lag = GaugeMetricFamily(LAG, _LAG_HELP, labels=("topic", "partition"))
        consumer = self.consumer()
        try:
            assigned = consumer.assignment()
        except ConsumerNotStarted:
            assigned = set()
        for tp in sorted(assigned, key=lambda tp: (tp.topic, tp.partition)):
            source = self.sources.get(tp.topic)
            highwater = consumer.highwater(tp) if source is not None else None
            if highwater is None:
                continue  # not an input topic, or nothing fetched from it yet
            position = self.gate.expected(tp.partition, source)
            if position is None:  # no record handed over since the partition was assigned
                # Private: Faust's record of the committed offsets (see agents/__init__.py).
                position = consumer._committed_offset.get(tp)
            lag.add_metric((tp.topic, str(tp.partition)), max(highwater - (position or 0), 0))
        return lag


class WorkerMetrics:
    def __init__(
        self,
        metrics: CollectorRegistry,
        processor: LiveProcessor,
        gate: DeliveryGate,
        topics: tuple[str, str],
        consumer: Callable[[], Any],
    ) -> None:
        self.metrics = metrics
        self.latency = LatencyCounts()
        metrics.register(WorkerCollector(processor, gate, topics, consumer, self.latency))
        self.observe_latency: Callable[[float], None] = self.latency.observe

    def render(self) -> tuple[bytes, str]:
        """The body of ``GET /metrics`` and its content type."""
        return exposition(self.metrics)
