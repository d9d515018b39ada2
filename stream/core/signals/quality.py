"""Product quality and support pain: ticket surges, bugs left open, slow resolutions.

The opposite end from support silence (domain notes, "Product quality and support"): a
customer filing far more tickets than usual, waiting on bugs that engineering has not fixed,
or waiting far longer than accounts like it for answers is at risk of its own. Each detector
guards against noise as the usage drops do: a surge is judged against the account's own
baseline with a volume floor, a significance test and hysteresis; bug exposure counts only
tickets the help desk linked to an engineering issue; slow support needs several solved
tickets before a median means anything.

Support silence and the surge exclude each other: silence needs no ticket at all in its
window, a surge needs several in a shorter one, and the registry declares the pair exclusive
(``SignalSpec.excludes``), so the engine never opens one while the other is open.
"""

from __future__ import annotations

import math
import statistics
from typing import TYPE_CHECKING

from pydantic import Field, model_validator

from stream.core import ring
from stream.core.ring import RING_DAYS
from stream.core.signals.base import (
    CLEAR,
    FIRING,
    HOLD,
    MEDIUM_RISK,
    Ctx,
    Finding,
    SignalPolicy,
    decide,
    fmt,
    graded_risk,
    hold_or_none,
    set_risk,
    stand_down,
)
from stream.core.timeutil import DAY_MS

if TYPE_CHECKING:
    from stream.core.state import AccountState


class SupportSurgePolicy(SignalPolicy):
    window_days: int = Field(default=14, ge=3, le=42)
    baseline_days: int = Field(default=56, ge=7, le=RING_DAYS - 3)
    min_baseline_days: int = Field(default=28, ge=7, le=RING_DAYS - 3)
    rise_medium: float = Field(
        default=3.0, gt=1, le=100, description="tickets in the window over the baseline's"
    )
    rise_high: float = Field(default=5.0, gt=1, le=100)
    clear_below: float = Field(default=1.5, ge=0, le=100, description="resolve under this ratio")
    min_tickets: int = Field(
        default=8, ge=1, le=1000, description="volume floor: tickets in the window"
    )
    min_baseline_per_window: float = Field(
        default=2.0,
        ge=0.1,
        description="the baseline is never taken below this many tickets per window, so an "
        "account that hardly ever writes is not 'surging' on its first few tickets",
    )
    min_z: float = Field(
        default=5.0,
        ge=0,
        le=10,
        description="the count must also be this many standard deviations of the account's own "
        "daily variation above its baseline (0 disables)",
    )
    urgent_min: int = Field(
        default=5,
        ge=1,
        le=1000,
        description="high or urgent tickets in the window that make a surge on their own, "
        "when they are also rise_medium times their own baseline",
    )
    playbook: str = (
        "Ticket surge: call the account's lead, find the common cause, and bring support and "
        "engineering to one plan."
    )

    @model_validator(mode="after")
    def _ordered(self) -> SupportSurgePolicy:
        if not self.clear_below < self.rise_medium <= self.rise_high:
            raise ValueError("needs clear_below < rise_medium <= rise_high (hysteresis)")
        if self.window_days + self.baseline_days > RING_DAYS:
            raise ValueError(f"window_days + baseline_days must fit the {RING_DAYS}-day history")
        if self.min_baseline_days > self.baseline_days:
            raise ValueError("min_baseline_days must not exceed baseline_days")
        return self


class BugExposurePolicy(SignalPolicy):
    open_medium: int = Field(default=2, ge=1, le=6, description="open bug-linked tickets at once")
    open_high: int = Field(default=4, ge=1, le=6)
    max_open_days: int = Field(
        default=14, ge=1, le=365, description="one bug-linked ticket open this long alerts"
    )
    high_open_days: int = Field(default=30, ge=1, le=365)
    playbook: str = (
        "Bugs reach this customer: tell them where each linked issue stands and escalate the "
        "oldest with engineering."
    )

    @model_validator(mode="after")
    def _ordered(self) -> BugExposurePolicy:
        if self.open_high < self.open_medium or self.high_open_days < self.max_open_days:
            raise ValueError("needs open_medium <= open_high and max_open_days <= high_open_days")
        return self


