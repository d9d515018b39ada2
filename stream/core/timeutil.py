"""Event-time arithmetic in integer milliseconds and UTC day numbers.

Integers keep the core exact and cheap: a day number is ``ts_ms // DAY_MS`` and every window,
tenure and cooldown is plain integer arithmetic, identical in the live worker and in replay.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

DAY_MS = 86_400_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def to_ms(ts: datetime) -> int:
    """Milliseconds since the epoch for an aware datetime (sub-millisecond parts round)."""
    return round(ts.timestamp() * 1000)


def from_ms(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


def day_date(day: int) -> date:
    return date.fromordinal(_EPOCH_ORDINAL + day)


def day_of_date(value: date) -> int:
    return value.toordinal() - _EPOCH_ORDINAL
