"""Thresholds as configuration: one policy file with defaults and per-segment overrides.

A policy is TOML::

    [stream]                       # how the clock treats time
    allowed_lateness_seconds = 300

    [defaults.engagement_drop]     # thresholds for every account
    drop_medium = 0.4

    [stages.onboarding.danger_zone]          # accounts younger than lifecycle.onboarding_days
    line = 0.6

    [segments.enterprise.danger_zone]        # accounts whose segment (or plan) is "enterprise"
    line = 0.5

    [segments.enterprise.stages.onboarding.danger_zone]
    line = 0.3

Overrides are merged over the defaults in that order (defaults, stage, segment, segment+stage)
and every combination is validated when the file is loaded, so a bad value stops start-up with
an error naming its key instead of surfacing weeks later on the first account of a segment.
"""

from __future__ import annotations

import difflib
import tomllib
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from stream.core.ring import RING_DAYS, USER_RING_DAYS

Stage = Literal["onboarding", "established"]
STAGES: tuple[Stage, ...] = ("onboarding", "established")
DEFAULT_SEGMENT = "default"


class PolicyError(ValueError):
    """A policy that cannot be used; the message names the key and the problem."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SignalPolicy(_Strict):
    enabled: bool = True
    max_opens: int = Field(default=2, ge=1, le=1000, description="Cooldown: at most this many")
    per_days: int = Field(
        default=30, ge=1, le=3650, description="episodes opened per this many days"
    )
    playbook: str = Field(default="", max_length=500)


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


class EngagementDrop(_DropPolicy):
    min_baseline_per_week: float = Field(
        default=3.0, ge=0, description="volume floor (logins/week)"
    )
    silence_days: int = Field(default=10, ge=1, le=RING_DAYS)
    silence_min_baseline_per_week: float = Field(default=1.0, ge=0)
    playbook: str = (
        "Call the champion: ask what changed, review their goals, offer a working session."
    )


class TimeInProductDrop(_DropPolicy):
    min_baseline_per_week: float = Field(default=60.0, ge=0, description="floor (minutes/week)")
    drop_medium: float = Field(default=0.5, gt=0, le=1)
    drop_high: float = Field(default=0.7, gt=0, le=1)
    clear_below: float = Field(default=0.3, ge=0, lt=1)
    playbook: str = "Review which workflows they abandoned; send targeted enablement content."


class DangerZone(SignalPolicy):
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


class FootprintShrink(SignalPolicy):
    window_days: int = Field(default=28, ge=1, le=USER_RING_DAYS, description="active-user window")
    min_seats: int = Field(default=3, ge=1)
    min_tenure_days: int = Field(default=30, ge=0)
    ratio_medium: float = Field(default=0.3, gt=0, le=1, description="active users / seats")
    ratio_high: float = Field(default=0.15, gt=0, le=1)
    clear_margin: float = Field(default=0.05, ge=0, le=1)
    playbook: str = "Few licensed users are active: find new champions and re-onboard teams."

    @model_validator(mode="after")
    def _ordered(self) -> FootprintShrink:
        if self.ratio_high > self.ratio_medium:
            raise ValueError("ratio_high must not exceed ratio_medium")
        return self


class OnboardingStall(SignalPolicy):
    min_tenure_days: int = Field(default=14, ge=1)
    ramp_days: int = Field(default=60, ge=1, description="days to reach target_adoption")
    target_adoption: float = Field(default=0.6, gt=0, le=1, description="active users / seats")
    stall_fraction: float = Field(default=0.5, gt=0, lt=1, description="fire below expected*this")
    clear_fraction: float = Field(default=0.75, gt=0, le=2)
    active_days_window: int = Field(default=14, ge=1, le=USER_RING_DAYS)
    min_active_days: int = Field(default=3, ge=0)
    playbook: str = "Onboarding has stalled: book a kickoff review and set a time-to-value plan."

    @model_validator(mode="after")
    def _ordered(self) -> OnboardingStall:
        if self.clear_fraction <= self.stall_fraction:
            raise ValueError("clear_fraction must exceed stall_fraction (hysteresis)")
        if self.min_active_days > self.active_days_window:
            raise ValueError("min_active_days cannot exceed active_days_window")
        return self


class PaymentFailed(SignalPolicy):
    high_failures: int = Field(default=2, ge=1, description="failures within window_days for high")
    window_days: int = Field(default=30, ge=1, le=365)
    playbook: str = "Payment failed: confirm the card on file with the billing contact today."


class InvoiceOverdue(SignalPolicy):
    medium_days: int = Field(default=7, ge=0)
    high_days: int = Field(default=30, ge=0)
    repeat_window_days: int = Field(default=90, ge=1, le=3650)
    playbook: str = "Invoice overdue: check with finance whether budget or approval is blocked."

    @model_validator(mode="after")
    def _ordered(self) -> InvoiceOverdue:
        if self.high_days < self.medium_days:
            raise ValueError("high_days must be at least medium_days")
        return self


class Downgrade(SignalPolicy):
    min_contraction: float = Field(default=0.1, gt=0, le=1, description="MRR share lost")
    high_contraction: float = Field(default=0.3, gt=0, le=1)
    quiet_days: int = Field(default=30, ge=1, le=365, description="resolve after this calm")
    playbook: str = "Contraction: learn why they cut back before the renewal conversation."

    @model_validator(mode="after")
    def _ordered(self) -> Downgrade:
        if self.high_contraction < self.min_contraction:
            raise ValueError("high_contraction must be at least min_contraction")
        return self


class SupportSilence(SignalPolicy):
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
    def _fits(self) -> SupportSilence:
        if self.window_days + self.baseline_days > RING_DAYS:
            raise ValueError(f"window_days + baseline_days must fit the {RING_DAYS}-day history")
        if self.min_baseline_days > self.baseline_days:
            raise ValueError("min_baseline_days must not exceed baseline_days")
        return self


class NpsDetractor(SignalPolicy):
    detractor_max: int = Field(default=6, ge=0, le=10)
    severe_max: int = Field(default=3, ge=0, le=10)
    promoter_min: int = Field(default=9, ge=0, le=10)
    expire_days: int = Field(default=120, ge=1, le=3650)
    playbook: str = "Detractor: close the loop personally within 48 hours and log the reason."

    @model_validator(mode="after")
    def _ordered(self) -> NpsDetractor:
        if not self.severe_max <= self.detractor_max < self.promoter_min:
            raise ValueError("needs severe_max <= detractor_max < promoter_min")
        return self


class Thresholds(_Strict):
    """Every detector's settings for one (segment, stage)."""

    engagement_drop: EngagementDrop = EngagementDrop()
    time_in_product_drop: TimeInProductDrop = TimeInProductDrop()
    danger_zone: DangerZone = DangerZone()
    footprint_shrink: FootprintShrink = FootprintShrink()
    onboarding_stall: OnboardingStall = OnboardingStall()
    payment_failed: PaymentFailed = PaymentFailed()
    invoice_overdue: InvoiceOverdue = InvoiceOverdue()
    downgrade: Downgrade = Downgrade()
    support_silence: SupportSilence = SupportSilence()
    nps_detractor: NpsDetractor = NpsDetractor()


