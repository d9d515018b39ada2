"""The HTML every page churnwatch writes shares: one page shell, one style, one portfolio table.

The API's page (:mod:`stream.sinks.web_page`) and the backtest and calibration reports
(:mod:`stream.offline.report_html`) are opened in browsers, mail attachments and CI
artifacts, often offline: so a page is self-contained (inline style and SVG, no scripts, no
CDN), and both look alike because they are built by the same shell.
"""

from __future__ import annotations

from datetime import date, timedelta
from html import escape

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
"""
"""One style for every page: the reports' tables and plots and the API's account cards."""


def page(title: str, body: str) -> str:
    """A whole HTML document: ``title`` as the window title and the heading, then ``body``."""
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}'
        f"</title><style>{STYLE}</style></head><body><h1>{escape(title)}</h1>{body}"
        "</body></html>\n"
    )


def fmt_cell(value: object, percent: bool = False) -> str:
    """A value as a table shows it: a dash for none, thousands separators, escaped text."""
    if value is None:
        return "–"
    if percent and isinstance(value, float):
        return f"{value:.1%}"
    if isinstance(value, float):
        return f"{value:,.2f}"
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


def portfolio_table(months: list[dict]) -> str:
    """Logo and revenue churn per month, rows as :func:`stream.core.portfolio.monthly` gives."""
    head = ("month", "accounts at start", "lost", "voluntary", "involuntary", "logo churn",
            "MRR at start", "MRR lost", "revenue churn", "joined")  # fmt: skip
    rows = ['<table class="portfolio"><tr>' + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
    for m in months:
        cells = (month_label(m), m["accounts_at_start"], m["lost"], m["voluntary"],
                 m["involuntary"], fmt_cell(m["logo_churn"], True), m["mrr_at_start"],
                 m["mrr_lost"], fmt_cell(m["revenue_churn"], True), m["new_accounts"])  # fmt: skip
        rows.append("<tr>" + "".join(f"<td>{fmt_cell(c)}</td>" for c in cells) + "</tr>")
    return "".join(rows) + "</table>"
