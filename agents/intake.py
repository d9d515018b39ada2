"""Which records the agent may process: partition restore and the offset-gap check.

The processor commits the end of each partition's done prefix, which is only right if it was
handed every record from the committed offset on, once and in order. Faust does not promise
that around a recovery, so before a record is processed :class:`Intake` makes sure its
partition was restored (accounts and clock from the table, at the group's committed offsets)
and lets the :class:`~stream.run.delivery.DeliveryGate` judge its offset: a repeat is dropped,
a jump is explained by probing the topic, and a real loss is read again by seeking back.
"""

from __future__ import annotations

import gc
import logging
from typing import Any

from faust.types import TP

from agents.churn import ChurnApp
from agents.offsets import CommittedOffsets, OffsetProbe
from stream.run.delivery import Verdict

log = logging.getLogger("churnwatch.ingest")


class Intake:
    def __init__(self, churn: ChurnApp) -> None:
        self.churn = churn
        self.app = churn.app
        self.processor = churn.processor
        self.gate = churn.gate
        self.committed_offsets = CommittedOffsets(churn.settings)
        self.probe = OffsetProbe(churn.settings)
        self.topics = churn.topics
        self._tps: dict[tuple[int, int], TP] = {}

    async def admit(self, message: Any, source: int) -> bool:
        """May this record be processed now? (Restores its partition first if needed.)"""
        partition, offset = message.partition, message.offset
        if not self.processor.is_active(partition):
            await self._restore(partition)
        gate = self.gate
        verdict = gate.check(partition, source, offset)
        if verdict is Verdict.JUMP:
            want = gate.expected(partition, source)
            first = await self.probe.first_offset(message.topic, partition, want)
            verdict = gate.explained(partition, source, offset, first)
            if verdict is Verdict.AWAIT:
                log.warning("%s:%d: offsets %d to %d were never delivered; reading them again",
                            message.topic, partition, want, offset - 1,
                            extra={"topic": message.topic, "partition": partition,
                                   "offset": want})  # fmt: skip
                await self.app.consumer.seek(TP(message.topic, partition), want)
        return verdict is Verdict.PROCESS

    async def _restore(self, partition: int) -> None:
        committed = await self.committed_offsets.fetch(partition)
        restored = self.processor.assign(
            partition, ((k.decode(), v) for k, v in self.churn.table.items()), committed
        )
        self.gate.assign(partition, committed)
        gc.freeze()  # the restored accounts live on: keep full collections from walking them
        log.info("partition %d: %d accounts restored (resuming at offsets %s, clock %d)",
                 partition, restored, committed, self.processor.clock_ms(partition),
                 extra={"partition": partition})  # fmt: skip

    def polled_at(self, partition: int, source: int) -> int:
        """When the consumer last read the source partition's high watermark (wall-clock ms).

        Faust does not pass this on, so it is read from its aiokafka consumer (a private
        path, listed in agents/__init__.py). The consumer sets it after the high watermark,
        so a caller that reads it first never pairs a new time with an older watermark.
        """
        consumer = self.app.consumer._thread._ensure_consumer()
        return consumer.last_poll_timestamp(self._tp(partition, source)) or 0

    def _tp(self, partition: int, source: int) -> TP:
        tp = self._tps.get((partition, source))
        if tp is None:
            tp = self._tps[(partition, source)] = TP(self.topics[source], partition)
        return tp

    def caught_up(self, partition: int, source: int) -> bool:
        """Has this agent been handed every record of the source partition up to its high
        watermark? (A partition with nothing new since its committed offset delivers nothing;
        the gate starts from the committed offset.)"""
        highwater = self.app.consumer.highwater(self._tp(partition, source))
        if highwater is None:
            return False
        position = self.gate.expected(partition, source)
        return (position or 0) >= highwater
