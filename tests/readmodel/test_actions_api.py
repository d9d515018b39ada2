"""Alert actions and access control through the API, on a real Redis and a real Kafka broker.

Actions are published to a topic of the test's own and read back from it; the read model is
the Redis one. The security tests check the answers a reviewer would try: no token, a wrong
token, a forged cross-site form, the token in logs or metrics, and fuzzed write requests.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from html import unescape
from urllib.parse import quote

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kafka import KafkaAdminClient, KafkaConsumer
from kafka.admin import NewTopic

from schemas.actions import decode_action
from stream.core.policy import load_policy
from stream.kafka.settings import WorkerSettings
from stream.run.metrics import Registry
from stream.sinks.actions_api import KafkaActionLog
from stream.sinks.api import build_app
from stream.sinks.auth import COOKIE, Auth, load_tokens
from tests.readmodel.test_health import snap
from tests.readmodel.test_page_layout import laid_out
from tests.readmodel.test_risk_list import alert

TOKEN = "ana-token-0123456789abcdef"
OTHER = "bo-token-0123456789abcdef"


class Client:
    """An aiohttp test client on its own loop, for plain and hypothesis tests."""

    def __init__(self, store, auth: Auth, actions) -> None:
        self.loop = asyncio.new_event_loop()
        app = build_app(store, load_policy(None), Registry(), auth=auth, actions=actions)
        self.client = TestClient(TestServer(app), loop=self.loop)
        self.loop.run_until_complete(self.client.start_server())

    def call(self, method: str, path: str, **kwargs) -> tuple[int, object, dict]:
        async def go():
            response = await self.client.request(method, path, allow_redirects=False, **kwargs)
            kind = response.content_type
            body = await (response.json() if kind == "application/json" else response.text())
            return response.status, body, response.headers

        return self.loop.run_until_complete(go())

    def close(self) -> None:
        self.loop.run_until_complete(self.client.close())
        self.loop.close()


def _bearer(token: str = TOKEN, **more) -> dict:
    return {"Authorization": f"Bearer {token}", **more}


@pytest.fixture(scope="module")
def topic(kafka):
    """A topic of this module's own on the real broker, and settings that name it."""
    name = f"actions-test-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=kafka)
    admin.create_topics([NewTopic(name, num_partitions=2, replication_factor=1)])
    admin.close()
    return WorkerSettings(broker=kafka, actions_topic=name)


@pytest.fixture(scope="module")
def action_log(topic):
    log = KafkaActionLog(topic)
    yield log
    log.close()


def read_topic(settings: WorkerSettings) -> list:
    consumer = KafkaConsumer(settings.actions_topic, bootstrap_servers=settings.broker,
                             auto_offset_reset="earliest", consumer_timeout_ms=3000)  # fmt: skip
    try:
        return [decode_action(r.value) for r in consumer]
    finally:
        consumer.close()


@pytest.fixture
def seeded(store):
    """Two accounts at risk on 2026-03-02 (one with two open alerts), with snapshots."""
    store.apply_health([snap("acct-a", 59), snap("acct-b", 59)])  # 2026-03-01, ts 03-02
    store.apply([
        alert("acct-a", mrr=900.0, health=30, severity="medium", alert_id="al-a1", day=2),
        alert("acct-b", mrr=400.0, health=40, severity="high", alert_id="al-b1", day=2),
        alert("acct-b", mrr=400.0, health=40, severity="low", alert_id="al-b2", day=2),
        alert("acct-b", mrr=400.0, health=40, severity="low", alert_id="al-old", day=1),
        alert("acct-b", mrr=400.0, health=40, severity="low", alert_id="al-old", day=2,
              sequence=1, kind="resolved"),
    ])  # fmt: skip
    return store


@pytest.fixture
def api(seeded, action_log):
    client = Client(seeded, Auth(load_tokens({"CHURNWATCH_API_TOKEN": TOKEN})), action_log)
    yield client
    client.close()


def at_risk(client: Client, query: str = "") -> list[str]:
    status, body, _ = client.call("GET", f"/accounts/at-risk?limit=100{query}",
                                  headers=_bearer())  # fmt: skip
    assert status == 200, body
    return [row["account_id"] for row in body["accounts"]]


