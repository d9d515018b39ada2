"""Usage: drops against the account's own past, and the level against its segment's line.

Two different risks (domain notes, "the danger zone"): a *drop* compares an account with its
own history and catches decliners; a *level* compares it with comparable accounts (the line is
per segment and lifecycle stage in the policy) and catches accounts that were weak from their
first weeks and never had a history to fall from.
"""

from __future__ import annotations

import math
from array import array
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
    pct,
    set_risk,
    stand_down,
)
from stream.core.timeutil import DAY_MS

if TYPE_CHECKING:
    from stream.core.state import AccountState


class _DropPolicy(SignalPolicy):
    """Shared shape of relative-drop detectors: recent window against the account's own past."""

    window_days: int = Field(default=14, ge=1, le=60)
    baseline_days: int = Field(default=56, ge=7, le=RING_DAYS - 1)
    min_baseline_days: int = Field(default=28, ge=7, le=RING_DAYS - 1)
    drop_medium: float = Field(default=0.4, gt=0, le=1)
    drop_high: float = Field(default=0.6, gt=0, le=1)
    clear_below: float = Field(default=0.25, ge=0, lt=1)
    min_z: float = Field(
        default=2.0,
        ge=0,
        le=10,
        description="the drop must also be this many standard deviations of the account's own "
        "daily variation below its baseline (0 disables): the volume floor that adapts itself",
    )

    @model_validator(mode="after")
    def _ordered(self) -> _DropPolicy:
        if not self.clear_below < self.drop_medium <= self.drop_high:
            raise ValueError("needs clear_below < drop_medium <= drop_high (hysteresis)")
        if self.window_days + self.baseline_days > RING_DAYS:
            raise ValueError(f"window_days + baseline_days must fit the {RING_DAYS}-day history")
        if self.min_baseline_days > self.baseline_days:
            raise ValueError("min_baseline_days must not exceed baseline_days")
        return self


class EngagementDropPolicy(_DropPolicy):
    min_baseline_per_week: float = Field(
        default=3.0, ge=0, description="volume floor (logins/week)"
    )
    silence_days: int = Field(default=10, ge=1, le=RING_DAYS)
    silence_min_baseline_per_week: float = Field(default=1.0, ge=0)
    silence_surprise: float = Field(
        default=0.01,
        gt=0,
        lt=1,
        description="only a gap this unlikely at the account's own pace is silence",
    )
    playbook: str = (
        "Call the champion: ask what changed, review their goals, offer a working session."
    )


class TimeInProductDropPolicy(_DropPolicy):
    min_baseline_per_week: float = Field(default=60.0, ge=0, description="floor (minutes/week)")
    drop_medium: float = Field(default=0.5, gt=0, le=1)
    drop_high: float = Field(default=0.7, gt=0, le=1)
    clear_below: float = Field(default=0.3, ge=0, lt=1)
    playbook: str = "Review which workflows they abandoned; send targeted enablement content."


class DangerZonePolicy(SignalPolicy):
    """Level of engagement against the line for comparable accounts (segment and stage)."""

    line: float = Field(default=0.6, ge=0, description="logins per seat per week")
    window_days: int = Field(default=28, ge=7, le=RING_DAYS)
    min_tenure_days: int = Field(default=10, ge=1, le=365)
    high_fraction: float = Field(default=0.5, gt=0, lt=1, description="high below line*this")
    clear_margin: float = Field(default=0.15, ge=0, le=2, description="clear above line*(1+this)")
    min_z: float = Field(
        default=1.0,
        ge=0,
        le=10,
        description="logins must be this many Poisson standard deviations below what the line "
        "implies for the account's seats (0 disables), so tiny accounts are not judged on noise",
    )
    playbook: str = "Engagement is in the danger zone for its segment: run an adoption plan now."


def _windows(
    counters: array, acct: AccountState, day: int, p: EngagementDropPolicy | TimeInProductDropPolicy
) -> tuple[int, int, int, int] | None:
    """(recent sum, baseline sum, baseline first day, baseline days), or None if too young."""
    first = day - p.window_days + 1
    base_first = first - p.baseline_days
    if base_first < acct.first_day:
        base_first = acct.first_day
    base_days = first - base_first
    if base_days < p.min_baseline_days:
        return None
    current = ring.window_sum(counters, first, day)
    baseline = ring.window_sum(counters, base_first, first - 1)
    return current, baseline, base_first, base_days


def drop_z(counters: array, current: int, base_first: int, base_days: int, window: int) -> float:
    """How unusual the recent sum is, in standard deviations of the account's own days.

    The baseline's day-to-day variance (never below its mean, the Poisson floor) scales the
    expected spread of a ``window``-day sum: a quiet week of a two-login account is noise, the
    same relative drop of a busy account is not.
    """
    daily = ring.values(counters, base_first, base_first + base_days - 1)
    mean = sum(daily) / base_days
    variance = sum((x - mean) ** 2 for x in daily) / base_days
    spread = math.sqrt(window * max(variance, mean, 1e-9))
    return (current - mean * window) / spread


