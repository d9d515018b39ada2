"""The web page the API serves: accounts at risk with their engagement charts and alerts.

Server-rendered HTML with inline SVG, no scripts: it works behind any proxy and in a
screenshot. Each account's chart plots the daily logins its latest usage alert carried as
evidence against its baseline (dashed) and the danger-zone line for its segment (red). An
account episode (``account_at_risk``) is shown with each of its reasons, most severe first.
The page shell, style and churn-per-month table are the reports' (:mod:`stream.render.html`).
"""

from __future__ import annotations

from html import escape
from http import HTTPStatus
from urllib.parse import quote

from stream.render.html import page, portfolio_table
from stream.sinks.alert_records import reasons

_W, _H, _PAD = 360, 110, 18
_WEEKLY_BASELINE = ("logins_per_week", "days_without_activity")  # baselines in logins/week


def _usage_evidence(view: dict) -> tuple[list[float], float | None]:
    """Daily logins from the latest usage alert, and the baseline in logins per day (from any
    open alert's reasons: an account episode led by a billing signal may still list a drop)."""
    alerts = sorted(view.get("open_alerts", []), key=lambda a: a["ts"])
    usage = [a for a in alerts if a["dimension"] == "usage"]
    daily = [p["value"] for p in usage[-1]["evidence"]["daily"]] if usage else []
    for alert in reversed(alerts):
        for reason in reasons(alert):
            if reason["metric"] in _WEEKLY_BASELINE and reason["baseline"] is not None:
                return daily, reason["baseline"] / 7
    return daily, None


def engagement_chart(view: dict) -> str:
    daily, baseline = _usage_evidence(view)
    line = view.get("danger_line_logins_per_day")
    top = max([*daily, baseline or 0, line or 0, 1.0]) * 1.15
    inner_w, inner_h = _W - 2 * _PAD, _H - 2 * _PAD

    def y(value: float) -> float:
        return _H - _PAD - inner_h * value / top

    parts = [f'<svg class="engagement" viewBox="0 0 {_W} {_H}" width="{_W}" '
             'style="max-width:100%;height:auto" role="img">'
             "<title>daily logins against baseline and danger-zone line</title>"]  # fmt: skip
    if daily:
        step = inner_w / max(len(daily) - 1, 1)
        points = " ".join(f"{_PAD + i * step:.1f},{y(v):.1f}" for i, v in enumerate(daily))
        parts.append(f'<polyline class="series" points="{points}" fill="none" '
                     'stroke="#2f6db5" stroke-width="2"/>')  # fmt: skip
    else:
        parts.append(f'<text x="{_PAD}" y="{_H / 2}" font-size="11">no usage evidence</text>')
    if baseline is not None:
        parts.append(f'<line class="baseline" x1="{_PAD}" x2="{_W - _PAD}" y1="{y(baseline):.1f}" '
                     f'y2="{y(baseline):.1f}" stroke="#555" stroke-dasharray="4 3"/>')  # fmt: skip
    if line is not None:
        parts.append(f'<line class="danger" x1="{_PAD}" x2="{_W - _PAD}" y1="{y(line):.1f}" '
                     f'y2="{y(line):.1f}" stroke="#d9534f"/>')  # fmt: skip
    parts.append(f'<text x="{_PAD}" y="12" font-size="10">logins/day (max {top / 1.15:.1f}); '
                 '<tspan fill="#555">- - baseline</tspan> <tspan fill="#d9534f">— danger zone'
                 "</tspan></text></svg>")  # fmt: skip
    return "".join(parts)


def _line(severity: str, signal: str, since: str, explanation: str) -> str:
    sev = escape(severity)
    return (
        f'<span class="sev {sev}">{sev}</span> <b>{escape(signal)}</b> since '
        f"{escape(since[:10])}: {escape(explanation)}"
    )


def _alerts(view: dict) -> str:
    rows = []
    for alert in view.get("open_alerts", []):
        behind = reasons(alert)
        if len(behind) == 1 and behind[0]["signal"] == alert["signal"]:
            line = _line(alert["severity"], alert["signal"], alert["episode_start"],
                         alert["explanation"])  # fmt: skip
            rows.append(f'<div class="alert">{line}</div>')
            continue
        items = "".join(
            f'<li class="reason">{_line(r["severity"], r["signal"], r["since"], r["explanation"])}'
            "</li>"
            for r in behind
        )
        head = (f'<span class="sev {escape(alert["severity"])}">{escape(alert["severity"])}</span> '
                f"<b>at risk</b> since {escape(alert['episode_start'][:10])}: "
                f"{len(behind)} signal{'s' if len(behind) != 1 else ''}")  # fmt: skip
        rows.append(f'<div class="alert">{head}<ul class="reasons">{items}</ul></div>')
    return "".join(rows) or '<div class="alert">no open alerts</div>'


def _card(view: dict) -> str:
    health = view["health"]
    link = "/view/accounts/" + quote(view["account_id"], safe="")
    return (
        f'<div class="acct"><h2><a href="{escape(link)}">{escape(view["account_id"])}</a> '
        f"health {health['overall']} ({escape(health['status'])})</h2>"
        f'<div class="meta">{escape(str(view["segment"]))} · {escape(str(view["stage"]))} · '
        f"MRR {view.get('mrr') or 0:,.2f} · {view.get('seats') or '?'} seats · last alert "
        f"{escape(view['last_alert_ts'])}</div>{engagement_chart(view)}{_alerts(view)}</div>"
    )


def _portfolio(portfolio: dict) -> str:
    cells = "".join(
        f"<tr><td>{escape(sev)}</td><td>{row['accounts']:,}</td><td>{row['mrr']:,.2f}</td></tr>"
        for sev, row in portfolio["mrr_at_risk_by_severity"].items()
    )
    at_risk = (f'<table id="portfolio"><tr><th>severity</th><th>accounts</th><th>MRR at risk</th>'
               f"</tr>{cells}<tr><td><b>total</b></td><td>{portfolio['accounts_with_open_alerts']:,}"
               f"</td><td><b>{portfolio['mrr_at_risk']:,.2f}</b></td></tr></table>")  # fmt: skip
    months = portfolio.get("months") or []
    return at_risk + (f"<h2>Churn per month</h2>{portfolio_table(months[-6:])}" if months else "")


def at_risk_page(views: list[dict], portfolio: dict, segment: str | None) -> str:
    title = "Accounts at risk" + (f" ({segment})" if segment else "")
    cards = "".join(_card(v) for v in views) or "<p>No account is at risk.</p>"
    return page(title, f'{_portfolio(portfolio)}<div id="accounts">{cards}</div>')


def account_page(view: dict) -> str:
    health = view["health"]
    dims = "".join(f"<tr><td>{escape(k)}</td><td>{v}</td></tr>" for k, v in health.items()
                   if k not in ("status",))  # fmt: skip
    body = (f'<p><a href="/">← accounts at risk</a></p>{_card(view)}'
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
