"""What the reports' charts look like once a browser has laid them out.

The charts are matplotlib's SVG (:mod:`stream.render.charts`): every mark is a ``<path>``, so
marks are found by the names the charts give them, groups ``<g id="<chart id>-bar-3">``,
``-curve-0``, ``-line-1``, ``-reference``, and the titles by ``-title``, ``-x-title`` and
``-y-title``. :func:`measure` opens a page in headless Chromium at a given width with a script
of the test's own added (the reports have none), inside a frame of that width, and returns
where each chart and each of its texts ended up.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.browser import Marks, measure_in_frame

MARK = re.compile(r"-(bar|curve|line|reference)(-|$)")


class ChartMarks(Marks):
    """Per chart (by id), how many named marks (bars, curves, lines) it draws."""

    def is_mark(self, tag: str, attrs: dict) -> bool:
        own = attrs.get("id") or ""
        return (
            tag == "g"
            and own.startswith(f"{self._current}-")
            and MARK.search(own[len(self._current) :]) is not None
        )


_PROBE = """<script>
(() => {
  const rect = r => ({left: r.left, top: r.top, right: r.right, bottom: r.bottom});
  const named = (svg, name) => {
    const g = document.getElementById(svg.id + "-" + name);
    return g ? g.textContent : null;
  };
  const charts = [...document.querySelectorAll("svg.chart")].map(svg => ({
    id: svg.id,
    box: rect(svg.getBoundingClientRect()),
    title: named(svg, "title"), x_title: named(svg, "x-title"), y_title: named(svg, "y-title"),
    texts: [...svg.querySelectorAll("text")].map(t => ({
      text: t.textContent,
      box: rect(t.getBoundingClientRect()),
      rotated: !/^rotate\\(-?0 /.test(t.getAttribute("transform") || "rotate(-0 "),
    })),
  }));
  const out = document.createElement("pre");
  out.id = "measured";
  out.textContent = JSON.stringify({viewport: document.documentElement.clientWidth, charts});
  document.body.appendChild(out);
})();
</script>"""


def measure(page: str, width: int, tmp_path: Path) -> dict:
    """Lay ``page`` (a whole HTML document) out in Chromium ``width`` px wide: the viewport's
    width and, per chart, its box, its titles and every text's box (CSS pixels)."""
    return measure_in_frame(page, width, tmp_path, _PROBE, height=2400)
