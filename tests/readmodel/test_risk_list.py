"""The risk list a team works through: open alerts only, revenue at risk, sorts, filters,
search, cursor paging, the CSV export and the page's totals, over hand-made alert records."""

from __future__ import annotations

import csv
import io
import re
from html import unescape

import pytest

from stream.render import readable as r
from stream.sinks.readmodel_store import RiskQuery
from tests.readmodel.test_api import Api

_N = 0


def alert(
    account: str,
    *,
    mrr: float,
    health: int,
    segment: str = "pro",
    severity: str = "high",
    signal: str = "payment_failed",
    day: int = 1,
    kind: str = "opened",
    alert_id: str | None = None,
    sequence: int = 0,
) -> dict:
    """An account episode with one reason, as the worker publishes it."""
    global _N
    _N += 1
    ts = f"2026-03-{day:02d}T10:00:00Z"
    reason = {"signal": signal, "dimension": "billing", "severity": severity, "since": ts,
              "metric": "failed_payments", "value": 1.0, "baseline": None, "threshold": 1.0,
              "window_days": None, "explanation": "a payment failed"}  # fmt: skip
    return {
        "schema_version": 3, "alert_id": alert_id or f"al-{account}-{_N}", "sequence": sequence,
        "kind": kind, "account_id": account, "signal": "account_at_risk",
        "dimension": "billing", "severity": severity, "ts": ts, "episode_start": ts,
        "trigger": "event", "metric": "failed_payments", "value": 1.0, "baseline": None,
        "threshold": 1.0, "window_days": None, "explanation": "a payment failed",
        "resolution": None, "reasons": [reason], "evidence": {"daily": [], "facts": []},
        "health": {"overall": health, "status": "at_risk", "usage": 100, "adoption": 100,
                   "billing": health, "support": 100, "sentiment": 100},
        "account": {"segment": segment, "stage": "established", "plan": "pro", "mrr": mrr,
                    "seats": 5, "tenure_days": 400},
        "playbook": "Call them.",
    }  # fmt: skip


def portfolio_alerts() -> list[dict]:
    """One large account at moderate risk, 20 small ones at full risk, and some variety."""
    alerts = [alert("acct-BIG", mrr=10_000.0, health=70, segment="enterprise", day=2)]
    alerts += [alert(f"acct-small-{i:02d}", mrr=100.0, health=0, severity="critical",
                     day=3 + i % 20) for i in range(20)]  # fmt: skip
    alerts += [
        alert("acct-mid", mrr=2_000.0, health=40, segment="enterprise", severity="medium",
              signal="nps_detractor", day=25),
        alert("Team-Mixed-Case", mrr=500.0, health=50, segment="starter", severity="low",
              signal="invoice_overdue", day=26),
    ]  # fmt: skip
    # Health 5 but its only episode resolved: not at risk any more.
    alerts += [
        alert("acct-resolved", mrr=50_000.0, health=5, alert_id="al-gone", day=4),
        alert("acct-resolved", mrr=50_000.0, health=5, alert_id="al-gone", day=5,
              kind="resolved", sequence=1),
        # A cancellation ended its episode: churned, not at risk any more either.
        alert("acct-churned", mrr=40_000.0, health=5, alert_id="al-left", day=4),
        alert("acct-churned", mrr=40_000.0, health=5, alert_id="al-left", day=6,
              kind="churned", sequence=1),
    ]  # fmt: skip
    return alerts


@pytest.fixture
def api(store):
    store.apply(portfolio_alerts())
    client = Api(store)
    yield client
    client.close()


def ids(api: Api, path: str) -> list[str]:
    status, body, _ = api.get(path)
    assert status == 200, body
    return [row["account_id"] for row in body["accounts"]]


def every_page(api: Api, path: str, limit: int) -> list[str]:
    seen: list[str] = []
    sep = "&" if "?" in path else "?"
    url = f"{path}{sep}limit={limit}"
    for _ in range(100):
        status, body, _ = api.get(url)
        assert status == 200, body
        assert len(body["accounts"]) <= limit
        seen += [row["account_id"] for row in body["accounts"]]
        if body["next_cursor"] is None:
            return seen
        url = f"{path}{sep}limit={limit}&cursor={body['next_cursor']}"
    raise AssertionError("paging did not end")


