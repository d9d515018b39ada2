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
    model_validator,
)

EVENT_SCHEMA_VERSION = 3
"""Version 3 (from 2): the optional ticket lifecycle fields on ``support_ticket``
(``category``, ``linked_issue``, ``status``, ``first_response_s``, ``resolution_s``), the new
``issue_linked`` and ``issue_resolved`` (usage topic), ``order_placed`` (billing topic) and the
optional ``usage_billed`` flag of ``invoice_paid``. Every version 2 event is a valid version 3
event with the same meaning. Version 2 (from 1): the optional account attributes
``account_name`` and ``owner``."""
MAX_EVENT_BYTES = 64 * 1024
"""Larger records are rejected before parsing: no legitimate event is anywhere near this."""

Id = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=100)]
Money = Annotated[float, Field(ge=0, le=1e12, allow_inf_nan=False)]
Count = Annotated[int, Field(ge=0, le=10_000_000)]
Seconds = Annotated[float, Field(ge=0, le=3650 * 86_400, allow_inf_nan=False)]
"""A duration a help desk measured (first response, resolution): never negative, at most ten
years, so a clock bug upstream is dead-lettered instead of skewing a median."""
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
"""An ISO 4217 code such as ``EUR``."""

TICKET_CATEGORIES = ("question", "bug", "outage", "billing", "feature_request", "other")
TICKET_STATUSES = ("opened", "updated", "solved", "reopened")


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
    """A help-desk ticket, or (with ``status``) a step of its life.

    Without ``status`` an event is a new ticket, as in version 2. A ticket that is opened and
    later solved arrives as several events with the same ``ticket_id``; only ``opened`` (or no
    status) counts as a new ticket, so the ticket rate stays what it was for version 2
    producers. ``linked_issue`` is the engineering tracker's key (``PROJ-123``) when the
    ticket is a bug report already linked to an issue; ``resolution_s`` comes with
    ``solved``.
    """

    type: Literal["support_ticket"] = "support_ticket"
    ticket_id: Id | None = None
    priority: Literal["low", "normal", "high", "urgent"] | None = None
    category: Literal["question", "bug", "outage", "billing", "feature_request", "other"] | None = (
        None
    )
    linked_issue: Id | None = None
    status: Literal["opened", "updated", "solved", "reopened"] | None = None
    first_response_s: Seconds | None = None
    resolution_s: Seconds | None = None

    @model_validator(mode="after")
    def _identified(self) -> SupportTicket:
        # A step of a ticket's life, or a link to an issue, means nothing without the ticket:
        # refused (dead-lettered) rather than counted as a new anonymous ticket.
        if self.ticket_id is None and (
            self.status not in (None, "opened") or self.linked_issue is not None
        ):
            raise ValueError(
                "ticket_id: required with a status other than 'opened' or with a linked_issue"
            )
        return self

    @property
    def is_new(self) -> bool:
        """A new ticket (the ticket rate counts these), not a later step of one."""
        return self.status is None or self.status == "opened"


class IssueLinked(EventBase):
    """A ticket linked to an engineering issue after it was opened (the help desk's link to
    the issue tracker). On the usage topic with the tickets, so it is applied after the
    ticket it links, in the order the help desk sent them."""

    type: Literal["issue_linked"] = "issue_linked"
    ticket_id: Id
    linked_issue: Id


class IssueResolved(EventBase):
    """The engineering issue is fixed: every open ticket of this account linked to it is no
    longer a bug exposure. Sent per affected account (the record key is the account)."""

    type: Literal["issue_resolved"] = "issue_resolved"
    linked_issue: Id


class NpsResponse(EventBase):
    type: Literal["nps_response"] = "nps_response"
    score: int = Field(ge=0, le=10)


# --- billing topic -----------------------------------------------------------------------


class InvoicePaid(EventBase):
    """A paid invoice. ``usage_billed`` marks an invoice whose amount is what the customer
    consumed (metered, usage-based billing): such an invoice is a purchase, judged with the
    orders by the purchase signals; a subscription's flat invoice is not."""

    type: Literal["invoice_paid"] = "invoice_paid"
    invoice_id: Id | None = None
    amount: Money | None = None
    usage_billed: bool | None = None


class OrderPlaced(EventBase):
    """A purchase of a transactional customer (an order in a shop, a top-up, a booking).

    Accounts need no subscription to place orders. On the billing topic, with the invoices,
    because both come from the commerce or billing system and the purchase signals read them
    as one history.
    """

    type: Literal["order_placed"] = "order_placed"
    order_id: Id
    amount: Money
    currency: Currency
    items: Annotated[int, Field(ge=1, le=1_000_000)] | None = None


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
    IssueLinked,
    IssueResolved,
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
    OrderPlaced,
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
    | SubscriptionCancelled
    | IssueLinked
    | IssueResolved
    | OrderPlaced,
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
        loc = ".".join(str(p) for p in path)
        if not loc and kind == "value_error":
            # A rule across fields names its field itself ("ticket_id: required with ...").
            parts.append(err["msg"].removeprefix("Value error, "))
            continue
        parts.append(f"{loc or 'event'}: {err['msg']}")
    more = len(errors) - _MAX_REASONS
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)
