"""The page and the account page, laid out by headless Chromium at a desktop's width (1300 px)
and a phone's (390 px), over a read model of a replayed log in a real Redis.

Chromium's headless window is never narrower than 500 px, so each page is laid out in a frame
of the width under test, as a phone would lay it out. A probe script of the test's own (the
pages have none) reads, inside the frame, how wide the document is against its viewport and
the text a reader sees (``innerText``).
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.browser import measure_in_frame
from tests.readmodel.test_api import Api

ISO_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T")
NEGATIVE_ZERO = re.compile(r"(?<![\w-])[-−]\$?0(?:[.,]0+)?(?![\d.,]*[1-9])")
"""A "-0", "-0.0", "-0%" or "−$0" standing alone: an account id such as ``acct-0042`` is not
one (a letter comes before its dash)."""

_PROBE = """<script>
addEventListener("load", () => {
  const root = document.documentElement;
  const cards = [...document.querySelectorAll(".acct")].map(card => {
    const copy = card.cloneNode(true);
    copy.querySelectorAll(".sev").forEach(badge => badge.remove());
    return copy.textContent;
  });
  const wide = [...document.querySelectorAll("body *")]
    .filter(el => el.getBoundingClientRect().right > innerWidth + 0.5)
    .filter(el => !el.closest("table"))
    .map(el => el.tagName + "." + (el.className.baseVal ?? el.className))
    .slice(0, 5);
  const out = document.createElement("pre");
  out.id = "measured";
  out.textContent = JSON.stringify({
    viewport: innerWidth, scroll_width: root.scrollWidth, text: document.body.innerText,
    cards, wide,
    charts: [...document.querySelectorAll("svg.engagement, svg.trend, svg.timeline")].map(
      svg => svg.getBoundingClientRect().width),
  });
  document.body.appendChild(out);
});
</script>"""


def laid_out(page: str, width: int, tmp_path: Path) -> dict:
    """What Chromium shows of ``page`` (a whole document) in a viewport ``width`` px wide."""
    return measure_in_frame(page, width, tmp_path, _PROBE, height=2000)


def _served(store, paths: dict[str, str]) -> dict[str, str]:
    """Each named page as the API serves it (an HTML 200, or the test fails there)."""
    api = Api(store)
    try:
        served = {}
        for name, path in paths.items():
            status, text, kind = api.get(path)
            assert (status, kind) == (200, "text/html"), path
            served[name] = text
        return served
    finally:
        api.close()


@pytest.fixture
def pages(store, replayed) -> dict[str, str]:
    """The page and the account page of the account most at risk, as the API serves them."""
    store.apply(replayed[1])
    account = store.at_risk(1, None)[0]["account_id"]
    return _served(store, {"at-risk": "/", "account": f"/view/accounts/{quote(account)}"})


@pytest.mark.parametrize("width", [1300, 390])
@pytest.mark.parametrize("name", ["at-risk", "account"])
def test_the_pages_fit_the_width_and_read_as_words(pages, name, width, tmp_path):
    page = pages[name]
    assert '<meta name="viewport" content="width=device-width,initial-scale=1">' in page
    seen = laid_out(page, width, tmp_path)
    assert seen["scroll_width"] <= seen["viewport"], (seen["scroll_width"], seen["wide"])
    assert seen["charts"] and all(0 < w <= width for w in seen["charts"]), seen["charts"]
    text = seen["text"]
    assert not ISO_TIMESTAMP.search(text), ISO_TIMESTAMP.search(text)
    assert not NEGATIVE_ZERO.search(text), text[NEGATIVE_ZERO.search(text).start() - 40 :][:80]
    assert "$" in text and "Alert severity" in text and "Risk: " in text
    assert not re.search(r"\b1 (seats|signals|days)\b", text)
    assert not re.search(r"\b[a-z]+_[a-z_]+\b", text), "an enum name shown raw"
    # On a card, "critical" is only ever an alert's severity (a badge), never a health status.
    assert not [card for card in seen["cards"] if "critical" in card.lower()]


def test_the_account_page_lists_the_most_severe_alert_first_with_its_numbers(pages):
    page = pages["account"]
    assert "<b>Next step:</b> " in page
    assert '<table class="numbers"><tr><th>signal</th><th>value</th><th>threshold</th>' in page
    ranks = {"low": 1, "medium": 2, "high": 3, "critical": 4}
    shown = re.findall(r'<div class="alert"[^>]*>Alert severity <span class="sev (\w+)"', page)
    assert shown and shown == sorted(shown, key=lambda s: -ranks[s])


_ACCOUNT_PROBE = """<script>
addEventListener("load", () => {
  const root = document.documentElement;
  const wide = [...document.querySelectorAll("body *")]
    .filter(el => el.getBoundingClientRect().right > innerWidth + 0.5)
    .map(el => el.tagName + "." + (el.className.baseVal ?? el.className))
    .slice(0, 5);
  const out = document.createElement("pre");
  out.id = "measured";
  out.textContent = JSON.stringify({
    viewport: innerWidth, scroll_width: root.scrollWidth, text: document.body.innerText, wide,
    charts: [...document.querySelectorAll("svg.trend, svg.timeline")].map(
      svg => [svg.className.baseVal, svg.getBoundingClientRect().width]),
    tables: [...document.querySelectorAll("table")].map(
      t => [t.id || t.className, t.scrollWidth, t.clientWidth]),
    ticks: [...document.querySelectorAll("svg.trend text.tick")].map(t => t.textContent),
  });
  document.body.appendChild(out);
});
</script>"""


@pytest.fixture
def health_pages(store, replayed_health) -> dict[str, str]:
    """The all-accounts page and the account page of an account never alerted, over the
    replayed log's alerts and health snapshots."""
    alerts, snapshots = replayed_health
    store.apply(alerts)
    store.apply_health(snapshots)
    alerted = {a["account_id"] for a in alerts}
    quiet = sorted({s["account_id"] for s in snapshots} - alerted)[0]
    # The account with the most multi-signal alert records: its episode list is the longest.
    busy = max(sorted(alerted), key=lambda a: sum(
        len(x.get("reasons") or ()) > 1 for x in alerts if x["account_id"] == a))  # fmt: skip
    return _served(store, {"accounts": "/view/accounts?sort=health",
                           "quiet-account": f"/view/accounts/{quote(quiet)}",
                           "busy-account": f"/view/accounts/{quote(busy)}"})  # fmt: skip