class SlowSupportPolicy(SignalPolicy):
    norm_hours: float = Field(
        default=24.0,
        gt=0,
        le=24 * 365,
        description="the segment's usual resolution time (set it per segment)",
    )
    slow_factor: float = Field(default=3.0, gt=1, le=100, description="median over the norm")
    high_factor: float = Field(default=6.0, gt=1, le=100)
    clear_factor: float = Field(default=2.0, ge=0, le=100)
    window_days: int = Field(default=60, ge=7, le=365, description="tickets solved this recently")
    min_solved: int = Field(default=3, ge=1, le=6)
    playbook: str = (
        "Their tickets wait far longer than usual: review the open queue with support and give "
        "the account a named contact."
    )

    @model_validator(mode="after")
    def _ordered(self) -> SlowSupportPolicy:
        if not self.clear_factor < self.slow_factor <= self.high_factor:
            raise ValueError("needs clear_factor < slow_factor <= high_factor (hysteresis)")
        return self


def _hot_in(days: object, first: int, last: int) -> int:
    return sum(1 for d in days if first <= d <= last)  # type: ignore[attr-defined]


def surge_measure(
    acct: AccountState, day: int, p: SupportSurgePolicy
) -> tuple[int, float, float, int, float] | None:
    """(tickets in the window, their ratio to the baseline, z, urgent tickets, their ratio),
    or None while the account is too young to have a baseline."""
    first = day - p.window_days + 1
    base_first = max(first - p.baseline_days, acct.first_day)
    base_days = first - base_first
    if base_days < p.min_baseline_days:
        return None
    current = ring.window_sum(acct.tickets, first, day)
    daily = ring.values(acct.tickets, base_first, first - 1)
    mean = max(sum(daily) / base_days, p.min_baseline_per_window / p.window_days)
    variance = sum((x - mean) ** 2 for x in daily) / base_days
    expected = mean * p.window_days
    z = (current - expected) / math.sqrt(p.window_days * max(variance, mean))
    hot_days = acct.hot_days
    hot = _hot_in(hot_days, first, day)
    hot_first = base_first
    if len(hot_days) and len(hot_days) >= 16 and hot_days[0] > hot_first:
        hot_first = hot_days[0]  # the remembered urgent tickets cover only these days
    hot_span = max(first - hot_first, 7)
    hot_expected = max(
        _hot_in(hot_days, hot_first, first - 1) * p.window_days / hot_span,
        p.min_baseline_per_window,
    )
    return current, current / expected, z, hot, hot / hot_expected


def support_surge(acct: AccountState, ctx: Ctx, signal: str) -> Finding | None:
    p: SupportSurgePolicy = getattr(ctx.th, signal)
    if not p.enabled:
        return None
    opened = acct.is_open(signal)
    if not opened:
        # The cheap path of every day close: below both volume floors nothing can open.
        first = ctx.day - p.window_days + 1
        if (
            ring.window_sum(acct.tickets, first, ctx.day) < p.min_tickets
            and _hot_in(acct.hot_days, first, ctx.day) < p.urgent_min
        ):
            set_risk(acct, signal, 0)
            return None
    measured = surge_measure(acct, ctx.day, p)
    if measured is None:
        return hold_or_none(acct, signal, "not enough history yet")
    current, ratio, z, hot, hot_ratio = measured
    volume = current >= p.min_tickets and ratio >= p.rise_medium and z >= p.min_z
    hot_expected = hot / hot_ratio if hot_ratio else p.min_baseline_per_window
    urgent = (
        hot >= p.urgent_min
        and hot_ratio >= p.rise_medium
        and (hot - hot_expected) / math.sqrt(hot_expected) >= p.min_z  # Poisson spread
    )
    firing = volume or urgent
    rise = max(ratio, hot_ratio if hot >= p.urgent_min else 0.0)
    risk = graded_risk(rise - 1, p.rise_medium - 1, p.rise_high - 1, 2 * p.rise_high - 1)
    if not firing:
        risk = min(risk, MEDIUM_RISK - 1)
    set_risk(acct, signal, risk)
    recovered = current == 0 or (ratio < p.clear_below and hot < p.urgent_min)
    high = (volume and ratio >= p.rise_high) or (urgent and hot_ratio >= p.rise_high)
    decision = decide(acct, signal, firing, "high" if high else "medium", recovered)
    if decision is None:
        return None
    status, severity = decision
    baseline = current / ratio if ratio else 0.0
    if status == CLEAR:
        text = (
            f"Tickets back to {current} in the last {p.window_days} days, near the usual "
            f"{fmt(baseline)}"
        )
    else:
        text = (
            f"{current} support tickets in the last {p.window_days} days ({hot} high or "
            f"urgent), {fmt(ratio)}x the account's usual {fmt(baseline)} per {p.window_days} "
            f"days over the {p.baseline_days} days before (alert at {fmt(p.rise_medium)}x)"
        )
        bugs = acct.ticket_log.bugs if acct.ticket_log is not None else []
        if bugs:
            text += "; open bug-linked: " + ", ".join(f"{t} ({i})" for t, i, _ in bugs)
    return Finding(
        signal,
        status,
        severity,
        metric="tickets_per_window",
        value=float(current),
        baseline=round(baseline, 3),
        threshold=round(baseline * p.rise_medium, 3),
        window_days=p.window_days,
        explanation=text,
        series="tickets",
    )


