"""The HTML every page churnwatch writes shares: one page shell, one style, one portfolio table.

The API's page (:mod:`stream.sinks.web_page`) and the backtest and calibration reports
(:mod:`stream.offline.report_html`) are opened in browsers, mail attachments and CI
artifacts, often offline: so a page is self-contained (inline style and SVG, no scripts, no
CDN), and both look alike because they are built by the same shell.
"""

from __future__ import annotations

from datetime import date, timedelta
from html import escape

from stream.render import readable as readable_text

STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5rem 2rem;color:#1d2430;max-width:1100px}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:1.6rem}
table{border-collapse:collapse;font-size:.85rem;display:block;overflow-x:auto;max-width:100%}
td,th{padding:.25rem .6rem;text-align:right}code{overflow-wrap:anywhere}
.verdict{font-size:1rem;padding:.6rem .8rem;border-left:4px solid #2f6db5;background:#f3f6fb}
@media (max-width:600px){body{margin:1rem .7rem}td,th{padding:.2rem .35rem}
table{font-size:.78rem}td:first-child,th:first-child{position:sticky;left:0;background:#fff;max-width:11rem;min-width:7.5rem}
th:first-child{background:#eef1f5}tr:nth-child(even) td:first-child{background:#f7f8fa}}
th{background:#eef1f5}td:first-child,th:first-child{text-align:left}
tr:nth-child(even) td{background:#f7f8fa}.note,.meta{color:#5b6575;font-size:.85rem}
svg{background:#fbfcfd;border:1px solid #e3e7ee;margin:.5rem 0}
.acct{border:1px solid #e3e7ee;border-radius:6px;padding:.8rem;margin:.8rem 0}
.acct h2{font-size:1rem;margin:0 0 .4rem}.alert{font-size:.9rem;margin:.3rem 0}
.sev{font-weight:600;text-transform:uppercase;font-size:.75rem;padding:.05rem .35rem;
border-radius:3px;color:#fff}.critical{background:#8b1a1a}
details{margin:.4rem 0}.nw,.accounts td,.signals td+td,.segments td+td{white-space:nowrap}
summary{cursor:pointer;font-weight:600}
.high{background:#d9534f}.medium{background:#e0a030}.low{background:#6c8ebf}
.acct h2 .risk{font-weight:400;font-size:.9rem;color:#5b6575;white-space:nowrap}
.alert,.meta,.acct h2{overflow-wrap:anywhere}.reasons{padding-left:1.2rem;margin:.3rem 0}
svg.engagement{display:block;box-sizing:border-box;width:100%;max-width:520px;height:auto}
.chart-span{margin:0 0 .5rem}.stale{color:#8a4b00;font-weight:600}
.playbook{font-size:.85rem;margin:.3rem 0 .5rem}table.numbers{margin:.3rem 0 .6rem}
.actions{display:flex;flex-wrap:wrap;gap:.4rem .9rem;align-items:flex-start;margin:.5rem 0}
.actions form{margin:.2rem 0}.actions details{margin:.2rem 0}.actions label{display:inline-block}
.actions input,.actions textarea{max-width:100%;box-sizing:border-box;font:inherit}
.acted{font-size:.85rem;color:#2c5f2d;margin:.3rem 0}.notes{font-size:.85rem;padding-left:1.2rem}
.numbers td{white-space:nowrap}.numbers td:first-child{white-space:normal;min-width:7rem}
@media (max-width:600px){.numbers tbody,.numbers tr{display:block}
.numbers tr:first-child{display:none}
.numbers td{display:flex;justify-content:space-between;gap:1rem;white-space:normal}
.numbers td:first-child{font-weight:600;display:block}
.numbers td::before{content:attr(data-label);color:#5b6575}}
svg.trend,svg.timeline{display:block;box-sizing:border-box;width:100%;max-width:600px;height:auto}
.legend .key{white-space:nowrap;margin-right:.7rem;display:inline-block}
.legend .key i{display:inline-block;width:.8rem;height:.6rem;margin-right:.25rem;
vertical-align:middle;border:1px solid #c9ced6}
.episodes{padding-left:1.2rem;font-size:.9rem;overflow-wrap:anywhere}.episodes li{margin:.35rem 0}
#facts td:last-child,#metrics td:last-child,#events td:last-child{text-align:left;
overflow-wrap:anywhere}
.list td{vertical-align:top}.list td:first-child{overflow-wrap:anywhere;min-width:9rem}
#filters label{display:inline-block;margin:0 .4rem .3rem 0}
@media (max-width:600px){table.list,.list tbody,.list tr{display:block}
.list tr:first-child{display:none}.list tr{border-top:1px solid #e3e7ee;padding:.3rem 0}
.list td{display:flex;justify-content:space-between;gap:1rem;white-space:normal;text-align:right}
.list td:first-child{display:block;font-weight:600;text-align:left;position:static;
max-width:none}.list td::before{content:attr(data-label);color:#5b6575;text-align:left}
.list td:first-child::before{content:none}}
"""
"""One style for every page: the reports' tables and plots and the API's account cards."""


def page(title: str, body: str) -> str:
    """A whole HTML document: ``title`` as the window title and the heading, then ``body``."""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
        f'content="width=device-width,initial-scale=1"><title>{escape(title)}</title>'
        f"<style>{STYLE}</style></head><body><h1>{escape(title)}</h1>{body}</body></html>\n"
    )


def fmt_cell(value: object, percent: bool = False) -> str:
    """A value as a table shows it: a dash for none, thousands separators, escaped text, and
    never a negative zero."""
    if value is None:
        return "–"
    if isinstance(value, float):
        text = f"{value:.1%}" if percent else f"{value:,.2f}"
        return text[1:] if text.startswith("-") and not text.strip("-0.%") else text
    return escape(f"{value:,}" if isinstance(value, int) else str(value))


def month_label(row: dict) -> str:
    """``2026-06``, or ``2026-06 (partial: to Jun 3)`` for a month the log covers only in part,
    so that a month's low counts are not read as a good month."""
    if not row.get("partial"):
        return row["month"]
    start, end = date.fromisoformat(row["covered_from"]), date.fromisoformat(row["covered_to"])
    first = start.day == 1
    last = (end + timedelta(days=1)).month != end.month
    if first:
        span = f"to {end:%b} {end.day}"
    elif last:
        span = f"from {start:%b} {start.day}"
    else:
        span = f"{start:%b} {start.day} to {end:%b} {end.day}"
    return f"{row['month']} (partial: {span})"


def portfolio_table(months: list[dict], readable: bool = False) -> str:
    """Logo and revenue churn per month, rows as :func:`stream.core.portfolio.monthly` gives.

    ``readable`` (the API's page) shows the month as "Jan 2026" and MRR in dollars ("$2,600");
    the reports keep "2026-01" and plain figures, which sort and copy into a spreadsheet. Either
    way a month the log covers only in part says so (:func:`month_label`).
    """
    head = ("month", "accounts at start", "lost", "voluntary", "involuntary", "logo churn",
            "MRR at start", "MRR lost", "revenue churn", "joined")  # fmt: skip
    rows = ['<table class="portfolio"><tr>' + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
    for m in months:
        month, mrr_at_start, mrr_lost = month_label(m), m["mrr_at_start"], m["mrr_lost"]
        if readable:
            at = readable_text.when(f"{m['month']}-01") if len(str(m["month"])) == 7 else None
            if at is not None:  # keep the "(partial: ...)" note after the month
                month = f"{at:%b %Y}{month[len(str(m['month'])) :]}"
            mrr_at_start, mrr_lost = (
                readable_text.money(mrr_at_start),
                readable_text.money(mrr_lost),
            )
        cells = (month, m["accounts_at_start"], m["lost"], m["voluntary"], m["involuntary"],
                 fmt_cell(m["logo_churn"], True), mrr_at_start, mrr_lost,
                 fmt_cell(m["revenue_churn"], True), m["new_accounts"])  # fmt: skip
        rows.append("<tr>" + "".join(f"<td>{fmt_cell(c)}</td>" for c in cells) + "</tr>")
    return "".join(rows) + "</table>"
