"""The customer's voice: support tickets that stop, and NPS detractors.

A *drop* in support tickets correlates with churn (customers who stop trying to fix problems
have stopped caring), so silence is judged against the account's own ticket history. NPS
answers 0-6 are detractors; a fall from promoter to detractor is the sharper signal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field, model_validator

from stream.core import ring
from stream.core.ring import RING_DAYS
from stream.core.signals.base import (
    CLEAR,
    FIRING,
    HOLD,
    Ctx,
    Finding,
    SignalPolicy,
    fmt,
    hold_or_none,
    set_risk,
    stand_down,
)
from stream.core.timeutil import DAY_MS

if TYPE_CHECKING:
    from stream.core.state import AccountState


class SupportSilencePolicy(SignalPolicy):
    window_days: int = Field(default=42, ge=7, le=RING_DAYS)
    baseline_days: int = Field(default=78, ge=7, le=RING_DAYS)
    min_baseline_tickets: float = Field(
        default=5.0, ge=0, description="tickets per window_days the account used to open"
    )
    min_baseline_days: int = Field(default=42, ge=7, le=RING_DAYS)
    playbook: str = (
        "They stopped asking for help: check in before silence turns into a cancellation."
    )

    @model_validator(mode="after")
    def _fits(self) -> SupportSilencePolicy:
        if self.window_days + self.baseline_days > RING_DAYS:
            raise ValueError(f"window_days + baseline_days must fit the {RING_DAYS}-day history")
        if self.min_baseline_days > self.baseline_days:
            raise ValueError("min_baseline_days must not exceed baseline_days")
        return self


class NpsDetractorPolicy(SignalPolicy):
    detractor_max: int = Field(default=6, ge=0, le=10)
    severe_max: int = Field(default=3, ge=0, le=10)
    promoter_min: int = Field(default=9, ge=0, le=10)
    expire_days: int = Field(default=120, ge=1, le=3650)
    alert_mild: bool = Field(
        default=False,
        description="alert on every detractor answer, not only severe ones or a promoter's fall",
    )
    playbook: str = "Detractor: close the loop personally within 48 hours and log the reason."

    @model_validator(mode="after")
    def _ordered(self) -> NpsDetractorPolicy:
        if not self.severe_max <= self.detractor_max < self.promoter_min:
            raise ValueError("needs severe_max <= detractor_max < promoter_min")
        return self


def support_silence(acct: AccountState, ctx: Ctx, signal: str) -> Finding | None:
    p: SupportSilencePolicy = getattr(ctx.th, signal)
    if not p.enabled:
        return None
    first = ctx.day - p.window_days + 1
    base_first = max(first - p.baseline_days, acct.first_day)
    base_days = first - base_first
    if base_days < p.min_baseline_days:
        return hold_or_none(acct, signal, "not enough history yet")
    baseline = ring.window_sum(acct.tickets, base_first, first - 1) * p.window_days / base_days
    if baseline < p.min_baseline_tickets:
        return hold_or_none(acct, signal, "too few tickets before to judge silence")
    current = ring.window_sum(acct.tickets, first, ctx.day)
    if current == 0:
        set_risk(acct, signal, 60)
        status, severity = FIRING, "medium"
    else:
        if not stand_down(acct, signal, 0 if current >= baseline / 2 else 30):
            return None
        status, severity = (CLEAR, "") if current >= max(1.0, baseline / 2) else (HOLD, "")
    text = (
        f"{current} support tickets in the last {p.window_days} days; the account used to open "
        f"{fmt(baseline)} per {p.window_days} days"
    )
    return Finding(
        signal,
        status,
        severity,
        metric="tickets_per_window",
        value=float(current),
        baseline=round(baseline, 3),
        threshold=0.0,
        window_days=p.window_days,
        explanation=text,
        series="tickets",
    )


def nps_detractor(acct: AccountState, ctx: Ctx, signal: str) -> Finding | None:
    p: NpsDetractorPolicy = getattr(ctx.th, signal)
    if not p.enabled or acct.nps_score < 0:
        return None
    score, previous = acct.nps_score, acct.nps_prev
    expired = ctx.at_ms - acct.nps_ms >= p.expire_days * DAY_MS
    if score > p.detractor_max or expired:
        if not stand_down(acct, signal):
            return None
        why = (
            f"no newer answer for {p.expire_days} days"
            if score <= p.detractor_max
            else f"newer NPS answer {score}"
        )
        return Finding(
            signal,
            CLEAR,
            metric="nps",
            value=float(score),
            threshold=float(p.detractor_max),
            explanation=why,
        )
    fell = previous >= p.promoter_min
    high = score <= p.severe_max or fell
    if not high and not p.alert_mild:
        # A 4-6 answer alone foretells little churn (most such accounts renew): it lowers the
        # sentiment score CS sees, and opens an alert only when asked to.
        return Finding(signal, HOLD) if stand_down(acct, signal, 60) else None
    set_risk(acct, signal, 80 if high else 60)
    text = f"NPS answer {score} (detractor: 0-{p.detractor_max})"
    if fell:
        text += f", down from promoter answer {previous}"
    return Finding(
        signal,
        FIRING,
        "high" if high else "medium",
        metric="nps",
        value=float(score),
        baseline=float(previous) if previous >= 0 else None,
        threshold=float(p.detractor_max),
        explanation=text,
        facts=[(acct.nps_ms, f"NPS {score}")],
    )
