"""The HTTP API over a real Redis: answers match the read model, bad input is a JSON 4xx."""

from __future__ import annotations

import asyncio
from urllib.parse import quote

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from stream.core.policy import load_policy
from stream.run.metrics import Registry
from stream.sinks.api import OPENAPI, build_app, encode_cursor
from stream.sinks.readmodel import fold


class Api:
    """An aiohttp test client on its own loop, usable from plain (and hypothesis) tests."""

    def __init__(self, store) -> None:
        self.loop = asyncio.new_event_loop()
        self.client = TestClient(TestServer(build_app(store, load_policy(None), Registry())),
                                 loop=self.loop)  # fmt: skip
        self.loop.run_until_complete(self.client.start_server())

    def get(self, path: str) -> tuple[int, object, str]:
        async def go():
            response = await self.client.get(path)
            kind = response.content_type
            body = await (response.json() if kind == "application/json" else response.text())
            return response.status, body, kind

        return self.loop.run_until_complete(go())

    def close(self) -> None:
        self.loop.run_until_complete(self.client.close())
        self.loop.close()


@pytest.fixture
def api(store, replayed):
    store.apply(replayed[1])
    client = Api(store)
    yield client
    client.close()


def test_account_answers_match_the_read_model(api, store, replayed):
    model = fold(replayed[1])
    for account in sorted(model.accounts)[:25]:
        status, body, _ = api.get(f"/accounts/{quote(account)}")
        assert status == 200
        expected = store.account(account)
        assert {k: v for k, v in body.items() if k != "danger_line_logins_per_day"} == expected
        assert body["health"] == model.accounts[account]["health"]
        assert {a["alert_id"] for a in body["open_alerts"]} == set(model.open_alerts[account])


def test_at_risk_open_alerts_and_portfolio(api, store):
    status, body, _ = api.get("/accounts/at-risk?limit=5")
    assert status == 200 and body["accounts"] == store.at_risk(5)
    segment = body["accounts"][0]["segment"]
    _, body, _ = api.get(f"/accounts/at-risk?segment={segment}&limit=1000")
    assert body["accounts"] == store.at_risk(1000, segment)
    _, body, _ = api.get("/alerts/open?signal=danger_zone&limit=1000")
    # Account episodes (the default) are about every signal they list among their reasons.
    assert body["alerts"] and all(a["signal"] == "account_at_risk" for a in body["alerts"])
    assert all("danger_zone" in {r["signal"] for r in a["reasons"]} for a in body["alerts"])
    assert body["alerts"] == store.open_alerts(1000, "danger_zone")
    _, every, _ = api.get("/alerts/open?signal=account_at_risk&limit=1000")
    assert len(every["alerts"]) > len(body["alerts"])
    assert len({a["account_id"] for a in every["alerts"]}) == len(every["alerts"]), (
        "one open episode per account"
    )
    _, body, _ = api.get("/portfolio")
    assert body == store.portfolio_report()
    status, body, _ = api.get("/healthz")
    assert status == 200 and body["redis"] is True


def _cursor(sort: str) -> str:
    return encode_cursor(sort, (1.0, "acct-x"))


