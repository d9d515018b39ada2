"""What the agent asks the broker directly: committed offsets, and where records really are.

Restoring a partition needs the exact point processing resumes from, to pick the event-time
clock stored with it (see :class:`stream.run.live.Checkpoint`). Faust learns the committed offsets
too, but only when it seeks, which can come after the partition's first records reach the
agent; asking the group coordinator directly has no such race.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from stream.kafka.settings import WorkerSettings

log = logging.getLogger("churnwatch.offsets")
T = TypeVar("T")
ATTEMPTS = 5
PROBE_TIMEOUT_S = 30.0
CALL_TIMEOUT_S = 60.0
# kafka-python's clients drive their network loop on the calling thread when no IO thread runs.
# With the default executor, calls came from different threads in turn, and in the recovery
# benchmark the second call never returned. All calls now use one thread, with a timeout.
_KAFKA_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="churnwatch-kafka")


async def _in_kafka_thread(fn: Callable[..., T], *args: object) -> T:
    loop = asyncio.get_running_loop()
    return await asyncio.wait_for(loop.run_in_executor(_KAFKA_THREAD, fn, *args), CALL_TIMEOUT_S)


class CommittedOffsets:
    def __init__(self, settings: WorkerSettings) -> None:
        self.settings = settings
        self._admin: KafkaAdminClient | None = None

    async def fetch(self, partition: int) -> tuple[int | None, int | None]:
        """(usage, billing) committed offsets; ``None`` where the group never committed."""
        attempt = 1
        while True:
            try:
                return await _in_kafka_thread(self._fetch, partition)
            except (KafkaError, TimeoutError) as exc:
                if attempt == ATTEMPTS:
                    raise RuntimeError(
                        f"cannot read the committed offsets of partition {partition} from "
                        f"{self.settings.broker}: {exc}"
                    ) from None
                log.warning("committed offsets of partition %d: %s; retrying", partition, exc,
                            extra={"partition": partition})  # fmt: skip
                self._close()
                await asyncio.sleep(attempt)
                attempt += 1

    def _fetch(self, partition: int) -> tuple[int | None, int | None]:
        if self._admin is None:
            self._admin = KafkaAdminClient(
                bootstrap_servers=self.settings.bootstrap_servers,
                client_id=f"{self.settings.app_id}-offsets",
                **self.settings.kafka_python_security(),
            )
        settings = self.settings
        tps = [TopicPartition(t, partition) for t in (settings.usage_topic, settings.billing_topic)]
        found = self._admin.list_group_offsets({settings.app_id: tps}).get(settings.app_id, {})
        usage, billing = (found[tp].offset if tp in found and found[tp].offset >= 0 else None
                          for tp in tps)  # fmt: skip
        return usage, billing

    def _close(self) -> None:
        if self._admin is not None:
            admin, self._admin = self._admin, None
            admin.close()


class OffsetProbe:
    """Where the next record of a partition really is, asked with a consumer of our own.

    Faust can skip records while it recovers (it resumes partitions before it seeks them, and
    drops what it fetched in between), so the agent checks that each partition's offsets are
    contiguous. A jump is either such a loss or a legitimate hole (transaction markers,
    compaction); fetching from the expected offset tells which.
    """

    def __init__(self, settings: WorkerSettings) -> None:
        self.settings = settings
        self._consumer: KafkaConsumer | None = None

    async def first_offset(self, topic: str, partition: int, offset: int) -> int | None:
        """The offset of the first record at or after ``offset``; ``None`` if there is none."""
        return await _in_kafka_thread(self._first_offset, topic, partition, offset)

    def _first_offset(self, topic: str, partition: int, offset: int) -> int | None:
        if self._consumer is None:
            self._consumer = KafkaConsumer(
                bootstrap_servers=self.settings.bootstrap_servers,
                client_id=f"{self.settings.app_id}-probe",
                enable_auto_commit=False,
                max_poll_records=1,
                **self.settings.kafka_python_security(),
            )
        tp = TopicPartition(topic, partition)
        self._consumer.assign([tp])
        self._consumer.seek(tp, offset)
        deadline = time.monotonic() + PROBE_TIMEOUT_S
        while time.monotonic() < deadline:
            for records in self._consumer.poll(timeout_ms=500).values():
                return records[0].offset
            if self._consumer.position(tp) >= self._consumer.end_offsets([tp])[tp]:
                return None
        raise RuntimeError(f"no answer from {topic}:{partition} at offset {offset}")
