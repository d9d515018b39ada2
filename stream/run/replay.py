"""Offline replay: an event log through the very core the live worker runs.

Engineers use it to reproduce an incident, backfill alerts after a policy change and tune
thresholds. Bad lines never stop it: each goes to the rejects output with its line number,
reason and original text, and is counted. The same log and policy give byte-identical alerts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from schemas.alerts import AlertEvent
from schemas.codec import dump_model
from schemas.events import EventBase, source_index
from stream.core.engine import PartitionedEngine, partition_for
from stream.core.timeutil import to_ms
from stream.run.live import TOO_LATE
from stream.run.merge import Merger
from stream.run.validate import OVERSIZED_LINE, Rejection, reject_record, validate

FUTURE = "future"
"""The kind of a record stamped too far ahead of the reference time (the worker's word)."""


def future_reason(ts_ms: int, not_after_ms: int) -> str:
    return f"ts is {(ts_ms - not_after_ms) // 3_600_000} h past the latest time allowed"


@dataclass
class ReplayReport:
    lines: int = 0
    events: int = 0
    rejected: int = 0
    alerts: int = 0
    snapshots: int = 0
    reject_reasons: Counter[str] = field(default_factory=Counter)
    engine: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict:
        return {
            "lines": self.lines,
            "events": self.events,
            "rejected": self.rejected,
            "alerts": self.alerts,
            "health_snapshots": self.snapshots,
            "reject_reasons": dict(sorted(self.reject_reasons.items())),
            "engine": dict(sorted(self.engine.items())),
        }


class _FileOrder:
    """Merge readiness for a log file, per partition: a partition's lines are read in order,
    so its own newest time bounds what it can still get.

    Under the lateness contract nothing read later for a partition is earlier than the newest
    time read for it so far minus the allowance; at the end of the file nothing more comes at
    all. The bound is each partition's own, as the worker's is (it waits on that partition's
    topics alone), so a partition's merge order depends on its own lines only: that is what
    lets ``--jobs`` replay partitions in separate processes and give the same bytes.
    """

    def __init__(self, lateness_ms: int) -> None:
        self.lateness_ms = lateness_ms
        self.newest_ms: dict[int, int] = {}
        self.ended = False

    def settled(self, partition: int, source: int, ts_ms: int, head: object) -> bool:
        if self.ended:
            return True
        floor = self.newest_ms[partition] - self.lateness_ms
        # A billing record ties first, so an empty billing source must be strictly past the head.
        return floor > ts_ms if source == 1 else floor >= ts_ms


END_OF_LOG = 2**62
"""The position of what the final drains write, after every line of any log."""


@dataclass
class Position:
    """Where a replay is: the line whose reading triggered what is being written, and the
    partition being drained (-1 while a line is only read). What it writes is in the order of
    (line, partition) and, within one, in the order written; after the last line, ``line``
    is :data:`END_OF_LOG` and partitions drain in ascending order. :mod:`stream.run.jobs`
    tags each output with it to merge the jobs' outputs into exactly this order."""

    line: int = 0
    partition: int = -1


@dataclass(frozen=True)
class Share:
    """The part of a log one job replays: the partitions it owns, and whether bad lines are
    its to report. ``route`` places a raw line on a partition cheaply (None when it cannot
    tell: such a line is validated by every job, and the one it belongs to keeps it)."""

    owned: frozenset[int]
    rejects_bad_lines: bool
    route: Callable[[bytes], int | None]


class RoutingError(RuntimeError):
    """A line the cheap route placed on one partition turned out to belong to another."""


def replay(
    lines: Iterable[tuple[int, bytes | None]],
    engine: PartitionedEngine,
    write_alert: Callable[[bytes], object],
    write_reject: Callable[[bytes], object],
    on_progress: Callable[[int], None] | None = None,
    observe: Callable[[EventBase], object] | None = None,
    on_alert: Callable[[AlertEvent], object] | None = None,
    not_after_ms: int | None = None,
    write_health: Callable[[bytes], object] | None = None,
    share: Share | None = None,
    position: Position | None = None,
) -> ReplayReport:
    """Run a log through the engine in the order a live worker would process it.

    Records are routed to their Kafka partition and source topic and merged by event time per
    partition (see :mod:`stream.run.merge`), so replay and the worker agree alert for alert.
    ``observe`` sees every valid event as it is read and ``on_alert`` every alert as it is
    made, so backtests score the very run that writes the alerts.

    ``not_after_ms`` is the worker's rule against clocks far in the future, with a reference
    time the caller fixes (``--now`` plus the allowance) instead of the wall clock, so a run
    stays reproducible: an event stamped later is rejected as the worker dead-letters it, and
    cannot drag a partition's clock ahead and make the rest of the log late.

    ``write_health`` receives each account-health snapshot line (the engine must be built
    with ``snapshots=True``), in the order the worker would publish them.

    With ``share``, only the lines of its partitions are decoded and run (one job of
    ``--jobs``); ``position`` is kept up to date for whoever tags the outputs.
    """
    report = ReplayReport()
    merger: Merger[tuple[int, bytes | None, int, EventBase]] = Merger()
    order = _FileOrder(engine.policy.lateness_ms)
    newest = order.newest_ms
    partitions = len(engine.partitions)
    settled = order.settled
    where = position if position is not None else Position()
    owned = share.owned if share is not None else None
    route = share.route if share is not None else None
    rejects_bad = share.rejects_bad_lines if share is not None else True

    def drain(partition: int) -> None:
        where.partition = partition
        target = engine.partitions[partition]
        process, too_late = target.process, target.too_late
        for number, raw, ts_ms, event in merger.pop_ready(partition, settled):
            late = too_late(ts_ms)
            if late is not None:
                report.rejected += 1
                report.reject_reasons[TOO_LATE] += 1
                write_reject(reject_record(number, late, raw))
                continue
            for alert in process(event):
                if on_alert is not None:
                    on_alert(alert)
                write_alert(dump_model(alert) + b"\n")
                report.alerts += 1
            if write_health is not None:
                for _, snapshot in target.take_snapshots():
                    write_health(snapshot + b"\n")
                    report.snapshots += 1

    for number, raw in lines:
        report.lines = number
        if on_progress is not None and not number & 0x3FFF:
            on_progress(number)
        if raw is not None and not raw.strip():
            continue  # blank lines (a trailing newline, a separator) are not records
        routed = None
        if route is not None and raw is not None:
            routed = route(raw)
            if routed is not None and routed not in owned:  # type: ignore[operator]
                continue  # another job's line
        where.line, where.partition = number, -1
        event = validate(raw, OVERSIZED_LINE)
        if isinstance(event, Rejection):
            if routed is not None or rejects_bad:  # routed: only its owner reads it
                report.rejected += 1
                report.reject_reasons[event.kind] += 1
                write_reject(reject_record(number, event.reason, raw))
            continue
        partition = partition_for(event.account_id, partitions)
        if owned is not None and partition not in owned:
            if routed is not None:
                raise RoutingError(
                    f"line {number}: routed to partition {routed}, but its account "
                    f"{event.account_id!r} is on partition {partition}"
                )
            continue  # a line only full validation could place: another job's
        ts_ms = to_ms(event.ts)
        if not_after_ms is not None and ts_ms > not_after_ms:
            report.rejected += 1
            report.reject_reasons[FUTURE] += 1
            write_reject(reject_record(number, future_reason(ts_ms, not_after_ms), raw))
            continue
        report.events += 1
        if observe is not None:
            observe(event)
        if ts_ms > newest.get(partition, -(2**62)):
            newest[partition] = ts_ms
        merger.push(partition, source_index(event), ts_ms, (number, raw, ts_ms, event))
        drain(partition)
    order.ended = True
    where.line = END_OF_LOG
    for partition in sorted(merger.partitions()):
        drain(partition)
    report.engine = engine.stats
    return report
