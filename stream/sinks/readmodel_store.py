"""The read model in Redis: one atomic script per alert record, and the queries the API runs.

Keys, under a prefix (default ``churnwatch``):

* ``{p}:acct:{id}``: hash with the account's ``snapshot`` (JSON), ``ts_ms`` and ``segment``;
* ``{p}:acct:{id}:open``: hash of the account's open episodes, alert id -> latest record;
* ``{p}:open``: sorted set of every open episode's alert id by event time, and
  ``{p}:alerts``: hash alert id -> latest record, for listing open alerts;
* ``{p}:risk`` and ``{p}:risk:{segment}``: sorted sets of accounts by risk;
* ``{p}:seq``: hash alert id -> highest sequence applied (what makes writes idempotent);
* ``{p}:opensev``: hash open alert id -> "account|severity|mrr", small enough to sum the MRR
  at risk over every open episode in one read;
* ``{p}:acct:{id}:log``: list of the account's applied records, newest first, trimmed to
  :data:`~stream.sinks.readmodel.EPISODE_LOG` (the account page's episodes);
* ``{p}:ver`` / ``{p}:changed``: the change counter and log the list index reads (shared with
  the snapshot script, see :mod:`stream.sinks.health_store`);
* ``{p}:alert_acct``: hash alert id -> account, so an action can name an alert alone;
* ``{p}:clock``: the read model's event time, the newest alert or snapshot time it has taken
  (epoch ms). A snooze ends by this clock, so a rebuild or a replay ends it at the same point.

Alert actions (acknowledge, snooze, dismiss, note) are kept by
:class:`~stream.sinks.actions_store.RedisActions`.

Health snapshots (``{p}:hs:{id}``, ``{p}:hist:{id}``, ``{p}:rows``) are written by
:class:`~stream.sinks.health_store.RedisHealth`; the lists are answered from
:class:`~stream.sinks.accounts_index.AccountsIndex`.

The script holds the rules of :mod:`stream.sinks.readmodel`, so a record is applied whole or not at
all, and applying it twice is a no-op. It touches keys it derives from its arguments (the
per-segment ranking), which a single Redis server allows; Redis Cluster would need hash tags.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import orjson
import redis

from schemas.actions import AlertAction
from stream.core.churn_reasons import ChurnReasons
from stream.kafka.settings import REDIS_SCHEMES
from stream.sinks.account_rows import SORTS, ListQuery, RiskQuery, account_row, iso_ms
from stream.sinks.accounts_index import AccountsIndex
from stream.sinks.actions_store import RedisActions
from stream.sinks.alert_actions import acknowledged, attention, fold, hidden
from stream.sinks.alert_records import mentions
from stream.sinks.health_store import RedisHealth
from stream.sinks.portfolio_store import RedisPortfolio
from stream.sinks.readmodel import (
    EPISODE_LOG,
    by_severity,
    mrr_at_risk,
    open_summary,
    risk_of,
    snapshot,
    ts_ms,
)

__all__ = ["SORTS", "ListQuery", "RedisReadModel", "RiskPage", "RiskQuery"]


@dataclass
class RiskPage:
    rows: list[dict]
    after: tuple[float, str] | None
    """The sort key of this page's last row when more follow, else None."""
    summary: dict
    """MRR at risk by severity over every account the filters keep (not only this page)."""
    totals: dict
    """Count, MRR and revenue at risk over every account the filters keep."""


_APPLY = """
local seq = redis.call('HGET', KEYS[3], ARGV[1])
if seq and tonumber(seq) >= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
if ARGV[3] == 'resolved' or ARGV[3] == 'churned' then
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[5], ARGV[1])
  redis.call('HDEL', KEYS[6], ARGV[1])
  redis.call('HDEL', KEYS[7], ARGV[1])
else
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[5])
  redis.call('ZADD', KEYS[5], ARGV[4], ARGV[1])
  redis.call('HSET', KEYS[6], ARGV[1], ARGV[5])
  redis.call('HSET', KEYS[7], ARGV[1], ARGV[11])
end
redis.call('LPUSH', KEYS[8], ARGV[5])
redis.call('LTRIM', KEYS[8], 0, tonumber(ARGV[12]) - 1)
redis.call('ZADD', KEYS[10], redis.call('INCR', KEYS[9]), ARGV[8])
redis.call('HSET', KEYS[11], ARGV[1], ARGV[8])
local ts = redis.call('HGET', KEYS[1], 'ts_ms')
if (not ts) or tonumber(ts) <= tonumber(ARGV[4]) then
  local old = redis.call('HGET', KEYS[1], 'segment')
  if old and old ~= ARGV[9] then redis.call('ZREM', ARGV[10] .. old, ARGV[8]) end
  redis.call('HSET', KEYS[1], 'ts_ms', ARGV[4], 'segment', ARGV[9], 'snapshot', ARGV[6])
  redis.call('ZADD', KEYS[4], ARGV[7], ARGV[8])
  redis.call('ZADD', ARGV[10] .. ARGV[9], ARGV[7], ARGV[8])
end
return 1
"""

