"""Input contracts: every event type decodes, malformed records are rejected with a reason."""

from __future__ import annotations

import pytest

from schemas.codec import dumps
from schemas.events import (
    BILLING_TYPES,
    MAX_EVENT_BYTES,
    USAGE_TYPES,
    InvalidEvent,
    UnknownEvent,
    decode_event,
    topic_of,
)

BASE = {"event_id": "e-1", "account_id": "acct-1", "ts": "2026-03-01T10:00:00.250Z"}
EXTRA = {
    "session": {"duration_s": 90.5},
    "feature_used": {"feature": "reports"},
    "user_activated": {"user_id": "u1"},
    "user_deactivated": {"user_id": "u1"},
    "nps_response": {"score": 4},
    "invoice_overdue": {"days_late": 12},
    "plan_changed": {
        "previous_plan": "pro",
        "new_plan": "starter",
        "previous_mrr": 300,
        "new_mrr": 100,
    },
    "seats_changed": {"previous_seats": 10, "new_seats": 8},
    "subscription_started": {"plan": "pro", "mrr": 300, "seats": 10},
    "subscription_renewed": {"plan": "pro", "mrr": 300, "started_at": "2025-01-01T00:00:00Z"},
    "issue_linked": {"ticket_id": "T-1", "linked_issue": "ENG-1"},
    "issue_resolved": {"linked_issue": "ENG-1"},
    "order_placed": {"order_id": "O-1", "amount": 12.5, "currency": "EUR", "items": 2},
}


@pytest.mark.parametrize("kind", sorted(USAGE_TYPES | BILLING_TYPES))
def test_every_event_type_round_trips(kind):
    raw = {**BASE, "type": kind, **EXTRA.get(kind, {})}
    event = decode_event(dumps(raw))
    assert event.type == kind
    assert event.ts.microsecond == 250_000
    assert topic_of(event) == ("usage" if kind in USAGE_TYPES else "billing")
    again = decode_event(dumps(event.model_dump(mode="json")))
    assert again == event


def test_newer_producers_fields_are_ignored_and_unknown_types_accepted():
    event = decode_event(
        dumps({**BASE, "type": "login", "browser": "firefox", "schema_version": 4})
    )
    assert event.type == "login" and event.schema_version == 4
    unknown = decode_event(dumps({**BASE, "type": "screen_viewed", "screen": "home"}))
    assert isinstance(unknown, UnknownEvent) and topic_of(unknown) is None


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json at all", "not valid JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b"null", "not a JSON object"),
        (dumps({**BASE}), "type: missing"),
        (
            dumps({**BASE, "type": "login", "ts": "2026-03-01T10:00:00"}),
            "ts: Input should have timezone info",
        ),
        (dumps({**BASE, "type": "login", "ts": "yesterday"}), "ts: Input should be a valid"),
        (dumps({**BASE, "type": "nps_response", "score": 11}), "score: Input should be less"),
        (dumps({**BASE, "type": "session", "duration_s": -1}), "duration_s: Input should be"),
        (dumps({**BASE, "type": "session"}), "duration_s: Field required"),
        (dumps({**BASE, "type": "login", "event_id": ""}), "event_id: String should have"),
        (dumps({**BASE, "type": "login", "account_id": 7}), "account_id: Input should be a valid"),
        (dumps({"type": "mystery", "ts": BASE["ts"]}), "event_id: Field required"),
        (dumps({**BASE, "type": "invoice_paid"})[:-1] + b', "amount": 1e999}', "amount: Input"),
    ],
)
def test_malformed_records_are_rejected_with_a_reason(raw, reason):
    with pytest.raises(InvalidEvent) as caught:
        decode_event(raw)
    assert reason in caught.value.reason
    assert "\n" not in caught.value.reason


def test_oversized_records_are_rejected_before_parsing():
    raw = dumps({**BASE, "type": "login", "pad": "x" * MAX_EVENT_BYTES})
    with pytest.raises(InvalidEvent, match="exceeds the 65536-byte limit"):
        decode_event(raw)


def test_offsets_are_kept_as_given_and_compare_in_utc():
    a = decode_event(dumps({**BASE, "type": "login", "ts": "2026-03-01T12:00:00+02:00"}))
    b = decode_event(dumps({**BASE, "type": "login", "ts": "2026-03-01T10:00:00Z"}))
    assert a.ts == b.ts