@pytest.mark.parametrize(
    ("path", "status", "says"),
    [
        ("/accounts/no-such-account", 404, "no alert on record"),
        ("/accounts/" + "x" * 201, 400, "account id"),
        ("/accounts/at-risk?limit=0", 400, "limit"),
        ("/accounts/at-risk?limit=abc", 400, "limit"),
        ("/accounts/at-risk?limit=1&limit=2", 400, "more than once"),
        ("/accounts/at-risk?segment=%3Cscript%3E", 400, "segment"),
        ("/accounts/at-risk?order=asc", 400, "unknown query parameter"),
        ("/accounts/at-risk?sort=asc", 400, "sort must be one of"),
        ("/accounts/at-risk.csv?sort=asc", 400, "sort must be one of"),
        ("/accounts/at-risk?severity=urgent", 400, "severity"),
        ("/accounts/at-risk?signal=churn", 400, "signal"),
        ("/accounts/at-risk?q=", 400, "q must be"),
        ("/accounts/at-risk?cursor=%21%21", 400, "cursor"),
        ("/accounts/at-risk?cursor=Zm9v", 400, "cursor"),
        ("/accounts/at-risk.csv?limit=1001", 400, "limit"),
        ("/accounts/at-risk?owner=", 400, "owner must be"),
        ("/accounts/at-risk?owner=" + "o" * 201, 400, "owner must be"),
        ("/accounts/at-risk?status=gone", 400, "status must be one of"),
        (
            "/accounts/at-risk?sort=renewal&cursor=" + _cursor("last_activity"),
            400,
            "cursor belongs to sort=last_activity",
        ),
        ("/accounts?limit=0", 400, "limit"),
        ("/accounts?limit=1001", 400, "limit"),
        ("/accounts?sort=last_alert", 400, "sort must be one of"),
        ("/accounts?sort=sideways", 400, "sort must be one of"),
        ("/accounts?segment=%3Cscript%3E", 400, "segment"),
        ("/accounts?owner=%00", 400, "owner must be"),
        ("/accounts?signal=churn", 400, "signal"),
        ("/accounts?severity=urgent", 400, "severity"),
        ("/accounts?status=deleted", 400, "status must be one of"),
        ("/accounts?q=", 400, "q must be"),
        ("/accounts?cursor=Zm9v", 400, "cursor"),
        ("/accounts?cursor=" + _cursor("last_alert"), 400, "cursor"),
        ("/accounts?sort=mrr&cursor=" + _cursor("health"), 400, "cursor belongs to sort=health"),
        ("/accounts?page=2", 400, "unknown query parameter"),
        ("/accounts.csv?sort=last_alert", 400, "sort must be one of"),
        ("/accounts.csv?limit=1001", 400, "limit"),
        ("/alerts/open?severity=urgent", 400, "severity"),
        ("/alerts/open?signal=churn", 400, "signal"),
        ("/nowhere", 404, "Not Found"),
    ],
)
def test_bad_input_is_a_json_4xx(api, path, status, says):
    got, body, kind = api.get(path)
    assert (got, kind) == (status, "application/json")
    assert says in body["error"]


def test_metrics_count_requests(api):
    api.get("/accounts/at-risk")
    api.get("/accounts/at-risk?limit=0")
    _, text, kind = api.get("/metrics")
    assert kind == "text/plain"
    samples = [s for family in text_string_to_metric_families(text) for s in family.samples]
    assert ("churnwatch_http_requests_total", {"route": "/accounts/at-risk", "status": "400"},
            1) in [(s.name, s.labels, s.value) for s in samples]  # fmt: skip
    assert "churnwatch_http_request_seconds_bucket" in {s.name for s in samples}


def _with_query(path: str, pairs: list[tuple[str, str]]) -> str:
    if not pairs:
        return path
    return path + "?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in pairs)


def _paths() -> st.SearchStrategy[str]:
    """Requests built from the OpenAPI description, with arbitrary values for every parameter."""
    text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=60)
    value = st.one_of(text, st.integers(-5, 5000).map(str))
    options = []
    for template, item in OPENAPI["paths"].items():
        if "get" not in item:
            continue  # the write routes: see test_actions_api
        params = item["get"].get("parameters", [])
        query = [p["name"] for p in params if p["in"] == "query"] + ["bogus"]
        path_part = st.just(template)
        if "{account_id}" in template:
            path_part = text.map(lambda t, tpl=template: tpl.format(account_id=quote(t, safe="")))
        pairs = st.lists(st.tuples(st.sampled_from(query), value), max_size=3)
        options.append(st.builds(_with_query, path_part, pairs))
    return st.one_of(options)


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(path=_paths())
def test_fuzzed_requests_never_get_a_500(api, path):
    status, body, kind = api.get(path)
    assert status in (200, 400, 404), (path, status, body)
    csv = status == 200 and path.split("?")[0] in ("/accounts/at-risk.csv", "/accounts.csv")
    assert kind == ("text/csv" if csv else "application/json")
    if status != 200:
        assert isinstance(body["error"], str) and body["error"]


def test_a_unicode_digit_limit_is_a_400_not_a_500(api):
    # Found by the fuzzer: "¹".isdigit() is true, int("¹") raises.
    status, body, _ = api.get("/accounts/at-risk?limit=%C2%B9")
    assert status == 400 and "limit must be a whole number" in body["error"]
