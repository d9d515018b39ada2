"""The worker's commit protocol: when input offsets may move, and what must be in Kafka first.

Order of effects, which is what makes a crash at any point safe:

1. a record's alerts (and dead letters, re-keyed records, health snapshots) are sent at once
   by the agent (latency matters), which hands their futures to :meth:`Checkpointer.track`
   and goes on with the next record without waiting for Kafka's answer. While a record is
   between processing and that hand-over, :attr:`Checkpointer.busy` is set and no flush runs.
2. :meth:`Checkpointer.flush` takes the account states changed since the last flush, waits
   until Kafka has confirmed every send tracked so far (so no state is written ahead of an
   alert of a record it includes: a restart would skip that record and lose the alert), then
   writes the states to the table (local store and changelog). The timer runs it once
   ``flush_period`` has passed since the last one (the agent goes on meanwhile), the agent
   after ``flush_every`` records, so an account with many records in between is written
   once. Flushes run one after another, in
   the order they took their states. The checkpoints a flush hands out (see
   :class:`~stream.run.live.Checkpoint`) wait for the next commit.
3. :meth:`Checkpointer.commit` writes each pending checkpoint (offsets plus the event-time
   clock at that point) to the table, waits until Kafka has confirmed every changelog record
   sent so far, and only then commits the offsets.

A crash before 3 replays the records and re-sends their alerts with the same ids; the states
already written make each account skip the records it applied (it keeps the newest offset).
No offset is ever committed past a state that Kafka has not confirmed:

* a changelog or tracked send that fails (or a commit or flush cancelled while it waits for
  the sends) leaves the checkpointer *broken*: it commits nothing more, since a later
  checkpoint's offsets would cover the lost states or alerts; the worker must restart from
  the committed offsets;
* a commit request that fails or is refused after the sends were confirmed keeps its
  checkpoints for the next commit (their states are safe in the changelog);
* commits never overlap: a second one waits, so its offsets cannot overtake the sends that
  the first is still waiting for.

The class knows nothing of Faust: the agent hands it the processor, a writer for the table and
a function that commits offsets, so the unit tests drive every crash point with fakes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from faust.types import TP

from stream.run.live import Checkpoint, Flush


class StateSource(Protocol):
    """What the checkpointer needs of :class:`~stream.run.live.LiveProcessor`."""

    def pending(self) -> int: ...

    def flush(self) -> Flush: ...

    def checkpoint_write(self, checkpoint: Checkpoint) -> tuple[int, str, bytes]: ...

    def confirm(self, checkpoint: Checkpoint) -> None: ...


class StateWriter(Protocol):
    """Stores a value in the table for an explicit partition (see ``agents/table_writer.py``);
    the returned awaitable is done once Kafka has the changelog record."""

    def put(self, partition: int, key: bytes, value: bytes | None) -> Awaitable[Any]: ...


FLUSH_EVERY = 20_000
"""Records after which a flush is due even before its period is over (bounds the bookkeeping
of records not yet flushed)."""
FLUSH_PERIOD = 0.5
"""Seconds between flushes under load. Every flush writes each account changed since the
last one, so the period sets how often a busy account's state goes to the changelog; commits
come once a second (``agents/hooks.py``), so a shorter period would only write more."""

OffsetCommitter = Callable[[Mapping[TP, int]], Awaitable[bool]]
"""Commits the given next offsets for the group; ``False`` when nothing was committed."""


class CheckpointerBroken(RuntimeError):
    """A changelog write was lost: committing anything more could skip its records."""


class Checkpointer:
    def __init__(
        self,
        processor: StateSource,
        writer: StateWriter,
        commit_offsets: OffsetCommitter,
        topics: tuple[str, str],
        rebalancing: Callable[[], bool] = lambda: False,
        flush_every: int = FLUSH_EVERY,
        flush_period: float = FLUSH_PERIOD,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.processor = processor
        self.writer = writer
        self.commit_offsets = commit_offsets
        self.topics = topics  # (usage, billing): a checkpoint's offsets are in this order
        self.rebalancing = rebalancing
        self.flush_every = flush_every
        self.flush_period = flush_period
        self.clock = clock
        # A record is between processing and the hand-over of its sends. A flag and not a
        # lock: an ``asyncio.Lock`` around every record cost ~10% of throughput.
        self.busy = False
        self._tracked: list[Awaitable[Any]] = []  # the records' own sends, not yet awaited
        self._flushed_at = clock()
        self._to_commit: dict[int, Checkpoint] = {}  # per partition: flushed, not committed
        self._in_flight: list[Awaitable[Any]] = []  # changelog sends not yet awaited
        self._flushing = asyncio.Lock()
        self._committing = asyncio.Lock()
        self.broken: BaseException | None = None

    # --- step 1: the records' own sends ---------------------------------------------------

    def track(self, sends: list[Awaitable[Any]]) -> None:
        """A record's sends, started: the next flush waits for Kafka to confirm them."""
        self._tracked.extend(sends)

    def fail(self, exc: BaseException) -> None:
        """A record failed between processing and the hand-over of its sends: its state may
        be applied while its alerts were never sent, so nothing more may be written or
        committed (the worker stops and resumes from the committed offsets)."""
        if self.broken is None:
            self.broken = exc

    # --- step 2: flush -----------------------------------------------------------------

    async def flush(self) -> None:
        """Write the changed states to the table once the sends of their records are confirmed;
        their checkpoints wait for :meth:`commit`."""
        batch = self.processor.flush()  # the states as of now: the order of the flushes
        sends, self._tracked = self._tracked, []
        self._flushed_at = self.clock()
        async with self._flushing:
            try:
                await asyncio.gather(*sends)
            except BaseException as exc:
                self.broken = exc
                raise
            if self.broken is not None:
                # A state covers every record before it, also those whose alerts were lost.
                raise CheckpointerBroken(f"a send failed: {self.broken!r}")
            for part, key, value in batch.writes:
                self._in_flight.append(self.writer.put(part, key.encode(), value))
            self._to_commit.update(batch.checkpoints)

    def due(self) -> bool:
        """Records are waiting, and the period or the record count for a flush is over."""
        pending = self.processor.pending()
        return pending >= self.flush_every or (
            pending > 0 and self.clock() - self._flushed_at >= self.flush_period
        )

    async def flush_if_full(self) -> None:
        """For the agent, after a record's hand-over: flush only once ``flush_every`` records
        wait. The periodic flushes are the timer's, so that their wait for Kafka's acks runs
        beside the agent instead of holding up the next record."""
        if self.processor.pending() >= self.flush_every:
            await self.flush()

    async def flush_if_idle(self) -> None:
        """For the timer: flush when due, unless a record is in the middle of its hand-over."""
        if not self.busy and self.due():
            await self.flush()

    async def settle(self) -> None:
        """Wait for the flushes under way (before a partition is revoked: a flush writes the
        states it took, and must not write them after another worker took them over)."""
        async with self._flushing:
            pass

    # --- step 3: commit ----------------------------------------------------------------

    async def commit(self) -> bool:
        """Checkpoint and commit what was flushed; ``True`` if offsets were committed."""
        async with self._committing:
            return await self._commit()

    async def _commit(self) -> bool:
        if self.broken is not None:
            raise CheckpointerBroken(f"a changelog write failed: {self.broken!r}")
        if self.rebalancing() or not self._to_commit:
            return False  # offsets of partitions being revoked are simply processed again
        checkpoints = list(self._to_commit.values())
        self._to_commit.clear()
        sends, self._in_flight = self._in_flight, []
        offsets: dict[TP, int] = {}
        for checkpoint in checkpoints:
            part, key, value = self.processor.checkpoint_write(checkpoint)
            sends.append(self.writer.put(part, key.encode(), value))
            for source, offset in enumerate(checkpoint.offsets):
                if offset is not None:
                    offsets[TP(self.topics[source], checkpoint.partition)] = offset
        # The changelog must have every state and the checkpoint before the offsets move.
        # Faust's producer flush, which its commit calls, is not enough: it gives up on its
        # send buffer after 100 ms without progress, and a commit then ran ahead of states
        # still in the buffer (lost in a kill -9). Each send's own future is definite.
        try:
            await asyncio.gather(*sends)
        except BaseException as exc:
            self.broken = exc
            raise
        try:
            committed = await self.commit_offsets(offsets)
        except BaseException:
            self._keep(checkpoints)
            raise
        if not committed:
            self._keep(checkpoints)
            return False
        for checkpoint in checkpoints:
            self.processor.confirm(checkpoint)
        return True

    def _keep(self, checkpoints: list[Checkpoint]) -> None:
        """Commit these next time, unless a flush since has a newer one for the partition."""
        for checkpoint in checkpoints:
            self._to_commit.setdefault(checkpoint.partition, checkpoint)

    # --- lifecycle ---------------------------------------------------------------------

    def revoke(self, partition: int) -> None:
        """A revoked partition's checkpoint is never committed; its records are read again."""
        self._to_commit.pop(partition, None)

    async def close(self) -> bool:
        """The last flush and commit before the worker stops; ``True`` if offsets moved.

        A broken checkpointer commits nothing at shutdown either: the records since the last
        commit are processed again on restart, which re-sends the same alerts.
        """
        if self.broken is None and not self.busy and self.processor.pending():
            try:
                await self.flush()
            except Exception:
                return False  # a send failed: the checkpointer is broken, commit nothing
        if self.broken is not None:
            return False
        return await self.commit()
