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
* **alert outcomes**: each episode saved, renewed, churned or pending
  (:mod:`stream.core.alert_outcomes`), per month in the portfolio's rows; :func:`outcome_totals`
  adds them up over the log.

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
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from stream.core.alert_outcomes import OUTCOMES
from stream.core.churn_reasons import NOT_GIVEN
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
    record: int = -1
    """The number of the record it was read from, in its replay (job) order; -1: not known."""
    source: str = ""
    """What published that record: ``day_close``, ``event`` or ``churned`` (a cancellation)."""


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


def alerted_verdict(
    times: Iterable[int], out: AccountOutcome, log_end_ms: int, horizon_ms: int
) -> str:
    """Precision's rule for one alerted account: ``hit`` when it cancelled within the horizon
    after an opening, else ``false_alarm`` when an opening's horizon ended inside the log,
    else ``unsettled`` (censored: not known yet)."""
    times = list(times)
    cancel = out.cancel_ms
    if cancel is not None and any(t < cancel <= t + horizon_ms for t in times):
        return "hit"
    if any(t + horizon_ms <= out.end_ms(log_end_ms) for t in times):
        return "false_alarm"
    return "unsettled"


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
        judged = alerted_verdict(times, out, log_end_ms, horizon)
        hits += judged == "hit"
        misses += judged == "false_alarm"
        censored += judged == "unsettled"
        if out.cancel_ms is None and resolutions.get(account, 0) >= len(times):
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
    confusion = _confusion(openings, outcomes, log_end_ms, scoring)
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
        "confusion": {kind: len(accounts) for kind, accounts in confusion.items()},
        "lead_days": _quartiles(sorted(leads)),
        "lead_days_histogram": _weekly_bins(leads, scoring.horizon_days),
        "per_100_accounts_per_month": round(count / exposure_days * 30 * 100, 3)
        if exposure_days
        else None,
        "recovered_accounts": recovered,
        "recovered_share": _ratio(recovered, alerted_retained),
    }


CONFUSION = ("caught", "missed", "false_alarms", "quiet", "unsettled", "too_new")
"""Every scored account falls in exactly one of these (see :func:`_confusion`)."""


def _confusion(
    openings: dict[str, list[int]],
    outcomes: dict[str, AccountOutcome],
    log_end_ms: int,
    scoring: Scoring,
) -> dict[str, list[str]]:
    """Each account in one box, churners first, the way a CS lead counts them.

    * ``caught`` (true positive): a churner alerted ``lead_days`` to ``horizon_days`` before
      cancelling, the recall's numerator;
    * ``missed`` (false negative): a churner that was not, the rest of recall's denominator
      (a churner alerted only in its last ``lead_days`` is missed: too late to act);
    * ``false_alarms`` (false positive): an account that stayed, with an alert whose horizon
      ended inside the log without a cancellation;
    * ``quiet`` (true negative): an account that stayed and was never alerted;
    * ``unsettled``: an account that stayed, alerted only so late that its horizon runs past the
      log's end (censored: not known yet either way);
    * ``too_new``: a churner that cancelled within ``lead_days`` of its first event, which no
      alert could have caught in time.

    Precision's false alarms also count a churner alerted long before it cancelled (outside
    the horizon); here that account is a churner, caught or missed, so the boxes add up to the
    accounts scored.
    """
    horizon, lead = scoring.horizon_days * DAY_MS, scoring.lead_days * DAY_MS
    boxes: dict[str, list[str]] = {kind: [] for kind in CONFUSION}
    for account in sorted(outcomes):
        out, times = outcomes[account], openings.get(account, ())
        cancel = out.cancel_ms
        if cancel is not None:
            if cancel - lead < out.first_ms:
                kind = "too_new"
            elif any(cancel - horizon <= t <= cancel - lead for t in times):
                kind = "caught"
            else:
                kind = "missed"
        elif not times:
            kind = "quiet"
        elif any(t + horizon <= log_end_ms for t in times):
            kind = "false_alarms"
        else:
            kind = "unsettled"
        boxes[kind].append(account)
    return boxes


LISTED = ("caught", "missed", "false_alarms")


def _account_row(out: AccountOutcome, times: list[int], scoring: Scoring) -> dict:
    """One account as the caught, missed and false-alarm lists give it."""
    cancel = out.cancel_ms
    if cancel is not None:
        times = [t for t in times if cancel - scoring.horizon_days * DAY_MS <= t < cancel]
    first = min(times, default=None)
    churn = None
    if cancel is not None:
        churn = "involuntary" if out.involuntary else "voluntary"
    return {
        "account_id": out.account_id,
        "segment": out.segment_name,
        "mrr": out.mrr,
        "first_alert": None if first is None else from_ms(first).date().isoformat(),
        "cancelled": None if cancel is None else from_ms(cancel).date().isoformat(),
        "churn": churn,
        "lead_days": None if first is None or cancel is None
        else round((cancel - first) / DAY_MS, 1),
        "alerts": len(times),
    }  # fmt: skip


def account_lists(
    openings: dict[str, list[int]],
    outcomes: dict[str, AccountOutcome],
    log_end_ms: int,
    scoring: Scoring,
) -> dict[str, list[dict]]:
    """The caught, missed and falsely alerted accounts, by id, ordered by date (the
    cancellation for churners, the first alert for false alarms), then id."""
    boxes = _confusion(openings, outcomes, log_end_ms, scoring)
    lists = {}
    for kind in LISTED:
        rows = [_account_row(outcomes[a], openings.get(a, []), scoring) for a in boxes[kind]]
        rows.sort(key=lambda r: (r["cancelled"] or r["first_alert"] or "", r["account_id"]))
        lists[kind] = rows
    return lists


