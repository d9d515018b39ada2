"""Static charts for the HTML reports: matplotlib draws them, they are inlined as SVG.

The reports are opened from mail attachments and CI artifacts, often offline, so a chart is
plain SVG inside the page: no script, no font or style fetched from anywhere. matplotlib gives
what a hand-drawn plot lacked: axes from zero, ticks and gridlines, axis titles, legends, and a
layout that fits every label inside the figure (``layout="constrained"``).

Text stays text (``svg.fonttype = "none"``: searchable, and the browser's own font), the
output carries no date and a fixed hash salt, so the same numbers give the same bytes. Each
SVG's internal ids are prefixed with its plot id, so several charts share one HTML page without
one chart's clip paths or markers standing in for another's; an element the caller names
(``gid``) keeps its name after that prefix, for tests to find, and can carry a tooltip.

matplotlib takes a while to import, so it is imported on the first chart, not with this module:
commands that write no HTML report never pay for it.
"""

from __future__ import annotations

import io
import itertools
import re
from collections.abc import Sequence
from html import escape

WIDTH = 4.4
"""Inches. At 72 points per inch the SVG's viewBox is 317 units wide, 422 px at its own size:
a phone (about 365 px for the page) shrinks it only a little, so tick labels stay near 10 px,
and on a wide screen it is capped at :data:`MAX_WIDTH_PX`."""
MAX_WIDTH_PX = 560
BLUE, ORANGE, RED, GREEN, INK = "#2f6db5", "#e07b39", "#d9534f", "#3a9a5b", "#222222"
_RC = {
    "svg.fonttype": "none",
    "svg.hashsalt": "churnwatch",
    # matplotlib's layout measures DejaVu Sans (it ships the font); a browser without it uses
    # its own sans-serif, which is narrower, so the text still fits. A one-name list also
    # keeps every text element from carrying matplotlib's long list of fallbacks.
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],
    "text.parse_math": False,  # a "$" in a label is a dollar, not the start of a formula
    "font.size": 9,
    "axes.titlesize": 10.5,
    "axes.labelsize": 9.5,
    "xtick.labelsize": 8.5,
    "ytick.labelsize": 8.5,
    "legend.fontsize": 8.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.edgecolor": "#888888",
    "grid.color": "#e3e7ee",
    "grid.linewidth": 0.8,
    "figure.facecolor": "white",
}
_METADATA = {"Date": None, "Creator": None, "Format": None, "Type": None}
_PROLOG = re.compile(r"\A.*?(?=<svg\b)", re.S)
_ROOT = re.compile(r"<svg\b[^>]*>")
_BETWEEN_TAGS = re.compile(r">\s+<")
_IN_PATH = re.compile(r" ?\n(?=[A-Za-z\"])")
"""matplotlib writes one path command per line; a space does as well."""
_GROUP_IDS = re.compile(r'<g id="[\w.]+_\d+">')
"""The ids matplotlib gives every group (``text_3``, ``xtick_2``): nothing refers to them."""
_IDS = re.compile(r'(\bid="|href="#|url\(#)([^")]+)')


def _figure(height: float):
    """A figure of the reports' width; matplotlib is imported here, on first use."""
    from matplotlib.figure import Figure

    return Figure(figsize=(WIDTH, height), layout="constrained")


def _svg(fig, plot_id: str, title: str, classes: str = "", tips: dict[str, str] | None = None,
         ) -> str:  # fmt: skip
    """``fig`` as an SVG element to inline in HTML: no XML prolog, ids prefixed, scaled to its
    container by width with its viewBox aspect kept, and ``title`` for screen readers."""
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata=_METADATA)
    svg = _PROLOG.sub("", buffer.getvalue(), count=1)
    svg = _BETWEEN_TAGS.sub("><", _IN_PATH.sub(" ", svg))
    svg = _GROUP_IDS.sub("<g>", svg)
    svg = _IDS.sub(lambda m: f"{m[1]}{plot_id}-{m[2]}", svg)
    # matplotlib's stylesheet is written for a document of its own; scope it to this chart.
    svg = svg.replace('<style type="text/css">*{', f'<style type="text/css">#{plot_id} *{{', 1)
    view_box = re.search(r'viewBox="[^"]*"', _ROOT.search(svg)[0])[0]
    root = (
        f'<svg id="{plot_id}" class="{" ".join(["chart", *classes.split()])}" {view_box} '
        'xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
        f'role="img" aria-label="{escape(title)}" style="display:block;width:100%;'
        f'max-width:{MAX_WIDTH_PX}px;height:auto;box-sizing:border-box">'
        f"<title>{escape(title)}</title>"
    )
    svg = _ROOT.sub(lambda _: root, svg, count=1)
    for gid, tip in (tips or {}).items():
        opening = f'<g id="{plot_id}-{gid}">'
        svg = svg.replace(opening, f"{opening}<title>{escape(tip)}</title>", 1)
    return svg.strip()


