"""The all-accounts list and the account page over hand-made snapshots and alerts: sorts,
filters, owner, search, totals over the filtered list, cursor paging, CSV, and an account that
was never alerted."""

from __future__ import annotations

import csv
import io
import re
from html import unescape

import pytest

from stream.render import readable as r
from tests.readmodel.test_api import Api
from tests.readmodel.test_health import snap
from tests.readmodel.test_risk_list import alert, every_page

OWNERS = ("Dana Reyes", "Lee Chen", None)


def portfolio() -> tuple[list[dict], list[dict]]:
    """40 accounts with snapshots (days 0-29), two of them alerted after their last close."""
    snapshots = []
    for i in range(40):
        account = f"acct-{i:03d}"
        for day in range(30):
            snapshots.append(snap(
                account, day, mrr=100.0 * (i + 1), owner=OWNERS[i % 3],
                account_name=f"Company {chr(65 + i % 26)}{i}",
                segment=("starter", "pro", "enterprise")[i % 3],
                health={"overall": (i * 7) % 101, "usage": (i * 7) % 101},
                renewal_date=f"2026-{3 + i % 9:02d}-{1 + i % 27:02d}",
                last_activity=None if i % 10 == 0 else f"2026-01-{1 + i % 28:02d}T09:00:00Z",
                open_signals=["danger_zone"] if i % 4 == 0 else [],
                activity={"logins": (i + day) % 7, "tickets": 1 if day == 12 else 0,
                          "invoice_paid": day == 5, "payments_failed": 1 if day == 20 else 0,
                          "nps_score": 3 if day == 25 and i % 2 else None},
            ))  # fmt: skip
    snapshots.append(snap("acct-gone", 29, status="cancelled", mrr=9_999.0, owner="Lee Chen",
                          health={"overall": 0, "usage": 0}, renewal_date=None))  # fmt: skip
    # Alerts: acct-005 on the day after its last close (the alert is newer: its health wins).
    alerts = [
        alert("acct-005", mrr=600.0, health=12, segment="pro", severity="critical", day=31),
        alert("acct-007", mrr=800.0, health=30, segment="starter", severity="medium", day=1,
              signal="nps_detractor"),
    ]  # fmt: skip
    for a in alerts:
        a["ts"] = a["ts"].replace("2026-03-", "2026-01-")
        a["account"].update(name=None, owner=None, renewal_date=None)
    return snapshots, alerts


@pytest.fixture
def api(store):
    snapshots, alerts = portfolio()
    store.apply_health(snapshots)
    store.apply(alerts)
    client = Api(store)
    yield client
    client.close()


def rows(api: Api, path: str) -> list[dict]:
    status, body, _ = api.get(path)
    assert status == 200, body
    return body["accounts"]


def test_every_account_is_listed_with_totals_over_the_filtered_list(api):
    status, body, _ = api.get("/accounts?limit=5")
    assert status == 200 and len(body["accounts"]) == 5 and body["next_cursor"]
    totals = body["totals"]
    assert totals["accounts"] == 41 and totals["cancelled"] == 1
    assert totals["mrr"] == sum(100.0 * (i + 1) for i in range(40))  # live MRR only
    assert totals["cancelled_mrr"] == 9_999.0
    every = rows(api, "/accounts?limit=1000")
    assert round(sum(x["revenue_at_risk"] for x in every), 2) == totals["revenue_at_risk"]
    _, body, _ = api.get("/accounts?limit=1&owner=dana%20reyes")
    assert body["totals"]["accounts"] == 14  # i % 3 == 0 for i in 0..39: over all, not the page
    assert len(body["accounts"]) == 1


def test_revenue_at_risk_and_health_come_from_the_newer_source(api):
    by_id = {x["account_id"]: x for x in rows(api, "/accounts?limit=1000")}
    late = by_id["acct-005"]  # alerted on 31 Jan, after its last close (30 Jan)
    assert late["health"]["overall"] == 12 and late["mrr"] == 600.0
    assert late["revenue_at_risk"] == 528.0 and late["severity"] == "critical"
    # The alert (schema 3) names no owner: the snapshot's facts fill what the alert lacks.
    assert late["account_name"] == "Company F5" and late["owner"] is None
    assert by_id["acct-004"]["owner"] == "Lee Chen"
    early = by_id["acct-007"]  # alerted on 1 Jan, long before its last close
    assert early["health"]["overall"] == 49 and early["severity"] == "medium"
    assert early["revenue_at_risk"] == round(0.51 * 800.0, 2)
    assert by_id["acct-gone"]["revenue_at_risk"] == 0.0 and by_id["acct-gone"]["status"] == (
        "cancelled"
    )


