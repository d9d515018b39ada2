"""The ingest agent: records in, alerts out. A thin adapter over :class:`LiveProcessor`.

Order of effects, which is what makes a crash at any point safe:

1. a record's alerts are sent and awaited (Kafka has them) right away: latency matters,
2. the account states changed since the last flush are written to the table (changelog),
   every ``FLUSH_EVERY`` records or ``FLUSH_INTERVAL`` seconds, whichever comes first, so an
   account with many records in between is written once,
3. every ``COMMIT_INTERVAL`` seconds, once Kafka has confirmed every state written so far and
   a checkpoint (the offsets and the event-time clock at that point, see
   :class:`~stream.live.Checkpoint`), the offsets of the flushed records are committed.

The timer's flush never runs in the middle of a record (between its processing and the
confirmation of its alerts): a record's states are never written before its alerts are
confirmed. A flag does that; an ``asyncio.Lock`` around every record cost ~10% of throughput.

A crash before 3 replays the records and re-sends their alerts with the same ids; the states
already written make each account skip the records it applied (it keeps the newest offset).

Offsets are committed here rather than through Faust's acks, and the input topics are declared
without acks. Faust's ack bookkeeping goes wrong in races a worker meets in normal operation:
it commits past an unacked record at a partition's head (faust-streaming issue 606), keeps acks
sent during a rebalance in lists it already cleared, and after a restart it resumes the input
partitions before it seeks them, counts the records fetched in between as an offset gap and so
as acked twice; commits then crawl one offset per interval. :class:`LiveProcessor` knows which
records are done and gives the offsets directly. Because those offsets assume every record was
handed over, a :class:`~stream.delivery.DeliveryGate` checks each partition's offsets first.

``GET /metrics`` on the Faust web server (``CHURNWATCH_WEB_ENABLED=true``) serves Prometheus
text. Per record the agent only observes its latency; the counts of events, dead letters and
alerts are plain dict counters of :class:`LiveProcessor`, and the consumer lag is computed from
the high watermarks and the gate's positions, all copied into the registry at scrape time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from faust.exceptions import ConsumerNotStarted
from faust.types import TP

from agents.offsets import CommittedOffsets, OffsetProbe
from agents.table_writer import TableWriter
from schemas.events import decode_event
from stream.run.delivery import Verdict
from stream.run.live import Checkpoint, Record, dead_letter_headers
from stream.run.metrics import Registry

if TYPE_CHECKING:
    from agents.app import ChurnApp

log = logging.getLogger("churnwatch.ingest")
FLUSH_EVERY = 1000
FLUSH_INTERVAL = 0.05
COMMIT_INTERVAL = 1.0

EVENTS = "churnwatch_worker_events_total"
DEAD_LETTERS = "churnwatch_worker_dead_letters_total"
ALERTS = "churnwatch_worker_alerts_total"
LATENCY = "churnwatch_worker_processing_seconds"
LAG = "churnwatch_worker_consumer_lag"
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


def describe_metrics(metrics: Registry) -> None:
    metrics.describe(EVENTS, "counter", "input records processed, by topic and event type")
    metrics.describe(DEAD_LETTERS, "counter", "records sent to the dead-letter topic, by reason")
    metrics.describe(ALERTS, "counter", "alerts published, by signal, severity and kind")
    metrics.describe(LATENCY, "histogram", "seconds from taking a record to its alerts being "
                     "confirmed by Kafka", buckets=LATENCY_BUCKETS)  # fmt: skip


def register(churn: ChurnApp) -> None:
    app, settings, processor = churn.app, churn.settings, churn.processor
    sources = {settings.usage_topic: 0, settings.billing_topic: 1}
    topics = (settings.usage_topic, settings.billing_topic)
    writer = TableWriter(churn.table)
    busy = [False]  # a record is between processing and its confirmed alerts
    to_commit: dict[int, Checkpoint] = {}  # per partition: flushed, not yet committed
    in_flight: list = []  # changelog sends of flushed states, not yet confirmed by Kafka
    committed_offsets = CommittedOffsets(settings)
    probe = OffsetProbe(settings)
    gate = churn.gate
    metrics = churn.metrics
    describe_metrics(metrics)
    observe = metrics.observe

    def flush() -> None:
        batch = processor.flush()
        for part, key, value in batch.writes:
            in_flight.append(writer.put(part, key.encode(), value))
        to_commit.update(batch.checkpoints)

    async def commit() -> None:
        if app.rebalancing or not to_commit:
            return  # offsets of partitions being revoked are simply processed again
        checkpoints = list(to_commit.values())
        to_commit.clear()
        sends = in_flight[:]
        in_flight.clear()
        offsets = {}
        for checkpoint in checkpoints:
            part, key, value = processor.checkpoint_write(checkpoint)
            sends.append(writer.put(part, key.encode(), value))
            for source, offset in enumerate(checkpoint.offsets):
                if offset is not None:
                    offsets[TP(topics[source], checkpoint.partition)] = offset
        # The changelog must have every state and the checkpoint before the offsets move.
        # Faust's producer flush, which its commit calls, is not enough: it gives up on its
        # send buffer after 100 ms without progress, and a commit then ran ahead of states
        # still in the buffer (lost in a kill -9). Each send's own future is definite.
        await asyncio.gather(*sends)
        if await app.consumer._commit_offsets(offsets):
            for checkpoint in checkpoints:
                processor.confirm(checkpoint)
        else:
            for checkpoint in checkpoints:
                to_commit.setdefault(checkpoint.partition, checkpoint)

    @app.timer(FLUSH_INTERVAL)
    async def _flush_timer() -> None:
        if processor.pending() and not busy[0]:
            flush()

    @app.timer(COMMIT_INTERVAL)
    async def _commit_timer() -> None:
        await commit()

    @app.on_before_shutdown.connect
    async def _final_commit(sender: object, **kwargs: object) -> None:
        if processor.pending() and not busy[0]:
            flush()
        await commit()
        log.info("stopping; counts: %s", {**processor.stats(), **gate.counts})

    tps: dict[tuple[int, int], TP] = {}

    def caught_up(partition: int, source: int) -> bool:
        """Has this agent been handed every record of the source partition up to its high
        watermark? (A partition with nothing new since its committed offset delivers nothing;
        the gate starts from the committed offset.)"""
        tp = tps.get((partition, source))
        if tp is None:
            tp = tps[(partition, source)] = TP(topics[source], partition)
        highwater = app.consumer.highwater(tp)
        if highwater is None:
            return False
        position = gate.expected(partition, source)
        return (position or 0) >= highwater

    def render_metrics() -> str:
        for source, counts in enumerate(processor.processed):
            for kind, n in list(counts.items()):
                metrics.set(EVENTS, n, topic=topics[source], type=kind)
        for kind, n in list(processor.dead_letter_kinds.items()):
            metrics.set(DEAD_LETTERS, n, reason=kind)
        for (signal, severity, kind), n in list(processor.alert_counts.items()):
            metrics.set(ALERTS, n, signal=signal, severity=severity, kind=kind)
        # The lag has a series per partition this worker holds now: a separate registry per
        # scrape, so a revoked partition's series goes away instead of freezing.
        lag = Registry()
        lag.describe(LAG, "gauge", "records in the input partition after the next offset "
                     "the worker expects (high watermark minus that offset)")  # fmt: skip
        consumer = app.consumer
        try:
            assigned = consumer.assignment()
        except ConsumerNotStarted:
            assigned = set()
        for tp in assigned:
            source = sources.get(tp.topic)
            highwater = consumer.highwater(tp) if source is not None else None
            if highwater is None:
                continue  # not an input topic, or nothing fetched from it yet
            position = gate.expected(tp.partition, source)
            if position is None:  # no record handed over since the partition was assigned
                position = consumer._committed_offset.get(tp)
            lag.set(LAG, max(highwater - (position or 0), 0), topic=tp.topic,
                    partition=str(tp.partition))  # fmt: skip
        return lag.render() + metrics.render()

    @app.page("/metrics")
    async def metrics_page(view, request):
        return view.text(render_metrics(), content_type="text/plain")

    @app.on_partitions_revoked.connect
    async def _revoked(sender: object, revoked: set, **kwargs: object) -> None:
        for tp in revoked:
            if tp.topic in sources:
                processor.revoke(tp.partition)  # its unflushed records are never committed
                gate.revoke(tp.partition)
                to_commit.pop(tp.partition, None)

    @app.agent(churn.inputs, concurrency=1, name="churnwatch-ingest")
    async def ingest(stream):
        async for event in stream.events():
            busy[0] = True
            try:
                await _one(event)
            except Exception as exc:
                # Faust would restart the agent, which resumes after this record while its
                # partition's offsets can never move past it: stop the worker instead, so that
                # it is restarted from the committed offsets (or a person reads the reason).
                log.critical("stopping the worker: %s: %s", type(exc).__name__, exc)
                await app.crash(exc)
                return
            finally:
                busy[0] = False

    async def _one(event) -> None:
        started = time.perf_counter()
        message = event.message
        partition, source, offset = message.partition, sources[message.topic], message.offset
        if not processor.is_active(partition):
            committed = await committed_offsets.fetch(partition)
            restored = processor.assign(
                partition, ((k.decode(), v) for k, v in churn.table.items()), committed
            )
            gate.assign(partition, committed)
            log.info("partition %d: %d accounts restored (resuming at offsets %s, clock %d)",
                     partition, restored, committed, processor.clock_ms(partition))  # fmt: skip
        verdict = gate.check(partition, source, offset)
        if verdict is Verdict.JUMP:
            want = gate.expected(partition, source)
            first = await probe.first_offset(message.topic, partition, want)
            verdict = gate.explained(partition, source, offset, first)
            if verdict is Verdict.AWAIT:
                log.warning("%s:%d: offsets %d to %d were never delivered; reading them again",
                            message.topic, partition, want, offset - 1)  # fmt: skip
                await app.consumer.seek(TP(message.topic, partition), want)
        if verdict is not Verdict.PROCESS:
            return
        outcome = processor.handle(
            Record(source, partition, offset, message.key, message.value,
                   message.timestamp),
            caught_up,
            int(time.time() * 1000),
        )  # fmt: skip
        sent = []
        for key, payload, trigger_source, offset in outcome.alerts:
            trigger = f"{topics[trigger_source]}:{partition}:{offset}".encode()
            sent.append(await churn.alerts.send(
                key=key, value=payload, headers=[("churnwatch-trigger", trigger)]))  # fmt: skip
        for letter in outcome.dead_letters:
            sent.append(await churn.dead_letters.send(
                key=letter.record.key, value=letter.record.value or b"",
                headers=dead_letter_headers(letter, topics[letter.record.source])))  # fmt: skip
        for record in outcome.rekeyed:
            account = decode_event(record.value or b"").account_id.encode()
            sent.append(await app.topic(topics[record.source], key_serializer="raw",
                                        value_serializer="raw").send(
                key=account, value=record.value))  # fmt: skip
        for future in sent:
            await future
        observe(LATENCY, time.perf_counter() - started)
        if processor.pending() >= FLUSH_EVERY:
            flush()