class StreamSettings(_Strict):
    allowed_lateness_seconds: int = Field(
        default=300,
        ge=0,
        le=86_400,
        description="how far behind the partition clock an event may arrive and still count",
    )


class Lifecycle(_Strict):
    onboarding_days: int = Field(default=90, ge=1, le=730)


class Policy(_Strict):
    stream: StreamSettings = StreamSettings()
    lifecycle: Lifecycle = Lifecycle()
    defaults: Thresholds = Thresholds()
    stages: dict[Stage, dict[str, Any]] = Field(
        default_factory=lambda: {"onboarding": {"danger_zone": {"line": 0.4}}}
    )
    segments: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @cached_property
    def _resolved(self) -> dict[tuple[str, Stage], Thresholds]:
        return _resolve_all(self)

    def thresholds(self, segment: str, stage: Stage) -> Thresholds:
        """The thresholds an account of this segment and stage is held against."""
        table = self._resolved
        found = table.get((segment, stage))
        return found if found is not None else table[(DEFAULT_SEGMENT, stage)]

    @property
    def lateness_ms(self) -> int:
        return self.stream.allowed_lateness_seconds * 1000


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _resolve_all(policy: Policy) -> dict[tuple[str, Stage], Thresholds]:
    defaults = policy.defaults.model_dump()
    table: dict[tuple[str, Stage], Thresholds] = {}
    for stage in STAGES:
        stage_layer = policy.stages.get(stage, {})
        staged = _merge(defaults, stage_layer)
        table[(DEFAULT_SEGMENT, stage)] = _validate_layer(staged, f"stages.{stage}", stage_layer)
    for segment, layer in policy.segments.items():
        if not isinstance(layer, dict):
            raise PolicyError(f"segments.{segment}: must be a table")
        layer = dict(layer)
        per_stage = layer.pop("stages", {}) or {}
        if not isinstance(per_stage, dict):
            raise PolicyError(f"segments.{segment}.stages: must be a table")
        for name in per_stage:
            if name not in STAGES:
                raise PolicyError(_unknown(f"segments.{segment}.stages", name, STAGES))
        for stage in STAGES:
            merged = _merge(_merge(defaults, policy.stages.get(stage, {})), layer)
            table[(segment, stage)] = _validate_layer(merged, f"segments.{segment}", layer)
            inner = per_stage.get(stage, {})
            if inner:
                merged = _merge(merged, inner)
                where = f"segments.{segment}.stages.{stage}"
                table[(segment, stage)] = _validate_layer(merged, where, inner)
    return table