def _drop_finding(
    acct: AccountState,
    ctx: Ctx,
    signal: str,
    p: EngagementDropPolicy | TimeInProductDropPolicy,
    counters: array,
    series: str,
    unit: str,
) -> Finding | None:
    sums = _windows(counters, acct, ctx.day, p)
    if sums is None:
        return hold_or_none(acct, signal, "not enough history yet")
    current_sum, baseline_sum, base_first, base_days = sums
    current = current_sum * 7 / p.window_days
    baseline = baseline_sum * 7 / base_days
    if baseline < p.min_baseline_per_week or baseline <= 0:
        return _below_floor(acct, signal, p, current, baseline, series, unit)
    drop = 1.0 - current / baseline
    risk = graded_risk(drop, p.drop_medium, p.drop_high, 1.0)
    firing = drop >= p.drop_medium
    if firing and p.min_z > 0:
        z = drop_z(counters, current_sum, base_first, base_days, p.window_days)
        if z > -p.min_z:
            firing = False  # as large a drop as the account's own noise makes: not evidence
            risk = min(risk, MEDIUM_RISK - 1)
    set_risk(acct, signal, risk)
    decision = decide(
        acct, signal, firing, "high" if drop >= p.drop_high else "medium",
        recovered=drop < p.clear_below,
    )  # fmt: skip
    if decision is None:
        return None
    status, severity = decision
    line = baseline * (1 - p.drop_medium)
    if status == CLEAR:
        text = (
            f"{unit.capitalize()} recovered to {fmt(current)}/week, "
            f"{against_baseline(current, baseline)}"
        )
    else:
        text = (
            f"{unit.capitalize()} fell {pct(drop)} to {fmt(current)}/week over the last "
            f"{p.window_days} days, against {fmt(baseline)}/week in the "
            f"{p.baseline_days} days before (alert at a {pct(p.drop_medium)} drop)"
        )
    return Finding(
        signal,
        status,
        severity,
        metric=f"{series}_per_week",
        value=round(current, 3),
        baseline=round(baseline, 3),
        threshold=round(line, 3),
        window_days=p.window_days,
        explanation=text,
        series=series,
    )


def against_baseline(current: float, baseline: float) -> str:
    """Where a recovered weekly measure stands against its baseline, in words.

    Every recovery reads alike: "back at the 14/week baseline" when the gap rounds to no
    percentage (never "within 0%" or "-0% below"), "12.5% above" it, or "back within 12.5%
    of" it.
    """
    where = f"the {fmt(baseline)}/week baseline"
    if baseline <= 0:
        return f"above {where}" if current > 0 else f"back at {where}"
    drop = 1.0 - current / baseline
    gap = pct(abs(drop))
    if gap == pct(0.0):
        return f"back at {where}"
    if drop < 0:
        return f"{gap} above {where}"
    return f"back within {gap} of {where}"


def _below_floor(
    acct: AccountState,
    signal: str,
    p: EngagementDropPolicy | TimeInProductDropPolicy,
    current: float,
    baseline: float,
    series: str,
    unit: str,
) -> Finding | None:
    """A baseline under the volume floor cannot open a drop, but it must not trap one open.

    A silence episode opens from a lower baseline than a drop may (an account that goes
    completely quiet is news at any volume); once the account is active again at its own
    recent level, the episode resolves here instead of being held forever below the floor.
    A drop episode is held: its baseline sinks as the decline moves into it, and that is no
    recovery.
    """
    if not stand_down(acct, signal):
        return None
    silence = acct.episode(signal).severity == "critical"  # only silence opens as critical
    if not silence or current <= 0 or current < baseline * (1 - p.clear_below):
        return Finding(signal, HOLD, explanation="baseline below the volume floor")
    return Finding(
        signal,
        CLEAR,
        metric=f"{series}_per_week",
        value=round(current, 3),
        baseline=round(baseline, 3),
        threshold=round(baseline * (1 - p.drop_medium), 3),
        window_days=p.window_days,
        explanation=(
            f"{unit.capitalize()} resumed at {fmt(current)}/week, "
            f"{against_baseline(current, baseline)}"
        ),
        series=series,
    )


