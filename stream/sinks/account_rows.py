"""One row per account for the lists, from its latest alert and its latest health snapshot.

An account reaches the read model two ways: its alert records (only accounts that were
alerted) and its daily health snapshots (every account). A list row takes the account's facts
(name, owner, segment, plan, MRR, health ...) from whichever of the two is **newer in event
time**: the snapshot of a day describes the end of that day, so an alert raised during the day
is superseded at its close, and an alert the next morning supersedes that close. Both lists
(at-risk and all accounts) and the account page use this one rule, so an account shows the same
health and revenue at risk everywhere.

Revenue at risk is ``(100 - overall health) / 100 x MRR`` in both lists. The learned churn
probability (``risk_estimate``) is shown beside it but not used for it: it is absent when the
policy has no model and for new accounts, and one list mixing two definitions could not be
sorted meaningfully. A cancelled account's revenue is lost, not at risk: its revenue at risk
is 0, and list totals count its MRR apart (``cancelled_mrr``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime

from schemas.alerts import SEVERITY_RANK
from stream.core.timeutil import DAY_MS, day_of_date, to_ms
from stream.sinks.alert_records import reasons

FACTS = ("account_name", "owner", "segment", "stage", "plan", "mrr", "seats", "tenure_days",
         "renewal_date")  # fmt: skip
"""Facts both sources carry (alert records since schema version 3)."""

_NO_RENEWAL = 10.0**15
"""After any date in epoch milliseconds (year 2026 is 1.8e12): an unknown renewal sorts last."""
SortKey = tuple[float, str]


def iso_ms(text: str | None) -> int | None:
    if not text:
        return None
    return to_ms(datetime.fromisoformat(text.replace("Z", "+00:00")))


def _renewal_key(row: dict) -> float:
    text = row.get("renewal_date")
    if not text:
        return _NO_RENEWAL
    return float(day_of_date(date.fromisoformat(text[:10])) * DAY_MS)


SORTS: dict[str, Callable[[dict], SortKey]] = {
    "revenue_at_risk": lambda r: (-r["revenue_at_risk"], r["account_id"]),
    "mrr": lambda r: (-(r["mrr"] or 0.0), r["account_id"]),
    "health": lambda r: (r["health"]["overall"], r["account_id"]),
    "renewal": lambda r: (_renewal_key(r), r["account_id"]),
    "last_activity": lambda r: (float(iso_ms(r["last_activity"]) or -1), r["account_id"]),
    "last_alert": lambda r: (-(iso_ms(r["last_alert_ts"]) or 0), r["account_id"]),
}
"""Each sort's key, smallest first: revenue at risk and MRR descending, health ascending
(least healthy first), renewal soonest first (none known: last), last activity oldest first
(never used: first, the quietest accounts lead), latest alert newest first; ties by id."""

ACCOUNT_SORTS = ("revenue_at_risk", "mrr", "health", "renewal", "last_activity")
"""The all-accounts list's sorts (``last_alert`` is the at-risk list's own)."""


def account_row(alert_view: dict | None, alert_ts_ms: int | None, health: dict | None,
                open_alerts: Iterable[dict]) -> dict | None:  # fmt: skip
    """The account's row: ``alert_view`` is what the latest alert left (see
    :func:`stream.sinks.readmodel.snapshot`), ``health`` the latest snapshot's list fields
    (:func:`stream.sinks.health_model.list_fields`); None when there is neither."""
    if alert_view is None and health is None:
        return None
    episodes = list(open_alerts)
    snap_ms = iso_ms(health["ts"]) if health else None
    use_snapshot = health is not None and (alert_ts_ms is None or snap_ms >= alert_ts_ms)  # type: ignore[operator]
    source = health if use_snapshot else alert_view
    row: dict = {"account_id": (alert_view or health)["account_id"]}  # type: ignore[index]
    for key in FACTS:
        value = source.get(key)  # type: ignore[union-attr]
        if value is None:  # an older alert record lacks name, owner and renewal date
            value = (alert_view or {}).get(key) if use_snapshot else (health or {}).get(key)
        row[key] = value
    row["health"] = source["health"]  # type: ignore[index]
    risk = 100 - int(row["health"]["overall"])
    worst = max(episodes, key=lambda a: SEVERITY_RANK.get(a["severity"], 0), default=None)
    signals = {s for a in episodes for s in (a["signal"], *_reason_signals(a))}
    signals.update((health or {}).get("open_signals") or ())
    status = (health or {}).get("status", "active")
    cancelled = status == "cancelled"
    row.update(
        status=status,
        last_activity=(health or {}).get("last_activity"),
        risk_estimate=(health or {}).get("risk_estimate"),
        snapshot_day=(health or {}).get("day"),
        as_of=health["ts"] if use_snapshot else (alert_view or {}).get("last_alert_ts"),  # type: ignore[index]
        last_alert_ts=(alert_view or {}).get("last_alert_ts"),
        risk=risk,
        revenue_at_risk=0.0 if cancelled else round(risk / 100 * (row["mrr"] or 0.0), 2),
        severity=worst["severity"] if worst else None,
        open_alert_count=len(episodes),
        signals=sorted(signals),
    )
    return row


def _reason_signals(alert: dict) -> list[str]:
    return [r["signal"] for r in reasons(alert) if isinstance(r.get("signal"), str)]


@dataclass(frozen=True)
class ListQuery:
    """What a list is asked: filters, order and one page of it."""

    limit: int = 20
    segment: str | None = None
    owner: str | None = None
    signal: str | None = None
    severity: str | None = None
    q: str | None = None
    status: str | None = None
    """``active`` or ``cancelled`` (the latest snapshot's); None for both."""
    snoozed: str = "hide"
    """The at-risk list's accounts whose open alerts are all snoozed or dismissed: ``hide``
    them, ``include`` them, or show ``only`` them."""
    sort: str = "revenue_at_risk"
    after: SortKey | None = None
    """The sort key of the previous page's last row: this page starts after it."""

    def filters(self) -> tuple:
        return (self.segment, (self.owner or "").casefold() or None, self.signal,
                self.severity, (self.q or "").casefold() or None, self.status)  # fmt: skip


RiskQuery = ListQuery
"""The at-risk list's query (its name before the all-accounts list shared it)."""


def keeps(row: dict, query: ListQuery) -> bool:
    """Whether the filters keep ``row``: ``segment`` exactly, ``owner`` ignoring case,
    ``signal`` among the row's signals (an open episode's, its reasons', or firing at the
    latest close), ``severity`` the worst open one, ``q`` a case-insensitive substring of the
    account id or name, ``status`` the subscription's."""
    return matches(row, query.filters())


def matches(row: dict, filters: tuple) -> bool:
    """:func:`keeps` with the query's :meth:`ListQuery.filters` worked out once per list."""
    segment, owner, signal, severity, q, status = filters
    if status is not None and row["status"] != status:
        return False
    if segment is not None and row["segment"] != segment:
        return False
    if owner is not None and (row["owner"] or "").casefold() != owner:
        return False
    if signal is not None and signal not in row["signals"]:
        return False
    if severity is not None and row["severity"] != severity:
        return False
    if q is not None:
        name = row["account_name"] or ""
        if q not in row["account_id"].casefold() and q not in name.casefold():
            return False
    return True


def totals(rows: Iterable[dict]) -> dict:
    """Count, MRR and revenue at risk over every row the filters keep (not only a page); the
    MRR of cancelled accounts (their last) is counted apart from the live MRR."""
    count, cancelled, mrr, lost, at_risk = 0, 0, 0.0, 0.0, 0.0
    for row in rows:
        count += 1
        if row["status"] == "cancelled":
            cancelled += 1
            lost += row["mrr"] or 0.0
        else:
            mrr += row["mrr"] or 0.0
        at_risk += row["revenue_at_risk"]
    return {"accounts": count, "mrr": round(mrr, 2), "revenue_at_risk": round(at_risk, 2),
            "cancelled": cancelled, "cancelled_mrr": round(lost, 2)}  # fmt: skip


def select(rows: Iterable[dict], query: ListQuery) -> tuple[list[dict], SortKey | None, list[dict]]:
    """The reference list: (the page, the cursor after it or None, every filtered row)."""
    key = SORTS[query.sort]
    kept = sorted((r for r in rows if keeps(r, query)), key=key)
    rest = kept if query.after is None else [r for r in kept if key(r) > query.after]
    page = rest[: query.limit]
    after = key(page[-1]) if len(rest) > query.limit and page else None
    return page, after, kept
