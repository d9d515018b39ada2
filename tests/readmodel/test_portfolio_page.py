"""The at-risk page's churn by reason and alert outcomes, per month, as GET /portfolio gives
them, readable at a desktop's and a phone's width; and its "My accounts" links."""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import quote

import pytest

from tests.browser import measure_in_frame
from tests.readmodel.test_api import Api
from tests.readmodel.test_portfolio_outcomes import _billing

_PROBE = """<script>
addEventListener("load", () => {
  const out = document.createElement("pre");
  out.id = "measured";
  out.textContent = JSON.stringify({
    viewport: innerWidth, scroll_width: document.documentElement.scrollWidth,
    tables: ["churn-reasons", "alert-outcomes"].map(id => {
      const t = document.getElementById(id);
      return t ? [id, t.scrollWidth, t.clientWidth, t.innerText] : [id, null, null, ""];
    }),
  });
  document.body.appendChild(out);
});
</script>"""


@pytest.fixture
def served(store, replayed):
    log, alerts = replayed
    store.apply(alerts)
    store.portfolio.apply(_billing(log))
    store.portfolio.apply_alerts(alerts)
    api = Api(store)
    yield api
    api.close()


def _table(page: str, table_id: str) -> dict[str, list[int]]:
    """A by-month table's rows: label -> the month columns' numbers."""
    found = re.search(rf'<table class="by-month" id="{table_id}">(.*?)</table>', page)
    assert found, table_id
    rows = {}
    for row in re.findall(r"<tr><td>(.*?)</tr>", found[1]):
        label, *cells = re.findall(r"<td>(.*?)</td>", "<td>" + row)
        rows[unescape(label)] = [int(c.replace(",", "")) for c in cells]
    return rows


def test_the_page_shows_the_same_figures_as_the_api_in_words(served):
    _, body, _ = served.get("/portfolio")
    months = body["months"][-6:]
    status, page, _ = served.get("/")
    assert status == 200
    reasons = _table(page, "churn-reasons")
    assert reasons["managed (preventable)"] == [m["managed"] for m in months]
    assert reasons["unmanaged"] == [m["unmanaged"] for m in months]
    assert reasons["reason unknown or unclassified"] == [m["unknown_reason"] for m in months]
    assert reasons["Did not see the value"] == [m["by_reason"].get("value", 0) for m in months]
    outcomes = _table(page, "alert-outcomes")
    for key, label in (("alerted", "alerts opened"), ("saved", "saved"), ("renewed", "renewed"),
                       ("churned", "churned"), ("pending", "pending")):  # fmt: skip
        assert outcomes[label] == [m["alert_outcomes"][key] for m in months], key
    assert sum(outcomes["saved"]) and sum(outcomes["churned"])
    churned_by = [label for label in outcomes if label.startswith("churned: ")]
    assert churned_by and all(not re.search(r"[a-z]_[a-z]", label) for label in churned_by)


@pytest.mark.parametrize("width", [1300, 390])
def test_the_tables_fit_a_desktop_and_a_phone(served, width, tmp_path):
    _, page, _ = served.get("/")
    seen = measure_in_frame(page, width, tmp_path, _PROBE, height=2000)
    assert seen["scroll_width"] <= seen["viewport"]
    for table_id, scroll, client, text in seen["tables"]:
        assert scroll is not None and scroll <= client + 1, (table_id, scroll, client)
        assert "Did not see the value" in text, table_id


def test_my_accounts_links_filter_to_each_owner_ignoring_case(served, replayed):
    owners = sorted({a["account"]["owner"] for a in replayed[1] if a["account"].get("owner")})
    assert len(owners) > 2
    _, page, _ = served.get("/")
    links = re.findall(r'<a href="(/\?owner=[^"]+)">([^<]+)</a>', page)
    assert [unescape(name) for _, name in links] == owners
    mine = owners[1]
    _, page, _ = served.get("/?owner=" + quote(mine.upper()))
    assert f"<b>{mine}</b>" in page and f"My accounts: {mine}" in page
    assert '<a href="/">every owner</a>' in page
    shown = re.findall(r'<div class="meta">Owner ([^·]+) ·', page)
    assert shown and {unescape(name).strip() for name in shown} == {mine}


def test_the_read_model_classifies_by_the_policys_taxonomy_and_says_it_in_its_words(
    redis_server, replayed, request
):
    """A policy's own [churn_reasons] classify cancellations in Redis as backtests do, and the
    page names its groups in that policy's words."""
    from stream.core.policy import parse_policy
    from stream.core.portfolio import Portfolio
    from stream.sinks.readmodel_store import RedisReadModel

    policy = parse_policy({"churn_reasons": {"codes": [
        {"code": "no_value", "label": "Saw no value", "group": "adoption", "managed": True,
         "match": ["no longer needed"]}]}})  # fmt: skip
    store = RedisReadModel.from_url(redis_server.url, prefix=f"t-{request.node.name[:30]}",
                                    reasons=policy.churn_reasons)  # fmt: skip
    log, _ = replayed
    store.portfolio.apply(_billing(log))
    folio = Portfolio(reasons=policy.churn_reasons)
    for _, _, event in _billing(log):
        folio.observe(event)
    want = {m["month"]: m["by_reason"] for m in folio.report()}
    got = {m["month"]: m["by_reason"] for m in store.portfolio.report()}
    assert got == want and any("adoption" in counts for counts in got.values())
    api = Api(store)
    try:
        _, page, _ = api.get("/")
    finally:
        api.close()
    assert "Saw no value" in _table(page, "churn-reasons")
