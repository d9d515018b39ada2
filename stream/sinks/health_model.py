"""The read model's rules for account-health snapshots: the latest one, and a daily trend.

The worker publishes one snapshot per account at every day close (``account-health``, see
:mod:`schemas.health`). The read model keeps two things per account from them:

* the **latest** snapshot, replaced only by one whose ``day`` is the same or later: a
  redelivered older snapshot cannot roll the account back (on a tie, the later arrival wins);
* a **daily history** of :data:`HISTORY_DAYS` days, compact: one fixed-width binary slot per
  day (:data:`SLOT`, 28 bytes), the slot of day ``d`` at index ``d % HISTORY_DAYS``. A slot is
  only overwritten by a snapshot of the same or a later day, so the history holds each
  account's newest 180 days whatever order the snapshots come in, in 5,040 bytes.

Applying a snapshot twice changes nothing. :class:`HealthModel` is the reference
implementation over plain Python values; the Redis store (:mod:`stream.sinks.health_store`)
applies the same rules in one script per snapshot, and the tests check the two agree.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from datetime import date, datetime

import orjson
from pydantic import ValidationError

from schemas.health import AccountHealth

HISTORY_DAYS = 180
"""Days of trend kept per account: two quarters, enough to see a renewal cycle coming."""

SLOT = struct.Struct(">I6BHHHIHBBBBBx")
"""One day of an account, big-endian: day number + 1 (0 = empty slot), overall health and the
five dimensions (0-100), the risk estimate in 1/10,000 (65535 = none), logins, active users,
minutes, feature uses, tickets, the NPS answer (255 = none), invoice paid (0/1), failed
payments, overdue invoices; one padding byte. Counts saturate at their field's maximum."""

HEALTH_KEYS = ("overall", "usage", "adoption", "billing", "support", "sentiment")
ACTIVITY_KEYS = ("logins", "active_users", "minutes", "feature_uses", "tickets", "nps_score",
                 "invoice_paid", "payments_failed", "invoices_overdue")  # fmt: skip
_NO_RISK, _NO_NPS = 0xFFFF, 0xFF
_EPOCH = date(1970, 1, 1).toordinal()


def day_number(day: str | date) -> int:
    """``2026-04-03`` as days since 1970-01-01: what orders snapshots and picks the slot."""
    when = date.fromisoformat(day) if isinstance(day, str) else day
    return when.toordinal() - _EPOCH


def day_text(number: int) -> str:
    return date.fromordinal(number + _EPOCH).isoformat()


def _cap(value: int | None, top: int) -> int:
    return max(0, min(int(value or 0), top))


def encode_slot(snapshot: dict) -> bytes:
    """The snapshot's day as its history slot (:data:`SLOT`)."""
    health, act = snapshot["health"], snapshot["activity"]
    risk = snapshot.get("risk_estimate")
    nps = act.get("nps_score")
    return SLOT.pack(
        day_number(snapshot["day"]) + 1,
        *(_cap(health[k], 100) for k in HEALTH_KEYS),
        _NO_RISK if risk is None else _cap(round(risk * 10_000), 10_000),
        _cap(act["logins"], 0xFFFF), _cap(act["active_users"], 0xFFFF),
        _cap(act["minutes"], 0xFFFFFFFF), _cap(act["feature_uses"], 0xFFFF),
        _cap(act["tickets"], 0xFF), _NO_NPS if nps is None else _cap(nps, 10),
        1 if act["invoice_paid"] else 0, _cap(act["payments_failed"], 0xFF),
        _cap(act["invoices_overdue"], 0xFF),
    )  # fmt: skip


def decode_slot(raw: bytes) -> dict | None:
    """A slot back as a point of the trend; None for an empty slot."""
    values = SLOT.unpack(raw)
    if values[0] == 0:
        return None
    health = dict(zip(HEALTH_KEYS, values[1:7], strict=True))
    risk, nps = values[7], values[13]
    activity = dict(zip(ACTIVITY_KEYS, values[8:17], strict=True))
    activity["nps_score"] = None if nps == _NO_NPS else nps
    activity["invoice_paid"] = bool(activity["invoice_paid"])
    return {"day": day_text(values[0] - 1), "health": health,
            "risk_estimate": None if risk == _NO_RISK else risk / 10_000,
            "activity": activity}  # fmt: skip


