"""The web page the API serves: accounts at risk with their engagement charts and alerts.

Server-rendered HTML with inline SVG, no scripts: it works behind any proxy and in a
screenshot. Each account's chart plots the daily logins its latest usage alert carried as
evidence against its baseline (dashed) and the danger-zone line for its segment (red). An
account episode (``account_at_risk``) is shown with each of its reasons, most severe first.
The page shell, style and churn-per-month table are the reports' (:mod:`stream.render.html`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from html import escape
from http import HTTPStatus
from urllib.parse import quote, urlencode

from schemas.alerts import SEVERITY_RANK
from stream.core.alert_outcomes import SAVED_AFTER_DAYS
from stream.core.churn_reasons import ChurnReasons
from stream.core.health import status_of
from stream.core.portfolio import reason_group_labels
from stream.core.signals.registry import PUBLISHED
from stream.render import account_charts
from stream.render import readable as r
from stream.render.html import page, portfolio_table
from stream.sinks.account_rows import ACCOUNT_SORTS
from stream.sinks.action_forms import Controls, forms, state_line
from stream.sinks.alert_records import reasons
from stream.sinks.readmodel import ENDED

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


def _alerts(view: dict, detail: bool = False, controls: Controls | None = None) -> str:
    rows = []
    for alert in _by_severity(view.get("open_alerts", [])):
        behind = reasons(alert)
        playbook = alert.get("playbook")
        after = (f'<p class="playbook"><b>Next step:</b> {escape(playbook)}</p>' if playbook
                 else "") + (_numbers(behind) + _facts(alert) if detail else "")  # fmt: skip
        after += state_line(alert) + (forms(alert, controls) if detail else "")
        anchor = f' id="alert-{escape(alert["alert_id"])}"'
        if len(behind) == 1 and behind[0]["signal"] == alert["signal"]:
            line = _line(alert["severity"], alert["signal"], alert["episode_start"],
                         alert["explanation"])  # fmt: skip
            rows.append(f'<div class="alert"{anchor}>Alert severity {line}{after}</div>')
            continue
        items = "".join(
            f'<li class="reason">{_line(x["severity"], x["signal"], x["since"], x["explanation"])}'
            "</li>"
            for x in behind
        )
        since = r.day(alert["episode_start"])
        head = (f"Alert severity {_badge(alert['severity'])} <b>{escape(r.words(alert['signal']))}"
                f"</b> since {escape(since)}: {r.count(len(behind), 'signal')}")  # fmt: skip
        rows.append(f'<div class="alert"{anchor}>{head}<ul class="reasons">{items}</ul>{after}'
                    "</div>")  # fmt: skip
    return "".join(rows) or '<div class="alert">no open alerts</div>'


def _risk(health: dict) -> str:
    status = health.get("status")
    return f"Risk: {_RISK.get(status, r.words(status).lower())}"


def _card(view: dict, now: str | None = None, detail: bool = False, chart: bool = True,
          controls: Controls | None = None) -> str:  # fmt: skip
    health = view["health"]
    link = "/view/accounts/" + quote(view["account_id"], safe="")
    facts = [f"Owner {view['owner']}"] if view.get("owner") else []
    facts += [f"Segment {r.words(view.get('segment'))}", r.words(view.get("stage"))]
    if view.get("plan"):
        facts.append(f"plan {r.words(view['plan'])}")
    facts.append(f"MRR {r.money(view.get('mrr'))}")
    if view.get("revenue_at_risk") is not None:
        facts.append(f"revenue at risk {r.money(view['revenue_at_risk'])}")
    if view.get("seats") is not None:
        facts.append(r.count(view["seats"], "seat"))
    if view.get("tenure_days") is not None:
        facts.append(f"customer for {r.count(view['tenure_days'], 'day')}")
    if view.get("renewal_date"):
        facts.append(f"renews {r.day(view['renewal_date'])}")
    facts.append(f"last alert {r.moment(view.get('last_alert_ts'))}")
    name = view.get("account_name")
    label = f"{name} ({view['account_id']})" if name else view["account_id"]
    return (
        f'<div class="acct"><h2><a href="{escape(link)}">{escape(label)}</a> '
        f'<span class="risk">{escape(_risk(health))} · health {health["overall"]}/100</span></h2>'
        f'<div class="meta">{escape(" · ".join(facts))}</div>'
        f"{engagement_chart(view, now) if chart else ''}{_alerts(view, detail, controls)}</div>"
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
    months = (portfolio.get("months") or [])[-6:]
    if not months:
        return at_risk
    labels = portfolio.get("reason_labels") or _REASON_LABELS
    return (f"{at_risk}<h2>Churn per month</h2>{portfolio_table(months, readable=True)}"
            f"{_churn_reasons(months, labels)}{_alert_outcomes(months, labels)}")  # fmt: skip


_REASON_LABELS = reason_group_labels(ChurnReasons())
"""The built-in taxonomy's words, for a report that does not name its own (``reason_labels``:
the words of the policy's taxonomy, which the read model classifies by)."""


