"""Alert events: the payload customer-success tooling subscribes to.

An alert belongs to an *episode*. By default (the policy's ``[alerting] episodes =
"account"``) that is one :data:`ACCOUNT_AT_RISK` episode per account: open from the moment
its first signal fires until none is firing, with the firing signals listed as ``reasons``.
With ``episodes = "signal"`` it is one (account, signal) risk condition, as in schema version
1, and ``reasons`` holds that signal's own reason, so consumers can always read ``reasons``.
The episode's ``alert_id`` is derived from account, signal and episode start, so a
redelivered input after a crash reproduces the same id. Within an episode ``sequence`` counts
records (0 = opened), so consumers de-duplicate on ``(alert_id, sequence)`` and keep the
highest sequence as the current state.

Version 3 (from 2): the account context gained ``name``, ``owner`` (the CSM) and
``renewal_date``; an episode that a cancellation ends is ``churned`` (its last record, like
``resolved``, with the cancellation's reason in ``resolution``), no longer ``resolved``.
Version 2 (from 1): ``reasons`` was added, and ``signal`` may be ``account_at_risk``.

The published JSON Schema (``schemas/alert.schema.json``) is generated from
:class:`AlertEvent`; a test fails when the two disagree.

Signal names belong to the signal registry (:mod:`stream.core.signals.registry`), where each
signal is declared once. This contract layer sits below the core and imports nothing from it,
so the model only checks a signal's form, and the published schema's enum is generated from the
names the caller passes: ``alert_json_schema_text(registry.SIGNALS)``, followed by
:data:`ACCOUNT_AT_RISK`. That one name lives here, not in the registry: it is no detector but
the contract's own roll-up of the registered signals (the registry refuses a signal of that
name). The core only ever builds alerts for registered signals and for that roll-up.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

ALERT_SCHEMA_VERSION = 3
ALERT_SCHEMA_PATH = Path(__file__).with_name("alert.schema.json")

Signal = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
"""A registered signal's name (``stream.core.signals.registry``), or :data:`ACCOUNT_AT_RISK`."""

ACCOUNT_AT_RISK = "account_at_risk"
"""The signal of an account-level episode: whatever registered signals are firing, one
episode per account, with those signals as its ``reasons``."""

Dimension = Literal["usage", "adoption", "billing", "support", "sentiment"]
Severity = Literal["low", "medium", "high", "critical"]
Kind = Literal["opened", "updated", "resolved", "churned"]
HealthStatus = Literal["healthy", "watch", "at_risk", "critical"]
Stage = Literal["onboarding", "established"]

DIMENSIONS: tuple[Dimension, ...] = Dimension.__args__  # type: ignore[attr-defined]
SEVERITY_RANK: dict[str, int] = {"low": 1, "medium": 2, "high": 3, "critical": 4}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DailyPoint(_Frozen):
    day: date
    value: float


class Fact(_Frozen):
    """A dated input fact that explains an alert (a failed payment, an NPS answer, ...)."""

    ts: datetime
    description: str


class Evidence(_Frozen):
    daily: list[DailyPoint] = Field(
        default_factory=list, description="Recent daily values of the alert's metric, oldest first."
    )
    facts: list[Fact] = Field(default_factory=list)


class Health(_Frozen):
    """Scores 0-100 (100 = healthy). ``overall`` follows the worst dimension."""

    overall: int = Field(ge=0, le=100)
    status: HealthStatus
    usage: int = Field(ge=0, le=100)
    adoption: int = Field(ge=0, le=100)
    billing: int = Field(ge=0, le=100)
    support: int = Field(ge=0, le=100)
    sentiment: int = Field(ge=0, le=100)


class AccountContext(_Frozen):
    name: str | None = Field(description="The account's name, when producers send it.")
    owner: str | None = Field(description="The account's CSM, when producers send it.")
    segment: str
    stage: Stage
    plan: str | None
    mrr: float | None
    seats: int | None
    tenure_days: int | None
    renewal_date: date | None = Field(
        description="The next renewal, from the subscription's start and billing period."
    )


class Reason(_Frozen):
    """One signal behind an alert: what fired, since when, how badly, and the numbers behind it.

    The numbers are those of the judgement that opened the signal's episode or last escalated
    it (on a resolved record: the judgement that recovered it).
    """

    signal: Signal
    dimension: Dimension
    severity: Severity
    since: datetime = Field(description="When this signal's own episode opened.")
    metric: str
    value: float
    baseline: float | None
    threshold: float
    window_days: int | None
    explanation: str = Field(description="One line a CS manager can read.")


class AlertEvent(_Frozen):
    schema_version: Literal[3] = ALERT_SCHEMA_VERSION
    alert_id: str = Field(description="Stable per episode: hash of account, signal, episode start.")
    sequence: int = Field(
        ge=0, description="0 for opened, +1 for each later record of the episode."
    )
    kind: Kind
    account_id: str
    signal: Signal
    dimension: Dimension
    severity: Severity
    ts: datetime = Field(description="Event time at which the transition happened.")
    episode_start: datetime
    trigger: Literal["event", "day_close"] = Field(
        description="An input event, or the event-time clock passing the end of a day."
    )
    metric: str
    value: float
    baseline: float | None
    threshold: float
    window_days: int | None
    explanation: str = Field(description="One line a CS manager can read.")
    resolution: str | None = Field(
        default=None,
        description="Why the episode ended (resolved and churned only): a churned episode "
        "names the cancellation's reason, classified by the policy's taxonomy.",
    )
    reasons: list[Reason] = Field(
        min_length=1,
        description="The signals behind this record, most severe first (ties in signal order); "
        "the top-level metric, explanation, evidence and playbook are the first one's. Opened "
        "and updated: the signals firing now. Resolved: those whose recovery ended the "
        "episode. A per-signal episode lists just its own signal.",
    )
    evidence: Evidence
    health: Health
    account: AccountContext
    playbook: str


def alert_json_schema_text(signals: Sequence[str]) -> str:
    """The schema exactly as the checked-in file holds it, listing ``signals``.

    Pass ``stream.core.signals.registry.SIGNALS``: the contract layer sits below the core.
    """
    from schemas.codec import dumps_pretty

    return dumps_pretty(alert_json_schema(signals)).decode() + "\n"


def alert_json_schema(signals: Sequence[str]) -> dict:
    """The JSON Schema CS tooling codes against, as published in the repository.

    ``signal`` is published as the enum of the registered signals, in evaluation order, then
    :data:`ACCOUNT_AT_RISK`; a reason's ``signal`` is one of the registered ones.
    """
    schema = AlertEvent.model_json_schema()
    names = list(signals)
    schema["properties"]["signal"] = {
        "enum": [*names, ACCOUNT_AT_RISK],
        "title": "Signal",
        "type": "string",
    }
    schema["$defs"]["Reason"]["properties"]["signal"] = {
        "enum": names,
        "title": "Signal",
        "type": "string",
    }
    schema["$id"] = "https://churnwatch.dev/schemas/alert.schema.json"
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema
