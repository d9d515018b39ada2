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
    """Merge readiness for a log file: it is read in order, so its clock bounds what can come.

    Under the lateness contract nothing read later is earlier than the newest time read so far
    minus the allowance; at the end of the file nothing more comes at all.
    """

    def __init__(self, lateness_ms: int) -> None:
        self.lateness_ms = lateness_ms
        self.newest_ms = -(2**62)
        self.ended = False

    def settled(self, partition: int, source: int, ts_ms: int, head: object) -> bool:
        if self.ended:
            return True
        floor = self.newest_ms - self.lateness_ms
        # A billing record ties first, so an empty billing source must be strictly past the head.
        return floor > ts_ms if source == 1 else floor >= ts_ms


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
    """
    report = ReplayReport()
    merger: Merger[tuple[int, bytes | None, int, EventBase]] = Merger()
    order = _FileOrder(engine.policy.lateness_ms)
    partitions = len(engine.partitions)
    settled = order.settled

    def drain(partition: int) -> None:
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
        if raw is not None and not raw.strip():
            continue  # blank lines (a trailing newline, a separator) are not records
        event = validate(raw, OVERSIZED_LINE)
        if isinstance(event, Rejection):
            report.rejected += 1
            report.reject_reasons[event.kind] += 1
            write_reject(reject_record(number, event.reason, raw))
            continue
        ts_ms = to_ms(event.ts)
        if not_after_ms is not None and ts_ms > not_after_ms:
            report.rejected += 1
            report.reject_reasons[FUTURE] += 1
            write_reject(reject_record(number, future_reason(ts_ms, not_after_ms), raw))
            continue
        report.events += 1
        if observe is not None:
            observe(event)
        if ts_ms > order.newest_ms:
            order.newest_ms = ts_ms
        partition = partition_for(event.account_id, partitions)
        merger.push(partition, source_index(event), ts_ms, (number, raw, ts_ms, event))
        drain(partition)
        if not number & 0xFF and partitions > 1:
            for other in merger.partitions():
                drain(other)
        if on_progress is not None and not number & 0x3FFF:
            on_progress(number)
    order.ended = True
    for partition in merger.partitions():
        drain(partition)
    report.engine = engine.stats
    return report