def bug_exposure(acct: AccountState, ctx: Ctx, signal: str) -> Finding | None:
    p: BugExposurePolicy = getattr(ctx.th, signal)
    log = acct.ticket_log
    if not p.enabled or log is None:
        return None
    bugs = log.bugs
    if not bugs:
        if not stand_down(acct, signal):
            return None
        fixes = ", ".join(f"{issue}" for _, issue, _ in log.fixed) or "none recorded"
        return Finding(
            signal,
            CLEAR,
            metric="open_bug_tickets",
            value=0.0,
            threshold=float(p.open_medium),
            explanation=f"No bug-linked ticket is open any more (issues fixed lately: {fixes})",
        )
    ages = [(ctx.at_ms - since) / DAY_MS for _, _, since in bugs]
    oldest = max(ages)
    count = len(bugs)
    firing = count >= p.open_medium or oldest >= p.max_open_days
    if not firing:
        # One young bug is a CS note, not an alert; an open episode waits for the fix.
        held = stand_down(acct, signal, 30)
        return Finding(signal, HOLD, explanation="waiting for the linked issues") if held else None
    high = count >= p.open_high or oldest >= p.high_open_days
    set_risk(acct, signal, 80 if high else 60)
    listed = ", ".join(
        f"{ticket} on {issue} ({fmt(age)} days)"
        for (ticket, issue, _), age in zip(bugs, ages, strict=True)
    )
    return Finding(
        signal,
        FIRING,
        "high" if high else "medium",
        metric="open_bug_tickets",
        value=float(count),
        baseline=round(oldest, 2),
        threshold=float(p.open_medium),
        window_days=p.max_open_days,
        explanation=(
            f"{count} open ticket{'s' if count != 1 else ''} linked to engineering issues: "
            f"{listed} (alert at {p.open_medium} open or one open {p.max_open_days} days)"
        ),
        facts=[(since, f"ticket {ticket} linked to {issue}") for ticket, issue, since in bugs],
    )


def slow_support(acct: AccountState, ctx: Ctx, signal: str) -> Finding | None:
    p: SlowSupportPolicy = getattr(ctx.th, signal)
    log = acct.ticket_log
    if not p.enabled or log is None or not log.solved:
        return None
    since = ctx.at_ms - p.window_days * DAY_MS
    recent = [row for row in log.solved if row[0] > since]
    if not recent:
        if not stand_down(acct, signal):
            return None
        return Finding(
            signal,
            CLEAR,
            metric="median_resolution_hours",
            threshold=round(p.norm_hours * p.slow_factor, 2),
            explanation=f"No ticket solved in the last {p.window_days} days is slow",
        )
    if len(recent) < p.min_solved:
        return hold_or_none(acct, signal, "too few tickets solved lately to judge")
    median = statistics.median(seconds for _, seconds, _ in recent) / 3600
    ratio = median / p.norm_hours
    risk = graded_risk(ratio - 1, p.slow_factor - 1, p.high_factor - 1, 2 * p.high_factor - 1)
    set_risk(acct, signal, risk)
    decision = decide(
        acct, signal, ratio >= p.slow_factor, "high" if ratio >= p.high_factor else "medium",
        recovered=ratio < p.clear_factor,
    )  # fmt: skip
    if decision is None:
        return None
    status, severity = decision
    listed = ", ".join(f"{ticket} {fmt(seconds / 3600)} h" for _, seconds, ticket in recent)
    if status == CLEAR:
        text = f"Tickets are solved in a median {fmt(median)} hours again ({listed})"
    else:
        text = (
            f"Tickets solved in the last {p.window_days} days took a median {fmt(median)} hours "
            f"({listed}), {fmt(ratio)}x the {fmt(p.norm_hours)}-hour norm for "
            f"{acct.segment_name()} accounts (alert at {fmt(p.slow_factor)}x)"
        )
    return Finding(
        signal,
        status,
        severity,
        metric="median_resolution_hours",
        value=round(median, 3),
        baseline=p.norm_hours,
        threshold=round(p.norm_hours * p.slow_factor, 3),
        window_days=p.window_days,
        explanation=text,
        facts=[(ms, f"ticket {ticket} solved in {fmt(s / 3600)} h") for ms, s, ticket in recent],
    )