def _render(draw, *args, **kwargs) -> str:
    import matplotlib

    with matplotlib.rc_context(_RC):
        return draw(*args, **kwargs)


def _fit_x_labels(fig, ax) -> None:
    """Slant the category labels when, laid out flat, any two would touch."""
    fig.draw_without_rendering()
    boxes = [t.get_window_extent() for t in ax.get_xticklabels() if t.get_text()]
    gap = 3  # pixels at the figure's dpi
    if any(a.x1 + gap > b.x0 for a, b in itertools.pairwise(boxes)):
        ax.tick_params(axis="x", labelrotation=35)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")
            label.set_rotation_mode("anchor")


def bars(plot_id: str, title: str, labels: Sequence[str], values: Sequence[float], *,
         xlabel: str, ylabel: str, name: str, percent: bool = False,
         reference: tuple[str, float] | None = None) -> str:  # fmt: skip
    """Vertical bars, one per label, each with its value on top (and as a tooltip);
    ``reference`` is a labelled dashed horizontal line (a base rate)."""
    return _render(_bars, plot_id, title, labels, values, xlabel, ylabel, name, percent,
                   reference)  # fmt: skip


def _bars(plot_id, title, labels, values, xlabel, ylabel, name, percent, reference):
    fig = _figure(2.9)
    ax = fig.subplots()
    shown = [f"{v:.1f}%" if percent else f"{v:g}" for v in values]
    drawn = ax.bar(range(len(values)), values, color=BLUE, width=0.75, label=name, zorder=2)
    tips = {}
    for i, patch in enumerate(drawn):
        patch.set_gid(f"bar-{i}")
        tips[f"bar-{i}"] = f"{labels[i]} {name}: {shown[i]}"
    if len(values) <= 12:  # more would crowd: then the gridlines and tooltips carry them
        ax.bar_label(drawn, labels=shown, fontsize=7.5, padding=2, color="#333333")
    ax.set_xticks(range(len(labels)), labels)
    if reference is not None:
        words, level = reference
        line = ax.axhline(level, color=RED, linestyle="--", linewidth=1.4, zorder=3,
                          gid="reference", label=words)  # fmt: skip
        fig.legend(handles=[drawn, line], loc="outside lower center", ncols=2, frameon=False)
    ax.margins(y=0.12)
    _frame(ax, title, xlabel, ylabel)
    if not percent:
        _counts(ax)
    _fit_x_labels(fig, ax)
    return _svg(fig, plot_id, title, "bars", tips)


def weekly_bars(plot_id: str, title: str, weeks: Sequence[str], values: Sequence[float], *,
                xlabel: str, ylabel: str, name: str) -> str:  # fmt: skip
    """One bar per week (``weeks`` are ISO dates of the week's first day) on a date axis."""
    return _render(_weekly_bars, plot_id, title, weeks, values, xlabel, ylabel, name)


def _weekly_bars(plot_id, title, weeks, values, xlabel, ylabel, name):
    import datetime as dt

    import matplotlib.dates as mdates

    fig = _figure(2.9)
    ax = fig.subplots()
    days = [dt.date.fromisoformat(w[:10]) for w in weeks]
    drawn = ax.bar(days, values, width=6, align="edge", color=BLUE, zorder=2, label=name)
    tips = {}
    for i, patch in enumerate(drawn):
        patch.set_gid(f"bar-{i}")
        tips[f"bar-{i}"] = f"week of {weeks[i]}, {name}: {values[i]:g}"
    if len(values) <= 26:
        ax.bar_label(drawn, fontsize=7, padding=1.5, color="#333333")
    if days:
        locator = mdates.AutoDateLocator(minticks=3, maxticks=7)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    else:
        ax.set_xticks([])
        ax.text(0.5, 0.5, f"no {name}", transform=ax.transAxes, ha="center", va="center")
    ax.margins(y=0.12)
    _frame(ax, title, xlabel, ylabel)
    _counts(ax)
    return _svg(fig, plot_id, title, "bars weekly", tips)


