"""The learned churn risk: a logistic model over the account's metrics, scored at day closes.

``churnwatch calibrate`` learns the model from the company's own history and writes it into
the policy (``[risk_model]``: the metric names, their scaling, the weights and the retained
accounts' deciles); the worker and replay score it with a dot product, no ML library. The
built-in policy has no model, so the signal stays silent until a calibrated policy is loaded.

An alert names the metrics that pushed the probability up most, in plain words and against
retained accounts ("'reports' uses per week 0.5, in the bottom 10% of retained accounts"),
because a bare score is what CS teams say they cannot act on.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, model_validator

from stream.core.feature_counts import MAX_TRACKED, slots_for
from stream.core.features import (
    LEGACY_BASE_COUNT,
    QUALITY_PURCHASE_FEATURES,
    as_fact,
    describe,
    feature_names,
    feature_vector,
)
from stream.core.signals.base import (
    CLEAR,
    FIRING,
    HOLD,
    Ctx,
    Finding,
    SignalPolicy,
    fmt,
    graded_risk,
    hold_or_none,
    pct,
    stand_down,
)

if TYPE_CHECKING:
    from stream.core.state import AccountState


class Weights(BaseModel):
    """One logistic model: ``p = 1 / (1 + exp(-(w . z + b)))`` with ``z`` the scaled
    signed-log metrics, and the retained accounts' deciles the explanations compare with."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    coefficients: list[float]
    means: list[float]
    scales: list[float]
    intercept: float
    retained_deciles: list[list[float]] = Field(default_factory=list)

    def check(self, n: int, where: str) -> None:
        for name in ("coefficients", "means", "scales"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{where}{name} must have one number per feature ({n})")
        if any(s <= 0 for s in self.scales):
            raise ValueError(f"{where}scales must be positive")
        if self.retained_deciles and len(self.retained_deciles) != n:
            raise ValueError(f"{where}retained_deciles must have one list per feature ({n})")


class RiskModel(Weights):
    """The learned model: one set of weights for every account, and optionally one per segment.

    What predicts churn differs by segment (a starter team lives in reports, an enterprise in
    the API), so ``calibrate`` fits a segment of its own where it has the churners to learn
    from; the other segments use the shared weights. Written by ``calibrate``; validated so a
    hand edit cannot misalign it.
    """

    tracked_features: list[str] = Field(default_factory=list, max_length=MAX_TRACKED)
    features: list[str]
    horizon_days: int = Field(default=60, ge=1, le=365)
    segments: dict[str, Weights] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _upgrade(cls, data: object) -> object:
        """A model learned before the quality and purchase metrics existed is read with zero
        weight on them: the same probabilities it gave then, instead of a refused policy."""
        if not isinstance(data, dict) or not isinstance(data.get("features"), list):
            return data
        tracked = tuple(data.get("tracked_features") or ())
        current = feature_names(tracked)
        at, added = LEGACY_BASE_COUNT, len(QUALITY_PURCHASE_FEATURES)
        legacy = current[:at] + current[at + added :]
        if data["features"] != legacy:
            return data
        data = {**data, "features": current}
        data.update(_padded(data, at, added))
        segments = data.get("segments")
        if isinstance(segments, dict):
            data["segments"] = {
                name: {**w, **_padded(w, at, added)} if isinstance(w, dict) else w
                for name, w in segments.items()
            }
        return data

    @model_validator(mode="after")
    def _aligned(self) -> RiskModel:
        expected = feature_names(tuple(self.tracked_features))
        if self.features != expected:
            raise ValueError(
                "features must be exactly the metrics this release computes for the tracked "
                f"features, in order: {', '.join(expected)}"
            )
        n = len(self.features)
        self.check(n, "")
        for name, weights in self.segments.items():
            weights.check(n, f"segments.{name}.")
        return self

    def weights_for(self, segment: str) -> tuple[Weights, str]:
        """The weights that score ``segment``, and whom its deciles describe."""
        own = self.segments.get(segment)
        return (own, f"retained {segment} accounts") if own else (self, "retained accounts")


def _padded(weights: dict, at: int, added: int) -> dict:
    """``weights``' per-metric lists with ``added`` neutral entries inserted at ``at``."""
    out = {}
    for name, filler in (("coefficients", 0.0), ("means", 0.0), ("scales", 1.0)):
        values = weights.get(name)
        if isinstance(values, list):
            out[name] = values[:at] + [filler] * added + values[at:]
    deciles = weights.get("retained_deciles")
    if isinstance(deciles, list) and deciles:
        out["retained_deciles"] = deciles[:at] + [[0.0] * 9] * added + deciles[at:]
    return out


class ChurnRiskPolicy(SignalPolicy):
    threshold: float = Field(default=0.5, gt=0, lt=1, description="open at this probability")
    high_threshold: float = Field(default=0.8, gt=0, le=1, description="high from here")
    clear_ratio: float = Field(
        default=0.8, gt=0, lt=1, description="resolve below threshold * this (hysteresis)"
    )
    min_tenure_days: int = Field(default=3, ge=0, le=365, description="days of data first")
    max_opens: int = Field(default=1, ge=1, le=1000)
    per_days: int = Field(default=60, ge=1, le=3650)
    playbook: str = (
        "Churn risk is high for accounts like this one: review the named metrics with the "
        "champion and agree a success plan before the renewal."
    )

    @model_validator(mode="after")
    def _ordered(self) -> ChurnRiskPolicy:
        if self.high_threshold < self.threshold:
            raise ValueError("high_threshold must be at least threshold")
        return self


def probability(weights: Weights, values: list[float]) -> float:
    """The probability: the logistic of the scaled signed-log metrics' weighted sum.

    This runs at every account's every day close, so the scaling is folded into the weights
    once per model (``w * (t - m) / s`` = ``(w / s) * t - w * m / s``) and metrics with no
    weight are skipped.
    """
    offset, terms = _folded(weights)
    logit = offset
    for i, a in terms:
        x = values[i]
        logit += a * (math.log1p(x) if x >= 0 else -math.log1p(-x))
    logit = max(-30.0, min(30.0, logit))
    return 1 / (1 + math.exp(-logit))


_FOLDED: dict[int, tuple[Weights, float, tuple[tuple[int, float], ...]]] = {}


def _folded(weights: Weights) -> tuple[float, tuple[tuple[int, float], ...]]:
    found = _FOLDED.get(id(weights))
    if found is None or found[0] is not weights:
        offset = weights.intercept
        terms = []
        for i, (w, m, s) in enumerate(
            zip(weights.coefficients, weights.means, weights.scales, strict=True)
        ):
            if w:
                terms.append((i, w / s))
                offset -= w * m / s
        found = _FOLDED[id(weights)] = (weights, offset, tuple(terms))
    return found[1], found[2]


def contributions(weights: Weights, values: list[float]) -> list[tuple[float, int]]:
    """Each metric's push on the logit, largest first: what an explanation names."""
    parts = []
    for i, (x, w, m, s) in enumerate(
        zip(values, weights.coefficients, weights.means, weights.scales, strict=True)
    ):
        parts.append((w * (math.copysign(math.log1p(abs(x)), x) - m) / s, i))
    parts.sort(key=lambda p: (-p[0], p[1]))
    return parts


def _place(value: float, deciles: list[float], peers: str) -> str:
    """Where ``value`` sits among ``peers`` (retained accounts), in words."""
    if not deciles:
        return ""
    below = sum(1 for d in deciles if value > d)
    if below == 0:
        return f"in the bottom 10% of {peers}"
    if below >= len(deciles):
        return f"in the top 10% of {peers}"
    return f"around the {below * 10}th percentile of {peers}"


def explain(
    names: list[str],
    weights: Weights,
    peers: str,
    values: list[float],
    parts: list[tuple[float, int]],
) -> str:
    reasons = []
    for contribution, i in parts[:3]:
        if contribution <= 0:
            break
        fact = as_fact(names[i], values[i])
        if fact is not None:
            reasons.append(fact)
            continue
        deciles = weights.retained_deciles[i] if weights.retained_deciles else []
        # A count with few distinct values (tickets, failures) has no meaningful percentile.
        place = _place(values[i], deciles, peers) if len(set(deciles)) >= 4 else ""
        words = f"{describe(names[i])} {fmt(max(values[i], 0.0))}"
        reasons.append(f"{words}, {place}" if place else words)
    return "; ".join(reasons) or "no single metric stands out"


def churn_risk(acct: AccountState, ctx: Ctx, signal: str) -> Finding | None:
    model = ctx.policy.risk_model
    p: ChurnRiskPolicy = getattr(ctx.th, signal)
    if model is None or not p.enabled:
        return hold_or_none(acct, signal)
    days_of_data = ctx.day - acct.first_day + 1
    if days_of_data < p.min_tenure_days:
        return hold_or_none(acct, signal)
    values = feature_vector(acct, ctx.day, ctx.at_ms, slots_for(model.tracked_features))
    weights, peers = model.weights_for(acct.segment_name())
    prob = probability(weights, values)
    ctx.risk_estimate = round(prob, 4)
    risk = graded_risk(prob, p.threshold, p.high_threshold, 1.0)
    firing = prob >= p.threshold
    if not firing and not stand_down(acct, signal, risk):
        return None
    if firing:
        acct.set_risk(signal, risk)
        status, severity = FIRING, "high" if prob >= p.high_threshold else "medium"
        why = explain(model.features, weights, peers, values, contributions(weights, values))
        text = (
            f"Churn risk {pct(prob)} within {model.horizon_days} days "
            f"(alert at {pct(p.threshold)}), "
            f"mostly from: {why}"
        )
    else:
        status = CLEAR if prob < p.threshold * p.clear_ratio else HOLD
        severity = ""
        text = f"churn risk back to {pct(prob)} (alert at {pct(p.threshold)})"
    return Finding(
        signal,
        status,
        severity=severity,
        metric="churn_probability",
        value=round(prob, 4),
        threshold=p.threshold,
        window_days=28,
        explanation=text,
        series="logins",
    )