def _month_head(month: str, years: bool) -> str:
    """The month's name; over its year ("’25") too at a January and the first column when
    the months span two years (the corner names the years): six months and the row labels
    fit a phone's width."""
    at = r.when(f"{month}-01")
    if at is None:
        return escape(month)
    return f"{at:%b}<br>’{at:%y}" if years else f"{at:%b}"


def _by_month(table_id: str, corner: str, months: list[dict],
              rows: list[tuple[str, list[int]]]) -> str:  # fmt: skip
    """A figure per row and a month per column (the newest last): narrow enough for a phone,
    whatever the number of reason groups."""
    years = sorted({m["month"][:4] for m in months})
    span = years[0] if len(years) == 1 else f"{years[0]}–{years[-1]}"
    head = "".join(
        f"<th>{_month_head(m['month'], len(years) > 1 and (i == 0 or m['month'][5:] == '01'))}"
        "</th>" for i, m in enumerate(months)
    )  # fmt: skip
    body = "".join(f"<tr><td>{escape(label)}</td>" + "".join(f"<td>{n:,}</td>" for n in values)
                   + "</tr>" for label, values in rows)  # fmt: skip
    return (f'<table class="by-month" id="{table_id}"><tr><th>{corner} {escape(span)}</th>'
            f"{head}</tr>{body}</table>")  # fmt: skip


def _group_rows(months: list[dict], counts_of, labels: dict[str, str],
                prefix: str = "") -> list[tuple[str, list[int]]]:  # fmt: skip
    """A row per reason group any of the months has, in words, the most frequent first."""
    totals: dict[str, int] = {}
    for m in months:
        for group, n in counts_of(m).items():
            totals[group] = totals.get(group, 0) + n
    groups = sorted((g for g, n in totals.items() if n), key=lambda g: (-totals[g], g))
    return [(prefix + labels.get(g, r.words(g)), [counts_of(m).get(g, 0) for m in months])
            for g in groups]  # fmt: skip


def _churn_reasons(months: list[dict], labels: dict[str, str]) -> str:
    """Every cancellation of each month (joiners' too), managed or not, and by reason group
    (absent from rows of a read model older than the reasons)."""
    if not any("managed" in m for m in months):
        return ""
    kinds = [(k, [m.get(k, 0) for m in months]) for k in ("managed", "unmanaged", "unknown_reason")]
    rows = [("cancelled", [sum(v) for v in zip(*(v for _, v in kinds), strict=True)]),
            ("managed (preventable)", kinds[0][1]), ("unmanaged", kinds[1][1]),
            ("reason unknown or unclassified", kinds[2][1]),
            *_group_rows(months, lambda m: m.get("by_reason") or {}, labels)]  # fmt: skip
    table = _by_month("churn-reasons", "cancellations", months, rows)
    return (f"<h2>Why customers left, per month</h2>{table}<p class='note'>Managed churn is "
            "what CS, product or support could have prevented; unmanaged is not theirs to win "
            "(a closure, a budget cut, a failing card).</p>")  # fmt: skip


