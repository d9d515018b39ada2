"""How each event type changes an account's state.

A handler changes state and says whether it did (:data:`APPLIED`), found nothing to change
(:data:`IGNORED`, e.g. an NPS answer older than the one on file) or cancelled the subscription
(:data:`CANCELLED`). Which signals an applied event judges at once is the registry's business
(``SignalSpec.woken_by``): usage events only fill the day's counters and wake nothing, so usage
signals are judged when a day closes, on complete days; billing and survey events wake the
signals they feed, and the alert leaves within the same call.
"""

from __future__ import annotations

from collections.abc import Callable

from schemas import events as ev
from stream.core import ring
from stream.core.purchase_log import PurchaseLog
from stream.core.ring import RING_DAYS
from stream.core.state import FACT_HISTORY, AccountState
from stream.core.ticket_log import TicketLog, push_hot_day
from stream.core.timeutil import to_ms

IGNORED = 0
"""The event changed nothing, so it wakes nothing."""
APPLIED = 1
"""The event changed the state: the signals it wakes are judged now."""
CANCELLED = 2
"""The subscription was cancelled: the engine closes every open episode."""

Handler = Callable[[AccountState, ev.EventBase, int, int], int]


def _used(acct: AccountState, event: ev.EventBase, ms: int, day: int) -> None:
    if ms > acct.last_usage_ms:
        acct.last_usage_ms = ms
    user = event.user_id
    if user is not None:
        ring.mark_user(acct.users, day, user)


def _login(acct: AccountState, event: ev.EventBase, ms: int, day: int) -> int:
    slot = day % RING_DAYS
    if acct.logins[slot] < 0xFFFF:
        acct.logins[slot] += 1
    _used(acct, event, ms, day)
    return APPLIED


def _session(acct: AccountState, event: ev.Session, ms: int, day: int) -> int:
    minutes = int(event.duration_s + 30) // 60
    if minutes:
        ring.add(acct.minutes, day, minutes)
    _used(acct, event, ms, day)
    return APPLIED


def _feature(acct: AccountState, event: ev.EventBase, ms: int, day: int) -> int:
    slot = day % RING_DAYS
    if acct.features[slot] < 0xFFFF:
        acct.features[slot] += 1
    _used(acct, event, ms, day)
    return APPLIED


def _activated(acct: AccountState, event: ev.EventBase, ms: int, day: int) -> int:
    acct.activated_users += 1
    _used(acct, event, ms, day)
    return APPLIED


def _deactivated(acct: AccountState, event: ev.EventBase, ms: int, day: int) -> int:
    if acct.activated_users > 0:
        acct.activated_users -= 1
    return APPLIED


def _ticket_log(acct: AccountState) -> TicketLog:
    log = acct.ticket_log
    if log is None:
        log = acct.ticket_log = TicketLog()
    return log


def _ticket(acct: AccountState, event: ev.SupportTicket, ms: int, day: int) -> int:
    """A new ticket is counted (and its urgency kept); a step of its life moves its bug link
    and records how long it took to solve. Version 2 tickets carry none of that detail and
    only count, as before."""
    if event.is_new:
        ring.add(acct.tickets, day)
        if event.priority in ("high", "urgent"):
            acct.hot_days = push_hot_day(acct.hot_days, day)
    ticket, status = event.ticket_id, event.status
    if ticket is None:
        return APPLIED
    if status == "solved":
        if acct.ticket_log is not None:
            acct.ticket_log.close_ticket(ticket)
        if event.resolution_s is not None:
            _ticket_log(acct).add_solved(ms, event.resolution_s, ticket)
    elif event.linked_issue is not None:
        _ticket_log(acct).link(ticket, event.linked_issue, ms)
    return APPLIED


def _issue_linked(acct: AccountState, event: ev.IssueLinked, ms: int, day: int) -> int:
    return APPLIED if _ticket_log(acct).link(event.ticket_id, event.linked_issue, ms) else IGNORED


def _issue_resolved(acct: AccountState, event: ev.IssueResolved, ms: int, day: int) -> int:
    log = acct.ticket_log
    if log is None or not log.fix_issue(event.linked_issue, ms):
        return IGNORED  # no open ticket of this account waited on it
    return APPLIED


def _purchase(acct: AccountState, ms: int, amount: float, currency: str | None, pid: str) -> int:
    log = acct.purchases
    if log is None:
        log = acct.purchases = PurchaseLog()
    return APPLIED if log.add(ms, amount, currency, pid) else IGNORED


