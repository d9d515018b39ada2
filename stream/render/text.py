"""Alerts as terminal lines: the one format ``churnwatch alerts tail`` and the demo print.

Columns: event time (to the minute), a severity mark (``!!!`` critical down to ``.`` low), the
severity, the kind (opened, updated, resolved), the signal, the account, and why (the
explanation, or the resolution for a resolved episode). Fixed widths keep a scrolling tail
readable; it works on the alert record as a dict, as read from the topic.
"""

from __future__ import annotations

_SEVERITY_MARK = {"critical": "!!!", "high": "!! ", "medium": "!  ", "low": ".  "}


def alert_line(alert: dict) -> str:
    """One readable line for an alert record."""
    kind = alert["kind"]
    text = alert.get("resolution") if kind == "resolved" else alert["explanation"]
    return (
        f"{alert['ts'][:16].replace('T', ' ')}  {_SEVERITY_MARK.get(alert['severity'], '   ')} "
        f"{alert['severity']:<8} {kind:<8} {alert['signal']:<20} {alert['account_id']:<14} "
        f"{text or ''}"
    )