def _by_segment(
    openings: dict[str, list[int]],
    outcomes: dict[str, AccountOutcome],
    log_end_ms: int,
    scoring: Scoring,
) -> dict[str, dict]:
    """The all-signals figures for each segment's accounts alone."""
    segments: dict[str, dict[str, AccountOutcome]] = defaultdict(dict)
    for account, out in outcomes.items():
        segments[out.segment_name][account] = out
    result = {}
    for name, group in sorted(segments.items()):
        exposure = sum(max(o.end_ms(log_end_ms) - o.first_ms, DAY_MS) for o in group.values())
        kept = {a: t for a, t in openings.items() if a in group}
        numbers = _score_group(kept, {}, group, log_end_ms, exposure / DAY_MS, scoring)
        result[name] = {"accounts": len(group),
                        "churned": sum(1 for o in group.values() if o.churned),
                        "mrr": round(sum(o.mrr or 0.0 for o in group.values()), 2),
                        **_summary(numbers)}  # fmt: skip
    return result


def _summary(numbers: dict) -> dict:
    keys = ("precision", "recall", "f1", "confusion", "per_100_accounts_per_month")
    return {key: numbers[key] for key in keys} | {
        "lead_days_median": numbers["lead_days"]["median"]
    }


def _by_churn_type(
    openings: dict[str, list[int]],
    outcomes: dict[str, AccountOutcome],
    log_end_ms: int,
    scoring: Scoring,
) -> dict[str, dict]:
    """Voluntary and involuntary churners apart: how many were caught in time, how early.

    Only churners: a false alarm is an account that stayed, which has no churn type."""
    kinds = {a: "involuntary" if o.involuntary else "voluntary"
             for a, o in outcomes.items() if o.churned}  # fmt: skip
    return _by_group(openings, outcomes, log_end_ms, scoring, kinds, ("voluntary", "involuntary"))


def _by_reason(
    openings: dict[str, list[int]],
    outcomes: dict[str, AccountOutcome],
    log_end_ms: int,
    scoring: Scoring,
) -> dict[str, dict]:
    """Churners by the reason group their cancellation gave (the policy's taxonomy), most
    churners first: which reasons the alerts catch, and which they never see coming."""
    groups = {a: o.reason_group or NOT_GIVEN for a, o in outcomes.items() if o.churned}
    sizes = Counter(groups.values())
    order = tuple(sorted(sizes, key=lambda g: (-sizes[g], g)))
    return _by_group(openings, outcomes, log_end_ms, scoring, groups, order)


def _by_group(
    openings: dict[str, list[int]],
    outcomes: dict[str, AccountOutcome],
    log_end_ms: int,
    scoring: Scoring,
    group_of: dict[str, str],
    names: tuple[str, ...],
) -> dict[str, dict]:
    """Churners split by ``group_of`` (account -> group): caught in time, missed, how early."""
    boxes = _confusion(openings, outcomes, log_end_ms, scoring)
    where = {a: kind for kind, accounts in boxes.items() for a in accounts}
    result = {}
    for name in names:
        group = [a for a, g in group_of.items() if g == name]
        caught = [a for a in group if where[a] == "caught"]
        missed = sum(1 for a in group if where[a] == "missed")
        leads = sorted(_account_row(outcomes[a], openings.get(a, []), scoring)["lead_days"]
                       for a in caught)  # fmt: skip
        result[name] = {
            "churned": len(group),
            "caught": len(caught),
            "missed": missed,
            "too_new": len(group) - len(caught) - missed,
            "recall": _ratio(len(caught), len(caught) + missed),
            "lead_days_median": _quartiles(leads)["median"],
        }
    return result


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
        **breakdowns(dict(openings.get(OVERALL, {})), chosen, log_end_ms, scoring),
    }


def breakdowns(
    openings: dict[str, list[int]],
    outcomes: dict[str, AccountOutcome],
    log_end_ms: int,
    scoring: Scoring = Scoring(),
) -> dict:
    """The all-signals alerts per segment, per churn type, per churn reason group, and as
    lists of accounts."""
    return {
        "segments": _by_segment(openings, outcomes, log_end_ms, scoring),
        "churn_types": _by_churn_type(openings, outcomes, log_end_ms, scoring),
        "churn_reasons": _by_reason(openings, outcomes, log_end_ms, scoring),
        "accounts": account_lists(openings, outcomes, log_end_ms, scoring),
    }


def outcome_totals(months: Iterable[dict]) -> dict | None:
    """The portfolio rows' alert outcomes over every month (None when the rows have none):
    episodes opened, how many ended each way, churned by reason group, and the **save rate**,
    saved / (saved + churned): of the episodes decided either way, the share that was saved."""
    rows = [m["alert_outcomes"] for m in months if "alert_outcomes" in m]
    if not rows:
        return None
    totals: dict = {key: sum(row[key] for row in rows) for key in ("alerted", *OUTCOMES)}
    reasons: Counter[str] = Counter()
    for row in rows:
        reasons.update(row["churned_by_reason"])
    totals["churned_by_reason"] = dict(sorted(reasons.items(), key=lambda x: (-x[1], x[0])))
    totals["save_rate"] = _ratio(totals["saved"], totals["saved"] + totals["churned"])
    return totals
