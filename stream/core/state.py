"""Everything churnwatch remembers about one account, in bounded space.

The state is a plain object with slots: daily counters for the last ``RING_DAYS`` days, the
distinct-user sketch, a short ring of recent event-id hashes (to drop redeliveries), the
latest billing and survey facts, and the alert episodes. It is mutated only by
:mod:`stream.core.effects` (events) and :mod:`stream.core.engine` (day closes), so it is
the same in the live worker's changelog-backed table and in an offline replay.
"""

from __future__ import annotations

import zlib
from array import array
from typing import NamedTuple

from stream.core import ring
from stream.core.purchase_log import PurchaseLog
from stream.core.signals import registry
from stream.core.ticket_log import NO_HOT_DAYS, TicketLog
from stream.core.timeutil import DAY_MS

_NO_EPISODES: dict[str, Episode] = {}  # shared and never written: most accounts never alert
_NO_FEATURE_WEEKS = array("H")  # shared and never written: replaced when first counted

DEDUP_HORIZON = 32
"""Event ids remembered per account: a redelivery within its last 32 events is dropped."""
FACT_HISTORY = 4
"""Recent payment failures and overdue notices kept per account."""


class StoredReason(NamedTuple):
    """What an account-level alert says about one of its signals, kept between evaluations.

    The account episode publishes every open signal as a reason, but a record is built at one
    evaluation, where only some detectors ran (an NPS answer judges NPS, not logins): the
    others are shown as their episode last published them, so that is what is kept.
    """

    metric: str
    value: float
    baseline: float | None
    threshold: float
    window_days: int | None
    explanation: str
    series: str | None  # the AccountState counter shown as daily evidence
    facts: tuple[tuple[int, str], ...]


class Episode:
    """One alert episode of an account, plus the open times that drive the cooldown.

    Keyed by signal in ``AccountState.episodes``; with one episode per account (the policy's
    ``[alerting]``) the account-level episode sits beside them under
    ``schemas.alerts.ACCOUNT_AT_RISK`` (with no cooldown, so no open times).
    """

    __slots__ = ("opens", "reason", "seq", "severity", "start_ms")

    def __init__(self) -> None:
        self.start_ms = 0  # 0 while no episode is open
        self.severity = ""
        self.seq = 0
        self.opens: list[int] = []
        self.reason: StoredReason | None = None
        """Account mode, while open: the judgement that opened or last escalated it."""

    @property
    def is_open(self) -> bool:
        return self.start_ms != 0


