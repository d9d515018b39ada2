"""Learning the danger-zone line from a log's own cancellations.

During a replay the engine's day probe samples, for every account and day, the quantity the
danger-zone detector holds against its line (logins per seat per week over the detector's
window). Each sample has a *trigger line*: the lowest line at which the detector would call
it below, Poisson floor included (the floor makes a low level on few seats or few days not
count, so the trigger is not simply the level). Per account that gives three numbers:

* ``warn``: the lowest trigger among samples ``lead_days`` to ``horizon_days`` before its
  cancellation: with a line above it, the churner is warned in time (recall);
* ``hit``: the lowest trigger among samples followed by the cancellation within the
  horizon: a line above it makes the account a correct alert (precision);
* ``miss``: the lowest trigger among samples *not* followed by a cancellation within the
  horizon (and old enough to know): a line above it, without a hit, is a false alarm.

Every candidate line is then scored exactly as the backtest scores accounts, for each
(segment, stage) separately, and one is chosen by the objective. A cell with too few churners
keeps the line it had: a line learned from a handful of cancellations is noise.
"""

from __future__ import annotations

import copy
import math
from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Any

from stream.core.signals.base import Ctx
from stream.core.signals.usage import danger_measure
from stream.core.state import AccountState
from stream.core.timeutil import DAY_MS
from stream.offline.backtest import OVERALL, Scoring
from stream.offline.danger_rerun import DangerRow
from stream.offline.outcomes import AccountOutcome

OBJECTIVES = ("recall", "f1")
DEFAULT_SCORING = Scoring()
INF = math.inf


def trigger_line(level: float, exposure: float, min_z: float) -> float:
    """The lowest line for which the detector calls ``level`` below it.

    ``exposure`` is seats × days / 7, so a line ``x`` expects ``x * exposure`` logins. Below
    means ``level < x`` and, with the Poisson floor, ``(x - level) * sqrt(exposure / x) >=
    min_z``; the left side grows with ``x``, so the trigger is the larger root of
    ``exposure·x² - (2·level·exposure + z²)·x + level²·exposure = 0``.
    """
    if min_z <= 0:
        return level
    b = 2 * level * exposure + min_z * min_z
    return (b + math.sqrt(b * b - 4 * exposure * exposure * level * level)) / (2 * exposure)


@dataclass
class DangerSamples:
    """The day probe: per account, for each judged day, (day, trigger line, segment, stage) and
    the measure itself (logins, window days, seats), which :mod:`stream.offline.danger_rerun`
    judges again at the learned lines."""

    by_account: dict[str, list[DangerRow]] = field(default_factory=dict)
    current_lines: dict[tuple[str, str], float] = field(default_factory=dict)

    def __call__(self, acct: AccountState, ctx: Ctx) -> None:
        p = ctx.th.danger_zone
        measured = danger_measure(acct, ctx, p)
        if isinstance(measured, str):
            return
        logins, days = measured
        exposure = acct.seats * days / 7
        level = logins / exposure
        segment = acct.segment_name()
        self.current_lines.setdefault((segment, ctx.stage), p.line)
        trigger = trigger_line(level, exposure, p.min_z)
        row = (ctx.day, trigger, segment, ctx.stage, logins, days, acct.seats)
        self.by_account.setdefault(acct.account_id, []).append(row)


@dataclass(frozen=True)
class CellChoice:
    segment: str
    stage: str
    line: float
    current: float
    churners: int
    accounts: int
    learned: bool
    note: str
    precision: float | None
    recall: float | None
    current_precision: float | None
    current_recall: float | None
    churn_levels: list[float]
    retained_levels: list[float]


@dataclass
class _Cell:
    warn: list[float] = field(default_factory=list)  # per eligible churner
    hit: dict[str, float] = field(default_factory=dict)
    miss: dict[str, float] = field(default_factory=dict)
    retained_levels: list[float] = field(default_factory=list)


def _cells(
    samples: DangerSamples,
    outcomes: dict[str, AccountOutcome],
    log_end_ms: int,
    scoring: Scoring,
) -> dict[tuple[str, str], _Cell]:
    horizon, lead = scoring.horizon_days, scoring.lead_days
    end_day = log_end_ms // DAY_MS
    cells: dict[tuple[str, str], _Cell] = {}
    for account, rows in samples.by_account.items():
        out = outcomes.get(account)
        if out is None:
            continue
        cancel = None if out.cancel_ms is None else out.cancel_ms // DAY_MS
        warn: dict[tuple[str, str], float] = {}
        for day, trigger, segment, stage, *_ in rows:
            cell = cells.setdefault((segment, stage), _Cell())
            if cancel is not None and cancel - horizon <= day < cancel:
                if trigger < cell.hit.get(account, INF):
                    cell.hit[account] = trigger
                if day <= cancel - lead:
                    key = (segment, stage)
                    warn[key] = min(warn.get(key, INF), trigger)
            elif day + horizon <= (end_day if cancel is None else cancel) and trigger < (
                cell.miss.get(account, INF)
            ):
                cell.miss[account] = trigger
        for key, value in warn.items():
            cells[key].warn.append(value)
        if cancel is None:
            # The retained accounts' distribution: each one's lowest point, as for churners.
            lowest: dict[tuple[str, str], float] = {}
            for _, trigger, segment, stage, *_ in rows:
                key = (segment, stage)
                lowest[key] = min(lowest.get(key, INF), trigger)
            for key, value in lowest.items():
                cells[key].retained_levels.append(value)
    return cells


