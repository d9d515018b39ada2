"""Learning a churn-risk model from a log's own history, and the naive rules it must beat.

The practitioners' method (domain notes, "Learning what predicts churn"): per metric, the churn
rate by decile ("metric cohorts"); then a regularised logistic regression on the scaled
metrics, judged on held-out accounts against naive rules. Everything here is pure numpy over
the samples calibration collects at day closes: one row per account-day, the feature vector of
:mod:`stream.core.features`, the account and the day. Nothing here runs in the worker: it only
writes numbers (weights, scaling, threshold) that the core scores with a dot product.

Deterministic by construction: Newton's method from zero weights, no random restarts, sorts
that break ties by index, so the same samples give the same policy bytes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

DAY_ALERT_BUDGET = 5.0
"""Default alert budget: openings per 100 account-months."""


@dataclass
class Samples:
    """Account-day feature vectors, in the order calibration collected them."""

    names: list[str]
    accounts: list[str]  # one per row
    days: np.ndarray  # int64, the judged day (days since the epoch)
    x: np.ndarray  # float64, rows x features, raw (untransformed) values
    segments: list[str] | None = None  # one per row: the account's segment that day

    def __len__(self) -> int:
        return len(self.accounts)

    @cached_property
    def day_list(self) -> list[int]:
        """``days`` as Python ints, made once: the per-account loops slice it many times."""
        return self.days.tolist()

    def rows_of(self, keep: set[str]) -> np.ndarray:
        """Row indices of the accounts in ``keep``."""
        return np.array([i for i, a in enumerate(self.accounts) if a in keep], dtype=np.int64)


def transform(x: np.ndarray) -> np.ndarray:
    """Signed log1p: counts and rates spread over orders of magnitude, and churn tracks ratios."""
    return np.sign(x) * np.log1p(np.abs(x))


@dataclass(frozen=True)
class Scaling:
    means: np.ndarray
    scales: np.ndarray

    @classmethod
    def fit(cls, z: np.ndarray) -> Scaling:
        means = z.mean(axis=0)
        scales = z.std(axis=0)
        scales[scales < 1e-9] = 1.0  # a constant feature contributes nothing, and never NaN
        return cls(means, scales)

    def apply(self, z: np.ndarray) -> np.ndarray:
        return (z - self.means) / self.scales


def labels_within(
    samples: Samples, cancel_day: dict[str, int | None], end_day: int, horizon: int
) -> tuple[np.ndarray, np.ndarray]:
    """(y, usable): whether each row's account cancelled within ``horizon`` days after it.

    A row whose horizon runs past the log's end without a cancellation is censored: unknown,
    left out of training, as the backtest leaves such openings out.
    """
    y = np.zeros(len(samples), dtype=np.float64)
    usable = np.zeros(len(samples), dtype=bool)
    for i, (account, day) in enumerate(zip(samples.accounts, samples.days.tolist(), strict=True)):
        cancel = cancel_day.get(account)
        if cancel is not None and day < cancel <= day + horizon:
            y[i], usable[i] = 1.0, True
        elif day + horizon <= (end_day if cancel is None else cancel):
            usable[i] = True
    return y, usable


def fit_logistic(
    z: np.ndarray, y: np.ndarray, l2: float = 1.0, iterations: int = 30
) -> tuple[np.ndarray, float]:
    """L2-regularised logistic regression, classes weighted to balance, by Newton's method.

    Balanced weights: churners are a few percent of account-days, and an unweighted fit would
    learn to say "stays" everywhere. The intercept is not penalised.
    """
    n, k = z.shape
    positives = float(y.sum())
    if positives == 0 or positives == n:
        raise ValueError("the training rows hold only one class")
    w_pos, w_neg = n / (2 * positives), n / (2 * (n - positives))
    weights = np.where(y > 0, w_pos, w_neg)
    design = np.hstack([z, np.ones((n, 1))])
    beta = np.zeros(k + 1)
    penalty = np.full(k + 1, l2)
    penalty[-1] = 0.0
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(design @ beta, -30, 30)))
        gradient = design.T @ (weights * (p - y)) + penalty * beta
        hessian = (design * (weights * p * (1 - p))[:, None]).T @ design + np.diag(penalty)
        hessian[np.diag_indices_from(hessian)] += 1e-9
        step = np.linalg.solve(hessian, gradient)
        beta -= step
        if float(np.abs(step).max()) < 1e-8:
            break
    return beta[:-1], float(beta[-1])


def probabilities(z: np.ndarray, coef: np.ndarray, intercept: float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z @ coef + intercept, -30, 30)))


def auc(scores: np.ndarray, y: np.ndarray) -> float:
    """Area under the ROC curve (ties count half): how well scores rank churners first."""
    positives = float(y.sum())
    negatives = len(y) - positives
    if positives == 0 or negatives == 0:
        return 0.5
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    last = np.cumsum(counts)
    ranks = ((last - counts + 1 + last) / 2)[inverse]  # tied scores share their mean rank
    return float((ranks[y > 0].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def intervals(
    values: Sequence[float], days: Sequence[int], fire: float, clear: float, above: bool = True
) -> list[tuple[int, int | None]]:
    """(opening day, resolving day or None) of an edge-triggered signal over one account's
    daily values.

    Opens when the value reaches ``fire`` (or falls to it, ``above=False``), resolves when it
    passes back beyond ``clear``: the same hysteresis the detectors apply.
    """
    out: list[tuple[int, int | None]] = []
    opened: int | None = None
    for value, day in zip(values, days, strict=True):
        if opened is None:
            if value >= fire if above else value <= fire:
                opened = day
        elif value < clear if above else value > clear:
            out.append((opened, day))
            opened = None
    if opened is not None:
        out.append((opened, None))
    return out


@dataclass(frozen=True)
class AccountRows:
    """Per account, the slice of rows (samples are grouped by account in collection order)."""

    order: list[str]
    start: dict[str, int]
    stop: dict[str, int]

    @classmethod
    def of(cls, samples: Samples) -> AccountRows:
        start: dict[str, int] = {}
        stop: dict[str, int] = {}
        order: list[str] = []
        for i, account in enumerate(samples.accounts):
            if account not in start:
                start[account] = i
                order.append(account)
            stop[account] = i + 1
        return cls(order, start, stop)

    @cached_property
    def starts(self) -> np.ndarray:
        """Each account's first row, in ``order`` (ascending: rows are grouped by account)."""
        return np.array([self.start[a] for a in self.order], dtype=np.int64)

    def extremes(self, values: np.ndarray, above: bool) -> list[float]:
        """Each account's highest value (lowest, not ``above``), in ``order``, NaN ignored."""
        if not self.order:
            return []
        reduce = np.fmax if above else np.fmin
        return reduce.reduceat(values, self.starts).tolist()


