"""The notifier's persistent outbox: what must be sent, what was, and the episodes seen.

A webhook can be down for hours, and the notifier can be killed at any moment. So a
notification is first written here (one SQLite transaction per batch of alert records, before
the Kafka offsets of that batch are committed), and only then sent; a row leaves the
``pending`` state only when its webhook answered 2xx, or when it has been failing longer than
the configured limit (``expired``, counted and logged, never silently dropped). The row's key
(route, ``alert_id``, ``sequence``) is its primary key, so an alert record read twice (a
restart before the offset commit) queues nothing twice, and the key travels with the request as
the idempotency key.

The ``episodes`` table keeps each open episode's latest record, which tells an escalation
from another update and makes the daily digest per owner.

SQLite is in the standard library, needs no server, and gives atomic commits that survive
kill -9 (WAL mode). One file per notifier; two notifiers must not share it.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import orjson

from schemas.alerts import SEVERITY_RANK

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    key TEXT PRIMARY KEY,
    hook TEXT NOT NULL,
    body BLOB NOT NULL,
    created REAL NOT NULL,
    received REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    last_error TEXT,
    done_at REAL
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (status, next_at);
CREATE TABLE IF NOT EXISTS episodes (
    alert_id TEXT PRIMARY KEY,
    sequence INTEGER NOT NULL,
    rank INTEGER NOT NULL,
    owner TEXT,
    open INTEGER NOT NULL,
    record BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
"""


def backoff(attempts: int, base: float = 1.0, cap: float = 300.0) -> float:
    """Seconds before the next try after ``attempts`` failures: base, 2 x base, 4 x base, ...
    up to ``cap``."""
    return min(cap, base * 2.0 ** max(attempts - 1, 0))


@dataclass(frozen=True, slots=True)
class Pending:
    key: str
    hook: str
    body: bytes
    created: float
    received: float
    attempts: int


class Outbox:
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self.db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(
            "PRAGMA synchronous=FULL"
        )  # a commit survives a power cut, not only kill -9
        self.db.executescript(_SCHEMA)

    def close(self) -> None:
        self.db.close()

    # --- writing (the consumer) -------------------------------------------------------------

    def begin(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        self.db.execute("COMMIT")

    def rollback(self) -> None:
        self.db.execute("ROLLBACK")

    def enqueue(self, key: str, hook: str, body: bytes, received: float) -> bool:
        """Queue one notification; False if its key was queued before (nothing changes)."""
        now = time.time()
        cursor = self.db.execute(
            "INSERT OR IGNORE INTO outbox (key, hook, body, created, received, next_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (key, hook, body, now, received, now),
        )
        return cursor.rowcount == 1

    def observe(self, alert: dict) -> tuple[bool, int | None]:
        """Record an alert record's episode; returns (new, the previous severity rank).

        ``new`` is False for a record not newer than the one kept (a redelivery): it must not
        notify again.
        """
        row = self.db.execute(
            "SELECT sequence, rank FROM episodes WHERE alert_id = ?", (alert["alert_id"],)
        ).fetchone()
        sequence = int(alert["sequence"])
        if row is not None and row[0] >= sequence:
            return False, row[1]
        rank = SEVERITY_RANK.get(alert["severity"], 0)
        is_open = int(alert["kind"] not in ("resolved", "churned"))
        owner = (alert.get("account") or {}).get("owner")
        self.db.execute(
            "INSERT OR REPLACE INTO episodes (alert_id, sequence, rank, owner, open, record) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (alert["alert_id"], sequence, rank, owner, is_open,
             orjson.dumps(alert)),
        )  # fmt: skip
        return True, None if row is None else row[1]

    def open_by_owner(self, owners: Iterable[str] = ()) -> dict[str, list[dict]]:
        """Open episodes (latest records) per owner, most MRR first, then by account."""
        wanted = set(owners)
        found: dict[str, list[dict]] = {}
        for owner, record in self.db.execute(
            "SELECT owner, record FROM episodes WHERE open = 1 AND owner IS NOT NULL"
        ):
            if wanted and owner not in wanted:
                continue
            found.setdefault(owner, []).append(orjson.loads(record))
        for rows in found.values():
            rows.sort(key=lambda r: (-((r.get("account") or {}).get("mrr") or 0.0),
                                     r["account_id"]))  # fmt: skip
        return found

    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT v FROM meta WHERE k = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta (k, v) VALUES (?, ?)", (key, value))

    # --- sending (the delivery loop) --------------------------------------------------------

    def due(self, now: float, limit: int = 100) -> list[Pending]:
        rows = self.db.execute(
            "SELECT key, hook, body, created, received, attempts FROM outbox "
            "WHERE status = 'pending' AND next_at <= ? ORDER BY created, key LIMIT ?",
            (now, limit),
        ).fetchall()
        return [Pending(*row) for row in rows]

    def delivered(self, key: str, now: float) -> None:
        self.db.execute(
            "UPDATE outbox SET status = 'delivered', done_at = ?, attempts = attempts + 1 "
            "WHERE key = ?",
            (now, key),
        )

    def failed(self, item: Pending, error: str, now: float, give_up_after: float,
               retry_in: float = 1.0) -> bool:  # fmt: skip
        """Schedule a retry in ``retry_in`` seconds; returns True when the notification
        expired instead."""
        attempts = item.attempts + 1
        if now - item.created > give_up_after:
            self.db.execute(
                "UPDATE outbox SET status = 'expired', attempts = ?, last_error = ?, done_at = ? "
                "WHERE key = ?",
                (attempts, error[:500], now, item.key),
            )
            return True
        self.db.execute(
            "UPDATE outbox SET attempts = ?, last_error = ?, next_at = ? WHERE key = ?",
            (attempts, error[:500], now + retry_in, item.key),
        )
        return False

    def pending(self) -> int:
        """Notifications still to send: read from the ``(status, next_at)`` index, so the
        delivery loop can ask on every pass without scanning the delivered history."""
        return self.db.execute("SELECT COUNT(*) FROM outbox WHERE status = 'pending'").fetchone()[0]

    def counts(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT status, COUNT(*) FROM outbox GROUP BY status"))