def _score(cell: _Cell, line: float) -> tuple[float | None, float | None]:
    """(precision, recall) of one line in one cell, by the backtest's account rules."""
    hits = sum(1 for v in cell.hit.values() if v < line)
    misses = sum(1 for a, v in cell.miss.items() if v < line and cell.hit.get(a, INF) >= line)
    detected = bisect_left(cell.warn, line)
    precision = hits / (hits + misses) if hits + misses else None
    recall = detected / len(cell.warn) if cell.warn else None
    return precision, recall


def _f1(precision: float | None, recall: float | None) -> float:
    if not precision or not recall:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def choose_lines(
    samples: DangerSamples,
    outcomes: dict[str, AccountOutcome],
    log_end_ms: int,
    scoring: Scoring = DEFAULT_SCORING,
    objective: str = "recall",
    min_precision: float = 0.6,
    min_churners: int = 30,
) -> list[CellChoice]:
    """One line per (segment, stage) that the log has samples for, chosen by ``objective``.

    ``recall``: the line with the best recall whose precision is at least ``min_precision``
    (the lowest such line on a tie, since a lower line alerts less); when no line reaches the
    precision, the best F1, and the note says so. ``f1``: the best F1.
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    choices = []
    cells = _cells(samples, outcomes, log_end_ms, scoring)
    for (segment, stage), cell in sorted(cells.items()):
        cell.warn.sort()
        current = samples.current_lines[(segment, stage)]
        cur_p, cur_r = _score(cell, current)
        churners = len(cell.warn)
        accounts = len(set(cell.hit) | set(cell.miss))
        line, note, learned = current, "", False
        if churners < min_churners:
            note = (
                f"kept the current line: {churners} churners with a level to learn from, "
                f"fewer than {min_churners}"
            )
        else:
            # Each distinct trigger is where some account flips; just above it is a candidate.
            points = sorted({*cell.warn, *cell.hit.values(), *cell.miss.values()})
            candidates = [round(p + 1e-4, 4) for p in points if p < 50]
            scored = [(c, *_score(cell, c)) for c in candidates]
            best = None
            if objective == "recall":
                good = [s for s in scored if s[1] is not None and s[1] >= min_precision]
                if good:
                    best = max(good, key=lambda s: (s[2] or 0.0, -s[0]))
                    note = f"best recall with precision >= {min_precision:.0%}"
                else:
                    note = f"no line reaches {min_precision:.0%} precision; best F1 instead"
            if best is None:
                best = max(scored, key=lambda s: (_f1(s[1], s[2]), -s[0]))
                note = note or "best F1"
            line, learned = best[0], True
        precision, recall = _score(cell, line)
        choices.append(
            CellChoice(
                segment=segment,
                stage=stage,
                line=line,
                current=current,
                churners=churners,
                accounts=accounts,
                learned=learned,
                note=note,
                precision=None if precision is None else round(precision, 4),
                recall=None if recall is None else round(recall, 4),
                current_precision=None if cur_p is None else round(cur_p, 4),
                current_recall=None if cur_r is None else round(cur_r, 4),
                churn_levels=[round(v, 4) for v in cell.warn],
                retained_levels=[round(v, 4) for v in sorted(cell.retained_levels)],
            )
        )
    return choices


def gate_signals(per_signal: dict[str, dict], min_precision: float) -> dict[str, str]:
    """Signals to switch off, with the reason: their alerts did not foretell churn on this log.

    The danger zone is exempt (its line is what calibration sets). A signal with no scored
    alerts is kept: no evidence either way.
    """
    off = {}
    for signal, numbers in per_signal.items():
        precision = numbers["precision"]
        if signal in ("danger_zone", OVERALL) or precision is None:
            continue
        if precision < min_precision:
            off[signal] = (
                f"precision {precision:.0%} < {min_precision:.0%} "
                f"({numbers['hits']} of {numbers['hits'] + numbers['false_alarms']} alerted "
                "accounts cancelled within the horizon)"
            )
    return off


def calibrated_policy_data(
    base: dict[str, Any], choices: list[CellChoice], disabled: dict[str, str]
) -> dict[str, Any]:
    """The base policy document with the learned lines and the switched-off signals."""
    data = copy.deepcopy(base)
    for choice in choices:
        if not choice.learned:
            continue
        segment = data.setdefault("segments", {}).setdefault(choice.segment, {})
        stage = segment.setdefault("stages", {}).setdefault(choice.stage, {})
        stage.setdefault("danger_zone", {})["line"] = choice.line
    defaults = data.setdefault("defaults", {})
    for signal in sorted(disabled):
        defaults.setdefault(signal, {})["enabled"] = False
    return data
