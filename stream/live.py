"""What the live worker does with each Kafka record, without Faust in the way.

The agent (``agents/ingest.py``) hands every record it receives to :class:`LiveProcessor` and
carries out the :class:`Outcome`: send the alerts (and wait until Kafka has them), write the
changed account states to the table, send dead letters and re-keyed records, then commit the
offsets of the records that are done. Keeping this logic free of Faust lets the tests drive it
directly, and keeps the agent a thin adapter.

Per partition the processor owns a :class:`~stream.engine.PartitionEngine` whose accounts are
decoded from the table when the partition is (re)assigned, and a :class:`~stream.merge.Merger`
that puts usage and billing records into event-time order. A record is *done* once it was
processed, dead-lettered or re-keyed and :meth:`LiveProcessor.flush` has handed out the states
it changed; a record held by the merger is not. The offsets to commit come from here, as the
end of each source partition's done prefix, so no offset is committed before its effects are in
the table. Flushing once per burst instead of once per record writes an account that had many
records in the burst only once.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from schemas.codec import dump_model
from schemas.events import (
    BILLING_TYPES,
    MAX_EVENT_BYTES,
    USAGE_TYPES,
    EventBase,
    InvalidEvent,
    decode_event,
    source_index,
)
from stream.engine import PartitionEngine, partition_for
from stream.merge import SOURCES, Merger
from stream.policy import Policy
from stream.state import AccountState
from stream.state_codec import StateFormatError, decode_state, encode_state

_ALL_TYPES = USAGE_TYPES | BILLING_TYPES
CLOCK_KEY_PREFIX = "\x00clock/"
"""Table key of a partition's event-time clock (never a valid account id)."""


def clock_key(partition: int) -> str:
    return f"{CLOCK_KEY_PREFIX}{partition}"


@dataclass(slots=True)
class Record:
    """One Kafka record as the agent received it."""

    source: int  # 0 usage, 1 billing
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int | None = None


@dataclass(slots=True)
class DeadLetter:
    record: Record
    reason: str


@dataclass
class Outcome:
    """What one record asks for at once; state writes and commits wait for :meth:`flush`."""

    # key, JSON payload, and the triggering record's source and offset
    alerts: list[tuple[bytes, bytes, int, int]] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    rekeyed: list[Record] = field(default_factory=list)  # to send again keyed by account_id


@dataclass
class Flush:
    """Account states to write (``None`` deletes) and the offsets they make safe to commit."""

    writes: list[tuple[int, str, bytes | None]] = field(default_factory=list)  # partition, key
    # (source, partition) -> the next offset to read, once ``writes`` are in the changelog
    commits: dict[tuple[int, int], int] = field(default_factory=dict)


class _Partition:
    def __init__(self, policy: Policy, accounts: dict[str, AccountState], clock_ms: int) -> None:
        self.engine = PartitionEngine(policy, accounts, clock_ms, track_changes=True)
        self.merger: Merger[tuple[Record, EventBase, list]] = Merger()
        self.dirty: dict[str, AccountState | None] = {}  # changed since the last flush
        # Per source, records in arrival order as [offset, done]. Only a done prefix can be
        # committed: a dead letter is done at once, but committing past it while an earlier
        # record of its partition waits in the merger would lose that record in a crash.
        self.inflight: tuple[deque[list], deque[list]] = (deque(), deque())
        self.finished = 0  # records done since the last flush
        # Per source, the offset after the newest done prefix. A record can arrive twice (Faust
        # seeks back to the committed offset after an assignment), so it only ever grows.
        self.commit_at = [-1, -1]
        self.clock_written = clock_ms