def _alert_outcomes(months: list[dict], labels: dict[str, str]) -> str:
    """What became of the alert episodes each month opened (absent before any alert came)."""
    if not any("alert_outcomes" in m for m in months):
        return ""
    of = [m.get("alert_outcomes") or {} for m in months]
    names = (("alerted", "alerts opened"), ("saved", "saved"), ("renewed", "renewed"),
             ("churned", "churned"), ("pending", "pending"))  # fmt: skip
    rows = [(label, [o.get(k, 0) for o in of]) for k, label in names]
    rows += _group_rows(of, lambda o: o.get("churned_by_reason") or {}, labels, "churned: ")
    table = _by_month("alert-outcomes", "alerts opened in", months, rows)
    note = (f'<p class="note">Saved: the alert resolved and the account was still subscribed '
            f"{SAVED_AFTER_DAYS} days later. Churned: it cancelled while the alert was open or "
            f"within {SAVED_AFTER_DAYS} days after. Renewed: it renewed after the alert opened, "
            "neither saved nor churned yet. Pending: none of these yet.</p>")  # fmt: skip
    return f"<h2>What became of alerted accounts</h2>{table}{note}"


_SORT_LABELS = {"revenue_at_risk": "revenue at risk", "mrr": "MRR", "health": "lowest health",
                "renewal": "renewal soonest", "last_activity": "longest without activity",
                "last_alert": "latest alert"}  # fmt: skip


def _filters_form(filters: dict[str, str], action: str = "/",
                  sorts: tuple[str, ...] = tuple(_SORT_LABELS)) -> str:  # fmt: skip
    """Sort, segment, owner, severity, signal and search as a plain GET form: no script."""

    def select(name: str, options: list[tuple[str, str]]) -> str:
        chosen = filters.get(name, "")
        items = "".join(
            f'<option value="{escape(v)}"{" selected" if v == chosen else ""}>{escape(t)}</option>'
            for v, t in options
        )
        return f'<label>{escape(name)} <select name="{name}">{items}</select></label>'

    order = select("sort", [(k, _SORT_LABELS[k]) for k in sorts])
    severities = select("severity", [("", "any"), *((s, s) for s in SEVERITY_RANK)])
    signals = select("signal", [("", "any"), *((s, r.words(s)) for s in PUBLISHED)])
    status = ""
    if action != "/":  # the all-accounts page: live customers unless asked otherwise
        status = select("status", [("active", "active"), ("cancelled", "cancelled"),
                                   ("any", "any")]) + " "  # fmt: skip
    else:  # the at-risk page: alerts set aside (snoozed or dismissed) are hidden by default
        status = select("snoozed", [("hide", "needing attention"),
                                    ("include", "all with open alerts"),
                                    ("only", "snoozed or dismissed")]) + " "  # fmt: skip
    segment = escape(filters.get("segment", ""))
    owner = escape(filters.get("owner", ""))
    q = escape(filters.get("q", ""))
    # The page's handler reads an empty field (an unset filter) as absent.
    return (f'<form id="filters" method="get" action="{action}">{order} {status}{severities} '
            f"{signals} "
            f'<label>segment <input name="segment" value="{segment}" size="10"></label> '
            f'<label>owner <input name="owner" value="{owner}" size="12"></label> '
            f'<label>account <input name="q" type="search" value="{q}" size="14"></label> '
            f'<button type="submit">Show</button> <a href="{action}">clear</a></form>')  # fmt: skip


def _my_accounts(owners: Sequence[str], filters: dict[str, str], action: str = "/") -> str:
    """A "My accounts" link per owner the read model knows, to the list filtered to theirs:
    the API remembers no one, so the choice lives in the link (a bookmark), and the native
    ``<details>`` opens the list without a script. Names match ignoring case, as the
    owner filter does."""
    if not owners:
        return ""
    chosen = (filters.get("owner") or "").casefold()
    keep = {"sort": filters["sort"]} if filters.get("sort") else {}
    links = " · ".join(
        f"<b>{escape(o)}</b>" if o.casefold() == chosen else
        f'<a href="{escape(action + "?" + urlencode({**keep, "owner": o}))}">{escape(o)}</a>'
        for o in owners
    )  # fmt: skip
    mine = next((o for o in owners if o.casefold() == chosen), None)
    summary = f"My accounts: {escape(mine)}" if mine else "My accounts"
    every = f' · <a href="{escape(action)}">every owner</a>' if chosen else ""
    return (f'<details id="owners"><summary>{summary}</summary>'
            f'<p class="nav">{links}{every}</p></details>')  # fmt: skip


