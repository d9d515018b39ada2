"""What became of the accounts alerts were raised about: saved, renewed, churned or pending.

A CS team wants to know whether working an alert paid off, so every alert episode gets one
outcome, judged in event time from the episode's own records and the account's billing:

* **churned**: the account cancelled while the episode was open or within
  :data:`SAVED_AFTER_DAYS` after it resolved (with the cancellation's reason group). An
  episode that ended ``churned`` is churned even before its cancellation is seen.
* **saved**: the episode resolved (not by a cancellation) and the account was still
  subscribed :data:`SAVED_AFTER_DAYS` later: no cancellation in that window, and the clock
  has passed its end.
* **renewed**: neither yet, but the account renewed (a ``subscription_renewed``) at or after
  the episode started: it paid for another term while at risk or just after.
* **pending**: none of these yet.

Churned and saved are final (the windows exclude each other); renewed and pending may still
become either. The **clock** is the newest event time among the records folded (billing
events and alert records), not the wall clock, so a replay of a log always gives the same
answer. Episodes count in the month they started (``episode_start``): a month's row says what
became of the episodes opened in it.

Every input is kept as a set or a maximum, so the answer does not depend on the order records
arrive in, nor on a record arriving twice: the Redis mirror
(:mod:`stream.sinks.outcomes_store`) reads the alerts and billing topics at their own paces and
must agree with the backtests' fold, and the tests check that it does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache

from schemas.events import EventBase
from stream.core.churn_reasons import NOT_GIVEN, ChurnReasons
from stream.core.timeutil import DAY_MS, day_date, to_ms

SAVED_AFTER_DAYS = 30
"""Days after an episode resolved that the account must still be subscribed to count as saved."""

OUTCOMES = ("saved", "renewed", "churned", "pending")
ENDED = ("resolved", "churned")


@dataclass(frozen=True)
class Episode:
    """What the outcome needs of one alert episode."""

    account_id: str
    start_ms: int
    end_ms: int | None = None
    churned: bool = False
    """It ended ``churned`` (the subscription was cancelled while it was open)."""


def merged(old: Episode | None, new: Episode) -> Episode:
    """An episode's state from two of its records: the ending one wins, else the first kept."""
    if old is None or (new.end_ms is not None and old.end_ms is None):
        return new
    return old


@dataclass
class AccountBilling:
    """The billing facts outcomes read: cancellations with their reason group, renewals."""

    cancels: set[tuple[int, str]] = field(default_factory=set)
    renewals: set[int] = field(default_factory=set)


def outcome(
    episode: Episode, billing: AccountBilling | None, clock_ms: int
) -> tuple[str, str | None]:
    """(outcome, reason group when churned) of ``episode`` as of ``clock_ms``."""
    start, end = episode.start_ms, episode.end_ms
    window_end = None if end is None else end + SAVED_AFTER_DAYS * DAY_MS
    if billing is not None and billing.cancels:
        churn = min(
            ((ms, group) for ms, group in billing.cancels
             if ms >= start and (window_end is None or ms <= window_end)),
            default=None,
        )  # fmt: skip
        if churn is not None:
            return "churned", churn[1]
    if episode.churned:  # its cancellation is not in yet (the topics arrive at their own pace)
        return "churned", NOT_GIVEN
    if window_end is not None and clock_ms >= window_end:
        return "saved", None
    if billing is not None and any(ms >= start for ms in billing.renewals):
        return "renewed", None
    return "pending", None


@lru_cache(maxsize=4096)
def _month_of_day(day: int) -> str:
    return day_date(day).strftime("%Y-%m")


def month_of(ms: int) -> str:
    """``YYYY-MM`` of an epoch millisecond (UTC), by its day: a report of 100k episodes makes
    a few hundred distinct days, not 100k datetimes."""
    return _month_of_day(ms // DAY_MS)


def empty_row() -> dict:
    return {"alerted": 0, **dict.fromkeys(OUTCOMES, 0), "churned_by_reason": {}}


def by_month(
    episodes: Iterable[Episode], billing: Mapping[str, AccountBilling], clock_ms: int
) -> dict[str, dict]:
    """Per month an episode started in: how many started, and how many ended each way."""
    counts: dict[tuple[str, str, str | None], int] = {}
    for episode in episodes:
        kind, group = outcome(episode, billing.get(episode.account_id), clock_ms)
        key = (month_of(episode.start_ms), kind, group)
        counts[key] = counts.get(key, 0) + 1
    months: dict[str, dict] = {}
    for (month, kind, group), n in sorted(
        counts.items(), key=lambda x: (x[0][0], x[0][1], x[0][2] or "")
    ):
        row = months.get(month) or months.setdefault(month, empty_row())
        row["alerted"] += n
        row[kind] += n
        if group is not None:
            row["churned_by_reason"][group] = row["churned_by_reason"].get(group, 0) + n
    return months


def iso_ms(value: str | datetime) -> int:
    """Epoch ms of an alert record's time, as JSON (``...Z``) or as a datetime."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return to_ms(value)


def episode_of(record: Mapping) -> tuple[str, Episode]:
    """(alert id, episode) from a published alert record (a dict, as on the topic)."""
    kind = record["kind"]
    end = iso_ms(record["ts"]) if kind in ENDED else None
    start = iso_ms(record["episode_start"])
    return record["alert_id"], Episode(record["account_id"], start, end, kind == "churned")


def billing_fact(event: EventBase, reasons: ChurnReasons) -> tuple[str, int, str] | None:
    """``("renewal", ms, "")`` or ``("cancel", ms, reason group)`` for a billing event that
    outcomes read, else None."""
    kind = getattr(event, "type", None)
    if kind == "subscription_renewed":
        return "renewal", to_ms(event.ts), ""
    if kind == "subscription_cancelled":
        group = reasons.classify(event.reason).group  # type: ignore[attr-defined]
        return "cancel", to_ms(event.ts), group
    return None


@dataclass
class AlertOutcomes:
    """The fold the backtests run: alert records and billing events in any order, once or more."""

    reasons: ChurnReasons = field(default_factory=ChurnReasons)
    episodes: dict[str, Episode] = field(default_factory=dict)
    billing: dict[str, AccountBilling] = field(default_factory=dict)
    clock_ms: int = 0

    def alert(self, record: Mapping) -> None:
        """A published alert record (a dict, as on the topic)."""
        alert_id, episode = episode_of(record)
        self.add(alert_id, episode, iso_ms(record["ts"]))

    def add(self, alert_id: str, episode: Episode, ts_ms: int) -> None:
        """One record's episode and event time (what :func:`episode_of` reads of it)."""
        self.episodes[alert_id] = merged(self.episodes.get(alert_id), episode)
        self.clock_ms = max(self.clock_ms, ts_ms)

    def observe(self, event: EventBase) -> None:
        """A billing event (any other event is not an input: the Redis mirror never sees it)."""
        self.clock_ms = max(self.clock_ms, to_ms(event.ts))
        fact = billing_fact(event, self.reasons)
        if fact is None:
            return
        what, ms, group = fact
        account = self.billing.setdefault(event.account_id, AccountBilling())
        if what == "renewal":
            account.renewals.add(ms)
        else:
            account.cancels.add((ms, group))

    def report(self) -> dict[str, dict]:
        return by_month(self.episodes.values(), self.billing, self.clock_ms)