def engagement_drop(acct: AccountState, ctx: Ctx, signal: str) -> Finding | None:
    p: EngagementDropPolicy = getattr(ctx.th, signal)
    if not p.enabled:
        return None
    silent = _silent_days(acct, ctx.day)
    if silent >= p.silence_days:
        last_active = ctx.day - silent
        first = max(acct.first_day, last_active - p.baseline_days + 1, ctx.day - ring.RING_DAYS + 1)
        span = last_active - first + 1
        before = ring.window_sum(acct.logins, first, last_active) * 7 / span if span >= 7 else 0.0
        gap = unusual_gap(before, p) if before >= p.silence_min_baseline_per_week else math.inf
        if silent >= gap:
            set_risk(acct, signal, 100)
            return Finding(
                signal,
                FIRING,
                "critical",
                metric="days_without_activity",
                value=float(silent),
                baseline=round(before, 3),
                threshold=round(gap, 1),
                window_days=silent,
                explanation=(
                    f"No product activity for {silent} days; the account averaged "
                    f"{fmt(before)} logins/week before it went silent, a pace at which "
                    f"{math.ceil(gap)} quiet days happen by chance less than "
                    f"{pct(p.silence_surprise)} of the time"
                ),
                series="logins",
            )
    return _drop_finding(acct, ctx, signal, p, acct.logins, "logins", "logins")


def time_in_product_drop(acct: AccountState, ctx: Ctx, signal: str) -> Finding | None:
    p: TimeInProductDropPolicy = getattr(ctx.th, signal)
    if not p.enabled:
        return None
    return _drop_finding(acct, ctx, signal, p, acct.minutes, "minutes", "time in product (minutes)")


def unusual_gap(logins_per_week: float, p: EngagementDropPolicy) -> float:
    """Days without use that the account's own pace makes unlikely (at least ``silence_days``).

    A two-seat team that logs in once or twice a week goes ten days without a login about one
    time in eight by chance alone; a daily team almost never does. With logins arriving at the
    account's usual rate, a gap of ``g`` days has probability ``exp(-rate * g)``, so silence
    starts where that falls below ``silence_surprise``.
    """
    per_day = logins_per_week / 7
    return max(float(p.silence_days), math.log(1 / p.silence_surprise) / per_day)


def _silent_days(acct: AccountState, day: int) -> int:
    """Whole days since the last usage event (or since tracking began, if none yet)."""
    last = acct.last_usage_ms // DAY_MS if acct.last_usage_ms else acct.first_day - 1
    return day - last


def danger_measure(acct: AccountState, ctx: Ctx, p: DangerZonePolicy) -> tuple[int, int] | str:
    """(logins, days) of the window the level is judged on, or why it cannot be judged yet.

    Shared with calibration, which samples the very quantity the detector holds against the
    line.
    """
    if not acct.seats:
        return "seat count unknown"
    tenure = ctx.tenure
    if tenure is not None and tenure < p.min_tenure_days:
        return "too new to judge"
    # Young accounts are judged on their whole (shorter) life: tenure-normalised.
    days = p.window_days if tenure is None else min(p.window_days, tenure + 1)
    if ctx.day - acct.first_day + 1 < days:
        return "not enough history yet"
    return ring.window_sum(acct.logins, ctx.day - days + 1, ctx.day), days


def danger_zone(acct: AccountState, ctx: Ctx, signal: str) -> Finding | None:
    p: DangerZonePolicy = getattr(ctx.th, signal)
    if not p.enabled:
        return None
    measured = danger_measure(acct, ctx, p)
    if isinstance(measured, str):
        return hold_or_none(acct, signal, measured)
    logins, days = measured
    seats = acct.seats
    level = logins * 7 / days / seats
    line = p.line
    if line <= 0:
        return hold_or_none(acct, signal)
    shortfall = 1.0 - level / line
    risk = graded_risk(shortfall, 1e-9, 1.0 - p.high_fraction, 1.0) if shortfall > 0 else 0
    below = level < line
    if below and p.min_z > 0:
        expected = line * seats * days / 7
        if (logins - expected) / math.sqrt(expected) > -p.min_z:
            below = False  # too few seats and days to tell this level from the line
            risk = min(risk, MEDIUM_RISK - 1)
    set_risk(acct, signal, risk)
    decision = decide(
        acct, signal, below, "high" if level < line * p.high_fraction else "medium",
        recovered=level >= line * (1 + p.clear_margin),
    )  # fmt: skip
    if decision is None:
        return None
    status, severity = decision
    who = f"{acct.segment_name()} accounts in {ctx.stage}"
    if status == CLEAR:
        text = f"Engagement is back above the danger-zone line: {fmt(level)} logins/seat/week"
    else:
        text = (
            f"{fmt(level)} logins per seat per week over {days} days, below the danger-zone "
            f"line of {fmt(line)} for {who}"
        )
    return Finding(
        signal,
        status,
        severity,
        metric="logins_per_seat_per_week",
        value=round(level, 4),
        baseline=None,
        threshold=line,
        window_days=days,
        explanation=text,
        series="logins",
    )