def at_risk_page(views: list[dict], portfolio: dict, filters: dict[str, str] | str | None,
                 next_cursor: str | None = None, set_aside: int = 0,
                 owners: Sequence[str] = ()) -> str:  # fmt: skip
    """The accounts at risk, one page of them, under totals over every account the filters
    keep; ``filters`` are the page's query parameters (a segment name alone also does).
    ``set_aside``: accounts the filters keep whose open alerts are all snoozed or dismissed
    (hidden from this list; a link shows them). ``owners``: the names "My accounts" links."""
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
    nav = '<p class="nav"><a href="/view/accounts">All accounts →</a></p>'
    if set_aside:
        keep = {k: v for k, v in filters.items() if k not in ("cursor", "snoozed") and v}
        link = "/?" + urlencode({**keep, "snoozed": "only"})
        nav += (
            f'<p class="note" id="set-aside">{r.count(set_aside, "more account")} with open '
            f'alerts, all snoozed or dismissed: <a href="{escape(link)}">show them</a></p>'
        )
    body = (f'{nav}{_filters_form(filters)}{_my_accounts(owners, filters)}'
            f'{_portfolio(portfolio)}<div id="accounts">{cards}</div>{more}')  # fmt: skip
    return page(title, body)


_STATUS = {"active": "Active", "cancelled": "Cancelled (the subscription ended)"}


def _risk_level(overall: int) -> str:
    """Overall health in the page's risk words (the health status's cut-offs)."""
    return _risk({"status": status_of(int(overall))})


def _account_link(row: dict) -> str:
    link = "/view/accounts/" + quote(row["account_id"], safe="")
    name = row.get("account_name")
    label = escape(name) if name else escape(row["account_id"])
    sub = f'<br><span class="note">{escape(row["account_id"])}</span>' if name else ""
    return f'<a href="{escape(link)}">{label}</a>{sub}'


def _alert_cell(row: dict) -> str:
    if not row.get("open_alert_count"):
        return "none"
    count = r.count(row["open_alert_count"], "open alert")
    return f"<span>{_badge(row['severity'])} {count}</span>"


_LIST_HEAD = ("account", "owner", "segment", "MRR", "health", "revenue at risk", "renewal",
              "last activity", "alerts")  # fmt: skip


def _list_table(rows: list[dict]) -> str:
    head = "".join(f"<th>{h}</th>" for h in _LIST_HEAD)
    body = []
    for row in rows:
        overall = row["health"]["overall"]
        status = (
            "" if row.get("status") != "cancelled" else ' <span class="note">(cancelled)</span>'
        )
        cells = (
            _account_link(row) + status,
            escape(row.get("owner") or "–"),
            escape(r.words(row.get("segment"))),
            r.money(row.get("mrr")),
            f"{overall}/100 · {escape(_risk_level(overall).removeprefix('Risk: '))} risk",
            r.money(row["revenue_at_risk"]),
            escape(r.day(row.get("renewal_date"))),
            escape(r.day(row.get("last_activity")) if row.get("last_activity") else "never"),
            _alert_cell(row),
        )
        labelled = zip(_LIST_HEAD, cells, strict=True)
        tds = "".join(f'<td data-label="{h}">{c}</td>' for h, c in labelled)
        body.append(f"<tr>{tds}</tr>")
    return f'<table class="list" id="list"><tr>{head}</tr>{"".join(body)}</table>'


def _totals(totals: dict) -> str:
    cancelled = ""
    if totals["cancelled"]:
        cancelled = (f'<p class="note">Of these, {r.count(totals["cancelled"], "account")} '
                     f"cancelled, with {r.money(totals['cancelled_mrr'])} of MRR lost (not "
                     "counted in the MRR above).</p>")  # fmt: skip
    return (f'<table id="totals"><tr><th>accounts</th><th>MRR</th><th>revenue at risk</th></tr>'
            f"<tr><td>{totals['accounts']:,}</td><td>{r.money(totals['mrr'])}</td>"
            f"<td><b>{r.money(totals['revenue_at_risk'])}</b></td></tr></table>"
            f"{cancelled}")  # fmt: skip


