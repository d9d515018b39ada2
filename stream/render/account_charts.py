"""The account page's two charts, drawn as inline SVG by hand: health trend and activity.

The API renders an account page per request, so these charts are plain string building (a
millisecond), not matplotlib (the reports' charts, ~50 ms each and a second to import). They
follow the reports' conventions all the same: a title, dated x axis, value axis from zero with
gridlines, a legend in words, and a viewBox that scales to the page's width (a phone's 390 px
keeps the 12-unit text at about 10 px).

Both take the daily points of the read model's history (:func:`stream.sinks.health_model.history`),
oldest first; a day without a snapshot is a gap in the line, never a zero.
"""

from __future__ import annotations

from datetime import date
from html import escape

from stream.render import readable as r

W, LEFT, RIGHT = 420, 58, 10
_INK, _MUTED, _GRID, _BLUE, _RED = "#1d2430", "#5b6575", "#e3e7ee", "#2f6db5", "#d9534f"
BANDS = ((75, 100, "#eaf5ee", "low risk"), (50, 75, "#f7f5e6", "moderate"),
         (25, 50, "#fbefe3", "high"), (0, 25, "#f9e5e5", "very high"))  # fmt: skip
"""Health bands as the page's risk words (:func:`stream.core.health.status_of`'s cut-offs)."""


def _days(points: list[dict]) -> list[date]:
    return [date.fromisoformat(p["day"]) for p in points]


def _svg(kind: str, height: int, title: str, body: str) -> str:
    return (
        f'<svg class="{kind}" viewBox="0 0 {W} {height}" width="100%" '
        f'preserveAspectRatio="xMidYMid meet" role="img" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>"
        f'<text class="chart-title" x="4" y="15" font-size="14" font-weight="600" '
        f'fill="{_INK}">{escape(title)}</text>{body}</svg>'
    )


def _x_scale(days: list[date]):
    first, last = days[0], days[-1]
    span = max((last - first).days, 1)
    inner = W - LEFT - RIGHT

    def x(d: date) -> float:
        return LEFT + inner * (d - first).days / span

    return x


def _x_ticks(days: list[date], x, y: float, height: int) -> str:
    """Four dated ticks ("5 Jan"), the first and last days among them, and a year note
    when the span crosses a year (or always at the last tick, so no date is ambiguous)."""
    first, last = days[0], days[-1]
    span = (last - first).days
    count = min(4, span + 1)  # five crowd the last, dated label at a phone's width
    picks = sorted({first.toordinal() + round(i * span / max(count - 1, 1)) for i in range(count)})
    out = []
    for i, ordinal in enumerate(picks):
        d = date.fromordinal(ordinal)
        label = f"{d.day} {d:%b}" + (f" {d.year}" if i == len(picks) - 1 else "")
        anchor = "start" if i == 0 else "end" if i == len(picks) - 1 else "middle"
        at = f"{x(d):.1f}"
        out.append(
            f'<line x1="{at}" x2="{at}" y1="{y}" y2="{y + 4}" stroke="{_MUTED}"/>'
            f'<text class="tick" x="{at}" y="{y + 16}" font-size="12" text-anchor="{anchor}" '
            f'fill="{_MUTED}">{label}</text>'
        )
    return "".join(out)


def _segments(days: list[date], values: list[float | None]) -> list[list[tuple[date, float]]]:
    """Runs of consecutive days with a value: a missing day breaks the line."""
    runs: list[list[tuple[date, float]]] = []
    previous: date | None = None
    for d, v in zip(days, values, strict=True):
        if v is None:
            previous = None
            continue
        if previous is None or (d - previous).days > 1:
            runs.append([])
        runs[-1].append((d, v))
        previous = d
    return runs


