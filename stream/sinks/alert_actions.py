"""What a team's actions mean for an alert: acknowledged, snoozed, dismissed, its notes.

Pure rules over action records (:class:`schemas.actions.AlertAction` as JSON dicts), shared by
the read model's list index, the account page and the tests. Actions are folded in the order of
their time and id, not of arrival, so a rebuild from the topic (or two deliveries in another
order) gives the same state.

* **acknowledged**: the first acknowledgement (who saw it first); later ones change nothing.
* **snoozed**: the latest snooze. The alert is out of the default risk list until the start of
  ``until`` in event time, or until it escalates past the severity it was snoozed at.
* **dismissed**: the latest dismissal, a false alarm with its reason. The alert stays out of
  the default risk list while its episode lasts, unless it escalates past the severity it was
  dismissed at; the dismissal stays on record as a label for ``calibrate``.
* **notes**: every note, oldest first.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from schemas.alerts import SEVERITY_RANK
from stream.core.timeutil import DAY_MS, day_date, day_of_date

NEVER = float("inf")
"""``hidden_until`` of a dismissed alert: out of the default list for the rest of its episode."""


def day_ms(day: str) -> int:
    """The start (00:00 UTC) of an ISO day, in epoch milliseconds."""
    return day_of_date(date.fromisoformat(day[:10])) * DAY_MS


def fold(actions: Iterable[dict]) -> dict[str, dict]:
    """Each alert's state from its actions, by alert id."""
    states: dict[str, dict] = {}
    for action in sorted(actions, key=lambda a: (a["at"], a["action_id"])):
        state = states.setdefault(action["alert_id"], {"acknowledged": None, "snoozed": None,
                                                       "dismissed": None, "notes": []})  # fmt: skip
        who = {"by": action["by"], "at": action["at"]}
        kind = action["kind"]
        if kind == "ack":
            state["acknowledged"] = state["acknowledged"] or who
        elif kind == "snooze":
            state["snoozed"] = {**who, "until": action["until"], "reason": action["reason"],
                                "severity": action["severity"]}  # fmt: skip
        elif kind == "dismiss":
            state["dismissed"] = {**who, "reason": action["reason"],
                                  "severity": action["severity"]}  # fmt: skip
        else:
            state["notes"].append({**who, "text": action["text"]})
    return states


def _escalated(severity: str, since: dict) -> bool:
    return SEVERITY_RANK.get(severity, 0) > SEVERITY_RANK.get(since["severity"], 0)


def hidden_until(state: dict | None, severity: str) -> float:
    """Until when (epoch ms, event time) an open alert of ``severity`` stays out of the default
    risk list: 0 when it needs attention now, :data:`NEVER` when dismissed."""
    if state is None:
        return 0
    dismissed = state.get("dismissed")
    if dismissed and not _escalated(severity, dismissed):
        return NEVER
    snoozed = state.get("snoozed")
    if snoozed and not _escalated(severity, snoozed):
        return day_ms(snoozed["until"])
    return 0


def hidden(open_alerts: Iterable[dict], states: dict[str, dict]) -> list[float]:
    """Each open alert's :func:`hidden_until`."""
    return [hidden_until(states.get(a["alert_id"]), a["severity"]) for a in open_alerts]


def acknowledged(open_alerts: Iterable[dict], states: dict[str, dict]) -> int:
    return sum(1 for a in open_alerts if (states.get(a["alert_id"]) or {}).get("acknowledged"))


def attention(hidden_until_ms: list[float], acked: int, now_ms: float) -> dict:
    """What the lists say about an account's open alerts at event time ``now_ms``.

    ``needs_attention``: an open alert is neither snoozed (now) nor dismissed, which is what
    keeps the account on the default risk list. ``snoozed_until``: the day the first of its
    snoozes ends, when every open alert is snoozed or dismissed and one is snoozed.
    """
    wake = min(hidden_until_ms, default=0)
    back = day_date(int(wake // DAY_MS)) if now_ms < wake < NEVER else None
    return {
        "needs_attention": bool(hidden_until_ms) and wake <= now_ms,
        "acknowledged_alert_count": acked,
        "snoozed_alert_count": sum(1 for h in hidden_until_ms if now_ms < h < NEVER),
        "dismissed_alert_count": sum(1 for h in hidden_until_ms if h == NEVER),
        "snoozed_until": back.isoformat() if back else None,
    }
