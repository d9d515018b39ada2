"""Replay on several cores: one job per share of the emulated partitions, merged back in order.

A partition's event-time clock spans all its accounts, so a replay can only be split by
partition: job ``j`` owns partitions ``p`` with ``p mod jobs == j`` (:func:`routing.assign`).
The parent reads the log once, runs job 0 itself and sends every other job the lines of its
partitions (a cheap parse places them, :mod:`stream.run.feed`); each job decodes and runs its
lines and writes its outputs tagged with the place a single process would write them at
(:mod:`stream.run.tagged`).
Because replay's merge order and clocks are per partition (:mod:`stream.run.replay`), a
partition's outputs do not depend on which job ran it or on the other partitions, and the
merge of the tagged files by their key is byte for byte the output of one process. Lines that
fail validation are reported once: a line routed to a partition by its owner, a line no cheap
route can place by job 0.

Scoring runs (backtest, calibrate) give each job a :class:`Collector` that sees the same
replay's events and alerts with their positions (outcomes, marks, the calibration probe's
samples) and comes back with the job's result; the offline layer merges the collectors in
single-process order (:mod:`stream.offline.evaluation`).
"""

from __future__ import annotations

import multiprocessing
import pickle
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Protocol

from schemas.alerts import AlertEvent
from schemas.events import EventBase
from stream.core.engine import PartitionedEngine
from stream.core.policy import Policy, load_policy, parse_policy
from stream.core.signals.base import Ctx
from stream.core.state import AccountState
from stream.run.feed import FedLines, FeedingLines, widen
from stream.run.jobs import JobError, JobProgress, run_jobs
from stream.run.logio import LogReader
from stream.run.replay import Position, ReplayReport, Share, replay
from stream.run.routing import assign
from stream.run.tagged import TaggedWriter, merge_tagged


class Collector(Protocol):
    """What a scoring run gathers in each job; picklable, sent to the job empty and back full.

    ``observe`` sees every valid event of the job's partitions as it is read, ``alert`` every
    alert as it is made, each with the :class:`~stream.run.replay.Position` to order by;
    ``probe`` (or None) is the engine's day probe."""

    probe: Callable[[AccountState, Ctx], object] | None

    def observe(self, event: EventBase, where: Position) -> None: ...

    def alert(self, alert: AlertEvent, where: Position) -> None: ...


@dataclass(frozen=True)
class PolicySource:
    """A policy a job can rebuild: a file (None: built-in) or a parsed document. A
    :class:`~stream.core.policy.Policy` itself is tied to this process's signal registry."""

    path: str | None = None
    data: dict | None = None
    name: str = "policy"

    def load(self) -> Policy:
        if self.data is not None:
            return parse_policy(self.data, self.name)
        return load_policy(self.path)


@dataclass(frozen=True)
class ShareTask:
    """Everything one job needs: its feed of the log's lines, the policy, its partitions and
    what to collect."""

    feed: Connection | None
    """Where the job's lines come from (None: the parent's share, which reads the log)."""
    policy: PolicySource
    partitions: int
    owned: frozenset[int]
    rejects_bad_lines: bool
    workdir: str
    index: int
    not_after_ms: int | None = None
    alerts: bool = True
    snapshots: bool = False
    collector: Collector | None = None


@dataclass
class ShareResult:
    """What one share brings back; the output lines are in its tagged files."""

    report: ReplayReport
    incomplete: str | None
    alerts: Path | None
    rejects: Path
    health: Path | None
    collector: Collector | None = None
    cpu_seconds: float = 0.0
    """The CPU time of the process that ran the share, when it ended (for benchmarks: the
    longest bounds the wall time; the parent's includes reading and routing the log)."""


def run_share(
    task: ShareTask, progress: JobProgress | None = None, lines: FeedingLines | None = None
) -> ShareResult:
    """One job: replay the task's partitions, outputs to tagged files. The lines are those
    the parent sends, or (in the parent) ``lines``, which reads the log and feeds the jobs."""
    policy = task.policy.load()
    engine = PartitionedEngine(policy, task.partitions, snapshots=task.snapshots)
    if lines is None:
        assert task.feed is not None
        on_chunk = None
        if progress is not None:
            on_chunk = lambda n: progress.update(n, None)  # noqa: E731
        lines = FedLines(task.feed, on_chunk)  # type: ignore[assignment]
    assert lines is not None
    share = Share(task.owned, task.rejects_bad_lines, lines.route)
    where = Position()
    work = Path(task.workdir)
    rejects = TaggedWriter(work / f"rejects-{task.index}", where)
    alerts = TaggedWriter(work / f"alerts-{task.index}", where) if task.alerts else None
    health = TaggedWriter(work / f"health-{task.index}", where) if task.snapshots else None
    collector = task.collector
    result = ShareResult(ReplayReport(), None, None, rejects.path, None, collector)
    observe: Callable[[EventBase], object] | None = None
    on_alert: Callable[[AlertEvent], object] | None = None
    if collector is not None:
        engine.set_day_probe(collector.probe)
        observe = lambda event: collector.observe(event, where)  # noqa: E731
        on_alert = lambda alert: collector.alert(alert, where)  # noqa: E731
    try:
        result.report = replay(
            lines,
            engine,
            alerts.write if alerts is not None else lambda _: None,
            rejects.write,
            observe=observe,
            on_alert=on_alert,
            not_after_ms=task.not_after_ms,
            write_health=health.write if health is not None else None,
            share=share,
            position=where,
        )
        result.report.lines = lines.lines
        if progress is not None:
            progress.update(lines.lines, None)
    finally:
        if task.feed is not None:
            task.feed.close()
        for writer in (rejects, alerts, health):
            if writer is not None:
                writer.close()
    result.alerts = alerts.path if alerts is not None else None
    result.health = health.path if health is not None else None
    result.cpu_seconds = time.process_time()
    return result


