"""Terminal views: a live, readable tail of the alerts topic, one account explained, and the
portfolio (churn by reason, managed or not, and alert outcomes per month).

Formatting is pure (:func:`stream.render.text.alert_line`, shared with the demo,
:func:`explain_account` and :func:`portfolio_text`) so tests check the words; :func:`tail` is
the kafka-python loop around it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Collection
from datetime import date, timedelta
from typing import TextIO

import orjson
from kafka import KafkaConsumer, TopicPartition

from schemas.alerts import DIMENSIONS
from stream.core.alert_outcomes import OUTCOMES, SAVED_AFTER_DAYS
from stream.core.churn_reasons import ChurnReasons
from stream.core.policy import Policy
from stream.core.portfolio import reason_group_labels
from stream.kafka.settings import WorkerSettings
from stream.render.text import alert_line, terminal_width
from stream.sinks.alert_records import mentions, parse, reasons


def owned_by(alert: dict, owners: Collection[str]) -> bool:
    """Whether the alert's account belongs to one of ``owners``: the whole name, ignoring case,
    as the lists' ``owner=`` filter matches it."""
    owner = ((alert.get("account") or {}).get("owner") or "").casefold()
    return bool(owner) and owner in {o.casefold() for o in owners}


def keep(alert: dict, signals: set[str], severities: set[str],
         owners: Collection[str] = ()) -> bool:  # fmt: skip
    """The tail's filter: a signal matches an account episode that lists it among its reasons;
    an owner, the account's owner (see :func:`owned_by`)."""
    return (
        (not signals or any(mentions(alert, s) for s in signals))
        and (not severities or alert["severity"] in severities)
        and (not owners or owned_by(alert, owners))
    )


