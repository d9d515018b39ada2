"""Account-health snapshots: every account's state at each day close, alerted or not.

Alerts say when something changed; a CS team also needs to see the accounts nothing happened
to, and how each one trends. So at each day close the worker publishes one snapshot per
account to the compacted ``account-health`` topic, keyed by ``account_id``: health per
dimension, the learned churn-risk estimate when the policy has a model, the day's activity,
and the account facts a CS team works with (name, owner, MRR, renewal date). ``churnwatch
replay --health-out`` writes the very same snapshots, byte for byte, from a log.

A snapshot describes the closed ``day`` as it ended: ``ts`` is the end of that day (UTC). The
topic is compacted, so it keeps each account's latest snapshot; the read model keeps a daily
history as the snapshots arrive.

The published JSON Schema (``schemas/health.schema.json``) is generated from
:class:`AccountHealth`; a test fails when the two disagree.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.alerts import Health, Stage

HEALTH_SCHEMA_VERSION = 1
HEALTH_SCHEMA_PATH = Path(__file__).with_name("health.schema.json")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DayActivity(_Frozen):
    """What happened on the account during ``day``: the timeline's points."""

    logins: int = Field(ge=0)
    active_users: int = Field(ge=0, description="Distinct users seen that day (estimated).")
    minutes: int = Field(ge=0, description="Minutes in the product, from finished sessions.")
    feature_uses: int = Field(ge=0)
    tickets: int = Field(ge=0, description="Support tickets opened that day.")
    nps_score: int | None = Field(
        default=None, ge=0, le=10, description="The NPS answer given that day, if any."
    )
    invoice_paid: bool = Field(description="An invoice was paid that day.")
    payments_failed: int = Field(ge=0)
    invoices_overdue: int = Field(ge=0)


class KeyMetrics(_Frozen):
    """The numbers a CS manager reads first, over windows ending with ``day``."""

    logins_7d: int = Field(ge=0)
    logins_28d: int = Field(ge=0)
    active_users_28d: int = Field(ge=0, description="Distinct users in 28 days (estimated).")
    active_days_28d: int = Field(ge=0, le=28)
    minutes_28d: int = Field(ge=0)
    feature_uses_28d: int = Field(ge=0)
    tickets_28d: int = Field(ge=0)
    days_since_last_use: int | None = Field(
        ge=0, description="None when nobody has used the product yet."
    )
    nps_score: int | None = Field(ge=0, le=10, description="The latest NPS answer.")
    unpaid_failed_payment: bool


class AccountHealth(_Frozen):
    schema_version: Literal[1] = HEALTH_SCHEMA_VERSION
    account_id: str
    day: date = Field(description="The closed day this snapshot describes.")
    ts: datetime = Field(description="The end of ``day`` (UTC): the instant of the snapshot.")
    status: Literal["active", "cancelled"] = Field(
        description="``cancelled`` once the subscription was cancelled (the last snapshot)."
    )
    account_name: str | None
    owner: str | None = Field(description="The account's CSM, as the events name them.")
    segment: str
    plan: str | None
    stage: Stage
    mrr: float | None
    seats: int | None
    tenure_days: int | None
    billing_period: str | None
    renewal_date: date | None = Field(
        description="The next renewal, from the subscription's start and billing period."
    )
    last_activity: datetime | None = Field(description="The latest product use, if any.")
    health: Health
    risk_estimate: float | None = Field(
        ge=0,
        le=1,
        description="The learned policy's churn probability within its horizon; None when the "
        "policy has no model (or the account is too new for it).",
    )
    open_signals: list[str] = Field(description="The signals firing at the close.")
    metrics: KeyMetrics
    activity: DayActivity


def health_json_schema() -> dict:
    schema = AccountHealth.model_json_schema()
    schema["$id"] = "https://churnwatch.dev/schemas/health.schema.json"
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def health_json_schema_text() -> str:
    from schemas.codec import dumps_pretty

    return dumps_pretty(health_json_schema()).decode() + "\n"
