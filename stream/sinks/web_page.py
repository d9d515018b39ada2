"""The web page the API serves: accounts at risk with their engagement charts and alerts.

Server-rendered HTML with inline SVG, no scripts: it works behind any proxy and in a
screenshot. Each account's chart plots the daily logins its latest usage alert carried as
evidence against its baseline (dashed) and the danger-zone line for its segment (red). An
account episode (``account_at_risk``) is shown with each of its reasons, most severe first.
The page shell, style and churn-per-month table are the reports' (:mod:`stream.render.html`).
"""

from __future__ import annotations

from datetime import date, datetime
from html import escape
from http import HTTPStatus
from urllib.parse import quote, urlencode

from schemas.alerts import SEVERITY_RANK
from stream.render import readable as r
from stream.render.html import page, portfolio_table
from stream.sinks.alert_records import reasons

_W, _H, _PAD, _TOP, _BOTTOM = 400, 150, 10, 20, 22
_WEEKLY_BASELINE = ("logins_per_week", "days_without_activity")  # baselines in logins/week
STALE_DAYS = 7
"""A chart whose last day is more than this many days before the account's latest alert (or
the newest alert on the page) says so in words: its window is not the account's present."""

_RISK = {"healthy": "low", "watch": "moderate", "at_risk": "high", "critical": "very high"}
"""The health status as a risk level, so that on a card "critical" only ever means an alert's
severity (the health status and the severity scale both have a "critical")."""

_UNITS: dict[str, tuple[str, str | None]] = {
    "logins_per_week": ("logins/week", "logins/week"),
    "minutes_per_week": ("minutes/week", "minutes/week"),
    "days_without_activity": ("quiet days", "logins/week"),
    "logins_per_seat_per_week": ("logins/seat/week", None),
    "failed_payments": ("failed payments", None),
    "days_late": ("days late", None),
    "mrr_contraction": ("%", "$"),
    "tickets_per_window": ("tickets", "tickets"),
    "nps": ("points (0–10)", None),
    "active_users_per_seat": ("% of seats active", "seats"),
    "tenure_days": ("days as a customer", None),
    "active_days": ("active days", None),
    "adoption": ("%", "%"),
    "churn_probability": ("%", None),
}
"""Per metric, the unit of its value and threshold and that of its baseline: "%" is a share
shown as a percentage and "$" money (a contraction is a share of the MRR it had before)."""


_SINGULAR = {"failed payments": "failed payment", "tickets": "ticket", "quiet days": "quiet day",
             "days late": "day late", "active days": "active day", "seats": "seat",
             "days as a customer": "day as a customer"}  # fmt: skip


def _amount(value: float | None, unit: str | None) -> str:
    if value is None:
        return "–"
    if unit and unit.startswith("%"):
        return r.share(value, 1) + unit[1:]
    if unit == "$":
        return r.money(value)
    text = r.number(value)
    if not unit:
        return text
    return f"{text} {_SINGULAR.get(unit, unit) if text == '1' else unit}"


def _units(metric: str) -> tuple[str, str | None]:
    if metric in _UNITS:
        return _UNITS[metric]
    if metric.endswith("_per_week"):
        unit = metric.removesuffix("_per_week").replace("_", " ") + "/week"
        return unit, unit
    return "", ""


def _usage_evidence(view: dict) -> tuple[list[dict], float | None]:
    """Daily logins from the latest usage alert, and the baseline in logins per day (from any
    open alert's reasons: an account episode led by a billing signal may still list a drop)."""
    alerts = sorted(view.get("open_alerts", []), key=lambda a: a["ts"])
    usage = [a for a in alerts if a["dimension"] == "usage"]
    daily = list(usage[-1]["evidence"]["daily"]) if usage else []
    for alert in reversed(alerts):
        for reason in reasons(alert):
            if reason["metric"] in _WEEKLY_BASELINE and reason["baseline"] is not None:
                return daily, reason["baseline"] / 7
    return daily, None


def _to_date(value: object) -> date | None:
    at = r.when(value) if not isinstance(value, date) else value
    return at.date() if isinstance(at, datetime) else at


