"""Event schema 3: the ticket lifecycle, issue links and orders; bad ones are refused with a
reason, optional detail may be left out, and version 2 events mean what they meant."""

from __future__ import annotations

import pytest

from schemas.codec import dumps
from schemas.events import (
    BILLING_TYPES,
    USAGE_TYPES,
    IssueLinked,
    OrderPlaced,
    SupportTicket,
    decode_event,
    topic_of,
)
from stream.run.validate import Rejection, validate
from tests.helpers import event


def _check(raw: dict):
    return validate(dumps(raw))


_ORDER = {"order_id": "O", "amount": 3, "currency": "EUR"}


@pytest.mark.parametrize(
    ("raw", "reason", "kind"),
    [
        (event("support_ticket", category="complaint"), "category: Input should be", "category"),
        (
            event("support_ticket", ticket_id="T-1", status="solved", resolution_s=-5),
            "resolution_s: Input should be greater than or equal to 0",
            "resolution_s",
        ),
        (
            event("support_ticket", ticket_id="T-1", first_response_s=-1.0),
            "first_response_s: Input should be greater than or equal to 0",
            "first_response_s",
        ),
        (
            event("support_ticket", status="closed", ticket_id="T-1"),
            "status: Input should",
            "status",
        ),
        (event("support_ticket", status="solved"), "ticket_id: required with a", "ticket_id"),
        (event("support_ticket", linked_issue="ENG-1"), "ticket_id: required", "ticket_id"),
        (event("issue_linked", linked_issue="ENG-1"), "ticket_id: Field required", "ticket_id"),
        (event("issue_linked", ticket_id="T-1"), "linked_issue: Field required", "linked_issue"),
        (event("issue_resolved"), "linked_issue: Field required", "linked_issue"),
        (
            event("issue_resolved", linked_issue=""),
            "linked_issue: String should have",
            "linked_issue",
        ),
        (event("order_placed", amount=5, currency="EUR"), "order_id: Field required", "order_id"),
        (event("order_placed", order_id="O", currency="EUR"), "amount: Field required", "amount"),
        (event("order_placed", **{**_ORDER, "amount": -3}), "amount: Input should be", "amount"),
        (
            event("order_placed", **{**_ORDER, "currency": "euro"}),
            "currency: String should match",
            "currency",
        ),
        (event("order_placed", **_ORDER, items=0), "items: Input should be", "items"),
    ],
)
def test_bad_quality_and_purchase_events_are_refused_with_a_reason(raw, reason, kind):
    found = _check(raw)
    assert isinstance(found, Rejection), found
    assert found.reason.startswith(reason), found.reason
    assert found.kind == kind


def test_the_detail_is_optional_and_a_version_2_ticket_is_a_new_ticket():
    plain = decode_event(dumps(event("support_ticket", priority="high")))
    assert isinstance(plain, SupportTicket) and plain.is_new
    assert plain.category is None and plain.status is None and plain.resolution_s is None
    full = decode_event(
        dumps(
            event(
                "support_ticket", ticket_id="T-1", category="outage", status="solved",
                linked_issue="ENG-9", first_response_s=60, resolution_s=7200.5, schema_version=3,
            )
        )
    )  # fmt: skip
    assert not full.is_new and full.resolution_s == 7200.5
    reopened = decode_event(dumps(event("support_ticket", ticket_id="T-1", status="reopened")))
    assert not reopened.is_new
    newer = decode_event(dumps(event("order_placed", order_id="O", amount=9.5, currency="USD",
                                     coupon="X")))  # fmt: skip
    assert isinstance(newer, OrderPlaced) and newer.items is None, "unknown fields are ignored"


def test_issue_events_travel_with_tickets_and_orders_with_invoices():
    assert {"support_ticket", "issue_linked", "issue_resolved"} <= USAGE_TYPES
    assert {"order_placed", "invoice_paid"} <= BILLING_TYPES
    linked = decode_event(dumps(event("issue_linked", ticket_id="T", linked_issue="ENG-1")))
    assert isinstance(linked, IssueLinked) and topic_of(linked) == "usage"
    order = decode_event(dumps(event("order_placed", order_id="O", amount=1, currency="EUR")))
    assert topic_of(order) == "billing"
