"""Calibrating the churn-risk model: samples at day closes, a fit, a threshold, and baselines.

The flow ``calibrate`` runs (see :mod:`stream.offline.tuning`):

1. :class:`FeatureSamples`, the engine's day probe, keeps every account-day's feature vector
   (:func:`stream.core.features.feature_vector`) during the base replay;
2. :func:`learn` fits a class-weighted, L2-regularised logistic regression on the training
   accounts' rows (label: cancelled within the horizon; censored rows left out), then picks
   the alert threshold with the best F1, by the backtest's own account rules, among the
   thresholds that keep openings within the alert budget;
3. :func:`baselines` scores the two naive rules a model must beat: alert every account on its
   first day, and the bottom decile of the best single metric.

The figures come from :func:`score_openings`, the backtest's account rules, so the model, the
baselines and the replayed policy are compared on one scale.
"""

from __future__ import annotations

import copy
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from stream.core.feature_counts import MAX_TRACKED
from stream.core.features import BASE_FEATURES, describe, feature_names, feature_vector
from stream.core.signals.base import Ctx
from stream.core.state import AccountState
from stream.core.timeutil import DAY_MS
from stream.offline import risk_learning as rl
from stream.offline.backtest import Scoring, score_openings
from stream.offline.outcomes import AccountOutcome
from stream.run.logio import LogReader

CLEAR_RATIO = 0.8
"""An open churn-risk episode resolves below threshold x this (hysteresis)."""


@dataclass
class FeatureSamples:
    """The day probe: one feature vector per judged account-day, kept compactly."""

    tracked: tuple[str, ...]
    names: list[str] = field(default_factory=list)
    accounts: list[str] = field(default_factory=list)
    days: array = field(default_factory=lambda: array("q"))
    values: array = field(default_factory=lambda: array("d"))

    def __post_init__(self) -> None:
        self.names = feature_names(self.tracked)

    def __call__(self, acct: AccountState, ctx: Ctx) -> None:
        self.accounts.append(acct.account_id)
        self.days.append(ctx.day)
        slots = len(self.names) - len(BASE_FEATURES)
        self.values.extend(feature_vector(acct, ctx.day, ctx.at_ms, slots))

    def frozen(self) -> rl.Samples:
        """The rows grouped by account (stable within an account), as numpy arrays."""
        width = len(self.names)
        x = np.frombuffer(self.values, dtype=np.float64).reshape(-1, width)
        order = sorted(range(len(self.accounts)), key=lambda i: (self.accounts[i], self.days[i]))
        index = np.array(order, dtype=np.int64)
        return rl.Samples(
            names=self.names,
            accounts=[self.accounts[i] for i in order],
            days=np.frombuffer(self.days, dtype=np.int64)[index],
            x=x[index],
        )


@dataclass
class Context:
    """What scoring needs besides the rows: outcomes, the log's end, the rules."""

    outcomes: dict[str, AccountOutcome]
    log_end_ms: int
    scoring: Scoring

    def cancel_days(self) -> dict[str, int | None]:
        return {
            a: None if o.cancel_ms is None else o.cancel_ms // DAY_MS
            for a, o in self.outcomes.items()
        }

    def score(self, openings_days: dict[str, list[int]], keep: set[str]) -> dict:
        """The backtest's figures for openings given as judged days (alert at the day's end)."""
        openings = {a: [(d + 1) * DAY_MS for d in days] for a, days in openings_days.items()}
        chosen = {a: o for a, o in self.outcomes.items() if a in keep}
        return score_openings(openings, chosen, self.log_end_ms, self.scoring)


@dataclass
class Model:
    names: list[str]
    coefficients: list[float]
    means: list[float]
    scales: list[float]
    intercept: float
    threshold: float
    retained_deciles: list[list[float]]
    train: dict
    cohorts: dict[str, dict]


def _round(values: np.ndarray, digits: int = 6) -> list[float]:
    return [round(float(v), digits) for v in values]


def _fit(
    samples: rl.Samples, ctx: Context, train: set[str], l2: float
) -> tuple[np.ndarray, rl.Scaling, np.ndarray, float, np.ndarray, np.ndarray]:
    rows = samples.rows_of(train)
    y_all, usable = rl.labels_within(
        samples, ctx.cancel_days(), ctx.log_end_ms // DAY_MS, ctx.scoring.horizon_days
    )
    fit_rows = rows[usable[rows]]
    z_all = rl.transform(samples.x)
    scaling = rl.Scaling.fit(z_all[fit_rows])
    coef, intercept = rl.fit_logistic(scaling.apply(z_all[fit_rows]), y_all[fit_rows], l2=l2)
    return z_all, scaling, coef, intercept, y_all, fit_rows


def choose_threshold(
    samples: rl.Samples,
    rows: rl.AccountRows,
    scores: np.ndarray,
    ctx: Context,
    keep: set[str],
    budget: float,
) -> tuple[float, dict]:
    """The threshold with the best F1 among those within the alert budget on ``keep``.

    When even the highest candidate breaks the budget, the highest is taken and its figures
    say so; an empty result (no candidate opens anything) keeps the top quantile.
    """
    best: tuple[float, float, dict] | None = None
    candidates = rl.quantile_candidates(scores[samples.rows_of(keep)])
    for threshold in reversed(candidates):
        opened = rl.openings_for(samples, rows, scores, threshold, threshold * CLEAR_RATIO, keep)
        figures = ctx.score(opened, keep)
        volume = figures["per_100_accounts_per_month"] or 0.0
        if volume > budget:
            if best is None:
                best = (threshold, -1.0, figures)
            break
        f1 = figures["f1"] or 0.0
        if best is None or f1 > best[1]:
            best = (threshold, f1, figures)
    if best is None:
        raise ValueError("no candidate threshold")
    return best[0], best[2]


