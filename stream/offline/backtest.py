"""Scoring alerts against what happened: precision, recall, lead time, volume.

Pure functions over the alerts a replay produced and the accounts' outcomes (see
:mod:`stream.offline.outcomes`). The definitions, per signal and for all signals together:

* **precision**: of the accounts alerted, the share that cancelled within ``horizon_days``
  after an opening. An opening whose horizon runs past the end of the log with no
  cancellation yet is *censored* (not yet known either way) and left out; an account counts
  as a hit if any of its openings was followed by a cancellation within the horizon.
* **recall**: of the accounts that cancelled at least ``lead_days`` after they were first
  seen, the share with an opening between ``horizon_days`` and ``lead_days`` before the
  cancellation (warned early enough to act, and not so early that it was about something else).
* **lead time**: days from the first opening within the horizon to the cancellation.
* **volume**: openings per 100 accounts per 30 days of observed account time.
* **recovered**: alerted accounts that did not cancel and whose episodes all resolved.

The all-signals figure counts the episodes CS receives: with one episode per account (the
policy's default) those are the account episodes, so its volume is openings of accounts at
risk; per signal, openings and resolutions are those of each signal's own episodes either
way (:mod:`stream.offline.marks` reads them from the account episodes' reasons).

The split gives the held-out evaluation calibration needs: accounts are assigned by a seeded
hash of their id, so the halves do not depend on the log's order or size.
"""

from __future__ import annotations

import hashlib
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from stream.core.signals.registry import SIGNALS
from stream.core.timeutil import DAY_MS, day_date, from_ms
from stream.offline.outcomes import AccountOutcome

OVERALL = "all_signals"


@dataclass(frozen=True)
class Scoring:
    horizon_days: int = 60
    lead_days: int = 14

    def __post_init__(self) -> None:
        if not 0 <= self.lead_days < self.horizon_days:
            raise ValueError("needs 0 <= lead days < horizon days")


@dataclass(frozen=True)
class Split:
    """Which accounts a run looks at: all, or one side of a seeded hash split."""

    part: str = "all"  # "all", "train" or "test"
    seed: int = 7
    test_fraction: float = 0.5

    def __post_init__(self) -> None:
        if self.part not in ("all", "train", "test"):
            raise ValueError(f"split part must be all, train or test, got {self.part!r}")
        if not 0 < self.test_fraction < 1:
            raise ValueError("the test fraction must be between 0 and 1")

    def in_test(self, account_id: str) -> bool:
        digest = hashlib.blake2b(f"{self.seed}:{account_id}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") / 2**64 < self.test_fraction

    def __call__(self, account_id: str) -> bool:
        if self.part == "all":
            return True
        return self.in_test(account_id) == (self.part == "test")

    def describe(self) -> str:
        if self.part == "all":
            return "all accounts"
        share = self.test_fraction if self.part == "test" else 1 - self.test_fraction
        return f"{self.part} half ({share:.0%} of accounts by a hash seeded {self.seed})"


@dataclass(frozen=True)
class Mark:
    """What scoring needs of one alert record."""

    account_id: str
    signal: str
    kind: str
    ts_ms: int
    overall: bool = True
    """Whether it also counts for the all-signals figure (and the weekly openings): a
    published episode's mark does, a signal's mark read from an account episode's reasons
    counts for that signal only."""