def effective_jobs(jobs: int, partitions: int, log: str) -> int:
    """How many jobs can work: no more than partitions, and one for stdin or a pipe (which
    only one process can read)."""
    if log == "-" or not Path(log).is_file():
        return 1
    return max(1, min(jobs, partitions))


@dataclass
class ParallelRun:
    """A finished parallel replay: its merged report, and the jobs' results to merge from."""

    report: ReplayReport
    incomplete: str | None
    results: list[ShareResult]
    workdir: Path

    def write(self, kind: str, sink: Callable[[bytes], object]) -> int:
        """Merge one output (``alerts``, ``rejects`` or ``health``) of every job into ``sink``."""
        paths = [getattr(r, kind) for r in self.results if getattr(r, kind) is not None]
        return merge_tagged(paths, sink)

    def close(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> ParallelRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_parallel(
    log: str,
    policy: PolicySource,
    partitions: int,
    jobs: int,
    on_progress: Callable[[int, int | None], None] | None = None,
    stop_at_damage: bool = True,
    **collect: Any,
) -> ParallelRun:
    """Replay ``log`` in ``jobs`` shares (at most one per partition): this process reads the
    log, replays share 0 and feeds the others, each in a process of its own. ``collect`` are
    the :class:`ShareTask` options (alerts, snapshots, collector, not_after_ms);
    ``stop_at_damage`` is :class:`LogReader`'s. The caller merges the outputs it wants, then
    closes the run."""
    workdir = Path(tempfile.mkdtemp(prefix="churnwatch-jobs-"))
    try:
        shares = assign(partitions, jobs)
        owners = [-1] * partitions  # -1: the parent's own (share 0)
        for index, owned in enumerate(shares[1:]):
            for partition in owned:
                owners[partition] = index
        pipes = [multiprocessing.Pipe(duplex=False) for _ in shares[1:]]
        for _, send in pipes:
            widen(send)
        tasks = [
            ShareTask(receive, policy, partitions, owned, False, str(workdir), index + 1,
                      **collect)
            for index, (owned, (receive, _)) in enumerate(zip(shares[1:], pipes, strict=True))
        ]  # fmt: skip
        # A copy, as each job gets one: what the caller passed in (a collector, its probe)
        # stays as it was, and every share's collector comes back in the results.
        here = pickle.loads(pickle.dumps(
            ShareTask(None, policy, partitions, shares[0], True, str(workdir), 0, **collect)
        ))  # fmt: skip
        done: list[ShareResult] = []
        incomplete: list[str | None] = []

        def feed() -> None:
            """The parent's share, which reads the log and feeds the jobs as it goes."""
            for receive, _ in pipes:
                receive.close()  # the jobs have their own: a job that stops breaks its pipe
            with LogReader(log, stop_at_damage=stop_at_damage) as reader:
                lines = FeedingLines(reader, partitions, owners, [s for _, s in pipes],
                                     on_progress)  # fmt: skip
                done.append(run_share(here, None, lines))
                incomplete.append(reader.incomplete)
            if lines.broken:  # a job stopped: its error is raised while the results are awaited
                done.clear()

        try:
            results = run_jobs(run_share, tasks, on_progress, feed=feed)
        finally:
            for receive, send in pipes:
                receive.close()
                send.close()
        if not done:
            raise JobError("a job stopped reading its lines without reporting why")
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    results = done + results
    return ParallelRun(merge_reports([r.report for r in results]), incomplete[0], results,
                       workdir)  # fmt: skip


def merge_reports(reports: list[ReplayReport]) -> ReplayReport:
    """The jobs' counts as one replay's: every job was told how many lines the log has, the
    rest adds up."""
    total = ReplayReport()
    for report in reports:
        total.lines = max(total.lines, report.lines)
        total.events += report.events
        total.rejected += report.rejected
        total.alerts += report.alerts
        total.snapshots += report.snapshots
        total.reject_reasons.update(report.reject_reasons)
        total.engine.update(report.engine)
    return total
