"""The account lists' rows, cached in the API process and refreshed from what changed.

Sorting and filtering 100k accounts needs every account's row; reading them all from Redis
on every request costs a second (100k rows of JSON). Instead each API process keeps the rows
(:func:`stream.sinks.account_rows.account_row`) in memory and, before each answer, asks Redis
which accounts changed since it last looked: every write script (alerts and snapshots) bumps
``{p}:ver`` and records the account in the sorted set ``{p}:changed`` at that value, so the
refresh is one ``ZRANGEBYSCORE`` plus a pipelined read of the changed accounts alone. The
answer is as fresh as Redis at the time of the request.

Per sort, the ordered rows are kept, and re-sorted after a change with the changed rows
swapped in (nearly sorted: close to one pass); per set of filters the matching rows and
their totals are kept until a row changes: paging through a filtered list costs
``O(log n + page)`` after its first page, which costs one pass over the rows.

The first refresh (or after a restart) reads every account: those in ``{p}:changed``, in the
snapshot rows and in the alert ranking ``{p}:risk`` (which a read model written before the
change log existed already holds).
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import itemgetter

import orjson
import redis

from stream.sinks.account_rows import SORTS, ListQuery, SortKey, account_row, matches, totals
from stream.sinks.alert_actions import acknowledged, attention, fold, hidden
from stream.sinks.readmodel import mrr_at_risk

_CHUNK = 1000
_KEEP_FILTERS = 64


@dataclass
class ListPage:
    rows: list[dict]
    after: SortKey | None
    """The sort key of this page's last row when more follow, else None."""
    totals: dict
    """Count, MRR and revenue at risk over every row the filters keep."""
    summary: dict
    """MRR at risk by severity over every row the filters keep (the at-risk page's table)."""


_KEYS = {sort: f"_key_{sort}" for sort in SORTS}
"""Each row carries its sort keys, worked out once when it is read: sorting 100k rows then
compares precomputed tuples (``itemgetter``) instead of parsing dates per comparison pass."""


def _public(row: dict, now_ms: int) -> dict:
    """The row as the API shows it: without the index's own keys, with what the team did
    with its open alerts as of the read model's event time."""
    out = {k: v for k, v in row.items() if not k.startswith("_")}
    out.update(attention(row.get("_hidden") or [], row.get("_acked", 0), now_ms))
    return out


def _shown(row: dict, query: ListQuery, now_ms: int) -> bool:
    """Whether the at-risk list shows the row: by default only accounts with an open alert
    that is neither snoozed nor dismissed; ``snoozed=include`` shows every account with an
    open alert, ``snoozed=only`` those whose every open alert is snoozed or dismissed."""
    if query.snoozed == "include":
        return True
    waiting = min(row.get("_hidden") or [0]) > now_ms
    return waiting if query.snoozed == "only" else not waiting


