"""What a detector sees and what it returns.

A detector is a function ``(account, ctx, signal) -> Finding | None``; ``signal`` is the name
its :class:`~stream.core.signals.registry.SignalSpec` gives it, so a detector never spells its
own name, and ``getattr(ctx.th, signal)`` is its policy. It records the account's risk
for its signal (0 healthy .. 100 worst; 50 is the medium line, 75 the high line) in
``account.risk`` so the health score is always current, and returns a :class:`Finding` only
when the alert lifecycle may have something to do: the signal fires, recovers or has an open
episode. Returning ``None`` on the healthy path keeps day closes cheap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    # Types only: the registry (imported by the contract layer and by the state) imports the
    # signal modules, which import this one, so nothing here may import them back at runtime.
    from schemas.alerts import Stage
    from stream.core.policy import Policy, Thresholds
    from stream.core.state import AccountState

FIRING = 1
CLEAR = 2
HOLD = 3
"""Between the firing and the clearing line (hysteresis), or not judgeable right now."""

MEDIUM_RISK = 50
HIGH_RISK = 75


class SignalPolicy(BaseModel):
    """Settings every signal has; a signal's policy class adds its own thresholds.

    Lives here rather than in :mod:`stream.core.policy` because each signal module defines its
    policy class next to its detector, and the policy module in turn builds ``Thresholds``
    from the registry of those modules.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    max_opens: int = Field(default=2, ge=1, le=1000, description="Cooldown: at most this many")
    per_days: int = Field(
        default=30, ge=1, le=3650, description="episodes opened per this many days"
    )
    playbook: str = Field(default="", max_length=500)


@dataclass(slots=True)
class Ctx:
    """One evaluation of one account at one event-time instant."""

    day: int  # newest complete day the usage windows end on
    at_ms: int  # the instant: the end of a closed day, or an event's time
    th: Thresholds
    tenure: int | None
    stage: Stage
    policy: Policy
    risk_estimate: float | None = None
    """The learned model's churn probability, once the churn-risk detector scored this
    evaluation (a day close's health snapshot reports it without scoring twice)."""


@dataclass(slots=True)
class Finding:
    signal: str
    status: int
    severity: str = ""
    metric: str = ""
    value: float = 0.0
    baseline: float | None = None
    threshold: float = 0.0
    window_days: int | None = None
    explanation: str = ""
    series: str | None = None  # AccountState counter shown as daily evidence
    facts: list[tuple[int, str]] = field(default_factory=list)


class Detector(Protocol):
    def __call__(self, acct: AccountState, ctx: Ctx, signal: str) -> Finding | None: ...


def stand_down(acct: AccountState, signal: str, risk: int = 0) -> bool:
    """The signal is not firing: record ``risk`` and tell whether an episode is still open.

    Every non-firing path of a detector ends the same way: the risk is recorded so health
    stays current, and only an open episode needs a finding (CLEAR or HOLD); with none open
    the detector returns ``None`` without building one, which keeps day closes cheap.
    """
    acct.set_risk(signal, risk)
    return acct.is_open(signal)


def hold_or_none(acct: AccountState, signal: str, why: str = "") -> Finding | None:
    """Not judgeable now: keep an open episode as it is, and say nothing otherwise."""
    return Finding(signal, HOLD, explanation=why) if stand_down(acct, signal) else None


def decide(
    acct: AccountState, signal: str, firing: bool, severity: str, recovered: bool
) -> tuple[int, str] | None:
    """The three-way outcome shared by the threshold detectors.

    Firing wins; otherwise an open episode is cleared once the measure is past the detector's
    recovery line (hysteresis) and held in between; with no open episode there is nothing
    for the lifecycle to do (``None``).
    """
    if firing:
        return FIRING, severity
    if not acct.is_open(signal):
        return None
    return (CLEAR, "") if recovered else (HOLD, "")


def graded_risk(badness: float, medium_at: float, high_at: float, worst_at: float) -> int:
    """Map a 'bigger is worse' measure onto the shared 0-100 risk scale.

    The medium threshold lands on 50 and the high one on 75, so risks of different signals
    compare on the same health scale whatever their units.
    """
    if badness <= 0:
        return 0
    if badness < medium_at:
        return int(MEDIUM_RISK * badness / medium_at)
    if badness < high_at or high_at <= medium_at:
        span = high_at - medium_at
        return MEDIUM_RISK + (int(25 * (badness - medium_at) / span) if span > 0 else 25)
    if worst_at <= high_at:
        return 99
    return min(99, HIGH_RISK + int(24 * (badness - high_at) / (worst_at - high_at)))


def set_risk(acct: AccountState, signal: str, risk: int) -> None:
    acct.set_risk(signal, risk)


def fmt(value: float) -> str:
    """Numbers in explanations: few digits, no float noise, and never "-0".

    The digits depend on the size alone, so a fall and a rise of the same size read alike;
    a value that rounds to zero is "0" whatever its sign.
    """
    size = abs(value)
    if size >= 100:
        text = f"{size:.0f}"
    elif size >= 10:
        text = f"{size:.1f}".removesuffix(".0")
    else:
        text = f"{size:.2f}".rstrip("0").rstrip(".") or "0"
    return f"-{text}" if value < 0 and text != "0" else text


def pct(share: float) -> str:
    """A share (0.254) as the percentage explanations print ("25.4%"): every percentage a
    detector writes goes through here, so none reads "-0%" and all round alike."""
    return f"{fmt(share * 100)}%"
