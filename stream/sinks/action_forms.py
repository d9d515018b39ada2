"""What the page shows of a team's actions on an alert, and the forms to take them.

Plain HTML forms (no scripts): each posts to ``/alerts/{alert_id}/...`` with the session's CSRF
token and a fresh idempotency key, so pressing a button twice, or reloading after a post, records
one action. Without a token configured on the server the page says actions are off; without a
session it links to the sign-in page.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from html import escape
from urllib.parse import quote

from schemas.actions import MAX_NOTE, MAX_REASON
from stream.render import readable as r


@dataclass(frozen=True)
class Controls:
    """Who is looking and whether they may act: ``csrf`` is their session's token (None
    without a session), ``enabled`` whether the server has tokens at all."""

    enabled: bool
    actor: str | None = None
    csrf: str | None = None
    today: str | None = None
    """The read model's latest day (event time): a snooze must end after it."""
    path: str = "/"


def state_line(alert: dict) -> str:
    """What was done with the alert so far, in words; empty when nothing was."""
    state = alert.get("actions")
    if not state:
        return ""
    parts = []
    if state.get("acknowledged"):
        a = state["acknowledged"]
        parts.append(f"Acknowledged by {escape(a['by'])}, {escape(r.moment(a['at']))}.")
    if state.get("snoozed"):
        s = state["snoozed"]
        parts.append(f"Snoozed until {escape(r.day(s['until']))} by {escape(s['by'])}: "
                     f"{escape(s['reason'])}.")  # fmt: skip
    if state.get("dismissed"):
        d = state["dismissed"]
        parts.append(f"Dismissed as a false alarm by {escape(d['by'])}: {escape(d['reason'])}.")
    notes = "".join(
        f"<li>Note by {escape(n['by'])}, {escape(r.moment(n['at']))}: {escape(n['text'])}</li>"
        for n in state.get("notes") or []
    )
    line = f'<p class="acted">{" ".join(parts)}</p>' if parts else ""
    return line + (f'<ul class="notes">{notes}</ul>' if notes else "")


def _hidden(controls: Controls) -> str:
    return (f'<input type="hidden" name="csrf" value="{escape(controls.csrf or "")}">'
            f'<input type="hidden" name="idempotency_key" value="{uuid.uuid4().hex}">'
            f'<input type="hidden" name="next" value="{escape(controls.path)}">')  # fmt: skip


def forms(alert: dict, controls: Controls | None) -> str:
    """The four actions on one open alert, or a line saying why they are not offered."""
    if controls is None:
        return ""
    if not controls.enabled:
        return ('<p class="note">Actions are off: the server has no API token configured '
                "(see docs/operations.md).</p>")  # fmt: skip
    if controls.csrf is None:
        back = quote(controls.path, safe="")
        return (f'<p class="note"><a href="/login?next={back}">Sign in</a> to acknowledge, '
                "snooze, dismiss or add a note.</p>")  # fmt: skip
    action = "/alerts/" + quote(alert["alert_id"], safe="")
    hidden = _hidden(controls)
    first = date.fromisoformat(controls.today) if controls.today else None
    earliest = (first + timedelta(days=1)).isoformat() if first else ""
    default = (first + timedelta(days=7)).isoformat() if first else ""
    state = alert.get("actions") or {}
    ack = ("" if state.get("acknowledged") else
           f'<form method="post" action="{action}/ack">{hidden}'
           '<button type="submit">Acknowledge</button></form>')  # fmt: skip
    return (
        f'<div class="actions">{ack}'
        f'<details><summary>Snooze</summary><form method="post" action="{action}/snooze">'
        f'{hidden}<label>until <input type="date" name="until" min="{earliest}" '
        f'value="{default}" required></label> <label>why <input name="reason" '
        f'maxlength="{MAX_REASON}" required></label> <button type="submit">Snooze</button>'
        "</form></details>"
        f'<details><summary>Dismiss as a false alarm</summary><form method="post" '
        f'action="{action}/dismiss">{hidden}<label>why <input name="reason" '
        f'maxlength="{MAX_REASON}" required></label> <button type="submit">Dismiss</button>'
        "</form></details>"
        f'<details><summary>Add a note</summary><form method="post" action="{action}/notes">'
        f'{hidden}<label>note <textarea name="text" rows="2" maxlength="{MAX_NOTE}" required>'
        '</textarea></label> <button type="submit">Add note</button></form></details>'
        f'<form method="post" action="/logout" class="note">Acting as '
        f'{escape(controls.actor or "")}. <input type="hidden" name="csrf" '
        f'value="{escape(controls.csrf)}"><button type="submit">Sign out</button></form></div>'
    )