def test_an_acknowledgement_reaches_the_topic_and_the_read_model_once(api, seeded, topic):
    headers = _bearer(**{"Idempotency-Key": "retry-me"})
    status, body, _ = api.call("POST", "/alerts/al-a1/ack", headers=headers)
    assert status == 201 and body["action"]["by"] == "api" and body["duplicate"] is False
    again, body2, _ = api.call("POST", "/alerts/al-a1/ack", headers=headers)  # a client retry
    assert again == 200 and body2["duplicate"] is True
    assert body2["action"]["action_id"] == body["action"]["action_id"]
    on_topic = [a for a in read_topic(topic) if a.alert_id == "al-a1" and a.kind == "ack"]
    assert {a.action_id for a in on_topic} == {body["action"]["action_id"]}
    assert seeded.apply_actions(on_topic) == 0  # the feed's redelivery changes nothing
    _, view, _ = api.call("GET", "/accounts/acct-a", headers=_bearer())
    assert view["open_alerts"][0]["actions"]["acknowledged"]["by"] == "api"
    assert view["acknowledged_alert_count"] == 1 and view["needs_attention"] is True
    assert "acct-a" in at_risk(api)  # acknowledged alerts stay on the list


def test_a_snooze_leaves_the_list_until_its_day_in_event_time(api, seeded):
    status, body, _ = api.call(
        "POST",
        "/alerts/al-a1/snooze",
        headers=_bearer(),
        json={"until": "2026-03-05", "reason": "renewal call booked"},
    )
    assert status == 201, body
    assert "acct-a" not in at_risk(api) and "acct-a" in at_risk(api, "&snoozed=only")
    assert "acct-a" in at_risk(api, "&snoozed=include")
    _, row, _ = api.call("GET", "/accounts/acct-a", headers=_bearer())
    assert row["snoozed_until"] == "2026-03-05" and row["snoozed_alert_count"] == 1
    seeded.apply_health([snap("acct-a", 61)])  # the day 2026-03-03 closes: ts 03-04 00:00
    assert "acct-a" not in at_risk(api)
    seeded.apply_health([snap("acct-b", 62)])  # another account's day closes: ts 03-05 00:00
    assert "acct-a" in at_risk(api)  # event time reached the snooze's day
    assert seeded.now_ms() is not None


def test_a_snooze_for_days_counts_from_the_read_models_day(api):
    status, body, _ = api.call("POST", "/alerts/al-a1/snooze", headers=_bearer(),
                               json={"days": 3, "reason": "back from holiday"})  # fmt: skip
    assert status == 201 and body["action"]["until"] == "2026-03-05"  # clock: 2 Mar 10:00


def test_an_account_leaves_the_list_only_when_every_open_alert_is_set_aside(api):
    assert api.call("POST", "/alerts/al-b1/dismiss", headers=_bearer(),
                    json={"reason": "the customer paid by wire"})[0] == 201  # fmt: skip
    assert "acct-b" in at_risk(api)  # al-b2 still needs attention
    assert (
        api.call(
            "POST",
            "/alerts/al-b2/snooze",
            headers=_bearer(),
            json={"until": "2026-03-20", "reason": "waiting on their budget"},
        )[0]
        == 201
    )
    assert "acct-b" not in at_risk(api)
    _, row, _ = api.call("GET", "/accounts/acct-b", headers=_bearer())
    assert row["dismissed_alert_count"] == 1 and row["snoozed_alert_count"] == 1


def test_an_escalation_brings_a_dismissed_alert_back(api, seeded):
    api.call("POST", "/alerts/al-a1/dismiss", headers=_bearer(), json={"reason": "known dip"})
    assert "acct-a" not in at_risk(api)
    seeded.apply([alert("acct-a", mrr=900.0, health=10, severity="critical", alert_id="al-a1",
                        day=3, sequence=1, kind="updated")])  # fmt: skip
    assert "acct-a" in at_risk(api)