def learn(
    samples: rl.Samples, ctx: Context, train: set[str], budget: float, l2: float = 1.0
) -> Model:
    """Fit on ``train``'s rows and choose the threshold on them within ``budget``."""
    z_all, scaling, coef, intercept, y_all, fit_rows = _fit(samples, ctx, train, l2)
    base_rate = float(y_all[fit_rows].mean())
    # Balanced class weights fit as if half the rows churned; moving the intercept by the
    # prior's log-odds makes the score an honest probability again (what an alert prints).
    intercept += rl.sigmoid_logit(base_rate)
    scores = rl.probabilities(scaling.apply(z_all), coef, intercept)
    rows = rl.AccountRows.of(samples)
    threshold, figures = choose_threshold(samples, rows, scores, ctx, train, budget)
    retained = fit_rows[y_all[fit_rows] == 0]
    deciles = [rl.deciles(samples.x[retained, j]) for j in range(len(samples.names))]
    cohorts = {}
    for j, name in enumerate(samples.names):
        table = rl.cohort_rates(samples.x[fit_rows, j], y_all[fit_rows])
        cohorts[name] = {
            "words": describe(name),
            "deciles": table,
            "danger_line": rl.danger_line(table, base_rate),
        }
    return Model(
        names=samples.names,
        coefficients=_round(coef),
        means=_round(scaling.means),
        scales=_round(scaling.scales),
        intercept=round(intercept, 6),
        threshold=round(threshold, 6),
        retained_deciles=deciles,
        train={"base_rate": round(base_rate, 4), "rows": len(fit_rows), **figures},
        cohorts=cohorts,
    )


def baselines(
    samples: rl.Samples, ctx: Context, train: set[str], test: set[str]
) -> dict[str, dict]:
    """The naive rules, learned (where they learn anything) on ``train``, scored on ``test``."""
    day_one = {a: [ctx.outcomes[a].first_ms // DAY_MS] for a in sorted(test) if a in ctx.outcomes}
    out = {"alert every account on its first day": ctx.score(day_one, test)}
    rows = rl.AccountRows.of(samples)
    train_rows = samples.rows_of(train)
    best: tuple[float, str, float, float, bool] | None = None
    for j, name in enumerate(samples.names):
        column = samples.x[:, j]
        for above in (False, True):
            cut = float(np.quantile(column[train_rows], 0.9 if above else 0.1))
            back = float(np.quantile(column[train_rows], 0.8 if above else 0.2))
            if back == cut:
                continue
            opened = rl.openings_for(samples, rows, column, cut, back, train, above)
            f1 = ctx.score(opened, train)["f1"] or 0.0
            if best is None or f1 > best[0]:
                best = (f1, name, cut, back, above)
    if best is not None:
        _, name, cut, back, above = best
        column = samples.x[:, samples.names.index(name)]
        opened = rl.openings_for(samples, rows, column, cut, back, test, above)
        side = "top" if above else "bottom"
        label = f"{side} decile of the best single metric ({describe(name)})"
        out[label] = ctx.score(opened, test)
    return out


def model_scores(model: Model, samples: rl.Samples) -> np.ndarray:
    """Each row's probability under a learned model (for reports and tests)."""
    z = (rl.transform(samples.x) - np.array(model.means)) / np.array(model.scales)
    return rl.probabilities(z, np.array(model.coefficients), model.intercept)


def top_features(path: str, limit: int = MAX_TRACKED) -> tuple[str, ...]:
    """The product features used most in the log, most used first (ties by name).

    A cheap pass: only lines that mention ``feature_used`` are parsed. The model tracks these
    by name and counts every other feature as "other".
    """
    counts: Counter[str] = Counter()
    with LogReader(path) as reader:
        for _, line in reader:
            if line is None or b"feature_used" not in line:
                continue
            try:
                event = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            feature = event.get("feature") if isinstance(event, dict) else None
            if event.get("type") == "feature_used" and isinstance(feature, str) and feature:
                counts[feature] += 1
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return tuple(name for name, _ in ranked[:limit])


def tracking_policy_data(base: dict[str, Any], tracked: tuple[str, ...]) -> dict[str, Any]:
    """The base policy, counting ``tracked`` features so that the samples can hold them.

    The model table needs weights to validate; zero weights score nothing, and the signal is
    switched off, so this policy alerts exactly as the base one does.
    """
    names = feature_names(tracked)
    data = copy.deepcopy(base)
    data["risk_model"] = {
        "tracked_features": list(tracked),
        "features": names,
        "coefficients": [0.0] * len(names),
        "means": [0.0] * len(names),
        "scales": [1.0] * len(names),
        "intercept": 0.0,
    }
    data.setdefault("defaults", {}).setdefault("churn_risk", {})["enabled"] = False
    return data


def model_policy_data(
    base: dict[str, Any], model: Model, tracked: tuple[str, ...], horizon_days: int
) -> dict[str, Any]:
    """The base policy with the learned model switched on at its threshold."""
    data = copy.deepcopy(base)
    data["risk_model"] = {
        "tracked_features": list(tracked),
        "features": model.names,
        "coefficients": model.coefficients,
        "means": model.means,
        "scales": model.scales,
        "intercept": model.intercept,
        "horizon_days": horizon_days,
        "retained_deciles": model.retained_deciles,
    }
    risk = data.setdefault("defaults", {}).setdefault("churn_risk", {})
    risk["enabled"] = True
    risk["threshold"] = model.threshold
    halfway_to_certain = 1 - (1 - model.threshold) / 2
    risk["high_threshold"] = round(min(1.0, max(model.threshold, halfway_to_certain)), 6)
    risk["clear_ratio"] = CLEAR_RATIO
    return data
