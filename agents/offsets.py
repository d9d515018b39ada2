"""The group's committed offsets for a partition, asked of the broker when the partition arrives.

Restoring a partition needs the exact point processing resumes from, to pick the event-time
clock stored with it (see :class:`stream.live.Checkpoint`). Faust learns the committed offsets
too, but only when it seeks, which can come after the partition's first records reach the
agent; asking the group coordinator directly has no such race.
"""

from __future__ import annotations

import asyncio
import logging

from kafka import KafkaAdminClient, TopicPartition
from kafka.errors import KafkaError

from stream.settings import WorkerSettings

log = logging.getLogger("churnwatch.offsets")
ATTEMPTS = 5


class CommittedOffsets:
    def __init__(self, settings: WorkerSettings) -> None:
        self.settings = settings
        self._admin: KafkaAdminClient | None = None

    async def fetch(self, partition: int) -> tuple[int | None, int | None]:
        """(usage, billing) committed offsets; ``None`` where the group never committed."""
        loop = asyncio.get_running_loop()
        attempt = 1
        while True:
            try:
                return await loop.run_in_executor(None, self._fetch, partition)
            except KafkaError as exc:
                if attempt == ATTEMPTS:
                    raise RuntimeError(
                        f"cannot read the committed offsets of partition {partition} from "
                        f"{self.settings.broker}: {exc}"
                    ) from None
                log.warning("committed offsets of partition %d: %s; retrying", partition, exc)
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