def slot_offset(day: int) -> int:
    return (day % HISTORY_DAYS) * SLOT.size


def history(raw: bytes | None, latest_day: int | None = None) -> list[dict]:
    """The trend a history string holds, oldest day first: only the :data:`HISTORY_DAYS` days
    up to ``latest_day`` (the latest snapshot's), so a slot a gap left behind is not shown."""
    points = []
    for start in range(0, len(raw or b"") - SLOT.size + 1, SLOT.size):
        point = decode_slot(raw[start : start + SLOT.size])  # type: ignore[index]
        if point is not None:
            points.append((day_number(point["day"]), point))
    if latest_day is None and points:
        latest_day = max(day for day, _ in points)
    return [p for day, p in sorted(points, key=lambda x: x[0])
            if latest_day is None or latest_day - HISTORY_DAYS < day <= latest_day]  # fmt: skip


def write_slot(buffer: bytearray, day: int, slot: bytes) -> bool:
    """The slot rule on a history string: write ``slot`` at ``day``'s place unless that place
    holds a later day. Returns whether the bytes changed."""
    at = slot_offset(day)
    if len(buffer) < at + SLOT.size:
        buffer.extend(bytes(at + SLOT.size - len(buffer)))
    held = int.from_bytes(buffer[at : at + 4], "big")
    if held - 1 > day or buffer[at : at + SLOT.size] == slot:
        return False
    buffer[at : at + SLOT.size] = slot
    return True


def list_fields(snapshot: dict) -> dict:
    """What the account lists need of a snapshot, small enough to read 100k of them at once."""
    return {
        "account_id": snapshot["account_id"],
        "day": str(snapshot["day"]),
        "ts": str(snapshot["ts"]),
        "status": snapshot["status"],
        **{k: snapshot.get(k) for k in ("account_name", "owner", "segment", "stage", "plan",
                                         "mrr", "seats", "tenure_days")},
        "renewal_date": _text(snapshot.get("renewal_date")),
        "last_activity": _text(snapshot.get("last_activity")),
        "health": snapshot["health"],
        "risk_estimate": snapshot.get("risk_estimate"),
        "open_signals": list(snapshot.get("open_signals") or []),
    }  # fmt: skip


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime | date):
        return value.isoformat().replace("+00:00", "Z")
    return str(value)


def parse_snapshot(value: bytes | None) -> dict | None:
    """A snapshot from the topic, checked against :class:`AccountHealth`; None for anything
    else (the feed counts it and skips it). The JSON as sent is kept, not the model's dump, so
    the API serves the producer's bytes' values."""
    try:
        AccountHealth.model_validate_json(value or b"")
        return orjson.loads(value)  # type: ignore[arg-type]
    except (ValidationError, ValueError):
        return None


@dataclass
class HealthModel:
    """Every account's latest snapshot and trend in memory: the oracle for the Redis store."""

    latest: dict[str, dict] = field(default_factory=dict)
    latest_day: dict[str, int] = field(default_factory=dict)
    slots: dict[str, bytearray] = field(default_factory=dict)

    def apply(self, snapshot: dict) -> bool:
        """Apply one snapshot; returns whether anything changed."""
        account, day = snapshot["account_id"], day_number(snapshot["day"])
        changed = False
        if self.latest_day.get(account, -1) <= day and self.latest.get(account) != snapshot:
            self.latest[account], self.latest_day[account] = snapshot, day
            changed = True
        buffer = self.slots.setdefault(account, bytearray())
        return write_slot(buffer, day, encode_slot(snapshot)) or changed

    def history(self, account: str) -> list[dict]:
        return history(bytes(self.slots.get(account, b"")), self.latest_day.get(account))
