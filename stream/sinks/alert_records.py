"""Reading alert records back from the alerts topic, for every consumer on the read side.

The read-model feed and the terminal tail both read the alerts topic. The topic is ours, but
a consumer is defensive about it: anything that is not an alert record is skipped (and
counted by the feed), never a crash. The check is on the fields the consumers use, not a full
schema validation, so a newer producer's extra fields pass through.
"""

from __future__ import annotations

import orjson

REQUIRED = ("alert_id", "sequence", "kind", "account_id", "ts", "signal", "severity", "health",
            "account")  # fmt: skip
"""The fields the read model and the terminal views rely on."""


def reasons(alert: dict) -> list[dict]:
    """The signals behind a record (schema version 2); a version 1 record is its own reason."""
    found = alert.get("reasons")
    if isinstance(found, list) and found:
        return found
    return [alert]


def mentions(alert: dict, signal: str) -> bool:
    """Whether a filter on ``signal`` keeps the record: its own signal, or one of its reasons
    (an account episode is about every signal it lists)."""
    return alert["signal"] == signal or any(r.get("signal") == signal for r in reasons(alert))


def parse(value: bytes | None) -> dict | None:
    """An alert record, or None for anything else."""
    try:
        alert = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return None
    if not isinstance(alert, dict) or any(key not in alert for key in REQUIRED):
        return None
    return alert
