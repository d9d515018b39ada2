"""Alert outcomes in Redis (saved, renewed, churned, pending), from the alerts and billing topics.

The read-model feed reads the two topics at their own paces, so nothing here depends on which
record comes first: the keys hold exactly the sets and the maximum that
:class:`stream.core.alert_outcomes.AlertOutcomes` folds, and the report runs the same pure
rules over them. Writing the same record again changes nothing.

* ``{p}:oc:ep``: hash alert id -> ``account|start_ms|end_ms|churned`` (``end_ms`` empty while
  open); an ending record overwrites, any other is written only if the episode is new;
* ``{p}:oc:b:{account}``: sorted set of the account's renewals (``r:<ms>``) and
  cancellations (``c:<ms>:<reason group>``), by time;
* ``{p}:oc:clock``: the newest event time of any record applied.
"""

from __future__ import annotations

from collections.abc import Iterable

import redis

from schemas.events import EventBase
from stream.core.alert_outcomes import AccountBilling, Episode, billing_fact, by_month, episode_of
from stream.core.alert_outcomes import iso_ms as _iso_ms
from stream.core.churn_reasons import ChurnReasons
from stream.core.timeutil import to_ms

_CLOCK = """
local now = redis.call('GET', KEYS[1])
if (not now) or tonumber(now) < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
return 0
"""


class RedisOutcomes:
    def __init__(self, client: redis.Redis, prefix: str, reasons: ChurnReasons) -> None:
        self.r = client
        self.p = prefix
        self.reasons = reasons
        self._clock = client.register_script(_CLOCK)

    def apply_alerts(self, alerts: Iterable[dict]) -> None:
        """Published alert records (dicts, as on the topic)."""
        pipe = self.r.pipeline(transaction=False)
        newest = None
        for record in alerts:
            alert_id, ep = episode_of(record)
            end = "" if ep.end_ms is None else ep.end_ms
            value = f"{ep.account_id}|{ep.start_ms}|{end}|{'1' if ep.churned else '0'}"
            write = pipe.hset if ep.end_ms is not None else pipe.hsetnx  # the ending record wins
            write(f"{self.p}:oc:ep", alert_id, value)
            ms = _iso_ms(record["ts"])
            newest = ms if newest is None else max(newest, ms)
        self._run(pipe, newest)

    def apply_billing(self, events: Iterable[EventBase]) -> None:
        pipe = self.r.pipeline(transaction=False)
        newest = None
        for event in events:
            ms = to_ms(event.ts)
            newest = ms if newest is None else max(newest, ms)
            fact = billing_fact(event, self.reasons)
            if fact is None:
                continue
            what, at, group = fact
            member = f"r:{at}" if what == "renewal" else f"c:{at}:{group}"
            pipe.zadd(f"{self.p}:oc:b:{event.account_id}", {member: at})
        self._run(pipe, newest)

    def _run(self, pipe: redis.client.Pipeline, newest: int | None) -> None:
        if newest is None:
            return
        self._clock(keys=[f"{self.p}:oc:clock"], args=[newest], client=pipe)
        pipe.execute()

    def report(self) -> dict[str, dict] | None:
        """Per month episodes started in, as :func:`~stream.core.alert_outcomes.by_month`;
        None before any alert record came."""
        raw = self.r.hgetall(f"{self.p}:oc:ep")
        if not raw:
            return None
        episodes = []
        for value in raw.values():
            account, start, end, churned = value.decode().rsplit("|", 3)
            episodes.append(Episode(account, int(start), int(end) if end else None, churned == "1"))
        accounts = sorted({e.account_id for e in episodes})
        pipe = self.r.pipeline(transaction=False)
        pipe.get(f"{self.p}:oc:clock")
        for account in accounts:
            pipe.zrange(f"{self.p}:oc:b:{account}", 0, -1)
        clock, *members = pipe.execute()
        billing = {}
        for account, found in zip(accounts, members, strict=True):
            facts = AccountBilling()
            for member in found:
                kind, ms, *group = member.decode().split(":", 2)
                if kind == "r":
                    facts.renewals.add(int(ms))
                else:
                    facts.cancels.add((int(ms), group[0]))
            billing[account] = facts
        return by_month(episodes, billing, int(clock or 0))
