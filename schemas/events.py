"""Input events: what product analytics and the billing system send to churnwatch.

Producers code against these models. Every event carries a unique ``event_id`` (used to drop
redeliveries), the ``account_id`` it belongs to (the record key on Kafka), its own event time
``ts`` (timezone-aware; all windows, baselines and cooldowns are computed from it, never from
the wall clock) and a ``schema_version``. Account attributes (``plan``, ``segment``,
``account_name`` and ``owner``, the account's CSM) are optional on every event because
enrichment differs between producers; the latest value given wins.

Decoding is tolerant in one direction only: fields added by newer producers are ignored and an
unknown ``type`` is accepted as :class:`UnknownEvent` (counted, never fed to detectors), while
anything malformed raises :class:`InvalidEvent` with a short reason fit for a dead-letter record.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
)

EVENT_SCHEMA_VERSION = 2
"""Version 2 (from 1): the optional account attributes ``account_name`` and ``owner``."""
MAX_EVENT_BYTES = 64 * 1024
"""Larger records are rejected before parsing: no legitimate event is anywhere near this."""

Id = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=100)]
Money = Annotated[float, Field(ge=0, le=1e12, allow_inf_nan=False)]
Count = Annotated[int, Field(ge=0, le=10_000_000)]


class InvalidEvent(ValueError):
    """A record that cannot be an event; ``reason`` is one line for the dead-letter record."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def reason_kind(reason: str) -> str:
    """A rejection reason grouped for counting: the field name or the first words
    (``"score: Input should be ..."`` is ``score``, ``"not valid JSON: ..."`` is
    ``not valid JSON``), so replay summaries and metric labels keep a small set of values."""
    return reason.split(":", 1)[0][:40]


