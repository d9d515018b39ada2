"""What the live worker does with each Kafka record, without Faust in the way.

The agent (``agents/ingest.py``) hands every record it receives to :class:`LiveProcessor` and
carries out the :class:`Outcome`: send the alerts, dead letters and re-keyed records (and wait
until Kafka has them); its checkpointer (``agents/checkpointer.py``) then writes the changed
account states to the table and commits the offsets of the records that are done. Keeping
this logic free of Faust lets the tests drive it directly, and keeps the agent a thin adapter.

Per partition the processor owns a :class:`~stream.core.engine.PartitionEngine` whose accounts
are decoded from the table when the partition is (re)assigned, and a
:class:`~stream.run.merge.Merger` that puts usage and billing records into event-time order. A
record is *done* once it was processed, dead-lettered or re-keyed and
:meth:`LiveProcessor.flush` has handed out the states it changed; a record held by the merger
is not. The offsets to commit come from here, as the end of each source partition's done
prefix, so no offset is committed before its effects are in the table. Flushing once per burst
instead of once per record writes an account that had many records in the burst only once.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

import orjson

from schemas.codec import dump_model
from schemas.events import BILLING_TYPES, USAGE_TYPES, EventBase, source_index
from stream.core.engine import PartitionEngine, partition_for
from stream.core.policy import Policy
from stream.core.state import AccountState
from stream.core.state_codec import StateFormatError, decode_state, encode_state
from stream.core.timeutil import to_ms
from stream.run.merge import SOURCES, Merger
from stream.run.validate import Rejection, validate

_ALL_TYPES = USAGE_TYPES | BILLING_TYPES
TOO_LATE = "too late"
"""The dead-letter kind of a record behind its partition's event time by more than allowed."""
DEFAULT_MAX_IDLE_MS = 0
"""How long a record waits at least for the other input topic of its partition, even once that
topic is known to be caught up (Kafka Streams' ``max.task.idle.ms``): only for producers that
may append an earlier record to one topic after a later one to the other."""
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
    kind: str = ""  # the reason's short kind (a metric label)


@dataclass
class Outcome:
    """What one record asks for at once; state writes and commits wait for :meth:`flush`."""

    # key, JSON payload, and the triggering record's source and offset
    alerts: list[tuple[bytes, bytes, int, int]] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    rekeyed: list[Record] = field(default_factory=list)  # to send again keyed by account_id
    # account id, health snapshot: the day closes and cancellations the record caused
    snapshots: list[tuple[bytes, bytes]] = field(default_factory=list)