def _ratio(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def _quartiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p25": None, "median": None, "p75": None}
    if len(values) == 1:
        return {"p25": values[0], "median": values[0], "p75": values[0]}
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return {"p25": round(q1, 2), "median": round(q2, 2), "p75": round(q3, 2)}


def _weekly_bins(leads: list[float], horizon_days: int) -> list[int]:
    """Counts of lead times in 7-day bins: [0, 7), [7, 14), ... up to the horizon."""
    bins = [0] * -(-horizon_days // 7)
    for lead in leads:
        bins[min(int(lead // 7), len(bins) - 1)] += 1
    return bins


def _score_group(
    openings: dict[str, list[int]],
    resolutions: dict[str, int],
    outcomes: dict[str, AccountOutcome],
    log_end_ms: int,
    exposure_days: float,
    scoring: Scoring,
) -> dict:
    horizon, lead = scoring.horizon_days * DAY_MS, scoring.lead_days * DAY_MS
    hits = misses = censored = recovered = 0
    for account, times in openings.items():
        out = outcomes[account]
        cancel = out.cancel_ms
        if cancel is not None and any(t < cancel <= t + horizon for t in times):
            hits += 1
        elif any(t + horizon <= out.end_ms(log_end_ms) for t in times):
            misses += 1
        else:
            censored += 1
        if cancel is None and resolutions.get(account, 0) >= len(times):
            recovered += 1
    eligible = detected = 0
    leads: list[float] = []
    for account, out in outcomes.items():
        cancel = out.cancel_ms
        if cancel is None or cancel - lead < out.first_ms:
            continue
        eligible += 1
        times = openings.get(account, ())
        if any(cancel - horizon <= t <= cancel - lead for t in times):
            detected += 1
        before = [t for t in times if cancel - horizon <= t < cancel]
        if before:
            leads.append(round((cancel - min(before)) / DAY_MS, 2))
    count = sum(len(times) for times in openings.values())
    precision, recall = _ratio(hits, hits + misses), _ratio(detected, eligible)
    f1 = None
    if precision and recall:
        f1 = round(2 * precision * recall / (precision + recall), 4)
    alerted_retained = sum(1 for a in openings if outcomes[a].cancel_ms is None)
    return {
        "openings": count,
        "alerted_accounts": len(openings),
        "precision": precision,
        "hits": hits,
        "false_alarms": misses,
        "censored": censored,
        "recall": recall,
        "churners_detected": detected,
        "churners_eligible": eligible,
        "f1": f1,
        "lead_days": _quartiles(sorted(leads)),
        "lead_days_histogram": _weekly_bins(leads, scoring.horizon_days),
        "per_100_accounts_per_month": round(count / exposure_days * 30 * 100, 3)
        if exposure_days
        else None,
        "recovered_accounts": recovered,
        "recovered_share": _ratio(recovered, alerted_retained),
    }


def score_openings(
    openings: dict[str, list[int]],
    outcomes: dict[str, AccountOutcome],
    log_end_ms: int,
    scoring: Scoring = Scoring(),
) -> dict:
    """One group's figures for openings given directly (a learned rule or a naive baseline),
    by the same account rules as :func:`score`."""
    exposure = sum(max(out.end_ms(log_end_ms) - out.first_ms, DAY_MS) for out in outcomes.values())
    kept = {a: times for a, times in openings.items() if a in outcomes}
    return _score_group(kept, {}, outcomes, log_end_ms, exposure / DAY_MS, scoring)


def _week(ms: int) -> str:
    day = ms // DAY_MS
    monday = day - (day + 3) % 7  # 1970-01-01 was a Thursday
    return day_date(monday).isoformat()


def score(
    marks: Iterable[Mark],
    outcomes: dict[str, AccountOutcome],
    log_start_ms: int,
    log_end_ms: int,
    scoring: Scoring = Scoring(),
    select: Callable[[str], bool] = Split(),
) -> dict:
    """The backtest report's numbers for the accounts ``select`` keeps."""
    chosen = {a: out for a, out in outcomes.items() if select(a)}
    exposure = sum(max(out.end_ms(log_end_ms) - out.first_ms, DAY_MS) for out in chosen.values())
    exposure_days = exposure / DAY_MS
    openings: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    resolutions: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    weekly: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for mark in marks:
        if mark.account_id not in chosen:
            continue
        for group in (mark.signal, OVERALL) if mark.overall else (mark.signal,):
            if mark.kind == "opened":
                openings[group][mark.account_id].append(mark.ts_ms)
            elif mark.kind == "resolved":
                resolutions[group][mark.account_id] += 1
        if mark.kind == "opened" and mark.overall:
            weekly[_week(mark.ts_ms)][mark.signal] += 1
    churners = [out for out in chosen.values() if out.churned]
    groups = [OVERALL, *SIGNALS]
    return {
        "scoring": {"horizon_days": scoring.horizon_days, "lead_days": scoring.lead_days},
        "population": {
            "accounts": len(chosen),
            "churned": len(churners),
            "involuntary": sum(1 for out in churners if out.involuntary),
            "account_months": round(exposure_days / 30, 1),
            "log_start": from_ms(log_start_ms).isoformat(),
            "log_end": from_ms(log_end_ms).isoformat(),
        },
        "signals": {
            group: _score_group(
                dict(openings.get(group, {})),
                dict(resolutions.get(group, {})),
                chosen,
                log_end_ms,
                exposure_days,
                scoring,
            )
            for group in groups
        },
        "weekly_openings": {week: dict(sorted(v.items())) for week, v in sorted(weekly.items())},
    }
