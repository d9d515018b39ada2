"""The account lists' rows, cached in the API process and refreshed from what changed.

Sorting and filtering 100k accounts needs every account's row; reading them all from Redis
on every request costs a second (100k rows of JSON). Instead each API process keeps the rows
(:func:`stream.sinks.account_rows.account_row`) in memory and, before each answer, asks Redis
which accounts changed since it last looked: every write script (alerts and snapshots) bumps
``{p}:ver`` and records the account in the sorted set ``{p}:changed`` at that value, so the
refresh is one ``ZRANGEBYSCORE`` plus a pipelined read of the changed accounts alone. The
answer is as fresh as Redis at the time of the request.

Per sort, the ordered rows (and their keys, for the cursor) are kept until a row changes, and
the totals per set of filters likewise: paging through a filtered list costs
``O(log n + page)`` after its first page, which costs one pass over the rows.

The first refresh (or after a restart) reads every account: those in ``{p}:changed``, in the
snapshot rows and in the alert ranking ``{p}:risk`` (which a read model written before the
change log existed already holds).
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
import redis

from stream.sinks.account_rows import SORTS, ListQuery, SortKey, account_row, keeps, totals

_CHUNK = 1000
_KEEP_FILTERS = 64


@dataclass
class ListPage:
    rows: list[dict]
    after: SortKey | None
    """The sort key of this page's last row when more follow, else None."""
    matched: list[dict]
    """Every row the filters keep, in order (for totals over the whole filtered list)."""
    totals: dict


class AccountsIndex:
    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.r = client
        self.p = prefix
        self.rows: dict[str, dict] = {}
        self.version: float | None = None
        self._orders: dict[str, list[dict]] = {}
        self._matched: dict[tuple, list[dict]] = {}
        self._totals: dict[tuple, dict] = {}

    def refresh(self) -> int:
        """Read the accounts that changed since the last refresh; returns how many."""
        p = self.p
        since = "-inf" if self.version is None else f"({self.version}"
        changed = self.r.zrangebyscore(f"{p}:changed", since, "+inf", withscores=True)
        ids = {m.decode() for m, _ in changed}
        top = max((score for _, score in changed), default=self.version or 0.0)
        if self.version is None:
            ids.update(m.decode() for m in self.r.hkeys(f"{p}:rows"))
            ids.update(m.decode() for m in self.r.zrange(f"{p}:risk", 0, -1))
        if not ids:
            self.version = top
            return 0
        ordered = sorted(ids)
        for start in range(0, len(ordered), _CHUNK):
            chunk = ordered[start : start + _CHUNK]
            pipe = self.r.pipeline(transaction=False)
            for account in chunk:
                pipe.hget(f"{p}:rows", account)
                pipe.hmget(f"{p}:acct:{account}", "snapshot", "ts_ms")
                pipe.hvals(f"{p}:acct:{account}:open")
            replies = pipe.execute()
            for i, account in enumerate(chunk):
                health, (view, ts), episodes = replies[3 * i : 3 * i + 3]
                row = account_row(
                    orjson.loads(view) if view else None, int(ts) if ts else None,
                    orjson.loads(health) if health else None, (orjson.loads(e) for e in episodes),
                )  # fmt: skip
                if row is None:
                    self.rows.pop(account, None)
                else:
                    self.rows[account] = row
        self.version = top
        self._orders.clear()
        self._matched.clear()
        self._totals.clear()
        return len(ids)

    def _order(self, sort: str) -> list[dict]:
        if sort not in self._orders:
            self._orders[sort] = sorted(self.rows.values(), key=SORTS[sort])
        return self._orders[sort]

    def select(self, query: ListQuery, open_only: bool = False) -> ListPage:
        """One page of the list (``open_only``: accounts with an open alert), its cursor and
        the totals over every account the filters keep."""
        self.refresh()
        cache = (query.sort, open_only, *query.filters())
        matched = self._matched.get(cache)
        if matched is None:
            if len(self._matched) >= _KEEP_FILTERS:  # many searches: keep memory bounded
                self._matched.clear()
                self._totals.clear()
            matched = [r for r in self._order(query.sort)
                       if (not open_only or r["open_alert_count"]) and keeps(r, query)]  # fmt: skip
            self._matched[cache] = matched
            self._totals[cache] = totals(matched)
        key = SORTS[query.sort]
        start = 0 if query.after is None else _after(matched, key, query.after)
        page = matched[start : start + query.limit]
        after = key(page[-1]) if len(matched) > start + query.limit and page else None
        return ListPage([dict(r) for r in page], after, matched, self._totals[cache])


def _after(matched: list[dict], key, after: SortKey) -> int:
    """The index of the first row of ``matched`` (in key order) whose key is after ``after``."""
    lo, hi = 0, len(matched)
    while lo < hi:
        mid = (lo + hi) // 2
        if key(matched[mid]) <= after:
            lo = mid + 1
        else:
            hi = mid
    return lo