_CLOCK = """
local held = redis.call('GET', KEYS[1])
if (not held) or tonumber(held) < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
return 0
"""


class RedisReadModel:
    """Writes alert records into Redis and answers the API's questions from it."""

    def __init__(self, client: redis.Redis, prefix: str = "churnwatch",
                 reasons: ChurnReasons | None = None) -> None:  # fmt: skip
        """``reasons``: the policy's churn-reason taxonomy (default: the built-in one), which
        the portfolio classifies cancellations by, as backtests of the same policy do."""
        self.r = client
        self.p = prefix
        self._apply = client.register_script(_APPLY)
        self._clock = client.register_script(_CLOCK)
        self.portfolio = RedisPortfolio(client, prefix, reasons)
        """Churn per month, kept from the billing topic beside the alerts' read model."""
        self.health = RedisHealth(client, prefix)
        """Every account's latest health snapshot and daily trend, from the health topic."""
        self.index = AccountsIndex(client, prefix)
        """The lists' rows, cached in this process and refreshed from what changed."""
        self.actions = RedisActions(client, prefix)
        """What the team did with each alert (from the alert-actions topic and the API)."""

    @classmethod
    def from_url(cls, url: str, prefix: str = "churnwatch", timeout: float = 5.0,
                 reasons: ChurnReasons | None = None):  # fmt: skip
        """``redis://``, ``rediss://`` (TLS) or ``unix://``, with ``:password@`` if needed."""
        if not url.startswith(REDIS_SCHEMES):
            raise ValueError(f"Redis URL must start with redis://, rediss:// or unix://: {url!r}")
        client = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, decode_responses=False
        )
        return cls(client, prefix, reasons)

    # --- writing ----------------------------------------------------------------------------

    def apply(self, alerts: Iterable[dict]) -> int:
        """Apply records in order in one round trip; returns how many changed anything.

        Raises ``redis.RedisError`` if Redis did not take them all. Some may have been applied
        then; applying the batch again is safe, which is what the consumer does.
        """
        pipe = self.r.pipeline(transaction=False)
        count, latest = 0, 0
        for alert in alerts:
            account, p = alert["account_id"], self.p
            keys = [f"{p}:acct:{account}", f"{p}:acct:{account}:open", f"{p}:seq", f"{p}:risk",
                    f"{p}:open", f"{p}:alerts", f"{p}:opensev", f"{p}:acct:{account}:log",
                    f"{p}:ver", f"{p}:changed", f"{p}:alert_acct"]  # fmt: skip
            args = [alert["alert_id"], int(alert["sequence"]), alert["kind"], ts_ms(alert),
                    orjson.dumps(alert), orjson.dumps(snapshot(alert)), risk_of(alert), account,
                    alert["account"]["segment"], f"{p}:risk:", open_summary(alert),
                    EPISODE_LOG]  # fmt: skip
            self._apply(keys=keys, args=args, client=pipe)
            latest = max(latest, args[3])
            count += 1
        if not count:
            return 0
        self._clock(keys=[f"{self.p}:clock"], args=[latest], client=pipe)
        return sum(int(x) for x in pipe.execute())

    def now_ms(self) -> int | None:
        """The read model's event time (see ``{p}:clock``); None before any record."""
        held = self.r.get(f"{self.p}:clock")
        return int(held) if held else None

    # --- reading ----------------------------------------------------------------------------

    def apply_health(self, snapshots: Sequence[dict]) -> int:
        """Apply health snapshots (see :meth:`RedisHealth.apply`) and move the clock to the
        newest one's time."""
        applied = self.health.apply(snapshots)
        if snapshots:
            latest = max(iso_ms(s["ts"]) or 0 for s in snapshots)
            self._clock(keys=[f"{self.p}:clock"], args=[latest])
        return applied

    def account(self, account_id: str, detail: bool = True) -> dict | None:
        """The account now: its list row (facts and health from the newer of its latest alert
        and latest snapshot), open alerts most severe first, the latest ``snapshot``, the daily
        ``history`` (oldest first) and its ``episodes`` (alert records, newest first). None
        when neither an alert nor a snapshot of it came. Without ``detail``: no snapshot,
        history nor episodes (the at-risk page's cards, 50 at a time, need none of them)."""
        p = self.p
        pipe = self.r.pipeline(transaction=False)
        pipe.hmget(f"{p}:acct:{account_id}", "snapshot", "ts_ms")
        pipe.hgetall(f"{p}:acct:{account_id}:open")
        pipe.hget(f"{p}:rows", account_id)
        pipe.lrange(f"{p}:acct:{account_id}:actions", 0, -1)
        pipe.get(f"{p}:clock")
        if detail:
            pipe.lrange(f"{p}:acct:{account_id}:log", 0, -1)
        (raw, ts), episodes, health_row, actions, clock, *log = pipe.execute()
        open_alerts = by_severity(orjson.loads(v) for v in episodes.values())
        view = orjson.loads(raw) if raw else None
        health = orjson.loads(health_row) if health_row else None
        row = account_row(view, int(ts) if ts else None, health, open_alerts)
        if row is None:
            return None
        states = fold(orjson.loads(x) for x in actions)
        for alert in open_alerts:
            if alert["alert_id"] in states:
                alert["actions"] = states[alert["alert_id"]]
        row.update(attention(hidden(open_alerts, states), acknowledged(open_alerts, states),
                             int(clock) if clock else 0))  # fmt: skip
        if not detail:
            return {**row, "open_alerts": open_alerts}
        snapshot, points = self.health.latest(account_id)
        return {**row, "open_alerts": open_alerts, "snapshot": snapshot, "history": points,
                "episodes": [orjson.loads(x) for x in log[0]], "actions": states}  # fmt: skip

    def alert(self, alert_id: str) -> tuple[str | None, dict | None]:
        """(the account of an alert the read model has seen, its latest record while the
        episode is open); (None, None) for an alert it never saw."""
        pipe = self.r.pipeline(transaction=False)
        pipe.hget(f"{self.p}:alert_acct", alert_id)
        pipe.hget(f"{self.p}:alerts", alert_id)
        account, record = pipe.execute()
        return (account.decode() if account else None,
                orjson.loads(record) if record else None)  # fmt: skip

    def apply_actions(self, actions: Iterable[AlertAction]) -> int:
        """Apply alert actions, each once (see :class:`RedisActions`)."""
        return self.actions.apply(actions)

    def accounts_list(self, query: ListQuery | None = None) -> RiskPage:
        """Every account (alerted or not), filtered, ordered, paged; see :func:`keeps` for the
        filters and :data:`~stream.sinks.account_rows.SORTS` for the orders. ``totals`` (and
        ``summary``) are over every account the filters keep, not only the page."""
        return self._list(query or ListQuery(), open_only=False)

    def risk_list(self, query: ListQuery | None = None) -> RiskPage:
        """The accounts at risk: those with at least one open episode, filtered, ordered, paged.

        An account is at risk while an episode of it is open (the script adds an episode when
        it opens and removes it when it resolves), not merely because its health is below 100.
        Each row carries ``risk`` (100 - overall health), ``revenue_at_risk`` = risk / 100 x
        MRR, ``severity`` (the worst of its open episodes), ``open_alert_count``, ``signals``,
        and the account's name, owner, renewal date and last activity (see
        :func:`~stream.sinks.account_rows.account_row` for which source each comes from).

        The rows come from the process's list index (:mod:`stream.sinks.accounts_index`); the
        cursor is a position in the order (the last row's sort key), so rows that come or go
        between pages do not shift the others.
        """
        return self._list(query or ListQuery(), open_only=True)

    def _list(self, query: ListQuery, open_only: bool) -> RiskPage:
        found = self.index.select(query, open_only)
        return RiskPage(found.rows, found.after, found.summary, found.totals)

    def at_risk(self, limit: int, segment: str | None = None) -> list[dict]:
        """The first ``limit`` accounts at risk by revenue at risk (see :meth:`risk_list`)."""
        return self.risk_list(RiskQuery(limit=limit, segment=segment)).rows

    def open_alerts(self, limit: int, signal: str | None = None,
                    severity: str | None = None) -> list[dict]:  # fmt: skip
        """Open episodes, newest first, optionally about one signal (as the episode's own signal
        or one of its reasons) or of one severity."""
        ids = self.r.zrevrange(f"{self.p}:open", 0, -1)
        out: list[dict] = []
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            for raw in self.r.hmget(f"{self.p}:alerts", chunk):
                if raw is None:
                    continue  # resolved between the two reads
                alert = orjson.loads(raw)
                if signal and not mentions(alert, signal):
                    continue
                if severity and alert["severity"] != severity:
                    continue
                out.append(alert)
                if len(out) >= limit:
                    return out
        return out

    def mrr_at_risk(self) -> dict:
        """MRR at risk by severity: each account counted once, at its worst open severity."""
        rows = [raw.decode() for raw in self.r.hvals(f"{self.p}:opensev")]
        return mrr_at_risk(rows)

    def portfolio_report(self) -> dict:
        """What CS leaders report: MRR at risk now, and churn per month from billing."""
        return {**self.mrr_at_risk(), "months": self.portfolio.report()}

    def ping(self) -> bool:
        try:
            return bool(self.r.ping())
        except redis.RedisError:
            return False
