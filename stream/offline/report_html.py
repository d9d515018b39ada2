"""Self-contained HTML reports for backtest and calibration: inline SVG, no scripts, no CDN.

A report is opened from a mail attachment or a CI artifact, often offline, so every chart is
static SVG inside the page, drawn by matplotlib from the JSON report's own numbers
(:mod:`stream.render.charts`). Each chart has an ``id`` the browser tests look for. The page
shell, its style and the portfolio table are the API page's too (:mod:`stream.render.html`).
"""

from __future__ import annotations

from html import escape

from stream.core.alert_outcomes import OUTCOMES, SAVED_AFTER_DAYS
from stream.core.churn_reasons import ChurnReasons
from stream.core.portfolio import reason_group_labels
from stream.offline.backtest import OVERALL, outcome_totals
from stream.render import charts
from stream.render.html import fmt_cell, month_label, page, portfolio_table

_BINS = 30
"""Bins of a calibrate distribution, from zero to the right edge :func:`_shares` picks."""


def _gallery(items: list[str]) -> str:
    """Charts side by side where the page is wide enough, one under another on a phone."""
    cell = f'<div style="flex:1 1 420px;min-width:0;max-width:{charts.MAX_WIDTH_PX}px">'
    return (
        '<div class="charts" style="display:flex;flex-wrap:wrap;gap:0 1.2rem">'
        + "".join(f"{cell}{item}</div>" for item in items)
        + "</div>"
    )


def _shares(churned: list[float], retained: list[float], line: float, current: float,
            ) -> tuple[float, list[float], list[float]]:  # fmt: skip
    """The right edge of the plot and each group's share (%) per bin: wide enough for both
    lines and most of the mass, not stretched by a few outliers (which land in the last bin)."""
    top_x = min(max(line, current, *churned, *retained), max(line, current) * 3) or 1.0
    step = top_x / _BINS

    def shares(group: list[float]) -> list[float]:
        counts = [0] * _BINS
        for v in group:
            counts[min(int(v / step), _BINS - 1)] += 1
        return [100 * c / len(group) if group else 0.0 for c in counts]

    return top_x, shares(churned), shares(retained)


_WORDS = (
    "<b>caught</b>: churners alerted {lead} to {horizon} days before they cancelled; "
    "<b>missed</b>: churners not alerted in that window (a later alert is too late to act on); "
    "<b>false alarms</b>: alerted accounts that stayed for the {horizon} days after the alert; "
    "<b>quiet</b>: accounts never alerted that stayed. <b>precision</b>: alerted accounts that "
    "cancelled within {horizon} days; <b>recall</b>: caught / (caught + missed); <b>F1</b>: the "
    "two in one figure, 2 × precision × recall / (precision + recall)."
)
_LIST_CAP = 50
"""Accounts shown per list in the page; the JSON report (and the CSV files) have them all."""


def _words(scoring: dict) -> str:
    return '<p class="note">' + _WORDS.format(
        lead=scoring["lead_days"], horizon=scoring["horizon_days"]) + "</p>"  # fmt: skip


