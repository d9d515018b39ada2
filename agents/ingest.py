"""The ingest agent: records in, alerts out. A thin adapter over :class:`LiveProcessor`.

Per record the agent only receives, processes and hands off:

1. :class:`~agents.intake.Intake` restores the record's partition if needed and checks its
   offset (no repeats, no silent gaps),
2. :class:`~stream.run.live.LiveProcessor` turns it into alerts, dead letters, re-keyed
   records and the account-health snapshots of the days it closed,
3. those are sent right away, since latency matters, and their futures are handed to the
   :class:`~agents.checkpointer.Checkpointer` without waiting for Kafka's answer; it writes
   the changed states to the table once Kafka has confirmed those sends, and commits the
   offsets, in an order that makes a crash at any point safe (its docstring tells the order).
   Waiting for the acks of each record's sends before taking the next one kept the agent
   idle for a producer round trip after every alert and every day close.

While a record is between processing and the hand-over of its sends, ``checkpointer.busy``
is set: the timer's flush never takes a record's states before its sends are tracked.

Offsets are committed by the checkpointer rather than through Faust's acks, and the input
topics are declared without acks. Faust's ack bookkeeping goes wrong in races a worker meets
in normal operation: it commits past an unacked record at a partition's head (faust-streaming
issue 606), keeps acks sent during a rebalance in lists it already cleared, and after a restart
it resumes the input partitions before it seeks them, counts the records fetched in between as
an offset gap and so as acked twice; commits then crawl one offset per interval.
:class:`LiveProcessor` knows which records are done and gives the offsets directly. Because
those offsets assume every record was handed over, a :class:`~stream.run.delivery.DeliveryGate`
checks each partition's offsets first.

``GET /metrics`` on the Faust web server (``CHURNWATCH_WEB_ENABLED=true``) serves Prometheus
text (see ``agents/metrics.py``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

import faust
from faust.types import TP

from agents import hooks
from agents.checkpointer import Checkpointer, OffsetCommitter
from agents.churn import ChurnApp
from agents.intake import Intake
from agents.metrics import WorkerMetrics
from agents.table_writer import TableWriter
from schemas.events import decode_event
from stream.run.live import TOO_LATE, Outcome, Record, dead_letter_headers

log = logging.getLogger("churnwatch.ingest")
LATE_WARNING_INTERVAL = 60.0


def offset_committer(app: faust.App) -> OffsetCommitter:
    """Commit explicit offsets through Faust's consumer (private: see agents/__init__.py)."""

    async def commit(offsets: Mapping[TP, int]) -> bool:
        return await app.consumer._commit_offsets(offsets)

    return commit


def register(churn: ChurnApp) -> None:
    """Add the ingest agent, its timers and hooks, and the /metrics page to ``churn.app``."""
    app = churn.app
    checkpointer = Checkpointer(
        churn.processor,
        TableWriter(churn.table),
        offset_committer(app),
        churn.topics,
        rebalancing=lambda: app.rebalancing,
    )
    metrics = WorkerMetrics(
        churn.metrics, churn.processor, churn.gate, churn.topics, lambda: app.consumer
    )
    ingest_one = _Ingest(churn, checkpointer, metrics)
    hooks.install(churn, checkpointer, metrics, ingest_one.release)
    one = ingest_one.one

    @app.agent(churn.inputs, concurrency=1, name="churnwatch-ingest")
    async def ingest(stream):
        async for event in stream.events():
            try:
                await one(event.message)
            except Exception as exc:
                # Faust would restart the agent, which resumes after this record while its
                # partition's offsets can never move past it: stop the worker instead, so that
                # it is restarted from the committed offsets (or a person reads the reason).
                message = event.message
                log.critical("stopping the worker: %s: %s", type(exc).__name__, exc,
                             exc_info=exc, extra={"topic": message.topic,
                                                  "partition": message.partition,
                                                  "offset": message.offset})  # fmt: skip
                await app.crash(exc)
                return


