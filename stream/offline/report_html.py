"""Self-contained HTML reports for backtest and calibration: inline SVG, no scripts, no CDN.

A report is opened from a mail attachment or a CI artifact, often offline, so everything it
shows is drawn here as SVG from the JSON report's own numbers. Each plot has an ``id`` the
browser test looks for. The page shell, its style and the portfolio table are the API page's
too (:mod:`stream.render.html`).
"""

from __future__ import annotations

from html import escape

from stream.offline.backtest import OVERALL
from stream.render.html import fmt_cell, page, portfolio_table

_W, _H, _PAD = 640, 240, 40
_BOX = f'viewBox="0 0 {_W} {_H}" width="{_W}" style="max-width:100%;height:auto"'
"""Plots scale down to a phone's width instead of running off the page."""


def _bars(plot_id: str, title: str, labels: list[str], series: dict[str, list[float]]) -> str:
    """Vertical bars, one group per label, one colour per series."""
    colours = ("#2f6db5", "#e07b39", "#3a9a5b")
    top = max((v for values in series.values() for v in values), default=0) or 1
    inner_w, inner_h = _W - 2 * _PAD, _H - 2 * _PAD
    group = inner_w / max(len(labels), 1)
    width = group * 0.8 / max(len(series), 1)
    parts = [f'<svg id="{plot_id}" {_BOX} role="img">',
             f"<title>{escape(title)}</title>",
             f'<text x="{_PAD}" y="18" font-size="13">{escape(title)}</text>',
             f'<line x1="{_PAD}" y1="{_H - _PAD}" x2="{_W - _PAD}" y2="{_H - _PAD}" '
             'stroke="#888"/>',
             f'<text x="4" y="{_PAD + 4}" font-size="10">{top:g}</text>']  # fmt: skip
    for i, label in enumerate(labels):
        x0 = _PAD + i * group + group * 0.1
        for k, (name, values) in enumerate(series.items()):
            height = inner_h * values[i] / top
            parts.append(
                f'<rect class="bar" x="{x0 + k * width:.1f}" y="{_H - _PAD - height:.1f}" '
                f'width="{max(width - 1, 1):.1f}" height="{height:.1f}" '
                f'fill="{colours[k % 3]}"><title>{escape(label)} {escape(name)}: '
                f"{values[i]:g}</title></rect>"
            )
        if len(labels) <= 16 or i % max(len(labels) // 12, 1) == 0:
            parts.append(
                f'<text x="{x0:.1f}" y="{_H - _PAD + 12}" font-size="9" '
                f'transform="rotate(30 {x0:.1f} {_H - _PAD + 12})">{escape(label)}</text>'
            )
    for k, name in enumerate(series):
        parts.append(
            f'<rect x="{_W - 150}" y="{10 + 14 * k}" width="10" height="10" '
            f'fill="{colours[k % 3]}"/><text x="{_W - 135}" y="{19 + 14 * k}" '
            f'font-size="11">{escape(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _distributions(plot_id: str, title: str, churned: list[float], retained: list[float],
                   line: float, current: float) -> str:  # fmt: skip
    """Two histograms (share of each group per bin) with the chosen and the current line."""
    # Wide enough for both lines and most of the mass, not stretched by a few outliers.
    top_x = min(max(line, current, *churned, *retained), max(line, current) * 3) or 1.0
    bins = 30
    step = top_x / bins

    def shares(group: list[float]) -> list[float]:
        counts = [0] * bins
        for v in group:
            counts[min(int(v / step), bins - 1)] += 1
        return [c / len(group) if group else 0.0 for c in counts]

    a, b = shares(churned), shares(retained)
    top = max([*a, *b, 1e-9])
    inner_w, inner_h = _W - 2 * _PAD, _H - 2 * _PAD
    parts = [f'<svg id="{plot_id}" class="distribution" {_BOX} role="img">',
             f"<title>{escape(title)}</title>",
             f'<text x="{_PAD}" y="18" font-size="13">{escape(title)}</text>']  # fmt: skip
    for group, colour in ((a, "#d9534f"), (b, "#2f6db5")):
        points = " ".join(
            f"{_PAD + (i + 0.5) * inner_w / bins:.1f},{_H - _PAD - inner_h * s / top:.1f}"
            for i, s in enumerate(group)
        )
        parts.append(f'<polyline points="{points}" fill="none" stroke="{colour}" '
                     'stroke-width="2"/>')  # fmt: skip
    for value, dash, name in ((line, "", "chosen"), (current, "4 3", "current")):
        x = _PAD + inner_w * min(value / top_x, 1.0)
        parts.append(
            f'<line class="line-{name}" x1="{x:.1f}" y1="{_PAD}" x2="{x:.1f}" '
            f'y2="{_H - _PAD}" stroke="#222" stroke-dasharray="{dash}"/>'
            f'<text x="{x + 3:.1f}" y="{_PAD + (0 if dash else 12)}" font-size="10">'
            f"{name} {value:.3g}</text>"
        )
    parts.append(
        f'<line x1="{_PAD}" y1="{_H - _PAD}" x2="{_W - _PAD}" y2="{_H - _PAD}" stroke="#888"/>'
        f'<text x="{_PAD}" y="{_H - 8}" font-size="10">0</text>'
        f'<text x="{_W - _PAD - 30}" y="{_H - 8}" font-size="10">{top_x:.3g}</text>'
        f'<text x="{_W - 250}" y="30" font-size="11" fill="#d9534f">churned: lowest level in '
        f'the warning window (n={len(churned)})</text><text x="{_W - 250}" y="44" '
        f'font-size="11" fill="#2f6db5">retained: lowest level (n={len(retained)})</text></svg>'
    )
    return "".join(parts)


def _signal_table(signals: dict[str, dict]) -> str:
    head = ("signal", "openings", "per 100 acct/mo", "precision", "recall", "detected",
            "lead p25", "lead median", "lead p75", "recovered")  # fmt: skip
    rows = ["<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
    for name, s in signals.items():
        lead = s["lead_days"]
        label = "all alerts, as CS received them" if name == OVERALL else name
        cells = (label, s["openings"], s["per_100_accounts_per_month"],
                 fmt_cell(s["precision"], True), fmt_cell(s["recall"], True),
                 f"{s['churners_detected']}/{s['churners_eligible']}",
                 lead["p25"], lead["median"], lead["p75"], s["recovered_accounts"])  # fmt: skip
        rows.append("<tr>" + "".join(f"<td>{fmt_cell(c)}</td>" for c in cells) + "</tr>")
    return "".join(rows) + "</table>"


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
        _signal_table(signals),
        "<h2>Lead time</h2>",
        _bars("lead-time", "Churners by days from first alert to cancellation",
              [f"{7 * i}–{7 * i + 6}" for i in range(len(bins))], {"churners": bins}),
        "<h2>Precision and recall per signal</h2>",
        _bars("precision-recall", "Precision and recall (%)", list(signals),
              {"precision": [100 * (s["precision"] or 0) for s in signals.values()],
               "recall": [100 * (s["recall"] or 0) for s in signals.values()]}),
        "<h2>Alert volume over time</h2>",
        _bars("volume", "Episodes opened per week", list(weeks),
              {"openings": [sum(v.values()) for v in weeks.values()]}),
    ]  # fmt: skip
    if report.get("portfolio"):
        body.append("<h2>Portfolio: churn per month (whole log)</h2>")
        body.append(portfolio_table(report["portfolio"]))
    return page("churnwatch backtest", "".join(body))


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
        body.append(_comparison_table(report["holdout"]))
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
    for i, cell in enumerate(report["cells"]):
        if cell["churn_levels"] or cell["retained_levels"]:
            title = f"{cell['segment']} / {cell['stage']}: logins per seat per week"
            churned, retained = cell["churn_levels"], cell["retained_levels"]
            plot = _distributions(
                f"distribution-{i}", title, churned, retained, cell["line"], cell["current"]
            )
            body.append(plot)
    return page("churnwatch calibrate", "".join(body))


def _comparison_table(rows: dict[str, dict]) -> str:
    """The calibrated policy, the base one and the naive baselines, on the same accounts."""
    head = ("policy", "openings per 100 acct/mo", "precision", "recall", "F1", "detected")
    out = ["<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
    for name, s in rows.items():
        cells = (name, s["per_100_accounts_per_month"], fmt_cell(s["precision"], True),
                 fmt_cell(s["recall"], True), s["f1"],
                 f"{s['churners_detected']}/{s['churners_eligible']}")  # fmt: skip
        out.append("<tr>" + "".join(f"<td>{fmt_cell(c)}</td>" for c in cells) + "</tr>")
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
    for w in model["weights"][:8]:
        cohort = model["cohorts"][w["metric"]]
        parts.append(_cohort_plot(w["metric"], cohort, base))
    return "".join(parts)


def _cohort_plot(metric: str, cohort: dict, base_rate: float) -> str:
    deciles = cohort["deciles"]
    labels = [f"≤{d['upper']:.3g}" for d in deciles]
    rates = [100 * d["churn_rate"] for d in deciles]
    svg = _bars(f"cohort-{metric}", f"{cohort['words']}: churn rate by decile (%)", labels,
                {"churn rate": rates})  # fmt: skip
    top = max([*rates, 1e-9])
    y = _H - _PAD - (_H - 2 * _PAD) * min(100 * base_rate / top, 1.0)
    line = (f'<line class="base-rate" x1="{_PAD}" y1="{y:.1f}" x2="{_W - _PAD}" y2="{y:.1f}" '
            f'stroke="#d9534f" stroke-dasharray="4 3"/>')  # fmt: skip
    danger = cohort.get("danger_line")
    note = (
        f'<p class="note">Danger line: {escape(cohort["words"])} at or below {danger:g}, where '
        "churn runs at 1.5 times the base rate or more.</p>"
        if danger is not None
        else ""
    )
    return svg.replace("</svg>", line + "</svg>") + note