@pytest.mark.parametrize("width", [1300, 390])
@pytest.mark.parametrize("name", ["accounts", "quiet-account", "busy-account"])
def test_the_new_pages_fit_the_width_and_read_as_words(health_pages, name, width, tmp_path):
    page = health_pages[name]
    seen = measure_in_frame(page, width, tmp_path, _ACCOUNT_PROBE, height=2000)
    assert seen["scroll_width"] <= seen["viewport"], (seen["scroll_width"], seen["wide"])
    assert not seen["wide"], seen["wide"]
    # No table scrolls sideways inside itself either: every column fits.
    assert all(scroll <= client + 1 for _, scroll, client in seen["tables"]), seen["tables"]
    text = seen["text"]
    assert not ISO_TIMESTAMP.search(text), ISO_TIMESTAMP.search(text)
    assert not NEGATIVE_ZERO.search(text), text[NEGATIVE_ZERO.search(text).start() - 40 :][:80]
    assert not re.search(r"\b[a-z]+_[a-z_]+\b", text), "an enum name shown raw"
    assert not re.search(r"\b1 (seats|signals|days|accounts|tickets)\b", text)
    assert "$" in text
    if name == "accounts":
        assert "revenue at risk" in text and "Next page" in text
    else:
        kinds = [kind for kind, _ in seen["charts"]]
        assert kinds == ["trend", "timeline"]
        assert all(0 < w <= width for _, w in seen["charts"]), seen["charts"]
        assert "Overall health by day" in text and "Risk: " in text
        assert "days of daily health" in text and "Alert episodes" in text
        if name == "quiet-account":
            assert "No open alerts." in text and "No alert has been raised" in text
        else:
            assert re.search(r"(Opened|Updated|Resolved) (low|medium|high|critical)", text, re.I)
        # Dated ticks on the trend's x axis, the last with its year.
        assert len(seen["ticks"]) >= 3 and re.fullmatch(r"\d{1,2} [A-Z][a-z]{2} \d{4}",
                                                        seen["ticks"][-1])  # fmt: skip
