"""Alerts as terminal lines: the one format ``churnwatch alerts tail`` and the demo print.

Columns: event time (to the minute), a severity mark (``!!!`` critical down to ``.`` low), the
severity, the kind (opened, updated, resolved), the signal (for an account episode, its top
reason and how many more: ``engagement_drop+1``), the account, and why (the account's name
and owner when known, then the explanation, or the resolution for a resolved episode). Fixed
widths keep a scrolling tail readable; on a terminal the why wraps under the line at the
terminal's width, since the columns alone fill most of 80. It works on the alert record as a
dict, as read from the topic. :data:`LEGEND` explains the columns to someone seeing them for
the first time.
"""

from __future__ import annotations

import shutil
import textwrap
from typing import TextIO

from schemas.alerts import ACCOUNT_AT_RISK

_SEVERITY_MARK = {"critical": "!!!", "high": "!! ", "medium": "!  ", "low": ".  "}

LEGEND = "\n".join(
    [
        "Each alert line: time (UTC), mark and severity, kind, signal, account, and",
        "  why, after the account's name and owner (its CSM) when known.",
        "  marks: " + ", ".join(f"{mark.strip()} {sev}" for sev, mark in _SEVERITY_MARK.items()),
        "  kinds: opened (a new episode), updated (a reason joined or left, or the",
        "         severity rose), resolved (no reason left; the why says how it ended),",
        "         churned (the subscription was cancelled; the why gives the reason)",
        "  signal: an account episode shows its top reason, +N for the others",
    ]
)
"""What the columns and marks of :func:`alert_line` mean, for a header above a stream of
them (the demo) and for ``churnwatch alerts tail --help``; each line fits 80 columns."""


def terminal_width(out: TextIO) -> int | None:
    """The width to wrap at when ``out`` is a terminal; None (one line per alert) otherwise,
    so that piped output stays one record per line for grep and scripts."""
    return shutil.get_terminal_size().columns if out.isatty() else None


def alert_line(alert: dict, width: int | None = None) -> str:
    """One readable line for an alert record; with ``width``, the why wraps beneath it."""
    kind = alert["kind"]
    ended = kind in ("resolved", "churned")
    text = (alert.get("resolution") if ended else alert["explanation"]) or ""
    who = _who(alert)
    if who:
        text = f"{who}: {text}"
    head = (
        f"{alert['ts'][:16].replace('T', ' ')}  {_SEVERITY_MARK.get(alert['severity'], '   ')} "
        f"{alert['severity']:<8} {kind:<8} {_what(alert):<20} {alert['account_id']:<14}"
    )
    if width is None or len(head) + 1 + len(text) <= width:
        return f"{head} {text}"
    wrapped = textwrap.wrap(text, max(width - 4, 20), initial_indent="    ",
                            subsequent_indent="    ")  # fmt: skip
    return "\n".join([head.rstrip(), *wrapped])


def _who(alert: dict) -> str:
    """The account's name and its CSM, when the events named them (alert schema 3)."""
    account = alert.get("account")
    if not isinstance(account, dict):
        return ""
    parts = [str(v) for v in (account.get("name"), account.get("owner")) if v]
    return ", ".join(parts)


def _what(alert: dict) -> str:
    """The signal, or for an account episode the top reason and how many more."""
    reasons = alert.get("reasons") or []
    if alert["signal"] != ACCOUNT_AT_RISK or not reasons:
        return alert["signal"]
    more = f"+{len(reasons) - 1}" if len(reasons) > 1 else ""
    return f"{reasons[0]['signal']}{more}"
