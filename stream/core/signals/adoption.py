"""Adoption: how much of the organisation uses the product, and onboarding progress.

Footprint compares distinct active users with licensed seats (a product built for broad use
used by a small group). Onboarding judges accounts in their first days against an onboarding
profile (expected adoption rising over ``ramp_days``) instead of a history they do not have.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from pydantic import Field, model_validator

from stream.core import ring
from stream.core.ring import USER_RING_DAYS
from stream.core.signals.base import (
    CLEAR,
    FIRING,
    Ctx,
    Finding,
    SignalPolicy,
    decide,
    graded_risk,
    hold_or_none,
    pct,
    set_risk,
    stand_down,
)

if TYPE_CHECKING:
    from stream.core.state import AccountState


class FootprintShrinkPolicy(SignalPolicy):
    window_days: int = Field(default=28, ge=1, le=USER_RING_DAYS, description="active-user window")
    min_seats: int = Field(default=3, ge=1)
    min_tenure_days: int = Field(default=30, ge=0)
    ratio_medium: float = Field(default=0.3, gt=0, le=1, description="active users / seats")
    ratio_high: float = Field(default=0.15, gt=0, le=1)
    clear_margin: float = Field(default=0.05, ge=0, le=1)
    playbook: str = "Few licensed users are active: find new champions and re-onboard teams."

    @model_validator(mode="after")
    def _ordered(self) -> FootprintShrinkPolicy:
        if self.ratio_high > self.ratio_medium:
            raise ValueError("ratio_high must not exceed ratio_medium")
        return self


class OnboardingStallPolicy(SignalPolicy):
    min_tenure_days: int = Field(default=14, ge=1)
    ramp_days: int = Field(default=60, ge=1, description="days to reach target_adoption")
    target_adoption: float = Field(default=0.6, gt=0, le=1, description="active users / seats")
    stall_fraction: float = Field(default=0.5, gt=0, lt=1, description="fire below expected*this")
    clear_fraction: float = Field(default=0.75, gt=0, le=2)
    active_days_window: int = Field(default=14, ge=1, le=USER_RING_DAYS)
    min_active_days: int = Field(default=3, ge=0)
    playbook: str = "Onboarding has stalled: book a kickoff review and set a time-to-value plan."

    @model_validator(mode="after")
    def _ordered(self) -> OnboardingStallPolicy:
        if self.clear_fraction <= self.stall_fraction:
            raise ValueError("clear_fraction must exceed stall_fraction (hysteresis)")
        if self.min_active_days > self.active_days_window:
            raise ValueError("min_active_days cannot exceed active_days_window")
        return self


def footprint_shrink(acct: AccountState, ctx: Ctx, signal: str) -> Finding | None:
    p: FootprintShrinkPolicy = getattr(ctx.th, signal)
    if not p.enabled:
        return None
    seats = acct.seats
    if not seats or seats < p.min_seats:
        return hold_or_none(acct, signal, "too few seats to judge")
    if ctx.tenure is not None and ctx.tenure < p.min_tenure_days:
        return hold_or_none(acct, signal, "too new to judge")
    first = ctx.day - p.window_days + 1
    if first < acct.first_day:
        return hold_or_none(acct, signal, "not enough history yet")
    # The estimate of distinct users, rounded to the whole users an explanation can name: the
    # share judged and published is exactly the ratio of the counts the text shows.
    users = round(ring.distinct_users(acct.users, first, ctx.day))
    ratio = users / seats
    shortfall = 1.0 - ratio / p.ratio_medium
    high_at = 1.0 - p.ratio_high / p.ratio_medium
    set_risk(acct, signal, graded_risk(shortfall, 1e-9, high_at, 1.0) if shortfall > 0 else 0)
    decision = decide(
        acct, signal, ratio < p.ratio_medium, "high" if ratio < p.ratio_high else "medium",
        recovered=ratio >= p.ratio_medium + p.clear_margin,
    )  # fmt: skip
    if decision is None:
        return None
    status, severity = decision
    text = (
        f"{users} of {seats} licensed seats active in the last {p.window_days} days "
        f"({pct(ratio)}, alert below {pct(p.ratio_medium)})"
    )
    return Finding(
        signal,
        status,
        severity,
        metric="active_users_per_seat",
        value=round(ratio, 4),
        baseline=float(seats),
        threshold=p.ratio_medium,
        window_days=p.window_days,
        explanation=text,
        series="logins",
    )


def onboarding_stall(acct: AccountState, ctx: Ctx, signal: str) -> Finding | None:
    """Adoption or active days behind the onboarding profile.

    Two criteria open the same episode, and the finding describes the one that fired: its
    metric, value and line, and its own words. When both fire, adoption leads and the text
    names both; a recovery (both back past their lines) states both.
    """
    p: OnboardingStallPolicy = getattr(ctx.th, signal)
    if not p.enabled:
        return None
    tenure = ctx.tenure
    if tenure is None:
        return hold_or_none(acct, signal, "account start unknown")
    onboarding_days = ctx.policy.lifecycle.onboarding_days
    if tenure >= onboarding_days:
        if not stand_down(acct, signal):
            return None
        return Finding(
            signal,
            CLEAR,
            metric="tenure_days",
            value=float(tenure),
            threshold=float(onboarding_days),
            explanation=f"left the {onboarding_days}-day onboarding",
        )
    if tenure < p.min_tenure_days:
        return hold_or_none(acct, signal, "too new to judge")
    span = min(tenure + 1, ring.USER_RING_DAYS - 1, ctx.day - acct.first_day + 1)
    seats = acct.seats or max(acct.activated_users, 1)
    # Whole users, as the text names them: the adoption judged is their exact share.
    users = round(ring.distinct_users(acct.users, ctx.day - span + 1, ctx.day))
    adoption = users / seats
    expected = p.target_adoption * min(1.0, tenure / p.ramp_days)
    adoption_line = expected * p.stall_fraction
    window = min(p.active_days_window, tenure + 1)
    needed = math.ceil(p.min_active_days * window / p.active_days_window)
    days_active = ring.active_days(acct.logins, ctx.day - window + 1, ctx.day)
    low_adoption = adoption < adoption_line
    low_activity = days_active < needed
    shortfall = 1.0 - adoption / expected if expected > 0 else 0.0
    risk = graded_risk(shortfall, 1.0 - p.stall_fraction, 1.0, 1.0)
    if low_activity:
        risk = max(risk, 50)
    if low_activity and low_adoption:
        risk = max(risk, 75)
    set_risk(acct, signal, risk)
    decision = decide(
        acct, signal, low_adoption or low_activity,
        "high" if low_adoption and low_activity else "medium",
        recovered=adoption >= expected * p.clear_fraction and days_active >= needed,
    )  # fmt: skip
    if decision is None:
        return None
    status, severity = decision
    of_whom = f"{seats} seats" if acct.seats else f"{seats} activated users"
    since = "so far" if span == tenure + 1 else f"in the last {span} days"
    adopted = f"{users} of {of_whom} active {since}"
    share = f"{pct(adoption)} against {pct(expected)} expected by now"
    active = f"active on {days_active} of the last {window} days (at least {needed} expected)"
    if status == FIRING and not low_adoption:
        return Finding(
            signal,
            status,
            severity,
            metric="active_days",
            value=float(days_active),
            baseline=None,
            threshold=float(needed),
            window_days=window,
            explanation=f"Day {tenure} of onboarding: {active}",
            series="logins",
        )
    if status == FIRING:
        text = f"Day {tenure} of onboarding: {adopted} ({share}, alert below {pct(adoption_line)})"
        if low_activity:
            text += f", and {active}"
    else:
        text = f"Day {tenure} of onboarding: {adopted} ({share}), {active}"
    return Finding(
        signal,
        status,
        severity,
        metric="adoption",
        value=round(adoption, 4),
        baseline=round(expected, 4),
        threshold=round(adoption_line, 4),
        window_days=span,
        explanation=text,
        series="logins",
    )
