"""What a webhook receives: Slack incoming-webhook messages, or plain JSON signed with HMAC.

Pure functions of the alert record, so a notification queued before a crash is sent again
with the same body, and tests read the words a CSM will read. The plain-JSON body carries the
alert record whole, with its ``idempotency_key`` (route, ``alert_id`` and ``sequence``), which
is also sent as the ``Idempotency-Key`` header: a receiver that keeps the keys it has seen
never acts twice on one notification, however often a retry delivers it.

Signing: ``X-Churnwatch-Signature: t=<unix seconds>,v1=<hex>``, where ``hex`` is the
HMAC-SHA256 of ``"<t>." + body`` under the route's secret. The receiver recomputes it, and
refuses a ``t`` too far from its own clock, which stops a captured request from being replayed
later (the scheme Stripe and Slack use for their own webhooks).
"""

from __future__ import annotations

import hashlib
import hmac

from schemas.codec import dumps
from stream.sinks.alert_records import reasons

SIGNATURE_HEADER = "X-Churnwatch-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
_LABEL = {"opened": "New", "escalated": "Escalated", "updated": "Updated", "resolved": "Resolved",
          "churned": "Churned"}  # fmt: skip


def notification_key(route: str, alert: dict) -> str:
    return f"{route}:{alert['alert_id']}:{alert['sequence']}"


def digest_key(owner: str, day: str) -> str:
    return f"digest:{owner}:{day}"


def _money(value: object) -> str:
    return f"${value:,.0f}" if isinstance(value, int | float) else "MRR unknown"


def _who(alert: dict) -> str:
    account = alert.get("account") or {}
    name = account.get("name") or alert["account_id"]
    owner = account.get("owner")
    return f"{name} ({alert['account_id']})" + (f", owner {owner}" if owner else "")


def summary_line(alert: dict, event: str) -> str:
    """One line: what happened, to whom, how bad, how much revenue."""
    account = alert.get("account") or {}
    return (
        f"{_LABEL.get(event, event.title())} {alert['severity']} churn risk: {_who(alert)}, "
        f"{_money(account.get('mrr'))} MRR"
    )


def slack_body(alert: dict, event: str) -> bytes:
    """A Slack incoming-webhook message: a plain ``text`` (notifications, and clients without
    blocks) and blocks with the reasons and the next step."""
    lines = [f"*{summary_line(alert, event)}*"]
    if event in ("resolved", "churned"):
        lines.append(alert.get("resolution") or event)
    else:
        for reason in reasons(alert)[:5]:
            lines.append(f"• {reason['explanation']}")
        if alert.get("playbook"):
            lines.append(f"Next step: {alert['playbook']}")
    return _slack(summary_line(alert, event), "\n".join(lines))


def _slack(text: str, detail: str) -> bytes:
    """Slack's message shape; a section's text is capped at 3,000 characters."""
    section = {"type": "section", "text": {"type": "mrkdwn", "text": detail[:2900]}}
    return dumps({"text": text, "blocks": [section]})


def json_body(alert: dict, event: str, key: str) -> bytes:
    return dumps({"event": event, "idempotency_key": key, "alert": alert})


def digest_body(fmt: str, owner: str, day: str, rows: list[dict], key: str) -> bytes:
    """``rows``: the owner's open episodes (latest records), most revenue first."""
    opened = [r for r in rows if r["ts"][:10] == day and r["sequence"] == 0]
    mrr = sum((r.get("account") or {}).get("mrr") or 0.0 for r in rows)
    head = (
        f"Churn risk digest for {owner}, {day}: {len(rows)} accounts at risk "
        f"({_money(mrr)} MRR), {len(opened)} new that day"
    )
    if fmt == "json":
        return dumps({"event": "digest", "idempotency_key": key, "owner": owner, "day": day,
                      "summary": head, "open": rows})  # fmt: skip
    lines = [f"*{head}*"]
    for row in rows[:20]:
        account = row.get("account") or {}
        lines.append(
            f"• {row['severity']}: {_who(row)}, {_money(account.get('mrr'))}: {row['explanation']}"
        )
    if len(rows) > 20:
        lines.append(f"… and {len(rows) - 20} more")
    return _slack(head, "\n".join(lines))


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: bytes, header: str, body: bytes, now: int, tolerance: int = 300) -> bool:
    """What a receiver does (and the tests do): recompute, compare in constant time, and
    refuse an old timestamp."""
    try:
        fields = dict(part.split("=", 1) for part in header.split(","))
        timestamp = int(fields["t"])
    except (ValueError, KeyError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), header)