class AccountState:
    __slots__ = (
        "account_id",
        "activated_users",
        "applied",
        "billing_period",
        "cancelled_ms",
        "clock_ms",
        "closed_day",
        "contraction_from_mrr",
        "contraction_ms",
        "contraction_to_mrr",
        "created_ms",
        "episodes",
        "failures",
        "feature_week",
        "feature_weeks",
        "features",
        "first_day",
        "head_day",
        "hot_days",
        "last_paid_ms",
        "last_usage_ms",
        "logins",
        "minutes",
        "mrr",
        "name",
        "nps_ms",
        "nps_prev",
        "nps_score",
        "overdue",
        "owner",
        "plan",
        "purchases",
        "recent_ids",
        "recent_pos",
        "risk",
        "seats",
        "segment",
        "ticket_log",
        "tickets",
        "users",
    )

    def __init__(self, account_id: str, day: int) -> None:
        self.account_id = account_id
        self.first_day = day  # first day with data: baselines never reach before it
        self.head_day = day  # newest day whose ring slots are in use
        self.closed_day = day - 1  # newest day already evaluated by a day close
        self.created_ms: int | None = None
        self.segment: str | None = None
        self.plan: str | None = None
        self.name: str | None = None  # the account's name, as producers enrich events with it
        self.owner: str | None = None  # its CSM
        self.mrr: float | None = None
        self.seats: int | None = None
        self.billing_period: str | None = None
        self.cancelled_ms = 0
        self.clock_ms = 0  # the partition clock when this value was last written (live only)
        self.last_usage_ms = 0
        self.activated_users = 0
        self.applied = [-1, -1]  # newest input offset applied, per source (usage, billing)
        self.logins = ring.new_counters()
        self.minutes = ring.new_counters()
        self.features = ring.new_counters()
        self.feature_weeks = _NO_FEATURE_WEEKS  # per tracked feature, when the policy tracks any
        self.feature_week = 0  # the newest week in feature_weeks
        self.tickets = ring.new_counters("B")
        self.hot_days = NO_HOT_DAYS  # days of recent high/urgent tickets, when there are any
        self.ticket_log: TicketLog | None = None  # bug links and resolutions, when sent
        self.purchases: PurchaseLog | None = None  # orders and usage-billed invoices
        self.users = ring.new_user_ring()
        self.recent_ids = bytearray(8 * DEDUP_HORIZON)
        self.recent_pos = 0
        self.last_paid_ms = 0
        self.failures: list[int] = []
        self.overdue: list[tuple[int, int]] = []
        self.contraction_ms = 0
        self.contraction_from_mrr = 0.0
        self.contraction_to_mrr = 0.0
        self.nps_score = -1
        self.nps_prev = -1
        self.nps_ms = 0
        self.episodes: dict[str, Episode] = _NO_EPISODES
        # Each signal's latest risk, 0 (fine) .. 100, one byte per signal in registry order.
        self.risk = bytearray(len(registry.active.names))

    # --- redelivery ---------------------------------------------------------------------

    def seen_before(self, event_id: str) -> bool:
        """Remember ``event_id``; report whether it was among the recent ones already.

        Ids are kept as 8-byte hashes in one bytearray searched with ``find`` (C speed); a hit
        must sit on an 8-byte boundary to count, so a pattern straddling two entries never does.
        """
        raw = event_id.encode()
        key = ((zlib.crc32(raw) << 32) | zlib.adler32(raw) or 1).to_bytes(8, "little")
        ids = self.recent_ids
        at = ids.find(key)
        while at != -1:
            if at % 8 == 0:
                return True
            at = ids.find(key, at + 1)
        start = self.recent_pos * 8
        ids[start : start + 8] = key
        self.recent_pos = (self.recent_pos + 1) % DEDUP_HORIZON
        return False

    # --- time ---------------------------------------------------------------------------

    def advance_to(self, day: int) -> None:
        """Make ``day`` the newest ring day, clearing the slots it and its predecessors reuse."""
        if day <= self.head_day:
            return
        first = self.head_day + 1
        for counters in (self.logins, self.minutes, self.features, self.tickets):
            ring.clear_days(counters, first, day)
        ring.clear_user_days(self.users, first, day)
        self.head_day = day

    def tenure_days(self, at_ms: int) -> int | None:
        if self.created_ms is None:
            return None
        return max(0, (at_ms - self.created_ms) // DAY_MS)

    def observed_since(self, day: int) -> int:
        """First day of a window starting at ``day`` that the account has data for."""
        return day if day > self.first_day else self.first_day

    @property
    def cancelled(self) -> bool:
        return self.cancelled_ms != 0

    def segment_name(self) -> str:
        return self.segment or self.plan or "default"

    def episode(self, signal: str) -> Episode:
        found = self.episodes.get(signal)
        if found is None:
            if self.episodes is _NO_EPISODES:
                self.episodes = {}
            found = self.episodes[signal] = Episode()
        return found

    def risk_of(self, signal: str) -> int:
        return self.risk[registry.active.index[signal]]

    def set_risk(self, signal: str, value: int) -> None:
        self.risk[registry.active.index[signal]] = value

    def is_open(self, signal: str) -> bool:
        found = self.episodes.get(signal)
        return found is not None and found.start_ms != 0
