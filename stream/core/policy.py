"""Thresholds as configuration: one policy file with defaults and per-segment overrides.

A policy is TOML::

    [stream]                       # how the clock treats time
    allowed_lateness_seconds = 300

    [alerting]                     # what is published: one episode per account at risk
    episodes = "account"           # or "signal": one episode per (account, signal)

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
A switch (``enabled``, ``alert_mild``, ...) must be a TOML boolean, ``true`` or ``false``:
``"off"``, ``"yes"``, ``0`` or ``0.0`` are refused rather than read as one.
"""

from __future__ import annotations

import difflib
import tomllib
from functools import cache, cached_property
from pathlib import Path
from typing import Any, ClassVar, Literal, get_args, get_origin

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from schemas.alerts import Stage
from stream.core.churn_reasons import ChurnReasons
from stream.core.signals import registry as signals
from stream.core.signals.base import SignalPolicy
from stream.core.signals.registry import Registry
from stream.core.signals.risk import RiskModel

__all__ = [
    "DEFAULT_SEGMENT",
    "STAGES",
    "Alerting",
    "Lifecycle",
    "Policy",
    "PolicyError",
    "SignalPolicy",
    "Stage",
    "StreamSettings",
    "Thresholds",
    "dump_policy_toml",
    "load_policy",
    "parse_policy",
    "policy_model",
    "thresholds_model",
    "to_toml",
]

STAGES: tuple[Stage, ...] = Stage.__args__  # type: ignore[attr-defined]
DEFAULT_SEGMENT = "default"