def _table(head: tuple[str, ...], rows: list[tuple], cls: str = "") -> str:
    attr = f' class="{cls}"' if cls else ""
    out = [f"<table{attr}><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
    for cells in rows:
        out.append("<tr>" + "".join(f"<td>{fmt_cell(c)}</td>" for c in cells) + "</tr>")
    return "".join(out) + "</table>"


def _box(s: dict, kind: str) -> int | None:
    return s.get("confusion", {}).get(kind)


def _signal_table(signals: dict[str, dict]) -> str:
    """What a CS lead reads first comes first (a phone shows the first few columns)."""
    head = ("signal", "caught", "missed", "false alarms", "precision", "recall", "F1",
            "alerts per 100 accounts a month", "alerts opened", "quiet",
            "days of warning (p25 / median / p75)", "recovered")  # fmt: skip
    rows = []
    for name, s in signals.items():
        lead = s["lead_days"]
        label = "all alerts, as CS received them" if name == OVERALL else name
        warning = " / ".join("–" if lead[k] is None else f"{lead[k]:.0f}"
                             for k in ("p25", "median", "p75"))  # fmt: skip
        rows.append((label, _box(s, "caught"), _box(s, "missed"), _box(s, "false_alarms"),
                     fmt_cell(s["precision"], True), fmt_cell(s["recall"], True), s.get("f1"),
                     s["per_100_accounts_per_month"], s["openings"], _box(s, "quiet"), warning,
                     s["recovered_accounts"]))  # fmt: skip
    return _table(head, rows, "signals")


def _segment_table(segments: dict[str, dict]) -> str:
    head = ("segment", "caught", "missed", "false alarms", "precision", "recall", "F1",
            "accounts", "churned", "MRR", "quiet", "alerts per 100 accounts a month",
            "median days of warning")  # fmt: skip
    rows = [(name, _box(s, "caught"), _box(s, "missed"), _box(s, "false_alarms"),
             fmt_cell(s["precision"], True), fmt_cell(s["recall"], True), s["f1"],
             s["accounts"], s["churned"], s["mrr"], _box(s, "quiet"),
             s["per_100_accounts_per_month"], s["lead_days_median"])
            for name, s in segments.items()]  # fmt: skip
    return _table(head, rows, "segments")


def _churn_type_table(types: dict[str, dict], first: str = "churn") -> str:
    head = (first, "churned", "caught", "missed", "too new to catch", "recall",
            "median days of warning")  # fmt: skip
    rows = [(name, t["churned"], t["caught"], t["missed"], t["too_new"],
             fmt_cell(t["recall"], True), t["lead_days_median"])
            for name, t in types.items()]  # fmt: skip
    return _table(head, rows, "churn-types")


_LISTS = {
    "caught": "Caught: churners alerted in time",
    "missed": "Missed: churners not alerted in time",
    "false_alarms": "False alarms: alerted accounts that stayed",
}


def _account_lists(lists: dict[str, list[dict]]) -> str:
    """Each list folded (no script: the browser's own <details>), at most :data:`_LIST_CAP`
    rows shown, with the full count."""
    head = ("account", "segment", "MRR", "first alert", "cancelled", "churn", "days of warning")
    parts = []
    for kind, title in _LISTS.items():
        rows = lists.get(kind, [])
        shown = rows[:_LIST_CAP]
        more = f", the first {len(shown)} shown" if len(rows) > len(shown) else ""
        table = _table(head, [(r["account_id"], r["segment"], r["mrr"], r["first_alert"],
                               r["cancelled"], r["churn"], r["lead_days"]) for r in shown],
                       "accounts")  # fmt: skip
        parts.append(f'<details id="list-{kind.replace("_", "-")}"><summary>{escape(title)}: '
                     f"{len(rows):,} accounts{more}</summary>"
                     f"{table if rows else '<p>None.</p>'}</details>")  # fmt: skip
    return "".join(parts)


def _breakdowns(section: dict, scoring: dict, whose: str) -> list[str]:
    """Per segment, per churn type and the account lists, where the report has them."""
    body = []
    if section.get("segments"):
        body += [f"<h2>Per segment{whose}</h2>", _segment_table(section["segments"])]
    if section.get("churn_types"):
        body += [f"<h2>Voluntary and involuntary churn{whose}</h2>",
                 '<p class="note">Involuntary: the payment failed and was never paid, or the '
                 "cancellation said so.</p>",
                 _churn_type_table(section["churn_types"])]  # fmt: skip
    if section.get("churn_reasons"):
        body += [f"<h2>Caught by churn reason{whose}</h2>",
                 '<p class="note">The reason each cancellation gave, grouped by the policy\'s '
                 "taxonomy (not_given: none was given; unclassified: no code matched).</p>",
                 _churn_type_table(section["churn_reasons"], "reason group")]  # fmt: skip
    if section.get("accounts"):
        body += [f"<h2>Accounts{whose}</h2>",
                 f'<p class="note">At most {_LIST_CAP} per list here; the JSON report has every '
                 "account.</p>", _account_lists(section["accounts"])]  # fmt: skip
    return body


def backtest_html(report: dict) -> str:
    scoring, population = report["scoring"], report["population"]
    signals = {k: v for k, v in report["signals"].items() if k == OVERALL or v["openings"]}
    overall = report["signals"][OVERALL]
    bins = overall["lead_days_histogram"]
    weeks = report["weekly_openings"]
    body = [
        f'<p class="note">Log <code>{escape(report["log"])}</code>, policy '
        f"<code>{escape(report['policy'])}</code>, {escape(report['split'])}. "
        f"{population['accounts']:,} accounts, {population['churned']:,} cancelled "
        f"({population['involuntary']:,} involuntary), {population['account_months']:,} "
        f"account-months from {population['log_start'][:10]} to {population['log_end'][:10]}. "
        f"Precision: alerted accounts that cancelled within {scoring['horizon_days']} days; "
        f"recall: churners alerted {scoring['lead_days']} to {scoring['horizon_days']} days "
        "before cancelling.</p>",
        "<h2>Per signal</h2>",
        _words(scoring),
        _signal_table(signals),
        *_breakdowns(report, scoring, ""),
        "<h2>Lead time</h2>",
        charts.bars("lead-time", "Churners by days from first alert to cancellation",
                    [f"{7 * i}–{7 * i + 6}" for i in range(len(bins))], bins,
                    xlabel="days from first alert to cancellation", ylabel="churners",
                    name="churners"),
        "<h2>Precision and recall per signal</h2>",
        charts.grouped_hbars(
            "precision-recall", "Precision and recall (%)",
            ["all alerts" if name == OVERALL else name for name in signals],
            {"precision": [_percent(s["precision"]) for s in signals.values()],
             "recall": [_percent(s["recall"]) for s in signals.values()]},
            xlabel=_percent_axis(signals), ylabel="signal"),
        "<h2>Alert volume over time</h2>",
        charts.weekly_bars("volume", "Episodes opened per week", list(weeks),
                           [sum(v.values()) for v in weeks.values()],
                           xlabel="week", ylabel="episodes opened", name="openings"),
    ]  # fmt: skip
    if report.get("portfolio"):
        body.append("<h2>Portfolio: churn per month (whole log)</h2>")
        body.append(portfolio_table(report["portfolio"]))
        body.append(_outcomes_table(report["portfolio"]))
    return page("churnwatch backtest", "".join(body))


_OUTCOME_HEAD = ("alerts opened in", "alerted", "saved", "renewed", "churned", "pending",
                 "save rate", "churned because")  # fmt: skip
_REASON_LABELS = reason_group_labels(ChurnReasons())


def _outcome_cells(label: str, o: dict) -> str:
    ranked = sorted(o["churned_by_reason"].items(), key=lambda x: (-x[1], x[0]))
    why = ", ".join(f"{_REASON_LABELS.get(g, g)} {n}" for g, n in ranked)
    rate = _rate(o["saved"], o["saved"] + o["churned"])
    cells = (label, o["alerted"], *(o[k] for k in OUTCOMES), fmt_cell(rate, True), why or "–")
    return "<tr>" + "".join(f"<td>{fmt_cell(c)}</td>" for c in cells) + "</tr>"


def _rate(num: int, den: int) -> float | None:
    return num / den if den else None


def _outcomes_table(months: list[dict]) -> str:
    """What became of the alert episodes each month opened, and over the log (absent when
    the rows carry no outcomes)."""
    totals = outcome_totals(months)
    if totals is None:
        return ""
    head = "".join(f"<th>{h}</th>" for h in _OUTCOME_HEAD)
    rows = "".join(_outcome_cells(month_label(m), m["alert_outcomes"]) for m in months)
    return (
        "<h2>What became of alerted accounts</h2>"
        f'<table class="outcomes" id="alert-outcomes"><tr>{head}</tr>{rows}'
        f"{_outcome_cells('whole log', totals)}</table>"
        f'<p class="note">Saved: the episode resolved and the account was still subscribed '
        f"{SAVED_AFTER_DAYS} days later; churned: it cancelled while the episode was open or "
        f"within {SAVED_AFTER_DAYS} days after; renewed: it renewed after the episode opened, "
        "neither yet; pending: none of these by the end of the log. Save rate: saved / (saved "
        "+ churned).</p>"
    )


def calibration_html(report: dict) -> str:
    """The calibration report, the decision first: the verdict and the held-out comparison a
    CS lead reads, then what was learned and the evidence behind each line."""
    body = [
        f'<p class="note">Log <code>{escape(report["log"])}</code>, learned on the '
        f"{escape(report['split'])}; objective {escape(report['objective'])}; alert budget "
        f"{report['alert_budget_per_100_account_months']:g} openings per 100 account-months.</p>"
    ]
    if report.get("verdict"):
        body.append(f'<p class="verdict">{escape(report["verdict"])}</p>')
    if "holdout" in report:
        body.append("<h2>Held-out comparison</h2>")
        scoring = report.get("scoring", {"horizon_days": 60, "lead_days": 14})
        body.append(_words(scoring))
        body.append(_comparison_table(report["holdout"]))
    if report.get("holdout_signals"):
        body.append("<h2>Held-out, per signal: base policy → calibrated policy</h2>")
        body.append('<p class="note">Each cell: the base policy\'s figure → the calibrated '
                    "policy's (the change), on the accounts calibration did not learn from."
                    "</p>")  # fmt: skip
        body.append(_delta_table(report["holdout_signals"]))
    if report.get("holdout_accounts"):
        scoring = report.get("scoring", {"horizon_days": 60, "lead_days": 14})
        body += _breakdowns(report["holdout_accounts"], scoring,
                            ": the calibrated policy on the held-out accounts")  # fmt: skip
    if report["disabled_signals"]:
        body.append("<h2>Signals switched off</h2><ul>")
        for signal, why in report["disabled_signals"].items():
            body.append(f"<li>{escape(signal)}: {escape(why)}</li>")
        body.append("</ul>")
    model = report.get("risk_model")
    if model:
        body.append(_model_section(model))
    body.append(
        "<h2>Danger-zone lines</h2><table><tr><th>segment</th><th>stage</th><th>line</th>"
        "<th>was</th><th>churners</th><th>precision</th><th>recall</th><th>note</th></tr>"
    )
    for cell in report["cells"]:
        values = (cell["segment"], cell["stage"], cell["line"], cell["current"],
                  cell["churners"], fmt_cell(cell["precision"], True),
                  fmt_cell(cell["recall"], True), cell["note"])  # fmt: skip
        body.append("<tr>" + "".join(f"<td>{fmt_cell(v)}</td>" for v in values) + "</tr>")
    body.append("</table>")
    body.append("<h2>Distributions</h2>")
    plots = []
    for i, cell in enumerate(report["cells"]):
        if cell["churn_levels"] or cell["retained_levels"]:
            title = f"{cell['segment']} / {cell['stage']}: logins per seat per week"
            churned, retained = cell["churn_levels"], cell["retained_levels"]
            top_x, a, b = _shares(churned, retained, cell["line"], cell["current"])
            plots.append(charts.distributions(
                f"distribution-{i}", title,
                {f"churned: lowest level in the warning window (n={len(churned)})": a,
                 f"retained: lowest level (n={len(retained)})": b},
                top_x,
                {f"chosen line {cell['line']:.3g}": cell["line"],
                 f"current line {cell['current']:.3g}": cell["current"]},
                xlabel="lowest logins per seat per week", ylabel="share of the group (%)",
            ))  # fmt: skip
    if plots:
        body.append(_gallery(plots))
    return page("churnwatch calibrate", "".join(body))


def _comparison_table(rows: dict[str, dict]) -> str:
    """The calibrated policy, the base one and the naive baselines, on the same accounts."""
    head = ("policy", "alerts per 100 accounts a month", "precision", "recall", "F1",
            "caught", "missed", "false alarms", "detected")  # fmt: skip
    out = ["<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
    for name, s in rows.items():
        cells = (name, s["per_100_accounts_per_month"], fmt_cell(s["precision"], True),
                 fmt_cell(s["recall"], True), s["f1"], _box(s, "caught"), _box(s, "missed"),
                 _box(s, "false_alarms"),
                 f"{s['churners_detected']}/{s['churners_eligible']}")  # fmt: skip
        out.append("<tr>" + "".join(f"<td>{fmt_cell(c)}</td>" for c in cells) + "</tr>")
    return "".join(out) + "</table>"


def _delta(before: float | None, after: float | None, change: float | None,
           percent: bool) -> str:  # fmt: skip
    """One cell of HTML: ``48.0% → 61.0%`` on a line, the change under it (``+13.0 pts``)."""
    moved = "no change" if not change else (
        f"{100 * change:+.1f} pts" if percent else f"{change:+,.2f}")  # fmt: skip
    if change is None:
        moved = "–"
    return (f'<span class="nw">{fmt_cell(before, percent)} → {fmt_cell(after, percent)}</span>'
            f'<br><span class="note">{moved}</span>')  # fmt: skip


def _delta_table(signals: dict[str, dict]) -> str:
    """Each signal with alerts under either policy: its figures before and after, and the
    change."""
    head = ("signal", "precision", "recall", "F1", "alerts per 100 accounts a month",
            "caught", "missed", "false alarms")  # fmt: skip
    out = ['<table class="deltas"><tr>' + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
    for name, s in signals.items():
        b, a, c = s["before"], s["after"], s["change"]
        if name != OVERALL and not (b["openings"] or a["openings"]):
            continue
        label = "all alerts, as CS received them" if name == OVERALL else name
        cells = (escape(label),
                 _delta(b["precision"], a["precision"], c["precision"], True),
                 _delta(b["recall"], a["recall"], c["recall"], True),
                 _delta(b["f1"], a["f1"], c["f1"], False),
                 _delta(b["per_100_accounts_per_month"], a["per_100_accounts_per_month"],
                        c["per_100_accounts_per_month"], False),
                 *(f'<span class="nw">{fmt_cell(_box(b, k))} → {fmt_cell(_box(a, k))}</span>'
                   for k in ("caught", "missed", "false_alarms")))  # fmt: skip
        out.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return "".join(out) + "</table>"


def _model_section(model: dict) -> str:
    if not model.get("learned"):
        return f"<h2>Churn-risk model</h2><p>Not learned: {escape(model['why'])}</p>"
    state = "written into the policy" if model.get("written") else "NOT written into the policy"
    parts = [
        "<h2>Churn-risk model</h2>",
        f"<p>Alert at probability {model['threshold']:.3f}; {state}.</p>",
        "<table><tr><th>metric</th><th>weight (per standard deviation)</th>"
        "<th>a higher value means</th></tr>",
    ]
    for w in model["weights"]:
        direction = "more risk" if w["weight"] > 0 else "less risk"
        parts.append(f"<tr><td>{escape(w['words'])}</td><td>{w['weight']:+.3f}</td>"
                     f"<td>{direction}</td></tr>")  # fmt: skip
    parts.append("</table><h3>Segments</h3><ul>")
    for segment, info in model.get("segments", {}).items():
        parts.append(f"<li>{escape(segment)}: {escape(info['note'])}</li>")
    parts.append("</ul><h2>Metric cohorts</h2><p class=\"note\">Churn rate within the horizon "
                 "by decile of each of the model's strongest metrics; the line is the "
                 "base rate.</p>")  # fmt: skip
    base = model["train"]["base_rate"]
    plots = [_cohort_plot(w["metric"], model["cohorts"][w["metric"]], base)
             for w in model["weights"][:8]]  # fmt: skip
    parts.append(_gallery(plots))
    return "".join(parts)


def _cohort_plot(metric: str, cohort: dict, base_rate: float) -> str:
    deciles = cohort["deciles"]
    svg = charts.bars(
        f"cohort-{metric}", f"{cohort['words']}: churn rate by decile (%)",
        [f"≤{_short(d['upper'])}" for d in deciles], [100 * d["churn_rate"] for d in deciles],
        xlabel="decile (labelled with the highest value in it)", ylabel="churn rate (%)",
        name="churn rate", percent=True, reference=(f"base rate {base_rate:.1%}", 100 * base_rate),
    )  # fmt: skip
    danger = cohort.get("danger_line")
    note = (
        f'<p class="note">Danger line: {escape(cohort["words"])} at or below {danger:g}, where '
        "churn runs at 1.5 times the base rate or more.</p>"
        if danger is not None
        else ""
    )
    return svg + note


def _short(value: float) -> str:
    """Three significant digits, but whole thousands in full: 7,339, not 7.34e+03."""
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def _percent_axis(signals: dict[str, dict]) -> str:
    undefined = any(s["precision"] is None or s["recall"] is None for s in signals.values())
    return "percent" + ("  (–: not defined, nothing to count)" if undefined else "")


def _percent(share: float | None) -> float | None:
    return None if share is None else 100 * share