def accounts_page(rows: list[dict], totals: dict, filters: dict[str, str],
                  next_cursor: str | None = None) -> str:  # fmt: skip
    """Every account, alerted or not, one page of them under totals over every account the
    filters keep; each row links to its account page."""
    more = ""
    if next_cursor:
        keep = {k: v for k, v in filters.items() if k != "cursor" and v}
        link = "/view/accounts?" + urlencode({**keep, "cursor": next_cursor})
        more = f'<p id="more"><a rel="next" href="{escape(link)}">Next page →</a></p>'
    table = _list_table(rows) if rows else "<p>No account matches these filters.</p>"
    body = ('<p class="nav"><a href="/">← accounts at risk</a></p>'
            f'{_filters_form(filters, "/view/accounts", ACCOUNT_SORTS)}{_totals(totals)}'
            '<p class="note">Health is the latest day close\'s (or a later alert\'s). Revenue at '
            "risk is (100 − overall health)% of MRR, as in the at-risk list.</p>"
            f"{table}{more}")  # fmt: skip
    return page("All accounts", body)


def _fact_rows(view: dict) -> str:
    overall = view["health"]["overall"]
    estimate = view.get("risk_estimate")
    last = view.get("last_activity")
    facts = [
        ("Account id", escape(view["account_id"])),
        ("Name", escape(view.get("account_name") or "–")),
        ("Owner (CSM)", escape(view.get("owner") or "not assigned")),
        ("Status", escape(_STATUS.get(view.get("status") or "active", "–"))),
        ("Segment", escape(r.words(view.get("segment")))),
        ("Plan", escape(r.words(view.get("plan")))),
        ("Lifecycle stage", escape(r.words(view.get("stage")))),
        ("MRR", r.money(view.get("mrr"))),
        ("Seats", r.number(view.get("seats")) if view.get("seats") is not None else "–"),
        ("Customer for", r.count(view["tenure_days"], "day")
         if view.get("tenure_days") is not None else "–"),
        ("Renewal date", escape(r.day(view.get("renewal_date")))),
        ("Last activity", escape(r.moment(last) if last else "never")),
        ("Health now", f"{overall}/100 · {escape(_risk_level(overall))}"),
        ("Revenue at risk", r.money(view.get("revenue_at_risk"))),
        ("Churn-risk estimate", r.share(estimate) if estimate is not None
         else "no model estimate"),
        ("Daily health as of", escape(r.day(view.get("snapshot_day"))
                                      if view.get("snapshot_day") else "no day close yet")),
        ("Latest alert", escape(r.moment(view["last_alert_ts"]) if view.get("last_alert_ts")
                                else "never alerted")),
    ]  # fmt: skip
    return "".join(f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in facts)


_METRICS = (("logins_7d", "Logins, last 7 days"), ("logins_28d", "Logins, last 28 days"),
            ("active_users_28d", "Active users, last 28 days"),
            ("active_days_28d", "Days with activity, last 28"),
            ("minutes_28d", "Minutes in the product, last 28 days"),
            ("feature_uses_28d", "Feature uses, last 28 days"),
            ("tickets_28d", "Support tickets, last 28 days"))  # fmt: skip


def _key_numbers(snapshot: dict | None) -> str:
    if not snapshot:
        return ""
    m = snapshot["metrics"]
    rows = [(label, r.number(m[key])) for key, label in _METRICS]
    quiet = m.get("days_since_last_use")
    rows.append(("Days since last use", "never used" if quiet is None else r.number(quiet)))
    nps = m.get("nps_score")
    rows.append(("Latest NPS answer", "none yet" if nps is None else f"{nps} out of 10"))
    rows.append(("Unpaid failed payment", "yes" if m.get("unpaid_failed_payment") else "no"))
    cells = "".join(f"<tr><td>{escape(k)}</td><td>{escape(v)}</td></tr>" for k, v in rows)
    return (f"<h2>Key numbers at the close of {escape(r.day(snapshot['day']))}</h2>"
            f'<table id="metrics">{cells}</table>')  # fmt: skip