def _validate_layer(merged: dict[str, Any], where: str, layer: dict[str, Any]) -> Thresholds:
    try:
        return Thresholds.model_validate(merged)
    except ValidationError as exc:
        raise PolicyError(_format(exc, where, layer)) from None


def _format(exc: ValidationError, where: str, layer: dict[str, Any] | None = None) -> str:
    """One line per problem, each naming the key as it is spelled in the file."""
    lines = []
    root: type[BaseModel] = Thresholds if where else Policy
    for err in exc.errors(include_url=False):
        loc = [str(p) for p in err["loc"]]
        msg = err["msg"].removeprefix("Value error, ")
        if loc and loc[-1] == "[key]":
            loc = loc[:-1]
            msg = f"unknown key; expected one of {', '.join(STAGES)}"
        elif err["type"] == "extra_forbidden":
            msg = "unknown key"
            hint = difflib.get_close_matches(loc[-1], _fields_at(root, loc[:-1]), n=1)
            if hint:
                msg += f" (did you mean '{hint[0]}'?)"
        key = ".".join([where, *loc]) if where else ".".join(loc)
        if layer is not None and not _present(layer, loc):
            key += " (after merging with the defaults)"
        lines.append(f"{key}: {msg}")
    return "invalid policy: " + "; ".join(lines)


def _present(layer: dict[str, Any], loc: list[str]) -> bool:
    node: Any = layer
    for part in loc:
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def _fields_at(root: type[BaseModel], loc: list[str]) -> list[str]:
    """Field names valid at ``loc`` under ``root``, for "did you mean" hints."""
    model: Any = root
    for part in loc:
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return []
        model = field.annotation
    return list(getattr(model, "model_fields", {}))


def _unknown(where: str, name: str, choices: tuple[str, ...]) -> str:
    return f"{where}.{name}: unknown key; expected one of {', '.join(choices)}"


def parse_policy(data: dict[str, Any], source: str = "policy") -> Policy:
    """Validate a parsed policy document and every (segment, stage) it implies."""
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(f"{source}: " + _format(exc, "")) from None
    for stage, layer in policy.stages.items():
        if not isinstance(layer, dict):
            raise PolicyError(f"{source}: stages.{stage}: must be a table")
    try:
        _ = policy._resolved
    except PolicyError as exc:
        raise PolicyError(f"{source}: {exc}") from None
    return policy


def load_policy(path: str | Path | None) -> Policy:
    """Load and validate a policy file; ``None`` gives the built-in defaults."""
    if path is None:
        return parse_policy({}, "built-in policy")
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read policy file: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise PolicyError(f"{path}: policy file is not UTF-8 text") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{path}: not valid TOML: {exc}") from None
    return parse_policy(data, str(path))


def dump_policy_toml(policy: Policy) -> str:
    """Render a policy as TOML (used by ``churnwatch policy --defaults`` and calibration)."""
    return to_toml(policy.model_dump(exclude_defaults=False))


def to_toml(data: dict[str, Any]) -> str:
    out: list[str] = []

    def scalar(value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return repr(value)
        text = str(value).replace("\\", "\\\\").replace('"', '\\"')
        return f'"{text}"'

    def table(prefix: str, node: dict[str, Any]) -> None:
        plain = {k: v for k, v in node.items() if not isinstance(v, dict)}
        nested = {k: v for k, v in node.items() if isinstance(v, dict)}
        if plain and prefix:
            out.append(f"\n[{prefix}]")
        for key, value in plain.items():
            out.append(f"{key} = {scalar(value)}")
        for key, value in nested.items():
            table(f"{prefix}.{key}" if prefix else key, value)

    table("", data)
    return "\n".join(out).lstrip("\n") + "\n"