def test_revenue_at_risk_puts_a_large_account_above_many_small_ones_at_full_risk(api):
    status, body, _ = api.get("/accounts/at-risk?limit=1000")
    assert status == 200 and body["next_cursor"] is None
    rows = body["accounts"]
    assert rows[0]["account_id"] == "acct-BIG"
    assert rows[0]["risk"] == 30 and rows[0]["revenue_at_risk"] == 3000.0
    assert [row["account_id"] for row in rows[1:3]] == ["acct-mid", "Team-Mixed-Case"]
    small = rows[3:]
    assert all(row["revenue_at_risk"] == 100.0 for row in small)
    assert [row["account_id"] for row in small] == sorted(row["account_id"] for row in small)
    assert rows[0]["severity"] == "high" and rows[0]["open_alert_count"] == 1
    assert rows[0]["signals"] == ["account_at_risk", "payment_failed"]


def test_accounts_without_an_open_alert_are_not_at_risk(api, store):
    assert "acct-resolved" not in ids(api, "/accounts/at-risk?limit=1000")
    assert "acct-churned" not in ids(api, "/accounts/at-risk?limit=1000")
    assert store.account("acct-churned")["open_alerts"] == []
    assert store.account("acct-resolved")["health"]["overall"] == 5  # it is still on record
    assert len(ids(api, "/accounts/at-risk?limit=1000")) == 23


def test_each_sort(api):
    by_mrr = ids(api, "/accounts/at-risk?sort=mrr&limit=3")
    assert by_mrr == ["acct-BIG", "acct-mid", "Team-Mixed-Case"]
    by_health = ids(api, "/accounts/at-risk?sort=health&limit=1000")
    assert by_health[:20] == sorted(f"acct-small-{i:02d}" for i in range(20))
    assert by_health[20:] == ["acct-mid", "Team-Mixed-Case", "acct-BIG"]
    latest = ids(api, "/accounts/at-risk?sort=last_alert&limit=3")
    assert latest == ["Team-Mixed-Case", "acct-mid", "acct-small-19"]
    assert ids(api, "/accounts/at-risk?sort=revenue_at_risk&limit=1") == ["acct-BIG"]


def test_each_filter_and_the_search(api):
    assert ids(api, "/accounts/at-risk?segment=enterprise") == ["acct-BIG", "acct-mid"]
    assert ids(api, "/accounts/at-risk?severity=medium") == ["acct-mid"]
    assert len(ids(api, "/accounts/at-risk?severity=critical&limit=1000")) == 20
    assert ids(api, "/accounts/at-risk?signal=invoice_overdue") == ["Team-Mixed-Case"]
    assert ids(api, "/accounts/at-risk?signal=nps_detractor&segment=enterprise") == ["acct-mid"]
    assert ids(api, "/accounts/at-risk?q=mixed") == ["Team-Mixed-Case"]
    assert ids(api, "/accounts/at-risk?q=SMALL-1&limit=1000") == [
        f"acct-small-{i}" for i in range(10, 20)
    ]
    assert ids(api, "/accounts/at-risk?q=resolved") == []
    assert ids(api, "/accounts/at-risk?segment=nowhere") == []


@pytest.mark.parametrize("sort", ["revenue_at_risk", "mrr", "health", "last_alert"])
def test_paging_returns_every_row_exactly_once(api, sort):
    whole = ids(api, f"/accounts/at-risk?sort={sort}&limit=1000")
    for limit in (1, 3, 7):
        assert every_page(api, f"/accounts/at-risk?sort={sort}", limit) == whole
    filtered = every_page(api, f"/accounts/at-risk?sort={sort}&q=small&severity=critical", 4)
    assert sorted(filtered) == sorted(f"acct-small-{i:02d}" for i in range(20))


def test_a_cursor_is_for_its_own_sort(api):
    _, body, _ = api.get("/accounts/at-risk?limit=2")
    status, body, _ = api.get(f"/accounts/at-risk?sort=mrr&cursor={body['next_cursor']}")
    assert status == 400 and "cursor" in body["error"]


