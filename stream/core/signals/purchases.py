"""Fading purchases: transactional and usage-billed customers buy less often, and for less.

Where the product is bought order by order (or billed by what was used), purchase frequency
and average order value fall before the customer is gone (domain notes, "Billing"). Both are
judged against the account's own purchase history, so they work for accounts with no
subscription at all: the gap since the last purchase against the gaps the account has
shown, and the value of its last few purchases against the ones before. Orders and
usage-billed invoices (:class:`~stream.core.purchase_log.PurchaseLog`) are one history.
"""

from __future__ import annotations

import math
import statistics
from itertools import pairwise
from typing import TYPE_CHECKING

from pydantic import Field, model_validator

from stream.core.purchase_log import ORDER_SLOTS, OTHER_CURRENCY
from stream.core.signals.base import (
    CLEAR,
    MEDIUM_RISK,
    Ctx,
    Finding,
    SignalPolicy,
    decide,
    fmt,
    graded_risk,
    hold_or_none,
    pct,
    set_risk,
)
from stream.core.timeutil import DAY_MS, day_date

if TYPE_CHECKING:
    from stream.core.state import AccountState


class PurchaseCadencePolicy(SignalPolicy):
    min_purchases: int = Field(
        default=5, ge=3, le=ORDER_SLOTS, description="purchases on record before judging"
    )
    gap_medium: float = Field(default=2.5, gt=1, le=100, description="times the median gap")
    gap_high: float = Field(default=4.0, gt=1, le=100)
    beyond_longest: float = Field(
        default=1.25,
        ge=1,
        le=10,
        description="and at least this times the longest gap on record: a pause the account "
        "has taken before is no news",
    )
    min_gap_days: float = Field(default=7.0, ge=1, le=365)
    playbook: str = (
        "They stopped buying at their usual pace: reach out with what is new for them and ask "
        "what changed."
    )

    @model_validator(mode="after")
    def _ordered(self) -> PurchaseCadencePolicy:
        if self.gap_high < self.gap_medium:
            raise ValueError("gap_high must be at least gap_medium")
        return self


class OrderValueDeclinePolicy(SignalPolicy):
    recent_purchases: int = Field(
        default=4, ge=2, le=8, description="the recent window: the last this many purchases"
    )
    min_baseline_purchases: int = Field(
        default=6, ge=2, le=ORDER_SLOTS - 2, description="volume floor: purchases before them"
    )
    drop_medium: float = Field(default=0.35, gt=0, le=1)
    drop_high: float = Field(default=0.55, gt=0, le=1)
    clear_below: float = Field(default=0.2, ge=0, lt=1)
    min_z: float = Field(
        default=2.0,
        ge=0,
        le=10,
        description="the recent average must also be this many standard errors of the "
        "baseline's spread below it (0 disables)",
    )
    playbook: str = (
        "Their baskets are shrinking: check which products they stopped buying and whether a "
        "competitor took them."
    )

    @model_validator(mode="after")
    def _ordered(self) -> OrderValueDeclinePolicy:
        if not self.clear_below < self.drop_medium <= self.drop_high:
            raise ValueError("needs clear_below < drop_medium <= drop_high (hysteresis)")
        if self.recent_purchases + self.min_baseline_purchases > ORDER_SLOTS:
            raise ValueError(f"recent + baseline purchases must fit the {ORDER_SLOTS} kept")
        return self


def cadence_line(times: list[int] | object, p: PurchaseCadencePolicy) -> tuple[float, float, float]:
    """(median gap, longest gap, alert line), in days, from the purchase times."""
    gaps = [(b - a) / DAY_MS for a, b in pairwise(times)]  # type: ignore[call-overload]
    median = statistics.median(gaps)
    longest = max(gaps)
    return median, longest, max(p.min_gap_days, p.gap_medium * median, p.beyond_longest * longest)


