"""The one millisecond conversion: half up, before 1970 too, and back again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from stream.core.timeutil import from_ms, to_ms

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("micros", "ms"),
    [
        (0, 0),
        (400, 0),
        (600, 1),
        (1_499, 1),
        (-400, 0),
        (-600, -1),  # int() would say 0: towards zero is a millisecond late before 1970
        (-1_600, -2),
        (-86_400_000_000, -86_400_000),
    ],
)
def test_to_ms_rounds_to_the_nearest_millisecond_on_both_sides_of_1970(micros, ms):
    assert to_ms(EPOCH + timedelta(microseconds=micros)) == ms


def test_to_ms_is_the_same_instant_whatever_the_offset():
    local = datetime(2026, 1, 5, 12, 0, 0, 250_600, tzinfo=timezone(timedelta(hours=5)))
    assert to_ms(local) == to_ms(local.astimezone(UTC)) == 1_767_596_400_251


def test_from_ms_inverts_to_ms():
    for ms in (0, 1, -1, 1_767_596_400_251, -86_400_001):
        back = from_ms(ms)
        assert back.tzinfo is not None and to_ms(back) == ms
