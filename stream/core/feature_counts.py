"""Weekly use counts per tracked product feature, in bounded space.

The features worth tracking are the company's own (``reports_run``, ``invoices_sent``...), so
the policy names them (``calibrate`` picks the most used ones of the log, at most
:data:`MAX_TRACKED`), and every other feature counts as one more slot, "other". An account
holds ``WEEKS`` weekly buckets per slot: 17 x 8 x 2 bytes at most, and nothing when the policy
tracks no feature.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stream.core.state import AccountState

MAX_TRACKED = 16
WEEKS = 8
_MAX_COUNT = 0xFFFF


def slots_for(tracked: Sequence[str]) -> int:
    """Tracked features plus "other"; 0 when nothing is tracked."""
    return len(tracked) + 1 if tracked else 0


def add(acct: AccountState, slot: int, slots: int, day: int) -> None:
    """Count one use of feature ``slot`` on ``day``; ``slots`` sizes a new account's buckets."""
    counts = acct.feature_weeks
    if len(counts) != slots * WEEKS:
        counts = acct.feature_weeks = array("H", bytes(2 * slots * WEEKS))
        acct.feature_week = day // 7
    week = day // 7
    _advance(acct, week)
    if week <= acct.feature_week - WEEKS:
        return  # older than the buckets reach
    at = slot * WEEKS + week % WEEKS
    if counts[at] < _MAX_COUNT:
        counts[at] += 1


def _advance(acct: AccountState, week: int) -> None:
    head = acct.feature_week
    if week <= head:
        return
    counts = acct.feature_weeks
    slots = len(counts) // WEEKS
    for w in range(max(head + 1, week - WEEKS + 1), week + 1):
        for s in range(slots):
            counts[s * WEEKS + w % WEEKS] = 0
    acct.feature_week = week


def recent_and_all(acct: AccountState, day: int, recent: int) -> list[tuple[int, int]]:
    """Per slot, (uses in the ``recent`` weeks, uses in all ``WEEKS``) that end with ``day``'s
    week: both sums in one pass, since a learned model reads them at every day close."""
    counts = acct.feature_weeks
    slots = len(counts) // WEEKS
    week = day // 7
    head = acct.feature_week
    weeks = [w % WEEKS for w in range(week - WEEKS + 1, week + 1) if head - WEEKS < w <= head]
    split = sum(1 for w in range(week - WEEKS + 1, week - recent + 1) if head - WEEKS < w <= head)
    out = []
    for base in range(0, slots * WEEKS, WEEKS):
        values = [counts[base + w] for w in weeks]
        older = sum(values[:split])
        total = older + sum(values[split:])
        out.append((total - older, total))
    return out