def health_trend(points: list[dict]) -> str:
    """Overall health per day on a 0-100 axis over the risk bands, with dimension-free
    gridlines at 25, 50 and 75 (the bands' edges)."""
    title = "Overall health by day (100 = healthy)"
    height, top, bottom = 230, 26, 26
    if not points:
        return _svg("trend", 60, title, f'<text x="4" y="42" font-size="12" fill="{_MUTED}">'
                    "no daily health yet</text>")  # fmt: skip
    days = _days(points)
    x = _x_scale(days)
    inner = height - top - bottom

    def y(v: float) -> float:
        return top + inner * (1 - v / 100)

    parts = []
    for low, high, colour, _ in BANDS:
        parts.append(f'<rect class="band" x="{LEFT}" width="{W - LEFT - RIGHT}" y="{y(high):.1f}" '
                     f'height="{y(low) - y(high):.1f}" fill="{colour}"/>')  # fmt: skip
    for v in (0, 25, 50, 75, 100):
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{W - RIGHT}" y1="{y(v):.1f}" '
                     f'y2="{y(v):.1f}" stroke="{_GRID if v else _MUTED}"/>'
                     f'<text x="{LEFT - 6}" y="{y(v) + 4:.1f}" font-size="12" text-anchor="end" '
                     f'fill="{_MUTED}">{v}</text>')  # fmt: skip
    values: list[float | None] = [p["health"]["overall"] for p in points]
    for run in _segments(days, values):
        if len(run) == 1:
            d, v = run[0]
            parts.append(f'<circle class="point" cx="{x(d):.1f}" cy="{y(v):.1f}" r="2.5" '
                         f'fill="{_BLUE}"/>')  # fmt: skip
            continue
        coords = " ".join(f"{x(d):.1f},{y(v):.1f}" for d, v in run)
        parts.append(f'<polyline class="series" points="{coords}" fill="none" stroke="{_BLUE}" '
                     'stroke-width="2"/>')  # fmt: skip
    parts.append(_x_ticks(days, x, height - bottom, height))
    return _svg("trend", height, title, "".join(parts))


def band_legend() -> str:
    items = "".join(f'<span class="key"><i style="background:{colour}"></i>{lo}–{hi} {words}'
                    "</span>" for lo, hi, colour, words in BANDS)  # fmt: skip
    return f'<p class="note legend">Risk bands: {items}</p>'


_EVENT_ROWS = (("tickets", "Tickets"), ("invoices", "Invoices"), ("nps", "NPS"))


def activity_timeline(points: list[dict]) -> str:
    """Daily logins as bars and active users as a line, and under them one row of markers
    each for support tickets, invoices (paid, failed, overdue) and NPS answers."""
    title = "Daily logins and active users"
    top, plot_h, row_h, axis_gap = 26, 120, 18, 22
    height = top + plot_h + axis_gap + row_h * len(_EVENT_ROWS) + 6
    if not points:
        return _svg("timeline", 60, title, f'<text x="4" y="42" font-size="12" fill="{_MUTED}">'
                    "no daily activity yet</text>")  # fmt: skip
    days = _days(points)
    x = _x_scale(days)
    peak = max([1, *(max(p["activity"]["logins"], p["activity"]["active_users"])
                     for p in points)])  # fmt: skip
    top_value = _nice(peak)

    def y(v: float) -> float:
        return top + plot_h * (1 - v / top_value)

    parts = []
    for v in (0, top_value / 2, top_value):
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{W - RIGHT}" y1="{y(v):.1f}" '
                     f'y2="{y(v):.1f}" stroke="{_GRID if v else _MUTED}"/>'
                     f'<text x="{LEFT - 6}" y="{y(v) + 4:.1f}" font-size="12" text-anchor="end" '
                     f'fill="{_MUTED}">{r.number(v, 1)}</text>')  # fmt: skip
    span = max((days[-1] - days[0]).days, 1)
    bar = max((W - LEFT - RIGHT) / (span + 1) * 0.8, 0.6)
    for d, p in zip(days, points, strict=True):
        logins = p["activity"]["logins"]
        if logins:
            parts.append(
                f'<rect class="bar" x="{x(d) - bar / 2:.1f}" y="{y(logins):.1f}" '
                f'width="{bar:.2f}" height="{y(0) - y(logins):.1f}" fill="#9cbbe0"/>'
            )
    users: list[float | None] = [p["activity"]["active_users"] for p in points]
    for run in _segments(days, users):
        coords = " ".join(f"{x(d):.1f},{y(v):.1f}" for d, v in run)
        parts.append(f'<polyline class="series" points="{coords}" fill="none" stroke="{_INK}" '
                     'stroke-width="1.3"/>')  # fmt: skip
    axis = top + plot_h
    parts.append(_x_ticks(days, x, axis, height))
    for i, (_, label) in enumerate(_EVENT_ROWS):
        mid = axis + axis_gap + row_h * i + row_h / 2
        parts.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{mid:.1f}" y2="{mid:.1f}" '
                     f'stroke="{_GRID}"/><text x="{LEFT - 6}" y="{mid + 4:.1f}" font-size="12" '
                     f'text-anchor="end" fill="{_MUTED}">{label}</text>')  # fmt: skip
    for d, p in zip(days, points, strict=True):
        parts.extend(_markers(x(d), axis + axis_gap, row_h, p["activity"]))
    return _svg("timeline", height, title, "".join(parts))