class PolicyError(ValueError):
    """A policy that cannot be used; the message names the key and the problem."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def thresholds_model(registry: Registry) -> type[BaseModel]:
    """Every detector's settings for one (segment, stage): one field per registered signal.

    Field order is the registry's, so ``churnwatch policy --defaults`` lists signals in
    evaluation order; each default is the signal policy class with its own defaults.
    """
    fields: dict[str, Any] = {spec.name: (spec.policy, spec.policy()) for spec in registry.specs}
    return create_model(
        "Thresholds",
        __base__=_Strict,
        __doc__="Every detector's settings for one (segment, stage).",
        __module__=__name__,
        **fields,
    )


Thresholds = thresholds_model(signals.DEFAULT)
"""The thresholds model of the shipped signals (``policy.thresholds(...)`` returns one)."""


class StreamSettings(_Strict):
    allowed_lateness_seconds: int = Field(
        default=300,
        ge=0,
        le=86_400,
        description="how far behind the partition clock an event may arrive and still count",
    )


class Lifecycle(_Strict):
    onboarding_days: int = Field(default=90, ge=1, le=730)


class Alerting(_Strict):
    """What is published. The per-signal episodes (detectors, hysteresis, cooldowns) run the
    same either way; this only decides how they reach CS tooling."""

    episodes: Literal["account", "signal"] = Field(
        default="account",
        description="'account': one account_at_risk episode per account, its firing signals "
        "as reasons (one ticket per account); 'signal': one episode per (account, signal)",
    )

    @property
    def per_account(self) -> bool:
        return self.episodes == "account"


class Policy(_Strict):
    registry: ClassVar[Registry] = signals.DEFAULT
    """The signals this policy class has thresholds for (see :func:`policy_model`)."""

    stream: StreamSettings = StreamSettings()
    alerting: Alerting = Alerting()
    lifecycle: Lifecycle = Lifecycle()
    defaults: Thresholds = Thresholds()
    stages: dict[Stage, dict[str, Any]] = Field(
        default_factory=lambda: {"onboarding": {"danger_zone": {"line": 0.4}}}
    )
    segments: dict[str, dict[str, Any]] = Field(default_factory=dict)
    risk_model: RiskModel | None = None
    """The learned churn-risk model (``churnwatch calibrate`` writes it); none built in."""
    churn_reasons: ChurnReasons = ChurnReasons()
    """How cancellation reasons map to codes, groups and managed or unmanaged churn."""

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


@cache
def policy_model(registry: Registry) -> type[Policy]:
    """The policy class whose ``defaults`` hold thresholds for ``registry``'s signals.

    The shipped signals get :class:`Policy` itself; another registry (a test's) gets a
    subclass, so every function taking a ``Policy`` accepts it.
    """
    if registry is signals.DEFAULT:
        return Policy
    thresholds = thresholds_model(registry)
    model = create_model(
        "Policy",
        __base__=Policy,
        __module__=__name__,
        defaults=(thresholds, thresholds()),
    )
    model.registry = registry
    return model


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
    model = type(policy.defaults)
    table: dict[tuple[str, Stage], Thresholds] = {}
    for stage in STAGES:
        stage_layer = policy.stages.get(stage, {})
        staged = _merge(defaults, stage_layer)
        table[(DEFAULT_SEGMENT, stage)] = _validate_layer(
            model, staged, f"stages.{stage}", stage_layer
        )
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
            table[(segment, stage)] = _validate_layer(model, merged, f"segments.{segment}", layer)
            inner = per_stage.get(stage, {})
            if inner:
                merged = _merge(merged, inner)
                where = f"segments.{segment}.stages.{stage}"
                table[(segment, stage)] = _validate_layer(model, merged, where, inner)
    return table


def _loose_switches(model: Any, data: Any, where: str) -> list[str]:
    """A problem per boolean field in ``data`` whose value is not a real boolean.

    Pydantic's lax mode would read ``"off"``, ``"yes"``, ``0`` and ``0.0`` as booleans. In a
    hand-written file a quoted or numeric switch is a mistake, and guessing its meaning could
    silently turn a detector off (or on); so it is refused, naming its key. Only the keys
    present in ``data`` are checked: the merged defaults are booleans already. Unknown keys
    are left to the model's own error.
    """
    fields = getattr(model, "model_fields", None)
    if fields is None or not isinstance(data, dict):
        return []
    problems = []
    for key, value in data.items():
        field = fields.get(key)
        if field is None:
            continue
        annotation = field.annotation
        key_path = f"{where}.{key}" if where else str(key)
        members = get_args(annotation) if get_origin(annotation) is not dict else ()
        if annotation is bool or bool in members:
            if not isinstance(value, bool) and not (value is None and type(None) in members):
                problems.append(f"{key_path}: expected true or false (unquoted), got {value!r}")
        elif get_origin(annotation) is dict and isinstance(value, dict):
            inner = get_args(annotation)[1]
            for name, item in value.items():
                problems += _loose_switches(inner, item, f"{key_path}.{name}")
        else:
            for member in (annotation, *members):
                problems += _loose_switches(member, value, key_path)
    return problems


def _validate_layer(
    model: type[BaseModel], merged: dict[str, Any], where: str, layer: dict[str, Any]
) -> Thresholds:
    loose = _loose_switches(model, layer, where)
    if loose:
        raise PolicyError("invalid policy: " + "; ".join(loose))
    try:
        return model.model_validate(merged)
    except ValidationError as exc:
        raise PolicyError(_format(exc, model, where, layer)) from None


def _format(
    exc: ValidationError, root: type[BaseModel], where: str, layer: dict[str, Any] | None = None
) -> str:
    """One line per problem, each naming the key as it is spelled in ``root``'s file layer."""
    lines = []
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
    model = policy_model(signals.active)
    loose = _loose_switches(model, data, "")
    if loose:
        raise PolicyError(f"{source}: invalid policy: " + "; ".join(loose))
    try:
        policy = model.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(f"{source}: " + _format(exc, model, "")) from None
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
    data = policy.model_dump(exclude_defaults=False)
    if data.get("risk_model") is None:
        data.pop("risk_model", None)  # TOML has no null: no model is no table
    return to_toml(data)


def to_toml(data: dict[str, Any]) -> str:
    """TOML that ``tomllib`` reads back to ``data`` (tomli-w does the quoting and the arrays)."""
    return tomli_w.dumps(data)
