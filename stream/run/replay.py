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
from schemas.events import BILLING_TYPES, EventBase
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


END_OF_LOG = 2**62
"""The position of what the final drains write, after every line of any log."""
_AFTER_ANY_TIME = 2**63
"""The merge floor at the end of the log: nothing more comes for any partition."""


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
    # Merge readiness, per partition: a partition's lines are read in order, and under the
    # lateness contract nothing read later for it is earlier than the newest time read for it
    # so far minus the allowance (its floor); at the end of the file nothing more comes at
    # all. The bound is each partition's own, as the worker's is (it waits on that
    # partition's topics alone), so a partition's merge order depends on its own lines only:
    # that is what lets ``--jobs`` replay partitions in separate processes and give the same
    # bytes. The loop is replay's per-event hot path, hence the local names.
    merger: Merger[tuple[int, bytes | None, int, EventBase]] = Merger()
    push, pop_before = merger.push, merger.pop_before
    lateness = engine.policy.lateness_ms
    newest: dict[int, int] = {}
    partitions = len(engine.partitions)
    targets = engine.partitions
    where = position if position is not None else Position()
    owned = share.owned if share is not None else None
    route = share.route if share is not None else None
    rejects_bad = share.rejects_bad_lines if share is not None else True
    billing_types = BILLING_TYPES
    reasons = report.reject_reasons
    events = alerts_made = snapshots = rejected = 0

    def reject(number: int, kind: str, reason: str, raw: bytes | None) -> None:
        nonlocal rejected
        rejected += 1
        reasons[kind] += 1
        write_reject(reject_record(number, reason, raw))

    def drain(partition: int, floor: int) -> None:
        nonlocal alerts_made, snapshots
        where.partition = partition
        target = targets[partition]
        for number, raw, ts_ms, event in pop_before(partition, floor):
            late = target.too_late(ts_ms)
            if late is not None:
                reject(number, TOO_LATE, late, raw)
                continue
            made = target.process(event, ms=ts_ms)
            if made:
                for alert in made:
                    if on_alert is not None:
                        on_alert(alert)
                    write_alert(dump_model(alert) + b"\n")
                alerts_made += len(made)
            if write_health is not None:
                for _, snapshot in target.take_snapshots():
                    write_health(snapshot + b"\n")
                    snapshots += 1

    number = 0
    for number, raw in lines:
        if on_progress is not None and not number & 0x3FFF:
            on_progress(number)
        if raw is not None and raw[:1] <= b" " and not raw.strip():
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
                reject(number, event.kind, event.reason, raw)
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
            reject(number, FUTURE, future_reason(ts_ms, not_after_ms), raw)
            continue
        events += 1
        if observe is not None:
            observe(event)
        if ts_ms > newest.get(partition, -(2**62)):
            newest[partition] = ts_ms
        push(partition, 1 if event.type in billing_types else 0, ts_ms, (number, raw, ts_ms, event))  # type: ignore[attr-defined]
        drain(partition, newest[partition] - lateness)
    report.lines = number
    where.line = END_OF_LOG
    for partition in sorted(merger.partitions()):
        drain(partition, _AFTER_ANY_TIME)
    report.events, report.alerts, report.snapshots = events, alerts_made, snapshots
    report.rejected = rejected
    report.engine = engine.stats
    return report
