"""Headless Chromium for the page tests: the DOM it built, and a screenshot."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class Marks(HTMLParser):
    """Counts, per SVG (by id, else by class) and per element class, what the page draws."""

    def __init__(self) -> None:
        super().__init__()
        self.plots: dict[str, int] = {}
        self.classes: dict[str, int] = {}
        self._current: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name in (attrs.get("class") or "").split():
            self.classes[name] = self.classes.get(name, 0) + 1
        if tag == "svg":
            self._current = attrs.get("id") or attrs.get("class") or "svg"
            self.plots.setdefault(self._current, 0)
        elif self._current and self.is_mark(tag, attrs):
            self.plots[self._current] += 1

    def is_mark(self, tag: str, attrs: dict) -> bool:
        """Does this element draw data (a bar, a line) inside the current chart?"""
        return tag in ("rect", "polyline", "line")

    def handle_endtag(self, tag):
        if tag == "svg":
            self._current = None


def render(url: str, tmp_path: Path, marks: Marks | None = None) -> tuple[dict[str, int], int]:
    """Open ``url`` in headless Chromium: the plots in the DOM it built, and the byte size of
    its screenshot (a blank page compresses to almost nothing)."""
    assert CHROMIUM, "chromium is not installed: `make test` installs it (scripts/provision.sh)"
    base = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1000,1600"]
    dom = subprocess.run([*base, "--dump-dom", url], capture_output=True, timeout=120,
                         check=True).stdout.decode()  # fmt: skip
    shot = tmp_path / f"shot-{abs(hash(url))}.png"
    subprocess.run([*base, f"--screenshot={shot}", url], capture_output=True, timeout=120,
                   check=True)  # fmt: skip
    parser = marks or Marks()
    parser.feed(dom)
    return parser.plots, shot.stat().st_size


_FRAME = """<!doctype html><html><head><meta charset="utf-8"></head><body style="margin:0">
<iframe id="page" style="width:{width}px;height:{height}px;border:0" srcdoc="{page}"></iframe>
<pre id="measured"></pre>
<script>
document.getElementById("page").addEventListener("load", event => {{
  const inner = event.target.contentDocument.getElementById("measured");
  document.getElementById("measured").textContent = inner ? inner.textContent : "";
}});
</script></body></html>"""
"""Headless Chromium lays a page out no narrower than 500 px whatever its window size, so a
phone's width is a frame of that width (media queries follow the frame, as on a phone)."""


def measure_in_frame(page: str, width: int, tmp_path: Path, probe: str, height: int = 2400) -> dict:
    """Lay ``page`` (a whole HTML document) out in Chromium in a frame ``width`` px wide, with
    ``probe`` (a script that leaves its JSON findings in ``<pre id="measured">``, with the
    frame's ``viewport`` width among them) added; return the findings."""
    assert CHROMIUM, "chromium is not installed: `make test` installs it (scripts/provision.sh)"
    framed = page.replace("</body>", probe + "</body>")
    path = tmp_path / f"frame-{width}-{abs(hash(page))}.html"
    path.write_text(
        _FRAME.format(width=width, height=height, page=html.escape(framed)), encoding="utf-8"
    )
    dom = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--window-size={max(width, 500) + 40},{height}", "--virtual-time-budget=10000",
         "--dump-dom", path.as_uri()],
        capture_output=True, timeout=120, check=True,
    ).stdout.decode()  # fmt: skip
    found = re.search(r'<pre id="measured">(.+?)</pre>', dom, re.S)
    assert found, dom[-2000:]
    measured = json.loads(html.unescape(found[1]))
    assert measured["viewport"] == width, measured["viewport"]
    return measured
