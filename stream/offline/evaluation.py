"""One replay of a log for scoring: alerts as marks, the accounts' outcomes, and the counts.

``churnwatch backtest`` and ``churnwatch calibrate`` both read a log this way; it is the same
replay as ``churnwatch replay`` (bad lines go to a rejects file, ``-`` and gzip work), with an
observer for outcomes and, for calibration, a probe that samples each account-day. Marks are
read from the published records (:mod:`stream.offline.marks`), so scoring sees what CS would
have received under the policy's alerting mode.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

from schemas.alerts import AlertEvent
from schemas.events import EventBase
from stream.core.engine import PartitionedEngine
from stream.core.policy import Policy
from stream.core.portfolio import Portfolio, month_of
from stream.core.signals.base import Ctx
from stream.core.state import AccountState
from stream.core.timeutil import from_ms
from stream.offline.backtest import Mark
from stream.offline.marks import AlertMarks
from stream.offline.outcomes import OutcomeObserver
from stream.run.logio import LogReader, Progress, RejectsFile
from stream.run.replay import ReplayReport, replay


@dataclass
class LogRun:
    report: ReplayReport
    outcomes: OutcomeObserver
    marks: list[Mark] = field(default_factory=list)
    portfolio: Portfolio = field(default_factory=Portfolio)

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


def run_log(
    path: str,
    policy: Policy,
    rejects_path: str,
    partitions: int = 1,
    label: str = "replay",
    quiet: bool = False,
    probe: Callable[[AccountState, Ctx], object] | None = None,
    not_after_ms: int | None = None,
) -> LogRun:
    engine = PartitionedEngine(policy, partitions)
    engine.set_day_probe(probe)
    observer = OutcomeObserver()
    portfolio = Portfolio(reasons=policy.churn_reasons)
    marks: list[Mark] = []

    def observe(event: EventBase) -> None:
        observer(event)
        portfolio.observe(event)

    marks_of = AlertMarks()

    def mark(alert: AlertEvent) -> None:
        marks.extend(marks_of(alert))

    with LogReader(path) as reader, RejectsFile(rejects_path) as rejects:
        progress = Progress(label, reader.size, enabled=False if quiet else None)
        report = replay(
            reader,
            engine,
            lambda _: None,  # scoring needs the marks, not the alert file
            rejects.write,
            on_progress=lambda n: progress.update(n, reader.position()),
            observe=observe,
            on_alert=mark,
            not_after_ms=not_after_ms,
        )
        progress.done()
    return LogRun(report, observer, marks, portfolio)