@pytest.mark.parametrize(("path", "body", "status", "says"), [
    ("/alerts/al-a1/snooze", {"until": "2026-03-01", "reason": "x"}, 400, "until must be after"),
    ("/alerts/al-a1/snooze", {"until": "next week", "reason": "x"}, 400, "YYYY-MM-DD"),
    ("/alerts/al-a1/snooze", {"until": "2026-03-09"}, 400, "reason is required"),
    ("/alerts/al-a1/snooze", {"until": "2026-03-09", "days": 3, "reason": "x"}, 400, "not both"),
    ("/alerts/al-a1/snooze", {"days": 0, "reason": "x"}, 400, "days must be"),
    ("/alerts/al-a1/snooze", {"days": True, "reason": "x"}, 400, "JSON object of text"),
    ("/alerts/al-a1/dismiss", {"reason": "   "}, 400, "reason is required"),
    ("/alerts/al-a1/ack", {"reason": "x"}, 400, "unknown field"),
    ("/alerts/al-a1/notes", {"text": "x" * 2001}, 400, "1 to 2000"),
    ("/alerts/al-nope/ack", {}, 404, "no alert"),
    ("/alerts/al-old/ack", {}, 409, "no longer open"),
])  # fmt: skip
def test_a_bad_action_is_a_clear_4xx_and_records_nothing(api, seeded, path, body, status, says):
    got, answer, _ = api.call("POST", path, headers=_bearer(), json=body)
    assert got == status and says in answer["error"], answer
    assert seeded.actions.of_account("acct-a") == {}


def test_a_note_may_be_added_to_an_episode_that_has_ended(api, seeded):
    status, body, _ = api.call("POST", "/alerts/al-old/notes", headers=_bearer(),
                               json={"text": "they said price was the issue"})  # fmt: skip
    assert status == 201 and body["action"]["signal"] == "account_at_risk"
    assert seeded.actions.of_account("acct-b")["al-old"]["notes"][0]["by"] == "api"


def test_without_a_token_reads_are_refused_401_and_a_wrong_token_403(api):
    status, _body, headers = api.call("GET", "/accounts/at-risk")
    assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
    assert api.call("GET", "/accounts/at-risk", headers=_bearer(OTHER))[0] == 403
    assert api.call("GET", "/metrics")[0] == 401
    assert api.call("POST", "/alerts/al-a1/ack")[0] == 401
    assert api.call("POST", "/alerts/al-a1/ack", headers=_bearer(OTHER))[0] == 403
    assert api.call("GET", "/accounts/at-risk", headers={"Authorization": "Basic x"})[0] == 401
    assert api.call("GET", "/healthz")[0] == 200  # the load balancer's check needs no token
    status, _, headers = api.call("GET", "/view/accounts/acct-a")
    assert status == 303 and headers["Location"].startswith("/login?next=")


def test_with_no_token_configured_reads_stay_open_and_writes_are_refused(seeded, action_log):
    client = Client(seeded, Auth(), action_log)
    try:
        assert client.call("GET", "/accounts/at-risk")[0] == 200
        status, body, _ = client.call("POST", "/alerts/al-a1/ack")
        assert status == 403 and "no API token configured" in body["error"]
        _, page, _ = client.call("GET", "/view/accounts/acct-a")
        assert "Actions are off" in page
    finally:
        client.close()
    assert seeded.actions.of_account("acct-a") == {}


def _signed_in(api: Client) -> tuple[dict, str]:
    status, _, headers = api.call(
        "POST", "/login", data={"token": TOKEN, "next": "/view/accounts/acct-a"}
    )
    assert status == 303 and headers["Location"] == "/view/accounts/acct-a"
    cookie = headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    value = re.search(rf"{COOKIE}=([^;]+)", cookie).group(1)
    _, page, _ = api.call("GET", "/view/accounts/acct-a", cookies={COOKIE: value})
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    return {COOKIE: value}, csrf


def test_the_page_forms_act_with_a_session_and_refuse_a_forged_cross_site_post(api, seeded):
    cookies, csrf = _signed_in(api)
    form = {"reason": "annual budget freeze", "idempotency_key": "k1",
            "next": "/view/accounts/acct-a"}  # fmt: skip
    forged, _, _ = api.call("POST", "/alerts/al-a1/dismiss", data=form, cookies=cookies)
    assert forged == 403  # no CSRF token: a page elsewhere cannot read it
    wrong_site = api.call("POST", "/alerts/al-a1/dismiss", data={**form, "csrf": csrf},
                          cookies=cookies, headers={"Origin": "https://evil.example"})  # fmt: skip
    assert wrong_site[0] == 403
    assert seeded.actions.of_account("acct-a") == {}
    status, _, headers = api.call("POST", "/alerts/al-a1/dismiss", data={**form, "csrf": csrf},
                                  cookies=cookies)  # fmt: skip
    assert status == 303 and headers["Location"] == "/view/accounts/acct-a#alert-al-a1"
    _, page, _ = api.call("GET", "/view/accounts/acct-a", cookies=cookies)
    assert "Dismissed as a false alarm by api: annual budget freeze." in unescape(page)
    bad_login = api.call("POST", "/login", data={"token": OTHER})
    assert bad_login[0] == 403 and "not valid" in bad_login[1]
    assert api.call("POST", "/login", data={"token": TOKEN, "next": "//evil.example/x"})[2][
        "Location"] == "/"  # fmt: skip