def test_every_sort_of_the_all_accounts_list(api):
    every = rows(api, "/accounts?limit=1000&status=active")
    by_rar = [x["account_id"] for x in every]
    assert by_rar == [x["account_id"] for x in sorted(
        every, key=lambda x: (-x["revenue_at_risk"], x["account_id"]))]  # fmt: skip
    by_mrr = rows(api, "/accounts?sort=mrr&limit=3&status=active")
    assert [x["mrr"] for x in by_mrr] == [4000.0, 3900.0, 3800.0]
    by_health = rows(api, "/accounts?sort=health&limit=1000&status=active")
    assert [x["health"]["overall"] for x in by_health] == sorted(
        x["health"]["overall"] for x in by_health
    )
    renewal = rows(api, "/accounts?sort=renewal&limit=1000")
    dates = [x["renewal_date"] for x in renewal if x["renewal_date"]]
    assert dates == sorted(dates) and renewal[-1]["renewal_date"] is None  # unknown last
    quiet = rows(api, "/accounts?sort=last_activity&limit=1000")
    never = [x for x in quiet if x["last_activity"] is None]
    assert quiet[: len(never)] == never and len(never) == 4  # never used: first
    seen = [x["last_activity"] for x in quiet[len(never) :]]
    assert seen == sorted(seen)


def test_each_filter_owner_status_and_the_search_by_name_or_id(api):
    assert {x["owner"] for x in rows(api, "/accounts?owner=Lee%20Chen&limit=1000")} == {"Lee Chen"}
    assert [x["account_id"] for x in rows(api, "/accounts?status=cancelled")] == ["acct-gone"]
    assert {x["segment"] for x in rows(api, "/accounts?segment=enterprise&limit=1000")} == {
        "enterprise"
    }
    assert [x["account_id"] for x in rows(api, "/accounts?severity=critical")] == ["acct-005"]
    signal = rows(api, "/accounts?signal=danger_zone&limit=1000")
    assert {x["account_id"] for x in signal} == {f"acct-{i:03d}" for i in range(0, 40, 4)}
    nps = rows(api, "/accounts?signal=nps_detractor")
    assert [x["account_id"] for x in nps] == ["acct-007"]
    assert [x["account_id"] for x in rows(api, "/accounts?q=company%20c28")] == ["acct-028"]
    found = {x["account_id"] for x in rows(api, "/accounts?q=ACCT-03&limit=1000")}
    assert found == {f"acct-{i:03d}" for i in range(30, 40)}
    assert rows(api, "/accounts?owner=nobody") == []


def test_the_at_risk_list_carries_name_owner_renewal_and_last_activity(api):
    at_risk = rows(api, "/accounts/at-risk?limit=1000")
    assert [x["account_id"] for x in at_risk] == ["acct-005", "acct-007"]
    first = at_risk[0]
    assert (first["account_name"], first["owner"]) == ("Company F5", None)
    assert first["renewal_date"] == "2026-08-06" and first["last_activity"] == (
        "2026-01-06T09:00:00Z"
    )
    assert [x["account_id"] for x in rows(api, "/accounts/at-risk?q=company%20h7")] == ["acct-007"]
    assert rows(api, "/accounts/at-risk?owner=dana%20reyes") == []
    assert [x["account_id"] for x in rows(api, "/accounts/at-risk?owner=lee%20chen")] == [
        "acct-007"]  # fmt: skip
    assert [x["account_id"] for x in rows(api, "/accounts/at-risk?sort=renewal")] == [
        "acct-005", "acct-007"]  # fmt: skip
    assert [x["account_id"] for x in rows(api, "/accounts/at-risk?sort=mrr")] == [
        "acct-007", "acct-005"]  # fmt: skip
    _, body, _ = api.get("/accounts/at-risk?sort=last_activity")
    assert [x["account_id"] for x in body["accounts"]] == ["acct-005", "acct-007"]
    assert body["totals"]["accounts"] == 2


@pytest.mark.parametrize("sort", ["revenue_at_risk", "mrr", "health", "renewal", "last_activity"])
def test_all_accounts_paging_returns_every_row_exactly_once(api, sort):
    whole = [x["account_id"] for x in rows(api, f"/accounts?sort={sort}&limit=1000")]
    assert len(whole) == 41
    for limit in (1, 7, 40):
        assert every_page(api, f"/accounts?sort={sort}", limit) == whole
    filtered = every_page(api, f"/accounts?sort={sort}&owner=Dana%20Reyes", 4)
    assert len(filtered) == 14 and len(set(filtered)) == 14


def test_the_list_follows_new_writes_between_requests(api, store):
    assert rows(api, "/accounts?q=acct-new") == []
    store.apply_health([snap("acct-new", 40, mrr=1.0)])
    assert [x["account_id"] for x in rows(api, "/accounts?q=acct-new")] == ["acct-new"]
    store.apply_health([snap("acct-new", 41, mrr=2.0, owner="Someone Else")])
    (row,) = rows(api, "/accounts?q=acct-new")
    assert row["mrr"] == 2.0 and row["owner"] == "Someone Else"


