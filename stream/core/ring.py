"""Bounded per-account history: daily counters in ring buffers and a distinct-user sketch.

Memory per account is fixed whatever its volume: ``RING_DAYS`` unsigned 16-bit counters per
metric (saturating at 65535) and, for distinct users, one 256-bit bitmap per day for the last
``USER_RING_DAYS`` days. Users are hashed into the bitmap (linear counting), so the estimate of
distinct active users over any window inside the ring is a popcount of the OR of its days:
within a few percent up to about 500 users, saturating near 1,400.
"""

from __future__ import annotations

import math
import zlib
from array import array
from functools import lru_cache

RING_DAYS = 120
USER_RING_DAYS = 32
USER_BITS = 256
_USER_BYTES = USER_BITS // 8
_MAX_COUNT = 0xFFFF
_SATURATED_USERS = USER_BITS * math.log(USER_BITS)


def new_counters(typecode: str = "H") -> array:
    """Daily counters; ``"B"`` (8-bit) for rare events such as tickets, to save memory."""
    counters = array(typecode)
    counters.frombytes(bytes(counters.itemsize * RING_DAYS))
    return counters


def new_user_ring() -> bytearray:
    return bytearray(USER_RING_DAYS * _USER_BYTES)


def add(counters: array, day: int, amount: int = 1) -> None:
    slot = day % RING_DAYS
    value = counters[slot] + amount
    limit = _MAX_COUNT if counters.itemsize == 2 else 0xFF
    counters[slot] = value if value < limit else limit


def clear_days(counters: array, first: int, last: int) -> None:
    """Zero the slots of days ``first..last`` (inclusive) before they are reused."""
    if last - first + 1 >= RING_DAYS:
        counters[:] = new_counters(counters.typecode)
        return
    for day in range(first, last + 1):
        counters[day % RING_DAYS] = 0


def window_sum(counters: array, first: int, last: int) -> int:
    """Sum of days ``first..last`` inclusive; the caller keeps the span inside the ring."""
    if last < first:
        return 0
    i = first % RING_DAYS
    j = last % RING_DAYS
    if i <= j and last - first < RING_DAYS:
        return sum(counters[i : j + 1])
    return sum(counters[i:]) + sum(counters[: j + 1])


def values(counters: array, first: int, last: int) -> list[int]:
    return [counters[day % RING_DAYS] for day in range(first, last + 1)]


def mark_user(ring: bytearray, day: int, user_id: str) -> None:
    """Set the user's bit for ``day``.

    CRC-32 is stable across processes (unlike ``hash``), so the sketch replays identically;
    CRC is linear, so the multiply mixes it before the top byte picks the bit.
    """
    bit = ((zlib.crc32(user_id.encode()) * 0x9E3779B1) & 0xFFFFFFFF) >> 24
    ring[(day % USER_RING_DAYS) * _USER_BYTES + (bit >> 3)] |= 1 << (bit & 7)


def clear_user_days(ring: bytearray, first: int, last: int) -> None:
    if last - first + 1 >= USER_RING_DAYS:
        ring[:] = bytes(len(ring))
        return
    for day in range(first, last + 1):
        start = (day % USER_RING_DAYS) * _USER_BYTES
        ring[start : start + _USER_BYTES] = bytes(_USER_BYTES)


@lru_cache(maxsize=USER_RING_DAYS * USER_RING_DAYS)
def _window_mask(first_slot: int, days: int) -> int:
    mask = 0
    day_mask = (1 << USER_BITS) - 1
    for k in range(days):
        mask |= day_mask << (((first_slot + k) % USER_RING_DAYS) * USER_BITS)
    return mask


def distinct_users(ring: bytearray, first: int, last: int) -> float:
    """Estimated distinct users over days ``first..last`` (at most ``USER_RING_DAYS`` days).

    The whole ring is read as one integer, masked to the window's days and folded in halves
    until one day's width is left: a handful of big-integer operations instead of a loop
    over days.
    """
    days = min(last - first + 1, USER_RING_DAYS)
    if days <= 0:
        return 0.0
    bits = int.from_bytes(ring, "little") & _window_mask(first % USER_RING_DAYS, days)
    width = USER_RING_DAYS * USER_BITS
    while width > USER_BITS:
        width //= 2
        bits = (bits | (bits >> width)) & ((1 << width) - 1)
    return _estimate(bits.bit_count())


def day_users(ring: bytearray, day: int) -> float:
    """Estimated distinct users on one day: :func:`distinct_users` for a one-day window,
    without reading the whole ring."""
    start = (day % USER_RING_DAYS) * _USER_BYTES
    return _estimate(int.from_bytes(ring[start : start + _USER_BYTES], "little").bit_count())


def _estimate(set_bits: int) -> float:
    """Linear counting: users from the share of bits still zero."""
    zeros = USER_BITS - set_bits
    if zeros == 0:
        return _SATURATED_USERS
    return -USER_BITS * math.log(zeros / USER_BITS)


def active_days(counters: array, first: int, last: int) -> int:
    return sum(1 for day in range(first, last + 1) if counters[day % RING_DAYS])