class _Ingest:
    """Receive -> process -> hand off, for one record at a time."""

    def __init__(self, churn: ChurnApp, checkpointer: Checkpointer, metrics: WorkerMetrics):
        self.churn = churn
        self.checkpointer = checkpointer
        self.intake = Intake(churn)
        self.observe_latency = metrics.observe_latency
        self.topics = churn.topics
        self.sources = {topic: source for source, topic in enumerate(churn.topics)}
        self.lock = asyncio.Lock()
        self.late_unreported = 0
        self.late_warned_at = -LATE_WARNING_INTERVAL

    async def one(self, message: Any) -> None:
        started = time.perf_counter()
        source = self.sources[message.topic]
        checkpointer = self.checkpointer
        async with self.lock:
            checkpointer.busy = True
            try:
                if not await self.intake.admit(message, source):
                    return
                outcome = self.churn.processor.handle(
                    Record(source, message.partition, message.offset, message.key,
                           message.value, message.timestamp),
                    self.intake,
                    int(time.time() * 1000),
                )  # fmt: skip
                await self._deliver(outcome, message.partition)
            except BaseException as exc:
                checkpointer.fail(exc)
                raise
            finally:
                checkpointer.busy = False
        self.observe_latency(time.perf_counter() - started)
        await checkpointer.flush_if_full()

    async def release(self) -> None:
        """Process the records whose wait for the other input topic is over (a timer calls
        this; the lock keeps it from interleaving with a record the agent is handling)."""
        processor = self.churn.processor
        if not processor.held() or self.lock.locked():
            return
        async with self.lock:
            self.checkpointer.busy = True
            try:
                done = processor.release(self.intake, int(time.time() * 1000))
                for partition, outcome in done.items():
                    await self._deliver(outcome, partition)
            except BaseException as exc:
                self.checkpointer.fail(exc)
                raise
            finally:
                self.checkpointer.busy = False
        await self.checkpointer.flush_if_full()

    async def _deliver(self, outcome: Outcome, partition: int) -> None:
        self.checkpointer.track(await self._send(outcome, partition))
        if outcome.dead_letters:
            self._warn_if_late(outcome)

    def _warn_if_late(self, outcome: Outcome) -> None:
        """A too-late record means the input broke the lateness contract: say so, but at most
        once a minute, with the count since the last warning and where the newest one was."""
        late = [letter.record for letter in outcome.dead_letters if letter.kind == TOO_LATE]
        if not late:
            return
        self.late_unreported += len(late)
        now = time.monotonic()
        if now - self.late_warned_at >= LATE_WARNING_INTERVAL:
            newest = late[-1]
            log.warning(
                "%d records arrived too late to apply and went to the dead-letter topic %s; "
                "a producer is behind the others by more than the allowed lateness",
                self.late_unreported, self.churn.settings.dead_letter_topic,
                extra={"topic": self.topics[newest.source], "partition": newest.partition,
                       "offset": newest.offset},
            )  # fmt: skip
            self.late_unreported, self.late_warned_at = 0, now

    async def _send(self, outcome: Outcome, partition: int) -> list:
        """Start every send the outcome asks for; returns their futures to await."""
        churn, topics = self.churn, self.topics
        sent = []
        for key, payload, trigger_source, offset in outcome.alerts:
            trigger = f"{topics[trigger_source]}:{partition}:{offset}".encode()
            sent.append(await churn.alerts.send(
                key=key, value=payload, headers=[("churnwatch-trigger", trigger)]))  # fmt: skip
        for letter in outcome.dead_letters:
            sent.append(await churn.dead_letters.send(
                key=letter.record.key, value=letter.record.value or b"",
                headers=dead_letter_headers(letter, topics[letter.record.source])))  # fmt: skip
        if outcome.snapshots:
            # Straight to the producer: a day's close sends one snapshot per account of the
            # partition at once, and a topic's send (channel, callbacks, buffer) costs several
            # times more per record than the producer's own.
            producer, topic = churn.app.producer, churn.health
            for key, payload in outcome.snapshots:
                sent.append(await producer.send(topic, key, payload, None, None, None))
        for record in outcome.rekeyed:
            account = decode_event(record.value or b"").account_id.encode()
            sent.append(await churn.app.topic(topics[record.source], key_serializer="raw",
                                              value_serializer="raw").send(
                key=account, value=record.value))  # fmt: skip
        return sent