def purchase_cadence(acct: AccountState, ctx: Ctx, signal: str) -> Finding | None:
    p: PurchaseCadencePolicy = getattr(ctx.th, signal)
    log = acct.purchases
    if not p.enabled or log is None:
        return None
    times = log.times
    if len(times) < p.min_purchases:
        return hold_or_none(acct, signal, "too few purchases to know the account's pace")
    median, longest, line = cadence_line(times, p)
    gap = (ctx.at_ms - times[-1]) / DAY_MS
    high_line = max(line, p.gap_high * median)
    risk = graded_risk(gap / line, 1.0, high_line / line, 2 * high_line / line)
    firing = gap >= line
    if not firing:
        risk = min(risk, MEDIUM_RISK - 1)
    set_risk(acct, signal, risk)
    decision = decide(
        acct, signal, firing, "high" if gap >= high_line else "medium", recovered=not firing
    )
    if decision is None:
        return None
    status, severity = decision
    last = day_date(times[-1] // DAY_MS).isoformat()
    pace = (
        f"the account bought every {fmt(median)} days (median of its last {len(times) - 1} "
        f"gaps, longest {fmt(longest)})"
    )
    if status == CLEAR:
        text = f"Purchasing again: {log.last_id or 'a purchase'} on {last}; {pace}"
    else:
        text = (
            f"No purchase for {fmt(gap)} days (last: {log.last_id or 'a purchase'} on {last}); "
            f"{pace}, alert at {fmt(line)} days"
        )
    return Finding(
        signal,
        status,
        severity,
        metric="days_since_purchase",
        value=round(gap, 3),
        baseline=round(median, 3),
        threshold=round(line, 3),
        window_days=None,
        explanation=text,
        facts=[(times[-1], f"last purchase {log.last_id}".rstrip())],
    )


def order_value_decline(acct: AccountState, ctx: Ctx, signal: str) -> Finding | None:
    p: OrderValueDeclinePolicy = getattr(ctx.th, signal)
    log = acct.purchases
    if not p.enabled or log is None:
        return None
    values = [c for c in log.cents if c != OTHER_CURRENCY]
    k = p.recent_purchases
    if len(values) < k + p.min_baseline_purchases:
        return hold_or_none(acct, signal, "too few purchases for a baseline")
    recent, base = values[-k:], values[:-k]
    base_mean = sum(base) / len(base)
    if base_mean <= 0:
        return hold_or_none(acct, signal, "no spend in the baseline")
    recent_mean = sum(recent) / k
    drop = 1.0 - recent_mean / base_mean
    risk = graded_risk(drop, p.drop_medium, p.drop_high, 1.0)
    firing = drop >= p.drop_medium
    if firing and p.min_z > 0:
        error = max(statistics.pstdev(base) / math.sqrt(k), base_mean * 0.01)
        if (recent_mean - base_mean) / error > -p.min_z:
            firing = False  # within the account's usual spread of basket sizes
            risk = min(risk, MEDIUM_RISK - 1)
    set_risk(acct, signal, risk)
    decision = decide(
        acct, signal, firing, "high" if drop >= p.drop_high else "medium",
        recovered=drop < p.clear_below,
    )  # fmt: skip
    if decision is None:
        return None
    status, severity = decision
    unit = f" {log.currency}" if log.currency else ""
    now, before = recent_mean / 100, base_mean / 100
    if status == CLEAR:
        text = f"Average purchase back to {fmt(now)}{unit}, against {fmt(before)}{unit} before"
    else:
        text = (
            f"Average purchase fell {pct(drop)} to {fmt(now)}{unit} over the last {k} "
            f"purchases (newest {log.last_id or 'unnamed'}), against {fmt(before)}{unit} over "
            f"the {len(base)} before (alert at a {pct(p.drop_medium)} drop)"
        )
    return Finding(
        signal,
        status,
        severity,
        metric="average_purchase_value",
        value=round(now, 2),
        baseline=round(before, 2),
        threshold=round(before * (1 - p.drop_medium), 2),
        window_days=None,
        explanation=text,
    )
