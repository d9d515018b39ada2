"""Build events in event time and drive an engine with them, for readable tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

from schemas.alerts import AlertEvent
from schemas.codec import dumps
from schemas.events import EventBase, UnknownEvent, decode_event
from stream.core.engine import PartitionEngine
from stream.core.policy import Policy, parse_policy

T0 = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
_ids = count()


def at(day: float, hour: float = 10.0) -> datetime:
    return T0 + timedelta(days=day, hours=hour)


def event(kind: str, account: str = "acct-1", ts: datetime | None = None, **fields: Any) -> dict:
    return {
        "event_id": fields.pop("event_id", f"t-{next(_ids)}"),
        "account_id": account,
        "ts": (ts or T0).isoformat().replace("+00:00", "Z"),
        "type": kind,
        **fields,
    }


def model(raw: dict) -> EventBase:
    return decode_event(dumps(raw))


class Harness:
    """One partition engine plus helpers to write scenarios day by day.

    Without a ``policy``, one is built from ``overrides`` (policy-file tables) that publishes
    ``episodes`` episodes: per signal unless asked otherwise, because most tests judge one
    detector at a time and read its own episode (:meth:`of`). The product's default is one
    episode per account (``episodes="account"``).
    """

    def __init__(
        self, policy: Policy | None = None, episodes: str = "signal", **overrides: Any
    ) -> None:
        if policy is None:
            overrides.setdefault("alerting", {"episodes": episodes})
        self.policy = policy or parse_policy(overrides)
        self.engine = PartitionEngine(self.policy)
        self.alerts: list[AlertEvent] = []

    def send(self, kind: str, account: str = "acct-1", ts: datetime | None = None, **fields):
        return self.feed(event(kind, account, ts, **fields))

    def feed(self, raw: dict) -> list[AlertEvent]:
        out = self.engine.process(model(raw))
        self.alerts += out
        return out

    def tick(self, ts: datetime) -> list[AlertEvent]:
        """Move the partition clock with traffic that belongs to no tracked account."""
        beat = UnknownEvent(
            event_id=f"beat-{next(_ids)}", account_id="__clock__", ts=ts, type="heartbeat"
        )
        out = self.engine.process(beat)
        self.alerts += out
        return out

    def subscribe(
        self,
        account: str = "acct-1",
        day: float = 0,
        seats: int = 10,
        mrr: float = 300.0,
        plan: str = "pro",
        started_days_ago: int | None = 400,
    ) -> None:
        fields: dict[str, Any] = {"plan": plan, "mrr": mrr, "seats": seats}
        if started_days_ago is None:
            self.send("subscription_started", account, at(day, 1), **fields)
        else:
            started = at(day - started_days_ago, 0).isoformat().replace("+00:00", "Z")
            self.send("subscription_renewed", account, at(day, 1), started_at=started, **fields)

    def daily_logins(
        self,
        days: range,
        per_day: int | dict[int, int],
        account: str = "acct-1",
        users: int = 5,
        minutes: float | None = None,
    ) -> None:
        """``per_day`` logins each day (spread over ``users`` users), optional session time."""
        for day in days:
            n = per_day.get(day, 0) if isinstance(per_day, dict) else per_day
            for k in range(n):
                user = f"{account}-u{k % users}"
                ts = at(day, 8 + (k % 10))
                self.send("login", account, ts, user_id=user)
                if minutes:
                    self.send(
                        "session",
                        account,
                        ts + timedelta(minutes=1),
                        user_id=user,
                        duration_s=minutes * 60,
                    )

    def of(self, signal: str, kind: str | None = None, account: str = "acct-1"):
        return [
            a
            for a in self.alerts
            if a.signal == signal and a.account_id == account and (kind is None or a.kind == kind)
        ]
