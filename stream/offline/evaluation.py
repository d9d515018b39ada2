"""One replay of a log for scoring: alerts as marks, the accounts' outcomes, and the counts.

``churnwatch backtest`` and ``churnwatch calibrate`` both read a log this way; it is the same
replay as ``churnwatch replay`` (bad lines go to a rejects file, ``-`` and gzip work), with an
observer for outcomes and, for calibration, a probe that samples each account-day. Marks are
read from the published records (:mod:`stream.offline.marks`), so scoring sees what CS would
have received under the policy's alerting mode.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from schemas.alerts import AlertEvent
from schemas.events import EventBase, source_index
from stream.core.alert_outcomes import ENDED, Episode
from stream.core.churn_reasons import ChurnReasons
from stream.core.engine import PartitionedEngine
from stream.core.policy import Policy
from stream.core.portfolio import Portfolio, month_of
from stream.core.timeutil import from_ms, to_ms
from stream.offline.backtest import Mark
from stream.offline.marks import AlertMarks
from stream.offline.outcomes import OutcomeObserver
from stream.run.logio import LogReader, Progress, RejectsFile
from stream.run.parallel import PolicySource, effective_jobs, run_parallel
from stream.run.replay import Position, ReplayReport, replay


@dataclass
class LogRun:
    report: ReplayReport
    outcomes: OutcomeObserver
    marks: list[Mark] = field(default_factory=list)
    portfolio: Portfolio = field(default_factory=Portfolio)
    cancels: dict[str, list[int]] = field(default_factory=dict)
    """Each account's ``subscription_cancelled`` times, in log order (the engine closes every
    open episode at each; :mod:`stream.offline.danger_rerun` needs them)."""

    @property
    def span_ms(self) -> tuple[int, int]:
        return self.outcomes.start_ms or 0, self.outcomes.end_ms

    def portfolio_months(self) -> list[dict]:
        """Logo and revenue churn for each month the log covers, a month the log covers only
        in part flagged as such (its counts are for the days it has, not the whole month)."""
        start, end = self.span_ms
        return [
            {**row, **month_coverage(row["month"], start, end)}
            for row in self.portfolio.report(month_of(start), month_of(end))
        ]


def month_coverage(month: str, start_ms: int, end_ms: int) -> dict:
    """Which days of ``month`` (``YYYY-MM``) the log from ``start_ms`` to ``end_ms`` covers:
    ``partial`` when it misses any, with the first and last day it does cover."""
    first = date.fromisoformat(f"{month}-01")
    last = date(first.year + first.month // 12, first.month % 12 + 1, 1) - timedelta(days=1)
    begin, finish = from_ms(start_ms).date(), from_ms(end_ms).date()
    covered_from, covered_to = max(first, begin), min(last, finish)
    return {
        "partial": covered_from > first or covered_to < last,
        "covered_from": covered_from.isoformat(),
        "covered_to": covered_to.isoformat(),
    }


class ScoringCollector:
    """What a scoring run gathers from its replay, in one process or in each ``--jobs`` job.

    Each piece keeps what is needed to rebuild the single-process order when the jobs'
    collectors are merged (:func:`merge_collectors`): an account's first line (outcomes are
    kept in order of first appearance), each mark's position (the alerts' order), and the
    billing events with their lines (the portfolio folds them in log order, as its running
    sums are rounded at each step). ``probe`` is the engine's day probe, if any: it must be
    picklable and have ``merged(parts)`` to run in jobs.
    """

    def __init__(self, probe: Any = None) -> None:
        self.probe = probe
        self.outcomes = OutcomeObserver()
        self.first_line: dict[str, int] = {}
        self.journal: list[tuple[int, EventBase]] = []
        self.marks: list[tuple[int, int, int, Mark]] = []
        self.cancels: dict[str, list[int]] = {}
        self.records = 0  # alert records seen: each mark says which one it came from
        self._marks_of = AlertMarks()
        self.episodes: list[tuple[str, Episode, int]] = []
        """Each published record's episode and time, for the portfolio's alert outcomes."""
        if hasattr(probe, "count_records"):
            probe.count_records(self.published)

    def published(self) -> int:
        return self.records

    def observe(self, event: EventBase, where: Position) -> None:
        if event.account_id not in self.outcomes.accounts:
            self.first_line[event.account_id] = where.line
        self.outcomes(event)
        if source_index(event) == 1:
            self.journal.append((where.line, event))
            if event.type == "subscription_cancelled":  # type: ignore[attr-defined]
                self.cancels.setdefault(event.account_id, []).append(to_ms(event.ts))

    def alert(self, alert: AlertEvent, where: Position) -> None:
        marks = self.marks
        for mark in self._marks_of(alert, self.records):
            marks.append((where.line, where.partition, len(marks), mark))
        kind, ts = alert.kind, to_ms(alert.ts)
        episode = Episode(alert.account_id, to_ms(alert.episode_start),
                          ts if kind in ENDED else None, kind == "churned")  # fmt: skip
        self.episodes.append((alert.alert_id, episode, ts))
        self.records += 1


def merge_collectors(
    report: ReplayReport, parts: list[ScoringCollector], reasons: ChurnReasons | None = None
) -> tuple[LogRun, Any]:
    """The jobs' collections as one process's run, and their merged probe (or None);
    ``reasons`` is the policy's taxonomy the portfolio counts cancellations by."""
    outcomes = OutcomeObserver()
    firsts = sorted(
        (part.first_line[account], account, part) for part in parts for account in part.first_line
    )
    taxonomy = reasons or ChurnReasons()
    for _, account, part in firsts:
        outcome = outcomes.accounts[account] = part.outcomes.accounts[account]
        if outcome.churned:
            outcome.reason_group = taxonomy.classify(outcome.reason).group
    starts = [p.outcomes.start_ms for p in parts if p.outcomes.start_ms is not None]
    outcomes.start_ms = min(starts) if starts else None
    outcomes.end_ms = max((p.outcomes.end_ms for p in parts), default=0)
    portfolio = Portfolio(reasons=taxonomy)
    for _, event in heapq.merge(*(p.journal for p in parts), key=lambda item: item[0]):
        portfolio.observe(event)
    for part in parts:  # outcomes do not depend on the order (stream.core.alert_outcomes)
        for alert_id, episode, ts in part.episodes:
            portfolio.alert_episode(alert_id, episode, ts)
    marks = [mark for *_, mark in heapq.merge(*(p.marks for p in parts))]
    cancels = {a: part.cancels[a] for _, a, part in firsts if a in part.cancels}
    probe = parts[0].probe if parts else None
    if hasattr(probe, "merged"):  # a plain function can only run in this process
        probe = probe.merged([p.probe for p in parts])
    return LogRun(report, outcomes, marks, portfolio, cancels), probe


