"""Alert outcomes in Redis (saved, renewed, churned, pending), from the alerts and billing topics.

The read-model feed reads the two topics at their own paces, so nothing here depends on which
record comes first: the keys hold exactly the sets and the maximum that
:class:`stream.core.alert_outcomes.AlertOutcomes` folds, and the report runs the same pure
rules over them. Writing the same record again changes nothing.

* ``{p}:oc:ep``: hash alert id -> ``account|start_ms|end_ms|churned`` (``end_ms`` empty while
  open); an ending record overwrites, any other is written only if the episode is new;
* ``{p}:oc:bill``: hash account -> its renewals (``r:<ms>``) and cancellations
  (``c:<ms>:<reason group>``), each followed by a comma, each once (a set kept as one string,
  so the report reads every alerted account's billing in one ``HMGET``);
* ``{p}:oc:clock``: the newest event time of any record applied;
* ``{p}:oc:ver``: a counter every write batch bumps.

The report reads every episode and its account's billing and judges each (0.8 s for 33k
episodes on a loaded 2-core box, ``bench/outcomes_bench.py``), so a process keeps its last report
and reuses it while ``{p}:oc:ver`` has not moved, or for :data:`MAX_AGE_SECONDS` while it
has: the monthly table is then at most that far behind the topics, and a busy feed does not
make every page view pay for it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import redis

from schemas.events import EventBase
from stream.core.alert_outcomes import AccountBilling, Episode, billing_fact, by_month, episode_of
from stream.core.alert_outcomes import iso_ms as _iso_ms
from stream.core.churn_reasons import ChurnReasons
from stream.core.timeutil import to_ms

_FACT = """
local now = redis.call('HGET', KEYS[1], ARGV[1]) or ''
if string.find(',' .. now, ',' .. ARGV[2] .. ',', 1, true) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], now .. ARGV[2] .. ',')
return 1
"""
_CLOCK = """
local now = redis.call('GET', KEYS[1])
if (not now) or tonumber(now) < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
return 0
"""


MAX_AGE_SECONDS = 30.0
_CHUNK = 10_000
"""Accounts per ``HMGET``: a report of 100k alerted accounts is ten commands, one round trip."""


class RedisOutcomes:
    def __init__(self, client: redis.Redis, prefix: str, reasons: ChurnReasons,
                 max_age_seconds: float = MAX_AGE_SECONDS) -> None:  # fmt: skip
        self.r = client
        self.p = prefix
        self.reasons = reasons
        self.max_age = max_age_seconds
        self._last: tuple[bytes | None, float, dict[str, dict] | None] | None = None
        """(version, when, report) of this process's last report."""
        self._clock = client.register_script(_CLOCK)
        self._fact = client.register_script(_FACT)

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
            self._fact(keys=[f"{self.p}:oc:bill"], args=[event.account_id, member], client=pipe)
        self._run(pipe, newest)

    def _run(self, pipe: redis.client.Pipeline, newest: int | None) -> None:
        if newest is None:
            return
        self._clock(keys=[f"{self.p}:oc:clock"], args=[newest], client=pipe)
        pipe.incr(f"{self.p}:oc:ver")
        pipe.execute()

    def report(self) -> dict[str, dict] | None:
        """Per month episodes started in, as :func:`~stream.core.alert_outcomes.by_month`;
        None before any alert record came. Reused while nothing was written, or for
        ``max_age_seconds`` (see the module's notes)."""
        version, now = self.r.get(f"{self.p}:oc:ver"), time.monotonic()
        last = self._last
        if last is not None and (last[0] == version or now - last[1] < self.max_age):
            return last[2]
        report = self._report()
        self._last = version, now, report
        return report

    def _report(self) -> dict[str, dict] | None:
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
        for start in range(0, len(accounts), _CHUNK):
            pipe.hmget(f"{self.p}:oc:bill", accounts[start : start + _CHUNK])
        clock, *chunks = pipe.execute()
        billing = {}
        for account, packed in zip(accounts, (x for c in chunks for x in c), strict=True):
            billing[account] = facts = AccountBilling()
            for item in (packed or b"").decode().split(","):
                if item.startswith("r:"):
                    facts.renewals.add(int(item[2:]))
                elif item:
                    _, ms, group = item.split(":", 2)
                    facts.cancels.add((int(ms), group))
        return by_month(episodes, billing, int(clock or 0))