def test_all_accounts_csv_rows_equal_the_json_list(api):
    for query in (
        "limit=1000",
        "sort=renewal&limit=5",
        "owner=Lee%20Chen&limit=1000",
        "q=company&limit=1000",
    ):
        _, body, _ = api.get(f"/accounts?{query}")
        status, text, kind = api.get(f"/accounts.csv?{query}")
        assert (status, kind) == (200, "text/csv")
        got = list(csv.DictReader(io.StringIO(text)))
        assert [x["account_id"] for x in got] == [x["account_id"] for x in body["accounts"]]
        for row, want in zip(got, body["accounts"], strict=True):
            assert row["account_name"] == want["account_name"]
            assert row["owner"] == (want["owner"] or "")
            assert float(row["revenue_at_risk"]) == want["revenue_at_risk"]
            assert row["renewal_date"] == (want["renewal_date"] or "")
            assert int(row["health"]) == want["health"]["overall"]


def test_a_never_alerted_account_has_its_api_answer_and_page_with_its_trend(api):
    status, body, _ = api.get("/accounts/acct-013")
    assert status == 200
    assert body["open_alerts"] == [] and body["episodes"] == [] and body["last_alert_ts"] is None
    assert body["snapshot"]["day"] == "2026-01-30" and len(body["history"]) == 30
    assert [p["day"] for p in body["history"]] == sorted(p["day"] for p in body["history"])
    status, html, kind = api.get("/view/accounts/acct-013")
    assert (status, kind) == (200, "text/html")
    assert '<svg class="trend"' in html and '<svg class="timeline"' in html
    assert html.count('class="series"') >= 2 and "Overall health by day" in html
    assert "No open alerts." in html and "No alert has been raised" in html
    assert "Company N13" in html and "Lee Chen" in html and r.money(1400.0) in html
    assert "30 Jan 2026" in html and "NPS answer: 3 out of 10" in html
    assert html.count('class="mark failed"') == 1 and html.count('class="mark ticket"') == 1


def test_the_account_page_lists_every_episode_and_open_alerts_most_severe_first(store):
    store.apply_health([snap("acct-x", d) for d in range(5)])
    store.apply([
        alert("acct-x", mrr=500.0, health=40, severity="medium", alert_id="al-1", day=1),
        alert("acct-x", mrr=500.0, health=20, severity="critical", alert_id="al-2", day=2),
        alert("acct-x", mrr=500.0, health=30, severity="medium", alert_id="al-1", day=3,
              sequence=1, kind="updated"),
        alert("acct-x", mrr=500.0, health=30, severity="low", alert_id="al-3", day=3),
        alert("acct-x", mrr=500.0, health=30, severity="low", alert_id="al-3", day=4,
              sequence=1, kind="resolved"),
    ])  # fmt: skip
    client = Api(store)
    try:
        _, body, _ = client.get("/accounts/acct-x")
        _, html, _ = client.get("/view/accounts/acct-x")
    finally:
        client.close()
    assert [a["alert_id"] for a in body["open_alerts"]] == ["al-2", "al-1"]
    assert [(e["alert_id"], e["kind"]) for e in body["episodes"]] == [
        ("al-3", "resolved"), ("al-3", "opened"), ("al-1", "updated"), ("al-2", "opened"),
        ("al-1", "opened")]  # fmt: skip
    shown = re.findall(r'<div class="alert"[^>]*>Alert severity <span class="sev (\w+)"', html)
    assert shown == ["critical", "medium"]
    items = re.findall(r'<li class="episode (\w+)">', html)
    assert items == ["resolved", "opened", "updated", "opened", "opened"]
    assert "<b>Next step:</b> Call them." in html and "<th>threshold</th>" in html


def test_the_accounts_page_filters_apply_to_its_totals(api):
    status, html, kind = api.get("/view/accounts")
    assert (status, kind) == (200, "text/html")
    totals = re.search(r'<table id="totals">.*?<td>([\d,]+)</td><td>([^<]+)</td>', html)
    assert totals and totals.group(1) == "40"  # active customers by default
    _, html, _ = api.get("/view/accounts?owner=Dana+Reyes&status=any&segment=&q=")
    totals = re.search(r'<table id="totals">.*?<td>([\d,]+)</td><td>([^<]+)</td>', html)
    dana = [i for i in range(40) if i % 3 == 0]
    assert totals.group(1) == "14"
    assert unescape(totals.group(2)) == r.money(sum(100.0 * (i + 1) for i in dana))
    assert 'name="owner" value="Dana Reyes"' in html and "acct-001" not in html
    _, html, _ = api.get("/view/accounts?status=any&limit=10")
    link = re.search(r'<a rel="next" href="([^"]+)"', html)
    assert link and "status=any" in unescape(link.group(1))
    status, html, kind = api.get("/view/accounts?sort=last_alert")
    assert (status, kind) == (400, "text/html") and "sort must be one of" in html