class AccountsIndex:
    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.r = client
        self.p = prefix
        self.rows: dict[str, dict] = {}
        self.version: float | None = None
        self._orders: dict[str, list[dict]] = {}
        self._stale: dict[str, bool] = {}
        """Per sort: rows changed since its order was made (re-sorted on its next use)."""
        self._added = False
        self.now_ms = 0
        """The read model's event time at the last refresh (what ends a snooze)."""
        self._cache: dict[tuple, tuple[list[dict], dict, dict]] = {}
        """Per (sort, open_only, filters): the matching rows in order, totals and summary."""

    def refresh(self) -> int:
        """Read the accounts that changed since the last refresh; returns how many."""
        p = self.p
        since = "-inf" if self.version is None else f"({self.version}"
        pipe = self.r.pipeline(transaction=False)
        pipe.zrangebyscore(f"{p}:changed", since, "+inf", withscores=True)
        pipe.get(f"{p}:clock")
        changed, clock = pipe.execute()
        if clock is not None and int(clock) != self.now_ms:
            self.now_ms = int(clock)
            self._cache.clear()  # snoozes may have ended
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
            # Two commands a chunk for every account's snapshot row and whether it was ever
            # alerted (in {p}:risk); two more per alerted account only.
            pipe = self.r.pipeline(transaction=False)
            pipe.hmget(f"{p}:rows", chunk)
            pipe.zmscore(f"{p}:risk", chunk)
            healths, alerted = pipe.execute()
            pipe = self.r.pipeline(transaction=False)
            for account, score in zip(chunk, alerted, strict=True):
                if score is not None:
                    pipe.hmget(f"{p}:acct:{account}", "snapshot", "ts_ms")
                    pipe.hvals(f"{p}:acct:{account}:open")
                    pipe.lrange(f"{p}:acct:{account}:actions", 0, -1)
            replies = iter(pipe.execute())
            for account, health, score in zip(chunk, healths, alerted, strict=True):
                view, ts, episodes, states = None, None, [], {}
                if score is not None:
                    (view, ts), raw, actions = next(replies), next(replies), next(replies)
                    episodes = [orjson.loads(e) for e in raw]
                    states = fold(orjson.loads(a) for a in actions)
                row = account_row(
                    orjson.loads(view) if view else None, int(ts) if ts else None,
                    orjson.loads(health) if health else None, episodes,
                )  # fmt: skip
                if row is None:
                    self._added |= self.rows.pop(account, None) is not None
                    continue
                row["_hidden"] = hidden(episodes, states)
                row["_acked"] = acknowledged(episodes, states)
                for sort, name in _KEYS.items():
                    row[name] = SORTS[sort](row)
                self._added |= account not in self.rows
                self.rows[account] = row
        self.version = top
        self._stale = dict.fromkeys(self._orders, True)
        self._cache.clear()
        return len(ids)

    def _order(self, sort: str) -> list[dict]:
        """Every row in ``sort``'s order. After a refresh the previous order is re-sorted with
        the changed rows swapped in: nearly sorted already, which Python's sort (Timsort)
        finishes in close to one pass."""
        key = itemgetter(_KEYS[sort])
        order = self._orders.get(sort)
        if order is None or self._added:
            order = sorted(self.rows.values(), key=key)
        elif self._stale.get(sort):
            rows = self.rows
            order = [rows[r["account_id"]] for r in order]
            order.sort(key=key)
        self._orders[sort] = order
        self._stale[sort] = False
        return order

    def owners(self) -> list[str]:
        """Every owner named on an account, alphabetically, one spelling per name ignoring
        case (the owner filter's matching): the page's "My accounts" links."""
        self.refresh()
        names: dict[str, str] = {}
        for row in self.rows.values():
            owner = row.get("owner")
            if owner:
                names.setdefault(owner.casefold(), owner)
        return [names[key] for key in sorted(names)]

    def select(self, query: ListQuery, open_only: bool = False) -> ListPage:
        """One page of the list (``open_only``: accounts with an open alert), its cursor and
        the totals over every account the filters keep."""
        self.refresh()
        cache = (query.sort, open_only, query.snoozed, *query.filters())
        found = self._cache.get(cache)
        if found is None:
            if len(self._cache) >= _KEEP_FILTERS:  # many searches: keep memory bounded
                self._cache.clear()
            if self._added:  # accounts came or went: every order is rebuilt on its next use
                self._orders.clear()
                self._order(query.sort)
                self._added = False
            filters = query.filters()
            rows = self._order(query.sort)
            if open_only:
                rows = [r for r in rows if r["open_alert_count"] and _shown(r, query, self.now_ms)]
            matched = [r for r in rows if matches(r, filters)]
            summary = mrr_at_risk(f"{r['account_id']}|{r['severity']}|{r['mrr'] or 0.0}"
                                  for r in matched if r["severity"])  # fmt: skip
            found = self._cache[cache] = (matched, totals(matched), summary)
        matched, sums, summary = found
        name = _KEYS[query.sort]
        start = 0 if query.after is None else _after(matched, name, query.after)
        page = matched[start : start + query.limit]
        after = page[-1][name] if len(matched) > start + query.limit and page else None
        return ListPage([_public(r, self.now_ms) for r in page], after, sums, summary)


def _after(matched: list[dict], name: str, after: SortKey) -> int:
    """The index of the first row of ``matched`` (in key order) whose key is after ``after``."""
    lo, hi = 0, len(matched)
    while lo < hi:
        mid = (lo + hi) // 2
        if matched[mid][name] <= after:
            lo = mid + 1
        else:
            hi = mid
    return lo
