"""Adoption: how much of the organisation uses the product, and onboarding progress.

Footprint compares distinct active users with licensed seats (a product built for broad use
used by a small group). Onboarding judges accounts in their first days against an onboarding
profile (expected adoption rising over ``ramp_days``) instead of a history they do not have.
"""

from __future__ import annotations

import math

from stream.core import ring
from stream.core.signals.base import (
    CLEAR,
    Ctx,
    Finding,
    decide,
    fmt,
    graded_risk,
    hold_or_none,
    set_risk,
)
from stream.core.state import AccountState


def footprint_shrink(acct: AccountState, ctx: Ctx) -> Finding | None:
    p = ctx.th.footprint_shrink
    signal = "footprint_shrink"
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
    active = ring.distinct_users(acct.users, first, ctx.day)
    ratio = active / seats
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
    users = round(active)
    text = (
        f"{users} of {seats} licensed seats active in the last {p.window_days} days "
        f"({fmt(ratio * 100)}%, alert below {fmt(p.ratio_medium * 100)}%)"
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


def onboarding_stall(acct: AccountState, ctx: Ctx) -> Finding | None:
    p = ctx.th.onboarding_stall
    signal = "onboarding_stall"
    if not p.enabled:
        return None
    tenure = ctx.tenure
    if tenure is None:
        return hold_or_none(acct, signal, "account start unknown")
    if tenure >= ctx.policy.lifecycle.onboarding_days:
        set_risk(acct, signal, 0)
        if acct.is_open(signal):
            return Finding(
                signal,
                CLEAR,
                explanation=f"left the {ctx.policy.lifecycle.onboarding_days}-day onboarding",
                metric="adoption",
            )
        return None
    if tenure < p.min_tenure_days:
        return hold_or_none(acct, signal, "too new to judge")
    span = min(tenure + 1, ring.USER_RING_DAYS - 1, ctx.day - acct.first_day + 1)
    seats = acct.seats or max(acct.activated_users, 1)
    active = ring.distinct_users(acct.users, ctx.day - span + 1, ctx.day)
    adoption = active / seats
    expected = p.target_adoption * min(1.0, tenure / p.ramp_days)
    window = min(p.active_days_window, tenure + 1)
    needed = math.ceil(p.min_active_days * window / p.active_days_window)
    days_active = ring.active_days(acct.logins, ctx.day - window + 1, ctx.day)
    low_adoption = adoption < expected * p.stall_fraction
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
    text = (
        f"Day {tenure} of onboarding: {round(active)} of {seats} seats active "
        f"({fmt(adoption * 100)}% against {fmt(expected * 100)}% expected by now), "
        f"active on {days_active} of the last {window} days (expected {needed})"
    )
    return Finding(
        signal,
        status,
        severity,
        metric="adoption",
        value=round(adoption, 4),
        baseline=round(expected, 4),
        threshold=round(expected * p.stall_fraction, 4),
        window_days=window,
        explanation=text,
        series="logins",
    )