def _order(acct: AccountState, event: ev.OrderPlaced, ms: int, day: int) -> int:
    return _purchase(acct, ms, event.amount, event.currency, event.order_id)


def _nps(acct: AccountState, event: ev.NpsResponse, ms: int, day: int) -> int:
    if ms < acct.nps_ms:
        return IGNORED  # an older answer arriving late does not replace the newer one
    acct.nps_prev = acct.nps_score
    acct.nps_score = event.score
    acct.nps_ms = ms
    return APPLIED


def _paid(acct: AccountState, event: ev.InvoicePaid, ms: int, day: int) -> int:
    if ms > acct.last_paid_ms:
        acct.last_paid_ms = ms
    if event.usage_billed and event.amount is not None:
        # What a usage-billed customer consumed is a purchase, like an order.
        _purchase(acct, ms, event.amount, None, event.invoice_id or "")
    return APPLIED


def _failed(acct: AccountState, event: ev.EventBase, ms: int, day: int) -> int:
    acct.failures = [*acct.failures, ms][-FACT_HISTORY:]
    return APPLIED


def _overdue(acct: AccountState, event: ev.InvoiceOverdue, ms: int, day: int) -> int:
    acct.overdue = [*acct.overdue, (ms, event.days_late, event.invoice_id or "")][-FACT_HISTORY:]
    return APPLIED


def _set_mrr(acct: AccountState, new_mrr: float, ms: int) -> None:
    """Track contraction from the MRR before the first cut, so successive cuts add up."""
    old = acct.mrr
    acct.mrr = new_mrr
    if old is None or new_mrr == old:
        return
    if new_mrr < old:
        if not acct.contraction_ms:
            acct.contraction_from_mrr = old
        acct.contraction_ms = max(acct.contraction_ms, ms)
        acct.contraction_to_mrr = new_mrr
    elif acct.contraction_ms:
        acct.contraction_to_mrr = new_mrr  # a partial or full recovery; the detector judges it


def _plan(acct: AccountState, event: ev.PlanChanged, ms: int, day: int) -> int:
    if acct.mrr is None:
        acct.mrr = event.previous_mrr
    acct.plan = event.new_plan
    _set_mrr(acct, event.new_mrr, ms)
    return APPLIED


def _seats(acct: AccountState, event: ev.SeatsChanged, ms: int, day: int) -> int:
    acct.seats = event.new_seats
    if event.new_mrr is not None:
        _set_mrr(acct, event.new_mrr, ms)
    elif acct.mrr is not None and event.previous_seats > 0:
        _set_mrr(acct, acct.mrr * event.new_seats / event.previous_seats, ms)
    return APPLIED


def _subscription(acct: AccountState, event: ev.SubscriptionStarted, ms: int, day: int) -> int:
    if event.started_at is not None:
        acct.created_ms = to_ms(event.started_at)
    elif event.type == "subscription_started":
        acct.created_ms = ms
    if event.seats is not None:
        acct.seats = event.seats
    acct.billing_period = event.billing_period
    _set_mrr(acct, event.mrr, ms)
    acct.cancelled_ms = 0
    return APPLIED


def _cancelled(acct: AccountState, event: ev.EventBase, ms: int, day: int) -> int:
    acct.cancelled_ms = ms
    return CANCELLED


HANDLERS: dict[str, Handler] = {
    "login": _login,
    "session": _session,
    "feature_used": _feature,
    "user_activated": _activated,
    "user_deactivated": _deactivated,
    "support_ticket": _ticket,
    "issue_linked": _issue_linked,
    "issue_resolved": _issue_resolved,
    "order_placed": _order,
    "nps_response": _nps,
    "invoice_paid": _paid,
    "payment_failed": _failed,
    "invoice_overdue": _overdue,
    "plan_changed": _plan,
    "seats_changed": _seats,
    "subscription_started": _subscription,
    "subscription_renewed": _subscription,
    "subscription_cancelled": _cancelled,
}  # type: ignore[dict-item]


def apply_attributes(acct: AccountState, event: ev.EventBase) -> None:
    """Producers may enrich any event with the account's segment, plan, name and owner.

    Runs before the type's handler, so a plan change's ``new_plan`` wins over the attribute.
    """
    if event.segment is not None:
        acct.segment = event.segment
    if event.plan is not None:
        acct.plan = event.plan
    if event.account_name is not None:
        acct.name = event.account_name
    if event.owner is not None:
        acct.owner = event.owner
