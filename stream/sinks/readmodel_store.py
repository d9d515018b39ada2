"""The read model in Redis: one atomic script per alert record, and the queries the API runs.

Keys, under a prefix (default ``churnwatch``):

* ``{p}:acct:{id}``: hash with the account's ``snapshot`` (JSON), ``ts_ms`` and ``segment``;
* ``{p}:acct:{id}:open``: hash of the account's open episodes, alert id -> latest record;
* ``{p}:open``: sorted set of every open episode's alert id by event time, and
  ``{p}:alerts``: hash alert id -> latest record, for listing open alerts;
* ``{p}:risk`` and ``{p}:risk:{segment}``: sorted sets of accounts by risk;
* ``{p}:seq``: hash alert id -> highest sequence applied (what makes writes idempotent);
* ``{p}:opensev``: hash open alert id -> "account|severity|mrr", small enough to sum the MRR
  at risk over every open episode in one read.

The script holds the rules of :mod:`stream.sinks.readmodel`, so a record is applied whole or not at
all, and applying it twice is a no-op. It touches keys it derives from its arguments (the
per-segment ranking), which a single Redis server allows; Redis Cluster would need hash tags.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import orjson
import redis

from schemas.alerts import SEVERITY_RANK
from stream.kafka.settings import REDIS_SCHEMES
from stream.sinks.alert_records import mentions, reasons
from stream.sinks.portfolio_store import RedisPortfolio
from stream.sinks.readmodel import mrr_at_risk, open_summary, risk_of, snapshot, ts_ms

SORTS: dict[str, Callable[[dict], tuple[float, str]]] = {
    "revenue_at_risk": lambda r: (-r["revenue_at_risk"], r["account_id"]),
    "mrr": lambda r: (-(r["mrr"] or 0.0), r["account_id"]),
    "health": lambda r: (r["health"]["overall"], r["account_id"]),
    "last_alert": lambda r: (-r["_ts_ms"], r["account_id"]),
}
"""Each sort's key, smallest first: revenue at risk, MRR and the latest alert's time
descending, health ascending (least healthy first); ties by account id ascending."""


@dataclass(frozen=True)
class RiskQuery:
    """What :meth:`RedisReadModel.risk_list` is asked: filters, order and one page of it."""

    limit: int = 20
    segment: str | None = None
    signal: str | None = None
    severity: str | None = None
    q: str | None = None
    sort: str = "revenue_at_risk"
    after: tuple[float, str] | None = None
    """The sort key of the previous page's last row: this page starts after it."""


@dataclass
class RiskPage:
    rows: list[dict]
    after: tuple[float, str] | None
    """The sort key of this page's last row when more follow, else None."""
    summary: dict
    """MRR at risk by severity over every account the filters keep (not only this page)."""


def _risk_row(view: dict, ts: int, open_alerts: list[dict]) -> dict:
    risk = 100 - int(view["health"]["overall"])
    worst = max(open_alerts, key=lambda a: SEVERITY_RANK.get(a["severity"], 0))
    signals = sorted({s for a in open_alerts for s in (a["signal"], *_reason_signals(a))})
    return {**view, "risk": risk, "revenue_at_risk": round(risk / 100 * (view["mrr"] or 0.0), 2),
            "severity": worst["severity"], "open_alert_count": len(open_alerts),
            "signals": signals, "_ts_ms": ts}  # fmt: skip


def _reason_signals(alert: dict) -> list[str]:
    return [r["signal"] for r in reasons(alert) if isinstance(r.get("signal"), str)]


