"""Event-time arithmetic in integer milliseconds and UTC day numbers.

Integers keep the core exact and cheap: a day number is ``ts_ms // DAY_MS`` and every window,
tenure and cooldown is plain integer arithmetic, identical in the live worker and in replay.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

DAY_MS = 86_400_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def to_ms(ts: datetime) -> int:
    """Milliseconds since the epoch for an aware datetime, rounded half up to the millisecond.

    The one conversion every layer uses, so an event lands on the same millisecond (and so
    the same day, merge position and month) in the live worker, replay, the read model and
    the backtests. Half up, not Python's ``round`` (half to even) nor ``int`` (towards zero):
    ``int`` would put pre-1970 times a millisecond late, and the rule must hold for any time
    an event may carry. A sub-millisecond part of exactly one half goes to the later
    millisecond; the float product can be a hair off an exact half, which is at most a one
    millisecond difference and the same everywhere, as long as this is the only conversion.
    """
    return math.floor(ts.timestamp() * 1000 + 0.5)


def from_ms(ms: int) -> datetime:
    """The aware UTC datetime of an epoch millisecond; ``from_ms(to_ms(t))`` is ``t`` rounded."""
    return _EPOCH + timedelta(milliseconds=ms)


def day_date(day: int) -> date:
    return date.fromordinal(_EPOCH_ORDINAL + day)


def day_of_date(value: date) -> int:
    return value.toordinal() - _EPOCH_ORDINAL