def grouped_hbars(plot_id: str, title: str, labels: Sequence[str],
                  series: dict[str, Sequence[float | None]], *, xlabel: str,
                  ylabel: str) -> str:  # fmt: skip
    """Horizontal bars, one group per label (read top to bottom, in the given order), one
    colour per series, in percent; a value of ``None`` (not defined) is marked "–"."""
    return _render(_grouped_hbars, plot_id, title, labels, series, xlabel, ylabel)


def _grouped_hbars(plot_id, title, labels, series, xlabel, ylabel):
    fig = _figure(1.2 + 0.2 * len(labels) * max(len(series), 1))
    ax = fig.subplots()
    height = 0.8 / max(len(series), 1)
    tips = {}
    for k, ((name, values), colour) in enumerate(zip(series.items(), (BLUE, ORANGE, GREEN),
                                                     strict=False)):  # fmt: skip
        ys = [i + (k - (len(series) - 1) / 2) * height for i in range(len(labels))]
        drawn = ax.barh(ys, [v or 0 for v in values], height=height * 0.92, color=colour,
                        label=name, zorder=2)  # fmt: skip
        shown = ["–" if v is None else f"{v:.0f}%" for v in values]
        for i, patch in enumerate(drawn):
            patch.set_gid(f"bar-{k}-{i}")
            tips[f"bar-{k}-{i}"] = f"{labels[i]} {name}: {shown[i]}"
        ax.bar_label(drawn, labels=shown, fontsize=7.5, padding=2, color="#333333")
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xticks(range(0, 101, 20))
    _frame(ax, title, xlabel, ylabel, grid="x")
    fig.legend(loc="outside lower center", ncols=len(series), frameon=False)
    return _svg(fig, plot_id, title, "bars grouped", tips)


def distributions(plot_id: str, title: str, curves: dict[str, Sequence[float]], top_x: float,
                  lines: dict[str, float], *, xlabel: str, ylabel: str) -> str:  # fmt: skip
    """Histograms as outlines over ``[0, top_x]``: ``curves`` maps a legend label to the shares
    of its group per bin (in percent); ``lines`` maps a legend label to a vertical line's x."""
    return _render(_distributions, plot_id, title, curves, top_x, lines, xlabel, ylabel)


def _distributions(plot_id, title, curves, top_x, lines, xlabel, ylabel):
    fig = _figure(3.5)
    ax = fig.subplots()
    for k, ((name, shares), colour) in enumerate(zip(curves.items(), (RED, BLUE), strict=False)):
        edges = [top_x * i / len(shares) for i in range(len(shares) + 1)]
        ax.stairs(shares, edges, color=colour, linewidth=1.8, label=name, zorder=3 - k,
                  gid=f"curve-{k}")  # fmt: skip
    # The second line dashed and grey over the first: both show where they coincide.
    styles = (("-", INK, 4), ((0, (4, 3)), "#8a94a6", 5))
    for k, ((name, x), (style, colour, z)) in enumerate(zip(lines.items(), styles, strict=False)):
        ax.axvline(x, color=colour, linestyle=style, linewidth=1.4, label=name, zorder=z,
                   gid=f"line-{k}")  # fmt: skip
    ax.set_xlim(0, top_x)
    _frame(ax, title, xlabel, ylabel)
    fig.legend(loc="outside lower center", ncols=1, frameon=False)
    return _svg(fig, plot_id, title, "distribution")


def _counts(ax) -> None:
    """Whole numbers on the value axis: a count has no 0.5."""
    from matplotlib.ticker import MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(integer=True))


def _frame(ax, title: str, xlabel: str, ylabel: str, grid: str = "y") -> None:
    """Title, axis titles, gridlines behind the marks, and a zero on the value axis. The titles
    are named groups (``<plot id>-title``, ``-x-title``, ``-y-title``) for the tests to find."""
    ax.set_title(title, loc="left", wrap=True, gid="title")
    ax.set_xlabel(xlabel, gid="x-title", wrap=True)
    ax.set_ylabel(ylabel, gid="y-title", wrap=True)
    ax.grid(axis=grid, zorder=0)
    ax.set_axisbelow(True)
    if grid == "y":
        ax.set_ylim(0, max(ax.get_ylim()[1], 1))  # all zeros: still an axis from 0 to 1