def intervals_for(
    samples: Samples,
    rows: AccountRows,
    values: np.ndarray,
    fire: float,
    clear: float,
    keep: set[str],
    above: bool = True,
) -> dict[str, list[tuple[int, int | None]]]:
    """:func:`intervals` per account in ``keep`` for one candidate threshold.

    An account whose values never reach ``fire`` opens nothing, so it is skipped without
    walking its days (most accounts, at the high thresholds a budget allows).
    """
    out: dict[str, list[tuple[int, int | None]]] = {}
    all_values, all_days = values.tolist(), samples.day_list  # slicing lists beats arrays here
    extremes = rows.extremes(values, above)
    for account, extreme in zip(rows.order, extremes, strict=True):
        if account in keep and (extreme >= fire if above else extreme <= fire):
            lo, hi = rows.start[account], rows.stop[account]
            found = intervals(all_values[lo:hi], all_days[lo:hi], fire, clear, above)
            if found:
                out[account] = found
    return out


def openings_for(
    samples: Samples,
    rows: AccountRows,
    values: np.ndarray,
    fire: float,
    clear: float,
    keep: set[str],
    above: bool = True,
) -> dict[str, list[int]]:
    """Opening days per account in ``keep`` for one candidate threshold."""
    spans = intervals_for(samples, rows, values, fire, clear, keep, above)
    return {account: [start for start, _ in found] for account, found in spans.items()}


def merged_openings(*sources: dict[str, list[tuple[int, int | None]]]) -> dict[str, list[int]]:
    """Openings of one episode per account over several signals' episodes (times in any unit).

    An account episode opens with the first signal episode and lasts while any is open, as
    :mod:`stream.core.account_episodes` publishes them: an episode that starts while another
    is open adds a reason, not an opening.
    """
    out: dict[str, list[int]] = {}
    for account in sorted(set().union(*sources)):
        spans = sorted(
            (span for source in sources for span in source.get(account, ())),
            key=lambda span: (span[0], math.inf if span[1] is None else span[1]),
        )
        opens: list[int] = []
        open_until: float | None = None  # end of the current merged episode; inf while open
        for start, end in spans:
            if open_until is None or start >= open_until:
                opens.append(start)
                open_until = math.inf if end is None else end
            elif end is None:
                open_until = math.inf
            else:
                open_until = max(open_until, end)
        out[account] = opens
    return out


def quantile_candidates(values: np.ndarray, count: int = 60) -> list[float]:
    """Candidate thresholds: quantiles of the scores, high end dense (alerts are rare).

    Probabilities, so kept inside (0, 1) where the policy takes them: a model that separates
    its training rows perfectly scores some of them 1.0.
    """
    qs = 1 - np.geomspace(0.3, 0.0005, count)
    return sorted({min(max(round(float(v), 6), 1e-6), 0.999) for v in np.quantile(values, qs)})


def deciles(values: Sequence[float]) -> list[float]:
    """The 10th..90th percentiles, for explanations ("in the bottom 10% of retained")."""
    if not len(values):
        return []
    return [round(float(v), 4) for v in np.quantile(np.asarray(values), np.linspace(0.1, 0.9, 9))]


def cohort_rates(values: np.ndarray, y: np.ndarray, bins: int = 10) -> list[dict[str, float | int]]:
    """Churn rate per decile of one metric (ties kept together): the "metric cohorts" plot."""
    order = np.argsort(values, kind="stable")
    out = []
    for chunk in np.array_split(order, bins):
        if not len(chunk):
            continue
        out.append(
            {
                "upper": round(float(values[chunk].max()), 4),
                "rows": len(chunk),
                "churn_rate": round(float(y[chunk].mean()), 4),
            }
        )
    return out


def danger_line(cohorts: list[dict], base_rate: float, lift: float = 1.5) -> float | None:
    """Where churn climbs well above the base rate at the low end of a metric, if it does.

    The upper edge of the highest low decile, counted from the bottom without a gap, whose churn
    rate is at least ``lift`` times the base rate; ``None`` when the bottom decile is not.
    """
    line = None
    for cohort in cohorts:
        if cohort["churn_rate"] >= lift * base_rate and base_rate > 0:
            line = cohort["upper"]
        else:
            break
    return line


def sigmoid_logit(p: float) -> float:
    p = min(max(p, 1e-9), 1 - 1e-9)
    return math.log(p / (1 - p))