def test_csv_rows_equal_the_json_list(api):
    for query in ("limit=1000", "sort=health&limit=5", "segment=enterprise", "q=small&sort=mrr"):
        _, body, _ = api.get(f"/accounts/at-risk?{query}")
        status, text, kind = api.get(f"/accounts/at-risk.csv?{query}")
        assert (status, kind) == (200, "text/csv")
        rows = list(csv.DictReader(io.StringIO(text)))
        assert [row["account_id"] for row in rows] == [a["account_id"] for a in body["accounts"]]
        for row, want in zip(rows, body["accounts"], strict=True):
            assert float(row["revenue_at_risk"]) == want["revenue_at_risk"]
            assert float(row["mrr"]) == want["mrr"]
            assert int(row["health"]) == want["health"]["overall"]
            assert row["severity"] == want["severity"]
    _, text, _ = api.get("/accounts/at-risk.csv?segment=nowhere")
    assert text.splitlines() == [text.splitlines()[0]] and text.startswith("account_id,")


def test_csv_pages_with_its_cursor_header(api):
    async def go():
        response = await api.client.get("/accounts/at-risk.csv?limit=20")
        return response.headers.get("X-Next-Cursor"), await response.text()

    cursor, text = api.loop.run_until_complete(go())
    assert cursor and len(text.splitlines()) == 21
    _, rest, _ = api.get(f"/accounts/at-risk.csv?limit=20&cursor={cursor}")
    assert len(rest.splitlines()) == 4  # the header and the last 3 of 23


def _total(html: str) -> str:
    found = re.search(r"<td><b>total</b></td><td>([\d,]+)</td><td><b>([^<]+)</b>", html)
    assert found, html[:2000]
    return f"{found.group(1)} {unescape(found.group(2))}"


def test_the_page_totals_follow_the_filter(api, store):
    _, whole, _ = api.get("/")
    assert _total(whole) == f"23 {r.money(store.risk_list().summary['mrr_at_risk'])}"
    assert "acct-resolved" not in whole
    _, html, kind = api.get("/?segment=enterprise")
    assert kind == "text/html" and _total(html) == f"2 {r.money(12_000.0)}"
    assert "acct-BIG" in html and "acct-small-00" not in html
    _, html, _ = api.get("/?severity=critical&q=small-0")
    assert _total(html) == f"10 {r.money(1_000.0)}"
    assert 'id="filters"' in html and 'method="get"' in html and "<script" not in html


def test_the_page_form_sends_empty_fields_and_links_the_next_page(api):
    status, html, _ = api.get("/?sort=mrr&segment=&severity=&q=")
    assert status == 200 and '<option value="mrr" selected>' in html
    status, html, _ = api.get("/?limit=2&q=small")
    link = re.search(r'<a rel="next" href="([^"]+)"', html)
    assert status == 200 and link
    assert _total(html).startswith("20 ")  # the totals are the whole filtered list's
    status, second, _ = api.get(unescape(link.group(1)))
    assert status == 200 and "acct-small-02" in second and "acct-small-00" not in second


def test_bad_page_parameters_are_400_pages(api):
    status, html, kind = api.get("/?sort=sideways")
    assert (status, kind) == (400, "text/html") and "sort must be one of" in html


def test_the_store_answers_the_same_list(store):
    store.apply(portfolio_alerts())
    found = store.risk_list(RiskQuery(limit=2, sort="mrr"))
    assert [row["account_id"] for row in found.rows] == ["acct-BIG", "acct-mid"]
    assert found.after is not None and found.summary["accounts_with_open_alerts"] == 23
    assert "_ts_ms" not in found.rows[0]


def test_csv_cells_a_spreadsheet_would_run_are_quoted(store):
    store.apply([alert("=HYPERLINK(1)", mrr=10.0, health=10)])
    client = Api(store)
    try:
        _, text, _ = client.get("/accounts/at-risk.csv")
    finally:
        client.close()
    (row,) = list(csv.DictReader(io.StringIO(text)))
    assert row["account_id"] == "'=HYPERLINK(1)" and row["revenue_at_risk"] == "9.0"