def test_the_token_never_reaches_a_log_or_the_metrics(api, caplog):
    caplog.set_level(logging.DEBUG)
    api.call("POST", "/alerts/al-a1/notes", headers=_bearer(), json={"text": "called them"})
    api.call("GET", "/accounts/at-risk", headers=_bearer(OTHER))
    api.call("POST", "/login", data={"token": OTHER})
    api.call("POST", "/login", data={"token": TOKEN})
    _, metrics, _ = api.call("GET", "/metrics", headers=_bearer())
    logged = "\n".join(r.getMessage() + str(r.args) for r in caplog.records)
    assert "note by api on alert al-a1" in logged  # the actions are logged, by name
    for secret in (TOKEN, OTHER):
        assert secret not in logged and secret not in metrics


def _write_requests():
    text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
    field = st.sampled_from(["until", "reason", "text", "csrf", "next", "idempotency_key", "x"])
    values = st.one_of(text, st.sampled_from(["2026-03-09", "2026-13-40", "", "   "]))
    body = st.one_of(
        st.dictionaries(field, values, max_size=3).map(lambda d: ("json", d)),
        st.dictionaries(field, values, max_size=3).map(lambda d: ("form", d)),
        st.binary(max_size=60).map(lambda b: ("raw", b)),
        st.recursive(
            st.none() | st.integers(-1000, 1000) | text,
            lambda c: st.lists(c, max_size=3),
            max_leaves=5,
        ).map(lambda v: ("json-any", v)),
    )
    alert_ids = st.one_of(st.sampled_from(["al-a1", "al-old", "al-nope"]), text)
    verbs = st.sampled_from(["ack", "snooze", "dismiss", "notes"])
    auth = st.sampled_from([None, TOKEN, OTHER, ""])
    return st.tuples(alert_ids, verbs, body, auth)


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(request=_write_requests())
def test_fuzzed_write_requests_never_get_a_500(api, request):
    alert_id, verb, (kind, body), token = request
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    if kind == "json":
        sent = {"json": body}
    elif kind == "form":
        sent = {"data": body}
    elif kind == "raw":
        sent = {"data": body, "headers": {**headers, "Content-Type": "application/json"}}
    else:
        sent = {
            "data": orjson.dumps(body),
            "headers": {**headers, "Content-Type": "application/json"},
        }
    sent.setdefault("headers", headers)
    path = f"/alerts/{quote(alert_id, safe='')}/{verb}"
    status, answer, _ = api.call("POST", path, **sent)
    assert status < 500, (path, sent, status, answer)
    answers = (200, 201, 400, 401, 403, 404, 405, 409, 415) + ((303,) if kind == "form" else ())
    assert status in answers, (path, status, answer)  # a form is answered with a redirect
    if status >= 400 and isinstance(answer, dict):
        assert answer["error"]


@pytest.mark.parametrize("width", [1300, 390])
def test_the_action_forms_fit_a_desk_and_a_phone(api, width, tmp_path):
    cookies, _ = _signed_in(api)
    api.call("POST", "/alerts/al-a1/ack", headers=_bearer())
    api.call("POST", "/alerts/al-a1/notes", headers=_bearer(),
             json={"text": "Spoke to their ops lead: usage fell after a reorganisation; a "
                           "business review is booked for next week."})  # fmt: skip
    _, page, _ = api.call("GET", "/view/accounts/acct-a", cookies=cookies)
    shown = laid_out(page.replace("<details>", "<details open>"), width, tmp_path)
    assert shown["scroll_width"] <= shown["viewport"] and shown["wide"] == [], shown["wide"]
    for words in ("Acknowledged by api", "Note by api", "Snooze", "Dismiss as a false alarm",
                  "Add a note", "Acting as api."):  # fmt: skip
        assert words in shown["text"], words