class EventBase(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    schema_version: int = Field(default=EVENT_SCHEMA_VERSION, ge=1)
    event_id: Id
    account_id: Id
    ts: AwareDatetime
    user_id: Id | None = None
    plan: Name | None = None
    segment: Name | None = None
    account_name: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    owner: Id | None = Field(default=None, description="The account's CSM (a name or an id).")


# --- usage topic -------------------------------------------------------------------------


class Login(EventBase):
    type: Literal["login"] = "login"


class Session(EventBase):
    """A finished session; ``duration_s`` feeds the time-in-product detector."""

    type: Literal["session"] = "session"
    duration_s: float = Field(ge=0, le=86_400, allow_inf_nan=False)


class FeatureUsed(EventBase):
    type: Literal["feature_used"] = "feature_used"
    feature: Name


class UserActivated(EventBase):
    """A seat handed to a person (invited and signed in for the first time)."""

    type: Literal["user_activated"] = "user_activated"
    user_id: Id


class UserDeactivated(EventBase):
    type: Literal["user_deactivated"] = "user_deactivated"
    user_id: Id


class SupportTicket(EventBase):
    type: Literal["support_ticket"] = "support_ticket"
    ticket_id: Id | None = None
    priority: Literal["low", "normal", "high", "urgent"] | None = None


class NpsResponse(EventBase):
    type: Literal["nps_response"] = "nps_response"
    score: int = Field(ge=0, le=10)


# --- billing topic -----------------------------------------------------------------------


class InvoicePaid(EventBase):
    type: Literal["invoice_paid"] = "invoice_paid"
    invoice_id: Id | None = None
    amount: Money | None = None


class PaymentFailed(EventBase):
    type: Literal["payment_failed"] = "payment_failed"
    invoice_id: Id | None = None
    amount: Money | None = None
    reason: Annotated[str, StringConstraints(max_length=500)] | None = None


class InvoiceOverdue(EventBase):
    type: Literal["invoice_overdue"] = "invoice_overdue"
    invoice_id: Id | None = None
    days_late: int = Field(ge=0, le=3650)


class PlanChanged(EventBase):
    type: Literal["plan_changed"] = "plan_changed"
    previous_plan: Name
    new_plan: Name
    previous_mrr: Money
    new_mrr: Money


class SeatsChanged(EventBase):
    type: Literal["seats_changed"] = "seats_changed"
    previous_seats: Count
    new_seats: Count
    new_mrr: Money | None = None


class _Subscription(EventBase):
    """Start and renewal carry the subscription's terms so state can be rebuilt from them."""

    plan: Name
    mrr: Money
    seats: Count | None = None
    billing_period: Literal["monthly", "annual"] = "monthly"
    started_at: AwareDatetime | None = None
    """Original contract start, for accounts whose start predates the event log."""


class SubscriptionStarted(_Subscription):
    type: Literal["subscription_started"] = "subscription_started"


class SubscriptionRenewed(_Subscription):
    type: Literal["subscription_renewed"] = "subscription_renewed"


class SubscriptionCancelled(EventBase):
    type: Literal["subscription_cancelled"] = "subscription_cancelled"
    reason: Annotated[str, StringConstraints(max_length=500)] | None = None
    voluntary: bool | None = None


class UnknownEvent(EventBase):
    """A well-formed event of a type this version does not know (a newer producer)."""

    type: Annotated[str, StringConstraints(min_length=1, max_length=100)]


USAGE_EVENTS: tuple[type[EventBase], ...] = (
    Login,
    Session,
    FeatureUsed,
    UserActivated,
    UserDeactivated,
    SupportTicket,
    NpsResponse,
)
BILLING_EVENTS: tuple[type[EventBase], ...] = (
    InvoicePaid,
    PaymentFailed,
    InvoiceOverdue,
    PlanChanged,
    SeatsChanged,
    SubscriptionStarted,
    SubscriptionRenewed,
    SubscriptionCancelled,
)
KnownEvent = Annotated[
    Login
    | Session
    | FeatureUsed
    | UserActivated
    | UserDeactivated
    | SupportTicket
    | NpsResponse
    | InvoicePaid
    | PaymentFailed
    | InvoiceOverdue
    | PlanChanged
    | SeatsChanged
    | SubscriptionStarted
    | SubscriptionRenewed
    | SubscriptionCancelled,
    Field(discriminator="type"),
]
Event = KnownEvent | UnknownEvent


def _type_name(model: type[EventBase]) -> str:
    return model.model_fields["type"].default


USAGE_TYPES = frozenset(_type_name(m) for m in USAGE_EVENTS)
BILLING_TYPES = frozenset(_type_name(m) for m in BILLING_EVENTS)

_KNOWN = TypeAdapter(KnownEvent)
_validate_known = _KNOWN.validator.validate_json  # the adapter's wrapper costs ~15% per event
_MAX_REASONS = 3


def topic_of(event: EventBase) -> Literal["usage", "billing"] | None:
    """Which input topic an event belongs on; ``None`` for unknown types."""
    kind = getattr(event, "type", None)
    if kind in USAGE_TYPES:
        return "usage"
    if kind in BILLING_TYPES:
        return "billing"
    return None


def source_index(event: EventBase) -> int:
    """0 for the usage topic, 1 for billing; unknown types travel with usage."""
    return 1 if event.type in BILLING_TYPES else 0  # type: ignore[attr-defined]


def decode_event(raw: bytes | bytearray | memoryview | str) -> KnownEvent | UnknownEvent:
    """Validate one serialised event; raise :class:`InvalidEvent` with a one-line reason."""
    if len(raw) > MAX_EVENT_BYTES:
        raise InvalidEvent(f"record of {len(raw)} bytes exceeds the {MAX_EVENT_BYTES}-byte limit")
    try:
        return _validate_known(raw)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        if errors and errors[0]["type"] == "union_tag_invalid":
            try:
                return UnknownEvent.model_validate_json(raw)
            except ValidationError as inner:
                raise InvalidEvent(_describe(inner, tagged=False)) from None
        raise InvalidEvent(_describe(exc, tagged=True)) from None


def _describe(exc: ValidationError, *, tagged: bool) -> str:
    """Condense pydantic's errors into the few words an operator needs.

    Errors from the discriminated union carry the event type as the first location element;
    ``tagged`` drops it so the reason names the field as the producer wrote it.
    """
    parts = []
    errors = exc.errors(include_url=False, include_input=False)
    for err in errors[:_MAX_REASONS]:
        kind = err["type"]
        if kind == "json_invalid":
            return f"not valid JSON: {err['ctx'].get('error', err['msg'])}"
        if kind in ("model_type", "model_attributes_type", "dict_type"):
            return "not a JSON object"
        if kind == "union_tag_not_found":
            parts.append("type: missing")
            continue
        path = err["loc"][1:] if tagged else err["loc"]
        loc = ".".join(str(p) for p in path) or "event"
        parts.append(f"{loc}: {err['msg']}")
    more = len(errors) - _MAX_REASONS
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)