def tail(settings: WorkerSettings, emit: Callable[[str], object], signals: set[str],
         severities: set[str], from_beginning: bool, as_json: bool, max_alerts: int | None,
         idle_seconds: float | None, owners: Collection[str] = ()) -> int:  # fmt: skip
    """Print matching alerts as they arrive; returns how many were printed."""
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers, enable_auto_commit=False,
                             **settings.kafka_python_security())  # fmt: skip
    try:
        partitions = consumer.partitions_for_topic(settings.alerts_topic)
        if not partitions:
            raise ValueError(f"topic {settings.alerts_topic!r} does not exist")
        tps = [TopicPartition(settings.alerts_topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        (consumer.seek_to_beginning if from_beginning else consumer.seek_to_end)(*tps)
        shown, last = 0, time.monotonic()
        width = terminal_width(sys.stdout)
        while max_alerts is None or shown < max_alerts:
            batches = consumer.poll(timeout_ms=500)
            if not batches:
                if idle_seconds is not None and time.monotonic() - last > idle_seconds:
                    break
                continue
            last = time.monotonic()
            for records in batches.values():
                for record in records:
                    alert = parse(record.value)
                    if alert is None or not keep(alert, signals, severities, owners):
                        continue
                    emit(orjson.dumps(alert).decode() if as_json else alert_line(alert, width))
                    shown += 1
                    if max_alerts is not None and shown >= max_alerts:
                        return shown
        return shown
    finally:
        consumer.close()


def explain_account(view: dict, policy: Policy) -> str:
    """An account's numbers, the thresholds they are held against, and why each alert opened."""
    health = view["health"]
    th = policy.thresholds(view["segment"], view["stage"])
    name = view.get("account_name") or view.get("name")
    lines = [
        f"{view['account_id']}{f' ({name})' if name else ''}: health {health['overall']}/100 "
        f"({health['status']}), as of {view.get('as_of') or view.get('last_alert_ts')}",
        f"  owner {view.get('owner') or 'not named'}, "
        f"renewal {view.get('renewal_date') or 'unknown'}, "
        f"last activity {view.get('last_activity') or 'none on record'}"
        + (", CANCELLED" if view.get("status") == "cancelled" else ""),
        f"  segment {view['segment']}, {view['stage']}, plan {view.get('plan')}, "
        f"MRR {view.get('mrr')}, {view.get('seats')} seats, tenure {view.get('tenure_days')} days",
        "  health by dimension: " + ", ".join(f"{d} {health[d]}" for d in DIMENSIONS),
        f"  held against ({view['segment']}/{view['stage']}): danger-zone line "
        f"{th.danger_zone.line} logins/seat/week; engagement drop "
        f"{th.engagement_drop.drop_medium:.0%} (high {th.engagement_drop.drop_high:.0%}) below "
        f"its own {th.engagement_drop.baseline_days}-day baseline; footprint "
        f"{th.footprint_shrink.ratio_medium:.0%} of seats active",
    ]
    trend = _trend(view.get("history") or [])
    if trend:
        lines.append(f"  trend: {trend}")
    alerts = view.get("open_alerts", [])
    lines.append(f"  open alerts: {len(alerts)}")
    for alert in alerts:
        lines.append(
            f"  - {alert['signal']} ({alert['severity']}), open since {alert['episode_start']}"
        )
        behind = reasons(alert)
        for reason in behind:
            baseline = "" if reason["baseline"] is None else f", baseline {reason['baseline']}"
            window = "" if reason["window_days"] is None else f" over {reason['window_days']} days"
            indent = "    "
            if len(behind) > 1 or reason["signal"] != alert["signal"]:
                since = reason.get("since", alert["episode_start"])
                lines.append(f"    {reason['signal']} ({reason['severity']}) since {since}:")
                indent = "      "
            lines += [
                f"{indent}{reason['metric']} = {reason['value']}{window}{baseline}, threshold "
                f"{reason['threshold']}",
                f"{indent}why: {reason['explanation']}",
            ]
        lines.append(f"    next step: {alert['playbook']}")
        lines += [f"    {line}" for line in acted(alert.get("actions"))]
    return "\n".join(lines)


def acted(state: dict | None) -> list[str]:
    """What the team did with an alert (see :mod:`stream.sinks.alert_actions`), in lines."""
    if not state:
        return []
    out = []
    if state.get("acknowledged"):
        out.append(
            f"acknowledged by {state['acknowledged']['by']} at {state['acknowledged']['at']}"
        )
    if state.get("snoozed"):
        s = state["snoozed"]
        out.append(f"snoozed until {s['until']} by {s['by']}: {s['reason']}")
    if state.get("dismissed"):
        d = state["dismissed"]
        out.append(f"dismissed as a false alarm by {d['by']}: {d['reason']}")
    out += [f"note by {n['by']} at {n['at']}: {n['text']}" for n in state.get("notes") or []]
    return out


def _trend(points: list[dict]) -> str:
    """Overall health now against 7 and 30 days before, from the daily history (oldest first)."""
    by_day = {p["day"]: p["health"]["overall"] for p in points}
    if not points:
        return ""
    last = points[-1]
    parts = [f"{last['health']['overall']} on {last['day']}"]
    newest = date.fromisoformat(last["day"])
    for back in (7, 30):
        before = by_day.get((newest - timedelta(days=back)).isoformat())
        if before is not None:
            parts.append(f"{before} {back} days before")
    return ", ".join(parts) + f" ({len(points)} days of history)"


def _reasons(counts: dict[str, int], labels: dict[str, str]) -> str:
    kept = sorted(((n, g) for g, n in counts.items() if n), key=lambda x: (-x[0], x[1]))
    return ", ".join(f"{labels.get(g, g)} {n}" for n, g in kept) or "none"


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def portfolio_text(report: dict, months: int = 6, reasons: ChurnReasons | None = None) -> str:
    """``GET /portfolio`` in words: MRR at risk now, then per month (the last ``months``) churn,
    managed or not and why, and what became of the alerts the month opened. ``reasons``: the
    taxonomy the read model classified by (the policy's; default the built-in one)."""
    labels = reason_group_labels(reasons or ChurnReasons())
    by_sev = report.get("mrr_at_risk_by_severity") or {}
    lines = [
        f"MRR at risk now: {report.get('mrr_at_risk', 0):,.2f} over "
        f"{report.get('accounts_with_open_alerts', 0):,} accounts with open alerts"
        + ("" if not by_sev else " (" + ", ".join(
            f"{sev} {row['accounts']:,} / {row['mrr']:,.2f}" for sev, row in by_sev.items()) + ")"),
    ]  # fmt: skip
    for m in (report.get("months") or [])[-months:]:
        kinds = (m.get("managed", 0), m.get("unmanaged", 0), m.get("unknown_reason", 0))
        lines += [
            f"{m['month']}: lost {m['lost']:,} of {m['accounts_at_start']:,} accounts "
            f"({_share(m['logo_churn'])}), MRR lost {m['mrr_lost']:,.2f} "
            f"({_share(m['revenue_churn'])}), {m['new_accounts']:,} joined",
            f"  cancelled {sum(kinds):,} (joiners too): {kinds[0]:,} managed, {kinds[1]:,} "
            f"unmanaged, {kinds[2]:,} reason unknown or unclassified",
            f"  why: {_reasons(m.get('by_reason') or {}, labels)}",
        ]
        outcomes = m.get("alert_outcomes")
        if outcomes is not None:
            counts = ", ".join(f"{kind} {outcomes[kind]:,}" for kind in OUTCOMES)
            why = _reasons(outcomes["churned_by_reason"], labels)
            lines += [f"  alerts opened {outcomes['alerted']:,}: {counts}",
                      f"  alerted and churned because: {why}"]  # fmt: skip
    if any("alert_outcomes" in m for m in report.get("months") or []):
        lines.append(f"(saved: the alert resolved and the account was still subscribed "
                     f"{SAVED_AFTER_DAYS} days later; churned: cancelled while open or within "
                     f"{SAVED_AFTER_DAYS} days after; renewed: renewed after the alert opened, "
                     "neither yet; pending: none of these yet)")  # fmt: skip
    return "\n".join(lines)


def print_line(line: str, out: TextIO = sys.stdout) -> None:
    out.write(line + "\n")
    out.flush()