def _markers(cx: float, first_row: float, row_h: int, act: dict) -> list[str]:
    out = []
    mid = [first_row + row_h * i + row_h / 2 for i in range(len(_EVENT_ROWS))]
    if act["tickets"]:
        out.append(f'<circle class="mark ticket" cx="{cx:.1f}" cy="{mid[0]:.1f}" r="3.5" '
                   'fill="#e07b39"/>')  # fmt: skip
    if act["payments_failed"]:
        out.append(f'<path class="mark failed" d="M{cx - 4:.1f},{mid[1] - 4:.1f}l8,8m0,-8l-8,8" '
                   f'stroke="{_RED}" stroke-width="2"/>')  # fmt: skip
    elif act["invoices_overdue"]:
        out.append(f'<path class="mark overdue" d="M{cx:.1f},{mid[1] - 5:.1f}l5,9h-10z" '
                   'fill="#e0a030"/>')  # fmt: skip
    elif act["invoice_paid"]:
        out.append(f'<circle class="mark paid" cx="{cx:.1f}" cy="{mid[1]:.1f}" r="3.5" '
                   'fill="#3a9a5b"/>')  # fmt: skip
    if act["nps_score"] is not None:
        colour = _RED if act["nps_score"] <= 6 else "#3a9a5b" if act["nps_score"] >= 9 else _MUTED
        out.append(f'<text class="mark nps" x="{cx:.1f}" y="{mid[2] + 4:.1f}" font-size="12" '
                   f'font-weight="600" text-anchor="middle" fill="{colour}">'
                   f"{act['nps_score']}</text>")  # fmt: skip
    return out


def timeline_legend() -> str:
    return ('<p class="note legend"><span class="key"><i style="background:#9cbbe0"></i>logins'
            '</span> <span class="key"><i style="background:#1d2430;height:2px"></i>active users'
            '</span> <span class="key"><i style="background:#e07b39;border-radius:50%"></i>'
            'ticket opened</span> <span class="key"><i style="background:#3a9a5b;'
            'border-radius:50%"></i>invoice paid</span> <span class="key" style="color:#d9534f">'
            '✕ payment failed</span> <span class="key" style="color:#e0a030">▲ invoice overdue'
            "</span> <span class=\"key\">NPS: the score given (0–10)</span></p>")  # fmt: skip


def _nice(value: float) -> float:
    """A round axis top at or above ``value``: 1, 2, 5 x a power of ten."""
    step = 1.0
    while True:
        for m in (1, 2, 5):
            if m * step >= value:
                return m * step
        step *= 10


def events(points: list[dict], keep: int = 15) -> list[tuple[str, str]]:
    """The dated events of the history in words, newest first: (day, what)."""
    out: list[tuple[str, str]] = []
    for p in reversed(points):
        act, when = p["activity"], r.day(p["day"])
        if act["tickets"]:
            out.append((when, r.count(act["tickets"], "support ticket") + " opened"))
        if act["payments_failed"]:
            out.append((when, r.count(act["payments_failed"], "payment") + " failed"))
        if act["invoices_overdue"]:
            out.append((when, r.count(act["invoices_overdue"], "invoice") + " overdue"))
        if act["invoice_paid"]:
            out.append((when, "invoice paid"))
        if act["nps_score"] is not None:
            out.append((when, f"NPS answer: {act['nps_score']} out of 10"))
    return out[:keep]