_KIND = {"opened": "Opened", "updated": "Updated", "resolved": "Resolved", "churned": "Churned"}


def _episodes(log: list[dict]) -> str:
    """Every alert record kept for the account, newest first: what opened, changed, ended."""
    if not log:
        return "<p>No alert has been raised for this account.</p>"
    items = []
    for record in log:
        kind = _KIND.get(record.get("kind"), r.words(record.get("kind")))
        why = record.get("resolution") if record.get("kind") in ENDED else None
        behind = reasons(record)
        signals = ", ".join(r.words(x["signal"]) for x in behind)
        text = record.get("explanation") or ""
        if len(behind) > 1 and record.get("kind") not in ENDED:
            # An account episode's own text ends "and 2 more: danger_zone, ..." in signal
            # names; its lead reason's text and a count read better (the names are listed).
            more = r.count(len(behind) - 1, "more signal")
            text = f"{behind[0].get('explanation') or text} (and {more})"
        if why and str(why).lower() in text.lower():
            why = None  # the text already says why it ended
        items.append(
            f'<li class="episode {escape(record.get("kind") or "")}"><b>'
            f"{escape(r.moment(record['ts']))}</b> · {escape(kind)} {_badge(record['severity'])}"
            f" <b>{escape(r.words(record['signal']))}</b>"
            + (f" ({escape(signals)})" if signals and signals != r.words(record["signal"]) else "")
            + f": {escape(text)}"
            + (f' <span class="note">Resolved because: {escape(str(why))}</span>' if why else "")
            + "</li>"
        )
    return f'<ol class="episodes" id="episodes">{"".join(items)}</ol>'


def _events(points: list[dict]) -> str:
    found = account_charts.events(points)
    if not found:
        return '<p class="note">No tickets, invoices or NPS answers in this period.</p>'
    rows = "".join(f"<tr><td>{escape(d)}</td><td>{escape(w)}</td></tr>" for d, w in found)
    return f'<h3>Latest events</h3><table id="events">{rows}</table>'


def account_page(view: dict, controls: Controls | None = None) -> str:
    """One account: facts, key numbers, health trend, activity timeline, open alerts (most
    severe first, with each reason's value against its threshold and the playbook), every
    alert episode kept, and health by dimension."""
    health = view["health"]
    points = view.get("history") or []
    dims = "".join(f"<tr><td>{escape(r.words(k))}</td><td>{v}/100</td></tr>"
                   for k, v in health.items() if k not in ("status",))  # fmt: skip
    span = (f'<p class="note">{r.count(len(points), "day")} of daily health, '
            f"{escape(r.day(points[0]['day']))} – {escape(r.day(points[-1]['day']))}.</p>"
            if points else "")  # fmt: skip
    # The timeline above shows every day's logins: the alert's own login chart only when an
    # open alert carries usage evidence (its window, baseline and danger-zone line).
    evidence = bool(_usage_evidence(view)[0])
    alerts = (_card(view, detail=True, chart=evidence, controls=controls)
              if view.get("open_alerts") else "<p>No open alerts.</p>")  # fmt: skip
    body = (
        '<p class="nav"><a href="/">← accounts at risk</a> · '
        '<a href="/view/accounts">all accounts</a></p>'
        f'<table id="facts">{_fact_rows(view)}</table>'
        f"<h2>Health trend</h2>{account_charts.health_trend(points)}"
        f"{account_charts.band_legend()}{span}"
        f"<h2>Activity timeline</h2>{account_charts.activity_timeline(points)}"
        f"{account_charts.timeline_legend()}{_events(points)}"
        f"{_key_numbers(view.get('snapshot'))}"
        f"<h2>Open alerts</h2>{alerts}"
        f"<h2>Alert episodes</h2>{_episodes(view.get('episodes') or [])}"
        f'<h2>Health by dimension</h2><table id="health">{dims}</table>'
    )
    name = view.get("account_name")
    return page(f"Account {name} ({view['account_id']})" if name else
                f"Account {view['account_id']}", body)  # fmt: skip


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