class LiveProcessor:
    """Turns records into outcomes, partition by partition, exactly as replay would."""

    def __init__(
        self,
        policy: Policy,
        partitions: int,
        on_wrong_key: str = "reroute",
        max_future_ms: int = 0,
    ) -> None:
        self.policy = policy
        self.partitions = partitions
        self.on_wrong_key = on_wrong_key
        self.max_future_ms = max_future_ms
        self._active: dict[int, _Partition] = {}
        self.counts: dict[str, int] = {}

    # --- assignment -----------------------------------------------------------------------

    def is_active(self, partition: int) -> bool:
        return partition in self._active

    def assign(self, partition: int, table_items: Iterable[tuple[str, bytes]]) -> int:
        """Rebuild a partition's accounts and clock from the table; returns the account count.

        The clock is the newest of the stored clock record and the clocks stored with the
        accounts (each account value carries the clock at its last write).
        """
        accounts: dict[str, AccountState] = {}
        clock = 0
        own_clock = clock_key(partition)
        for key, value in table_items:
            if key.startswith(CLOCK_KEY_PREFIX):
                if key == own_clock and value:
                    clock = max(clock, int(value))
                continue
            if partition_for(key, self.partitions) != partition or value is None:
                continue
            try:
                acct = decode_state(value)
            except StateFormatError as exc:
                raise StateFormatError(f"table value for {key!r}: {exc}") from None
            accounts[key] = acct
            clock = max(clock, acct.clock_ms)
        self._active[partition] = _Partition(self.policy, accounts, clock)
        return len(accounts)

    def revoke(self, partition: int) -> None:
        """Forget a partition; records still held by its merger were never committed."""
        self._active.pop(partition, None)

    # --- records --------------------------------------------------------------------------

    def handle(
        self,
        record: Record,
        caught_up: Callable[[int, int], bool],
        now_ms: int,
    ) -> Outcome:
        """Take one record; return the alerts, dead letters and re-keyed records it causes.

        ``caught_up(partition, source)`` says whether everything in that source partition up
        to its high watermark has been handed to :meth:`handle` already.
        """
        out = Outcome()
        part = self._active.get(record.partition)
        if part is None:
            raise RuntimeError(f"partition {record.partition} was not assigned")
        entry = [record.offset, False]
        part.inflight[record.source].append(entry)
        event = self._validate(record, out, now_ms)
        if event is None:
            entry[1] = True
            part.finished += 1
            return out
        merger = part.merger
        if not merger.pending(record.partition) and caught_up(record.partition, 1 - record.source):
            # The common case once caught up: nothing waits, nothing earlier can still come.
            ready = [(record, event, entry)]
        else:
            ts_ms = int(event.ts.timestamp() * 1000 + 0.5)
            merger.push(record.partition, record.source, ts_ms, (record, event, entry))

            def settled(partition: int, source: int, ts: int) -> bool:
                return caught_up(partition, source)

            ready = merger.pop_ready(record.partition, settled)
        engine, dirty = part.engine, part.dirty
        for held, ev, held_entry in ready:
            for alert in engine.process(ev, held.offset, held.source):
                out.alerts.append(
                    (alert.account_id.encode(), dump_model(alert), held.source, held.offset)
                )
            acct = engine.accounts.get(ev.account_id)
            if acct is not None:
                # Also after a skipped redelivery: a RocksDB store can hold a write whose
                # changelog record died with the process; writing it again repairs that.
                dirty[ev.account_id] = acct
            if engine.swept:
                for account_id in engine.swept:
                    dirty[account_id] = engine.accounts.get(account_id)
                engine.swept.clear()
            if engine.evicted:
                for account_id in engine.evicted:
                    dirty[account_id] = None
                engine.evicted.clear()
            held_entry[1] = True
            part.finished += 1
        return out

    def pending(self) -> int:
        """Records processed but not yet flushed (their commits are waiting)."""
        return sum(part.finished for part in self._active.values())

    def flush(self) -> Flush:
        """Encode every changed account once, with the partition clock it was written at."""
        out = Flush()
        for partition, part in self._active.items():
            clock = part.engine.clock_ms
            for account_id, acct in part.dirty.items():
                if acct is None:
                    out.writes.append((partition, account_id, None))
                else:
                    acct.clock_ms = clock
                    out.writes.append((partition, account_id, encode_state(acct)))
            if clock != part.clock_written and not part.dirty:
                out.writes.append((partition, clock_key(partition), str(clock).encode()))
            part.clock_written = clock
            part.dirty = {}
            for source, queue in enumerate(part.inflight):
                end = part.commit_at[source]
                while queue and queue[0][1]:
                    end = max(end, queue.popleft()[0] + 1)
                if end > part.commit_at[source]:
                    part.commit_at[source] = end
                    out.commits[(source, partition)] = end
            part.finished = 0
        return out

    def _validate(self, record: Record, out: Outcome, now_ms: int) -> EventBase | None:
        value = record.value
        if value is None:
            return self._dead(record, out, "record has no value")
        if len(value) > MAX_EVENT_BYTES:
            return self._dead(record, out, f"record of {len(value)} bytes exceeds the limit")
        try:
            event = decode_event(value)
        except InvalidEvent as exc:
            return self._dead(record, out, exc.reason)
        expected = source_index(event)
        if event.type in _ALL_TYPES and expected != record.source:
            return self._dead(record, out, f"{event.type} belongs on the {SOURCES[expected]} topic")
        key = event.account_id.encode()
        if record.key != key:
            if (
                self.on_wrong_key == "reroute"
                and partition_for(event.account_id, self.partitions) != record.partition
            ):
                self._count("rekeyed")
                out.rekeyed.append(record)
                return None
            if self.on_wrong_key == "dead-letter":
                shown = record.key.decode("utf-8", "replace") if record.key else "no key"
                return self._dead(
                    record, out, f"record key {shown!r} is not its account_id {event.account_id!r}"
                )
        if self.max_future_ms:
            ahead = int(event.ts.timestamp() * 1000) - now_ms
            if ahead > self.max_future_ms:
                return self._dead(
                    record, out, f"ts is {ahead // 3_600_000} h ahead of the wall clock"
                )
        return event

    def _dead(self, record: Record, out: Outcome, reason: str) -> None:
        self._count("dead_letters")
        out.dead_letters.append(DeadLetter(record, reason))
        return None

    def _count(self, name: str) -> None:
        self.counts[name] = self.counts.get(name, 0) + 1

    def stats(self) -> dict[str, int]:
        total: dict[str, int] = dict(self.counts)
        for part in self._active.values():
            for name, value in part.engine.stats.items():
                total[name] = total.get(name, 0) + value
        return total


def dead_letter_headers(letter: DeadLetter, topic: str) -> list[tuple[str, bytes]]:
    """Where the record came from and why it was refused; the value stays the original bytes."""
    return [
        ("churnwatch-reason", letter.reason.encode()),
        ("churnwatch-source-topic", topic.encode()),
        ("churnwatch-source-partition", str(letter.record.partition).encode()),
        ("churnwatch-source-offset", str(letter.record.offset).encode()),
    ]