def run_log(
    path: str,
    policy: Policy | PolicySource,
    rejects_path: str,
    partitions: int = 1,
    label: str = "replay",
    quiet: bool = False,
    probe: Any = None,
    not_after_ms: int | None = None,
    jobs: int = 1,
) -> tuple[LogRun, Any]:
    """Replay ``path`` for scoring, in ``jobs`` processes when a :class:`PolicySource` is
    given (a :class:`Policy` runs here). Returns the run and the merged ``probe``: in jobs
    each process fills a copy of it, so the one passed in stays empty."""
    collector = ScoringCollector(probe)
    if isinstance(policy, PolicySource) and effective_jobs(jobs, partitions, path) > 1:
        size = Path(path).stat().st_size if Path(path).is_file() else None
        with Progress(label, size, enabled=False if quiet else None) as progress:
            parallel = run_parallel(
                path, policy, partitions, jobs, on_progress=progress.update, alerts=False,
                collector=collector, not_after_ms=not_after_ms, stop_at_damage=False,
            )  # fmt: skip
        with parallel, RejectsFile(rejects_path) as rejects:
            parallel.write("rejects", rejects.write)
        parts = [result.collector for result in parallel.results]
        reasons = policy.load().churn_reasons
        return merge_collectors(parallel.report, parts, reasons)  # type: ignore[arg-type]
    if isinstance(policy, PolicySource):
        policy = policy.load()
    engine = PartitionedEngine(policy, partitions)
    engine.set_day_probe(probe)
    where = Position()
    with LogReader(path) as reader, RejectsFile(rejects_path) as rejects:
        progress = Progress(label, reader.size, enabled=False if quiet else None)
        report = replay(
            reader,
            engine,
            lambda _: None,  # scoring needs the marks, not the alert file
            rejects.write,
            on_progress=lambda n: progress.update(n, reader.position()),
            observe=lambda event: collector.observe(event, where),
            on_alert=lambda alert: collector.alert(alert, where),
            not_after_ms=not_after_ms,
            position=where,
        )
        progress.done()
    return merge_collectors(report, [collector], policy.churn_reasons)