def engagement_chart(view: dict, now: str | None = None) -> str:
    """The account's daily logins against its baseline and danger-zone line, dated on its
    axis, and a line saying how recent the data is (plainly when it is old: the window is
    the latest usage alert's, which may be weeks before the account's latest alert)."""
    daily, baseline = _usage_evidence(view)
    values = [p["value"] for p in daily]
    line = view.get("danger_line_logins_per_day")
    top = max([*values, baseline or 0, line or 0, 1.0]) * 1.15
    inner_w, inner_h = _W - 2 * _PAD, _H - _TOP - _BOTTOM

    def y(value: float) -> float:
        return _TOP + inner_h * (1 - value / top)

    parts = [f'<svg class="engagement" viewBox="0 0 {_W} {_H}" width="100%" '
             'preserveAspectRatio="xMidYMid meet" role="img">'
             "<title>daily logins against baseline and danger-zone line</title>"]  # fmt: skip
    axis = _H - _BOTTOM
    parts.append(f'<line class="axis" x1="{_PAD}" x2="{_W - _PAD}" y1="{axis}" y2="{axis}" '
                 'stroke="#c9ced6"/>')  # fmt: skip
    if values:
        step = inner_w / max(len(values) - 1, 1)
        points = " ".join(f"{_PAD + i * step:.1f},{y(v):.1f}" for i, v in enumerate(values))
        parts.append(f'<polyline class="series" points="{points}" fill="none" '
                     'stroke="#2f6db5" stroke-width="2"/>')  # fmt: skip
        ticks = sorted({0, len(daily) // 2, len(daily) - 1})
        for i in ticks:
            anchor = "start" if i == 0 else "end" if i == len(daily) - 1 else "middle"
            parts.append(f'<text class="tick" x="{_PAD + i * step:.1f}" y="{_H - 6}" '
                         f'font-size="12" text-anchor="{anchor}" fill="#5b6575">'
                         f"{escape(r.day(daily[i]['day']))}</text>")  # fmt: skip
    else:
        parts.append(f'<text x="{_PAD}" y="{_H / 2}" font-size="12">no usage evidence</text>')
    if baseline is not None:
        parts.append(f'<line class="baseline" x1="{_PAD}" x2="{_W - _PAD}" y1="{y(baseline):.1f}" '
                     f'y2="{y(baseline):.1f}" stroke="#555" stroke-dasharray="4 3"/>')  # fmt: skip
    if line is not None:
        parts.append(f'<line class="danger" x1="{_PAD}" x2="{_W - _PAD}" y1="{y(line):.1f}" '
                     f'y2="{y(line):.1f}" stroke="#d9534f"/>')  # fmt: skip
    peak = r.number(top / 1.15, 1)
    parts.append(f'<text x="{_PAD}" y="14" font-size="12">logins/day (max {peak}); '
                 '<tspan fill="#555">- - baseline</tspan> <tspan fill="#d9534f">— danger zone'
                 "</tspan></text></svg>")  # fmt: skip
    return "".join(parts) + _freshness(daily, view, now)


def _freshness(daily: list[dict], view: dict, now: str | None) -> str:
    if not daily:
        return ""
    first, last = _to_date(daily[0]["day"]), _to_date(daily[-1]["day"])
    own, newest = _to_date(view.get("last_alert_ts")), _to_date(now)
    if last is None:
        return ""
    late = [(d - last).days for d in (own, newest) if d is not None]
    if not late or max(late) <= STALE_DAYS:
        return f'<p class="note chart-span">Daily logins {r.day(first)} – {r.day(last)}.</p>'
    if own is not None and (newest is None or own >= newest):
        ref = f"this account's latest alert ({r.day(own)})"
    else:
        ref = f"the newest alert on this page ({r.day(newest)})"
    return (f'<p class="note chart-span stale">Chart data to {r.day(last)}: '
            f"{r.count(max(late), 'day')} before {ref}.</p>")  # fmt: skip


def _badge(severity: str) -> str:
    sev = escape(severity)
    return f'<span class="sev {sev}" title="alert severity">{sev}</span>'


def _line(severity: str, signal: str, since: str, explanation: str) -> str:
    return (
        f"{_badge(severity)} <b>{escape(r.words(signal))}</b> since "
        f"{escape(r.day(since))}: {escape(explanation)}"
    )


def _numbers(behind: list[dict]) -> str:
    """Each reason's value against its threshold and baseline, with units."""
    rows = []
    for reason in behind:
        unit, base_unit = _units(reason["metric"])
        window = reason.get("window_days")
        rows.append(
            f"<tr><td>{escape(r.words(reason['signal']))}</td>"
            f'<td data-label="value">{escape(_amount(reason["value"], unit))}</td>'
            f'<td data-label="threshold">{escape(_amount(reason["threshold"], unit))}</td>'
            f'<td data-label="baseline">{escape(_amount(reason.get("baseline"), base_unit))}</td>'
            f'<td data-label="window">{escape(r.count(window, "day") if window else "–")}</td></tr>'
        )
    head = "".join(f"<th>{h}</th>" for h in ("signal", "value", "threshold",
                                               "baseline", "window"))  # fmt: skip
    return f'<table class="numbers"><tr>{head}</tr>{"".join(rows)}</table>'


def _facts(alert: dict, keep: int = 5) -> str:
    """The dated facts behind an alert (a failed payment, an NPS answer), newest first."""
    facts = sorted((alert.get("evidence") or {}).get("facts") or [], key=lambda f: f["ts"])
    items = "".join(
        f"<li>{escape(r.moment(f['ts']))}: {escape(f['description'])}</li>"
        for f in reversed(facts[-keep:])
    )
    return f'<ul class="facts note">{items}</ul>' if items else ""


def _by_severity(alerts: list[dict]) -> list[dict]:
    """Most severe first; among equals the most recent first."""
    newest = sorted(alerts, key=lambda a: a["ts"], reverse=True)
    return sorted(newest, key=lambda a: -SEVERITY_RANK.get(a["severity"], 0))


def _alerts(view: dict, detail: bool = False) -> str:
    rows = []
    for alert in _by_severity(view.get("open_alerts", [])):
        behind = reasons(alert)
        playbook = alert.get("playbook")
        after = (f'<p class="playbook"><b>Next step:</b> {escape(playbook)}</p>' if playbook
                 else "") + (_numbers(behind) + _facts(alert) if detail else "")  # fmt: skip
        if len(behind) == 1 and behind[0]["signal"] == alert["signal"]:
            line = _line(alert["severity"], alert["signal"], alert["episode_start"],
                         alert["explanation"])  # fmt: skip
            rows.append(f'<div class="alert">Alert severity {line}{after}</div>')
            continue
        items = "".join(
            f'<li class="reason">{_line(x["severity"], x["signal"], x["since"], x["explanation"])}'
            "</li>"
            for x in behind
        )
        since = r.day(alert["episode_start"])
        head = (f"Alert severity {_badge(alert['severity'])} <b>{escape(r.words(alert['signal']))}"
                f"</b> since {escape(since)}: {r.count(len(behind), 'signal')}")  # fmt: skip
        rows.append(f'<div class="alert">{head}<ul class="reasons">{items}</ul>{after}</div>')
    return "".join(rows) or '<div class="alert">no open alerts</div>'


def _risk(health: dict) -> str:
    status = health.get("status")
    return f"Risk: {_RISK.get(status, r.words(status).lower())}"


def _card(view: dict, now: str | None = None, detail: bool = False) -> str:
    health = view["health"]
    link = "/view/accounts/" + quote(view["account_id"], safe="")
    facts = [f"Segment {r.words(view.get('segment'))}", r.words(view.get("stage"))]
    if view.get("plan"):
        facts.append(f"plan {r.words(view['plan'])}")
    facts.append(f"MRR {r.money(view.get('mrr'))}")
    if view.get("revenue_at_risk") is not None:
        facts.append(f"revenue at risk {r.money(view['revenue_at_risk'])}")
    if view.get("seats") is not None:
        facts.append(r.count(view["seats"], "seat"))
    if view.get("tenure_days") is not None:
        facts.append(f"customer for {r.count(view['tenure_days'], 'day')}")
    facts.append(f"last alert {r.moment(view.get('last_alert_ts'))}")
    return (
        f'<div class="acct"><h2><a href="{escape(link)}">{escape(view["account_id"])}</a> '
        f'<span class="risk">{escape(_risk(health))} · health {health["overall"]}/100</span></h2>'
        f'<div class="meta">{escape(" · ".join(facts))}</div>'
        f"{engagement_chart(view, now)}{_alerts(view, detail)}</div>"
    )


def _portfolio(portfolio: dict) -> str:
    cells = "".join(
        f"<tr><td>{escape(r.words(sev))}</td><td>{row['accounts']:,}</td>"
        f"<td>{r.money(row['mrr'])}</td></tr>"
        for sev, row in sorted(
            portfolio["mrr_at_risk_by_severity"].items(),
            key=lambda item: -SEVERITY_RANK.get(item[0], 0),
        )
    )
    at_risk = (f'<table id="portfolio"><tr><th>alert severity</th><th>accounts</th>'
               f"<th>MRR at risk</th></tr>{cells}<tr><td><b>total</b></td>"
               f"<td>{portfolio['accounts_with_open_alerts']:,}</td>"
               f"<td><b>{r.money(portfolio['mrr_at_risk'])}</b></td></tr></table>")  # fmt: skip
    months = portfolio.get("months") or []
    return at_risk + (
        f"<h2>Churn per month</h2>{portfolio_table(months[-6:], readable=True)}" if months else ""
    )


_SORT_LABELS = {"revenue_at_risk": "revenue at risk", "mrr": "MRR", "health": "lowest health",
                "last_alert": "latest alert"}  # fmt: skip


def _filters_form(filters: dict[str, str]) -> str:
    """Sort, segment, severity and search as a plain GET form: no script needed."""

    def select(name: str, options: list[tuple[str, str]]) -> str:
        chosen = filters.get(name, "")
        items = "".join(
            f'<option value="{escape(v)}"{" selected" if v == chosen else ""}>{escape(t)}</option>'
            for v, t in options
        )
        return f'<label>{escape(name)} <select name="{name}">{items}</select></label>'

    sorts = select("sort", list(_SORT_LABELS.items()))
    severities = select("severity", [("", "any"), *((s, s) for s in SEVERITY_RANK)])
    segment = escape(filters.get("segment", ""))
    q = escape(filters.get("q", ""))
    # The page's handler reads an empty field (an unset filter) as absent.
    return (f'<form id="filters" method="get" action="/">{sorts} {severities} '
            f'<label>segment <input name="segment" value="{segment}" size="10"></label> '
            f'<label>account <input name="q" type="search" value="{q}" size="14"></label> '
            '<button type="submit">Show</button> <a href="/">clear</a></form>')  # fmt: skip


def at_risk_page(views: list[dict], portfolio: dict, filters: dict[str, str] | str | None,
                 next_cursor: str | None = None) -> str:  # fmt: skip
    """The accounts at risk, one page of them, under totals over every account the filters
    keep; ``filters`` are the page's query parameters (a segment name alone also does)."""
    if not isinstance(filters, dict):
        filters = {"segment": filters} if filters else {}
    segment = filters.get("segment")
    title = "Accounts at risk" + (f" ({segment})" if segment else "")
    now = max((v.get("last_alert_ts") or "" for v in views), default="") or None
    cards = "".join(_card(v, now) for v in views) or "<p>No account is at risk.</p>"
    more = ""
    if next_cursor:
        keep = {k: v for k, v in filters.items() if k != "cursor" and v}
        link = "/?" + urlencode({**keep, "cursor": next_cursor})
        more = f'<p id="more"><a rel="next" href="{escape(link)}">Next page →</a></p>'
    body = f'{_filters_form(filters)}{_portfolio(portfolio)}<div id="accounts">{cards}</div>{more}'
    return page(title, body)


def account_page(view: dict) -> str:
    health = view["health"]
    dims = "".join(f"<tr><td>{escape(r.words(k))}</td><td>{v}/100</td></tr>"
                   for k, v in health.items() if k not in ("status",))  # fmt: skip
    body = (f'<p><a href="/">← accounts at risk</a></p>{_card(view, detail=True)}'
            f'<h2>Health by dimension</h2><table id="health">{dims}</table>')  # fmt: skip
    return page(f"Account {view['account_id']}", body)


def error_page(status: int, message: str, path: str) -> str:
    """The page a browser gets instead of the one it asked for, with the same HTTP status.

    A 503 means the read model's store (Redis) is unreachable: the worker and the alerts
    topic carry on and the read model catches up once it is back, so the page says to retry
    and offers the link to do it. Other errors show the API's message.
    """
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    home = '<a href="/">← accounts at risk</a>'
    if status == 503:
        again = f'<a href="{escape(path)}">Try again</a>' + (f" · {home}" if path != "/" else "")
        body = (
            "<p>The read model's store (Redis) cannot be reached right now, so this page "
            "cannot be shown. Alerts are still being detected and will appear here once the "
            f"store is back.</p><p>Please retry in a few seconds.</p><p>{again}</p>"
        )
        return page("Read model unavailable", body)
    body = f'<p class="note">{status} {escape(phrase)}</p><p>{escape(message)}</p><p>{home}</p>'
    return page(phrase, body)