@dataclass
class Flush:
    """Account states to write (``None`` deletes) and the offsets they make safe to commit."""

    writes: list[tuple[int, str, bytes | None]] = field(default_factory=list)  # partition, key
    # partition -> where its committed offsets may move, once ``writes`` are in the changelog
    checkpoints: dict[int, Checkpoint] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Offsets to commit for one partition, and its event-time clock at exactly that point.

    After a crash the worker reprocesses from the committed offsets. Some accounts' states in
    the changelog are newer than that (flushes are not atomic, and commits lag them), so the
    clock cannot be taken from the states: a clock from further on would drop the records being
    reprocessed as too late and close days early. The clock of the committed point is stored
    with the commit instead (see :meth:`LiveProcessor.checkpoint_write`).
    """

    partition: int
    offsets: tuple[int | None, int | None]  # next offset per source; None: none done yet
    clock_ms: int

    def as_list(self) -> list:
        return [*self.offsets, self.clock_ms]

    def matches(self, committed: tuple[int | None, int | None]) -> bool:
        return all(
            mine is None or mine == theirs
            for mine, theirs in zip(self.offsets, committed, strict=True)
        )


_Held = tuple[Record, EventBase, list, int, int, int]
"""A record in a merger: the record, its event, its in-flight entry, its event time, when it
arrived (wall clock) and when the consumer last polled its partition as it arrived."""


class Feed(Protocol):
    """How far the consumer has read each input partition (the agent's view of Kafka)."""

    def caught_up(self, partition: int, source: int) -> bool:
        """Has every record up to the partition's last known high watermark been handed over?"""
        ...

    def polled_at(self, partition: int, source: int) -> int:
        """Wall-clock ms of the fetch response that last told the partition's high watermark
        (0 while none has)."""
        ...


class _Partition:
    def __init__(
        self,
        policy: Policy,
        accounts: dict[str, AccountState],
        clock_ms: int,
        confirmed: Checkpoint | None,
        snapshots: bool = False,
    ) -> None:
        self.engine = PartitionEngine(
            policy, accounts, clock_ms, track_changes=True, snapshots=snapshots
        )
        self.merger: Merger[_Held] = Merger()
        self.dirty: dict[str, AccountState | None] = {}  # changed since the last flush
        # Per source, records in arrival order as [offset, done]. Only a done prefix can be
        # committed: a dead letter is done at once, but committing past it while an earlier
        # record of its partition waits in the merger would lose that record in a crash.
        self.inflight: tuple[deque[list], deque[list]] = (deque(), deque())
        # Per source, the offset after the newest done prefix; it only ever grows, so a record
        # handed over twice (the agent's delivery gate normally drops those) cannot move it back.
        self.commit_at = [-1, -1]
        self.confirmed = confirmed  # the newest checkpoint known to be committed


class LiveProcessor:
    """Turns records into outcomes, partition by partition, exactly as replay would."""

    def __init__(
        self,
        policy: Policy,
        partitions: int,
        on_wrong_key: str = "reroute",
        max_future_ms: int = 0,
        max_idle_ms: int = DEFAULT_MAX_IDLE_MS,
        snapshots: bool = False,
    ) -> None:
        self.policy = policy
        self.snapshots = snapshots
        self.max_idle_ms = max_idle_ms
        self.partitions = partitions
        self.on_wrong_key = on_wrong_key
        self.max_future_ms = max_future_ms
        self._active: dict[int, _Partition] = {}
        self._finished = 0  # records done since the last flush (a sum would run per record)
        self.counts: dict[str, int] = {}
        # Plain counters for the worker's /metrics (the agent copies them at scrape time):
        # records processed per source and event type (types this version does not know are
        # counted as "unknown", so a producer cannot grow the label set), dead letters per
        # reason kind (see :func:`schemas.events.reason_kind`), alerts per (signal, severity, kind).
        self.processed: tuple[dict[str, int], dict[str, int]] = ({}, {})
        self.dead_letter_kinds: dict[str, int] = {}
        self.alert_counts: dict[tuple[str, str, str], int] = {}

    # --- assignment -----------------------------------------------------------------------

    def is_active(self, partition: int) -> bool:
        return partition in self._active

    def assign(
        self,
        partition: int,
        table_items: Iterable[tuple[str, bytes]],
        committed: tuple[int | None, int | None] = (None, None),
    ) -> int:
        """Rebuild a partition's accounts and clock from the table; returns the account count.

        ``committed`` are the group's committed offsets (usage, billing) for the partition,
        where processing resumes; the clock is the one stored with the checkpoint they match.
        """
        accounts: dict[str, AccountState] = {}
        checkpoints: list[Checkpoint] = []
        own_clock = clock_key(partition)
        for key, value in table_items:
            if key.startswith(CLOCK_KEY_PREFIX):
                if key == own_clock and value:
                    checkpoints = _read_checkpoints(partition, value)
                continue
            if partition_for(key, self.partitions) != partition or value is None:
                continue
            try:
                acct = decode_state(value)
            except StateFormatError as exc:
                raise StateFormatError(f"table value for {key!r}: {exc}") from None
            accounts[key] = acct
        matching = [cp for cp in checkpoints if cp.matches(committed)]
        if matching:
            confirmed: Checkpoint | None = matching[-1]
            clock = matching[-1].clock_ms
        elif committed == (None, None):
            confirmed, clock = None, 0  # nothing committed: everything is processed again
        elif checkpoints:  # offsets were moved by hand: the earlier clock drops fewer records
            confirmed, clock = None, min(cp.clock_ms for cp in checkpoints)
        else:
            confirmed, clock = None, max((a.clock_ms for a in accounts.values()), default=0)
        self._active[partition] = _Partition(
            self.policy, accounts, clock, confirmed, self.snapshots
        )
        return len(accounts)

    def clock_ms(self, partition: int) -> int:
        return self._active[partition].engine.clock_ms

    def checkpoint_write(self, checkpoint: Checkpoint) -> tuple[int, str, bytes]:
        """The table write to make before committing ``checkpoint``'s offsets.

        It keeps the last confirmed checkpoint next to the new one: if the commit never
        happens (a crash, a failed request), the restore still finds the one that did.
        """
        part = self._active.get(checkpoint.partition)
        kept = part.confirmed if part is not None else None
        entries = [cp.as_list() for cp in (kept, checkpoint) if cp is not None]
        return checkpoint.partition, clock_key(checkpoint.partition), orjson.dumps(entries)

    def confirm(self, checkpoint: Checkpoint) -> None:
        """``checkpoint``'s offsets are committed."""
        part = self._active.get(checkpoint.partition)
        if part is not None:
            part.confirmed = checkpoint

    def revoke(self, partition: int) -> None:
        """Forget a partition; records still held by its merger were never committed."""
        self._active.pop(partition, None)

    # --- records --------------------------------------------------------------------------

    def handle(self, record: Record, feed: Feed, now_ms: int) -> Outcome:
        """Take one record; return the alerts, dead letters and re-keyed records it causes.

        ``feed`` tells how far the consumer has read the input partitions; ``now_ms`` is the
        wall clock, which times the idle wait.
        """
        out = Outcome()
        part = self._active.get(record.partition)
        if part is None:
            raise RuntimeError(f"partition {record.partition} was not assigned")
        entry = [record.offset, False]
        part.inflight[record.source].append(entry)
        event = self._validate(record, out)
        ts_ms = 0
        if event is not None:
            ts_ms = to_ms(event.ts)
            if self.max_future_ms and ts_ms - now_ms > self.max_future_ms:
                ahead = ts_ms - now_ms
                event = self._dead(
                    record, out, f"ts is {ahead // 3_600_000} h ahead of the wall clock", "future"
                )
        if event is None:
            entry[1] = True
            self._finished += 1
            return out
        fetched = feed.polled_at(record.partition, record.source)
        held = (record, event, entry, ts_ms, now_ms, fetched)
        merger = part.merger
        settled = self._settled(feed, now_ms)
        if not merger.pending(record.partition) and settled(
            record.partition, 1 - record.source, ts_ms, held
        ):
            self._apply(part, (held,), out)  # the common case once caught up: nothing waits
        else:
            merger.push(record.partition, record.source, ts_ms, held)
            self._apply(part, merger.pop_ready(record.partition, settled), out)
        return out

    def release(self, feed: Feed, now_ms: int) -> dict[int, Outcome]:
        """Process the held records that need not wait any longer, per partition; the agent
        calls this on a timer, since a partition whose feed paused has no next record to."""
        done: dict[int, Outcome] = {}
        settled = self._settled(feed, now_ms)
        for partition, part in self._active.items():
            if part.merger.pending(partition):
                out = Outcome()
                self._apply(part, part.merger.pop_ready(partition, settled), out)
                if out.alerts or out.dead_letters or out.snapshots:
                    done[partition] = out
        return done

    def held(self) -> int:
        """Records waiting in the mergers for the other input topic of their partition."""
        return sum(part.merger.pending() for part in self._active.values())

    def _settled(self, feed: Feed, now_ms: int) -> Callable[[int, int, int, _Held], bool]:
        idle = self.max_idle_ms

        def settled(partition: int, source: int, ts_ms: int, head: _Held) -> bool:
            """Can ``source`` of ``partition`` still deliver a record that goes before ``head``?

            Not if the consumer has been handed all of it up to a high watermark read in a
            fetch response no older than the one that brought ``head``: a producer that had the
            earlier record appended first (``churnwatch produce`` waits for its acks when it
            switches topic) cannot have it show up later. (The poll time is read before the
            high watermark: the consumer sets them in the other order.)
            """
            if now_ms - head[4] < idle:
                return False
            if feed.polled_at(partition, source) < head[5]:
                return False
            return feed.caught_up(partition, source)

        return settled

    def _apply(self, part: _Partition, ready: Iterable[_Held], out: Outcome) -> None:
        engine, dirty = part.engine, part.dirty
        alert_counts = self.alert_counts
        for held, ev, held_entry, ts_ms, *_ in ready:
            held_entry[1] = True
            self._finished += 1
            late = engine.too_late(ts_ms)
            if late is not None:
                self._dead(held, out, late, TOO_LATE)
                continue
            processed = self.processed[held.source]
            kind = ev.type if ev.type in _ALL_TYPES else "unknown"
            processed[kind] = processed.get(kind, 0) + 1
            for alert in engine.process(ev, held.offset, held.source):
                out.alerts.append(
                    (alert.account_id.encode(), dump_model(alert), held.source, held.offset)
                )
                labels = (alert.signal, alert.severity, alert.kind)
                alert_counts[labels] = alert_counts.get(labels, 0) + 1
            if engine.health_out:
                out.snapshots.extend((a.encode(), b) for a, b in engine.take_snapshots())
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

    def pending(self) -> int:
        """Records processed but not yet flushed (their commits are waiting)."""
        return self._finished

    def flush(self) -> Flush:
        """Encode every changed account once; a checkpoint per partition whose records moved on."""
        out = Flush()
        for partition, part in self._active.items():
            clock = part.engine.clock_ms
            for account_id, acct in part.dirty.items():
                if acct is None:
                    out.writes.append((partition, account_id, None))
                else:
                    acct.clock_ms = clock
                    out.writes.append((partition, account_id, encode_state(acct)))
            part.dirty = {}
            moved = False
            for source, queue in enumerate(part.inflight):
                end = part.commit_at[source]
                while queue and queue[0][1]:
                    end = max(end, queue.popleft()[0] + 1)
                if end > part.commit_at[source]:
                    part.commit_at[source] = end
                    moved = True
            if moved:
                usage, billing = (end if end >= 0 else None for end in part.commit_at)
                out.checkpoints[partition] = Checkpoint(partition, (usage, billing), clock)
        self._finished = 0
        return out

    def _validate(self, record: Record, out: Outcome) -> EventBase | None:
        """The record's event, or ``None`` once it was dead-lettered or re-keyed (the check
        against the wall clock follows in :meth:`handle`, which converts the time once)."""
        event = validate(record.value)
        if isinstance(event, Rejection):
            return self._dead(record, out, event.reason, event.kind)
        expected = source_index(event)
        if event.type in _ALL_TYPES and expected != record.source:
            return self._dead(
                record, out, f"{event.type} belongs on the {SOURCES[expected]} topic", "wrong topic"
            )
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
                    record,
                    out,
                    f"record key {shown!r} is not its account_id {event.account_id!r}",
                    "wrong key",
                )
        return event

    def _dead(self, record: Record, out: Outcome, reason: str, kind: str) -> None:
        self._count("dead_letters")
        self.dead_letter_kinds[kind] = self.dead_letter_kinds.get(kind, 0) + 1
        out.dead_letters.append(DeadLetter(record, reason, kind))
        return None

    def _count(self, name: str) -> None:
        self.counts[name] = self.counts.get(name, 0) + 1

    def stats(self) -> dict[str, int]:
        total: dict[str, int] = dict(self.counts)
        for part in self._active.values():
            for name, value in part.engine.stats.items():
                total[name] = total.get(name, 0) + value
        return total


def _read_checkpoints(partition: int, value: bytes) -> list[Checkpoint]:
    try:
        return [Checkpoint(partition, (u, b), clock) for u, b, clock in orjson.loads(value)]
    except (orjson.JSONDecodeError, TypeError, ValueError):
        raise StateFormatError(
            f"checkpoint record of partition {partition}: {value[:80]!r}"
        ) from None


def dead_letter_headers(letter: DeadLetter, topic: str) -> list[tuple[str, bytes]]:
    """Where the record came from and why it was refused; the value stays the original bytes."""
    return [
        ("churnwatch-reason", letter.reason.encode()),
        ("churnwatch-source-topic", topic.encode()),
        ("churnwatch-source-partition", str(letter.record.partition).encode()),
        ("churnwatch-source-offset", str(letter.record.offset).encode()),
    ]