_APPLY = """
local seq = redis.call('HGET', KEYS[3], ARGV[1])
if seq and tonumber(seq) >= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
if ARGV[3] == 'resolved' then
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


class RedisReadModel:
    """Writes alert records into Redis and answers the API's questions from it."""

    def __init__(self, client: redis.Redis, prefix: str = "churnwatch") -> None:
        self.r = client
        self.p = prefix
        self._apply = client.register_script(_APPLY)
        self.portfolio = RedisPortfolio(client, prefix)
        """Churn per month, kept from the billing topic beside the alerts' read model."""

    @classmethod
    def from_url(cls, url: str, prefix: str = "churnwatch", timeout: float = 5.0):
        """``redis://``, ``rediss://`` (TLS) or ``unix://``, with ``:password@`` if needed."""
        if not url.startswith(REDIS_SCHEMES):
            raise ValueError(f"Redis URL must start with redis://, rediss:// or unix://: {url!r}")
        client = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, decode_responses=False
        )
        return cls(client, prefix)

    # --- writing ----------------------------------------------------------------------------

    def apply(self, alerts: Iterable[dict]) -> int:
        """Apply records in order in one round trip; returns how many changed anything.

        Raises ``redis.RedisError`` if Redis did not take them all. Some may have been applied
        then; applying the batch again is safe, which is what the consumer does.
        """
        pipe = self.r.pipeline(transaction=False)
        count = 0
        for alert in alerts:
            account, p = alert["account_id"], self.p
            keys = [f"{p}:acct:{account}", f"{p}:acct:{account}:open", f"{p}:seq", f"{p}:risk",
                    f"{p}:open", f"{p}:alerts", f"{p}:opensev"]  # fmt: skip
            args = [alert["alert_id"], int(alert["sequence"]), alert["kind"], ts_ms(alert),
                    orjson.dumps(alert), orjson.dumps(snapshot(alert)), risk_of(alert), account,
                    alert["account"]["segment"], f"{p}:risk:", open_summary(alert)]  # fmt: skip
            self._apply(keys=keys, args=args, client=pipe)
            count += 1
        if not count:
            return 0
        return sum(int(x) for x in pipe.execute())

    # --- reading ----------------------------------------------------------------------------

    def account(self, account_id: str) -> dict | None:
        pipe = self.r.pipeline(transaction=False)
        pipe.hget(f"{self.p}:acct:{account_id}", "snapshot")
        pipe.hgetall(f"{self.p}:acct:{account_id}:open")
        raw, episodes = pipe.execute()
        if raw is None:
            return None
        view = orjson.loads(raw)
        view["open_alerts"] = sorted(
            (orjson.loads(v) for v in episodes.values()), key=lambda a: (a["ts"], a["alert_id"])
        )
        return view

    def risk_list(self, query: RiskQuery | None = None) -> RiskPage:
        """The accounts at risk: those with at least one open episode, filtered, ordered, paged.

        An account is at risk while ``{p}:alerts`` holds an episode of it (the script adds an
        episode there when it opens and removes it when it resolves), not merely because its
        health is below 100. Each row carries ``risk`` (100 - overall health, the ranking score
        the store keeps), ``revenue_at_risk`` = risk / 100 x MRR (both from the account's latest
        alert), ``severity`` (the worst of its open episodes), ``open_alert_count`` and
        ``signals`` (those its open episodes are about, reasons included).

        Filters: ``segment``; ``signal`` keeps accounts with an open episode about it;
        ``severity`` keeps accounts whose worst open severity is that one (as the portfolio
        counts them); ``q`` is a case-insensitive substring of the account id. The summary
        (MRR at risk by severity) is over every filtered account, not only the page.

        Cost: one read of every open episode and one pipelined read per account with one,
        then a sort: O(E + A log A) for E open episodes and A accounts with one, a few
        milliseconds for thousands. The cursor is a position in the order (the last row's
        sort key), so rows that come or go between pages do not shift the others.
        """
        query = query or RiskQuery()
        episodes: dict[str, list[dict]] = {}
        for raw in self.r.hvals(f"{self.p}:alerts"):
            alert = orjson.loads(raw)
            episodes.setdefault(alert["account_id"], []).append(alert)
        needle = query.q.casefold() if query.q else None
        ids = sorted(a for a in episodes if needle is None or needle in a.casefold())
        rows: list[dict] = []
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            pipe = self.r.pipeline(transaction=False)
            for account in chunk:
                pipe.hmget(f"{self.p}:acct:{account}", "snapshot", "ts_ms")
            for account, (raw, ts) in zip(chunk, pipe.execute(), strict=True):
                if raw is None:
                    continue
                row = _risk_row(orjson.loads(raw), int(ts or 0), episodes[account])
                if query.segment and row["segment"] != query.segment:
                    continue
                if query.severity and row["severity"] != query.severity:
                    continue
                if query.signal and not any(mentions(a, query.signal) for a in episodes[account]):
                    continue
                rows.append(row)
        key = SORTS[query.sort]
        rows.sort(key=key)
        summary = mrr_at_risk(f"{r['account_id']}|{r['severity']}|{r['mrr'] or 0.0}" for r in rows)
        if query.after is not None:
            rows = [r for r in rows if key(r) > query.after]
        page, more = rows[: query.limit], len(rows) > query.limit
        after = key(page[-1]) if more and page else None
        for row in page:
            del row["_ts_ms"]
        return RiskPage(page, after, summary)

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
