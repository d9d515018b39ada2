"""Bounded history: ring buffers that wrap, and the distinct-user sketch."""

from __future__ import annotations

import pytest

from stream.core import ring
from stream.core.state import DEDUP_HORIZON, AccountState


def test_window_sum_wraps_around_the_ring():
    counters = ring.new_counters()
    for day in range(200, 200 + ring.RING_DAYS):
        ring.add(counters, day, day % 7)
    expected = sum(day % 7 for day in range(250, 300))
    assert ring.window_sum(counters, 250, 299) == expected
    first, last = 200 + ring.RING_DAYS - 10, 200 + ring.RING_DAYS - 1
    assert ring.window_sum(counters, first, last) == sum(d % 7 for d in range(first, last + 1))


def test_counters_saturate_instead_of_wrapping():
    counters = ring.new_counters()
    ring.add(counters, 3, 70_000)
    ring.add(counters, 3, 5)
    assert ring.window_sum(counters, 3, 3) == 65_535


def test_advancing_clears_reused_days():
    acct = AccountState("a", day=1000)
    ring.add(acct.logins, 1000, 5)
    ring.mark_user(acct.users, 1000, "u1")
    acct.advance_to(1000 + ring.RING_DAYS)
    assert ring.window_sum(acct.logins, 1001, 1000 + ring.RING_DAYS) == 0
    assert ring.distinct_users(acct.users, 1000 + ring.RING_DAYS - 27, 1000 + ring.RING_DAYS) == 0


@pytest.mark.parametrize("users", [1, 10, 50, 150, 400])
def test_distinct_users_estimate_is_within_ten_percent(users):
    users_ring = ring.new_user_ring()
    for day in range(40, 68):
        for k in range(users):
            if (k + day) % 3 == 0:  # each user is active on a third of the days
                ring.mark_user(users_ring, day, f"user-{k}@example.com")
    estimate = ring.distinct_users(users_ring, 41, 68)
    assert abs(estimate - users) <= max(1.0, 0.1 * users)


def test_distinct_users_only_counts_the_window():
    users_ring = ring.new_user_ring()
    ring.mark_user(users_ring, 10, "early")
    for k in range(5):
        ring.mark_user(users_ring, 20, f"late-{k}")
    assert round(ring.distinct_users(users_ring, 15, 25)) == 5
    assert round(ring.distinct_users(users_ring, 5, 25)) == 6


def test_redelivery_horizon_is_bounded():
    acct = AccountState("a", day=0)
    assert not acct.seen_before("e-0")
    assert acct.seen_before("e-0")
    for k in range(1, DEDUP_HORIZON + 1):
        assert not acct.seen_before(f"e-{k}")
    assert not acct.seen_before("e-0"), "forgotten after DEDUP_HORIZON newer events"


def test_one_days_users_match_the_window_estimate_of_that_day():
    from stream.core import ring

    users = ring.new_user_ring()
    for day in range(40):
        for k in range(day % 7 * 3):
            ring.mark_user(users, day, f"u{k}-{day}")
    for day in range(8, 40):
        assert ring.day_users(users, day) == ring.distinct_users(users, day, day)
