"""Alert actions end to end: ``churnwatch serve`` with a token, Kafka, Redis and the CLI.

The alerts and health snapshots replay gives for the shared seeded log are produced to the
deployment's topics (the worker's equivalence with replay is tested elsewhere), so this test
spends its time on the actions: taken through the API and the CLI, they must reach the
alert-actions topic, survive a restart of ``serve``, come back whole when Redis is rebuilt from
the topics by a new read model, and count once when the topic delivers them twice. A snooze
ends when the read model's event time reaches its day, through the real feed.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import urllib.request
from datetime import date, timedelta
from urllib.error import HTTPError

import orjson
import pytest
from kafka import KafkaProducer

from schemas.actions import decode_action
from stream.devtools.brokers import free_port
from stream.devtools.deployment import Deployment
from stream.devtools.redis_server import RedisServer
from stream.sinks.readmodel import fold
from tests.pipeline.conftest import PARTITIONS, latest_by_account
from tests.readmodel.test_health import START, snap

TOKEN = "pipeline-token-0123456789abcdef"


def _call(url: str, body: dict | None = None, token: str | None = TOKEN) -> tuple[int, object]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = orjson.dumps(body) if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers,
                                     method="POST" if body is not None else "GET")  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            raw = response.read()
            return response.status, orjson.loads(raw) if raw[:1] in (b"{", b"[") else raw.decode()
    except HTTPError as exc:
        return exc.code, orjson.loads(exc.read())


class Served:
    """One deployment's topics, a Redis, and ``serve`` processes started and stopped on it."""

    def __init__(self, dep: Deployment, port: int) -> None:
        self.dep = dep
        self.base = f"http://127.0.0.1:{port}"
        self.process = None

    def start(self, redis_url: str, group_app_id: str | None = None) -> None:
        extra = {"CHURNWATCH_REDIS_URL": redis_url, "CHURNWATCH_API_TOKEN": TOKEN}
        if group_app_id:
            extra["CHURNWATCH_APP_ID"] = group_app_id  # a new read model: a group of its own
        self.process = self.dep.start_worker([sys.executable, "-m", "stream.cli", "serve"],
                                             **extra)  # fmt: skip
        self.dep.wait_for(lambda: _up(self.base), 60, "serve to answer")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(30)

    def get(self, path: str) -> dict:
        status, body = _call(self.base + path)
        assert status == 200, (path, status, body)
        return body

    def at_risk(self, query: str = "") -> set[str]:
        rows = self.get(f"/accounts/at-risk?limit=1000{query}")["accounts"]
        return {r["account_id"] for r in rows}


def _up(base: str) -> bool:
    try:
        return _call(base + "/healthz", token=None)[0] == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def served(kafka, simulated, replay_health, tmp_path_factory):
    log, _ = simulated
    work = tmp_path_factory.mktemp("actions")
    port = free_port()
    dep = Deployment(kafka, work, partitions=PARTITIONS, prefix="act",
                     CHURNWATCH_API_PORT=str(port))  # fmt: skip
    dep.cli("worker", "--check")  # creates the deployment's topics, alert-actions too
    alerts = [orjson.loads(x) for x in log.with_name("replay.jsonl").read_bytes().splitlines()]
    producer = KafkaProducer(bootstrap_servers=kafka)
    for alert in alerts:
        producer.send(dep.topics["alerts"], key=alert["account_id"].encode(),
                      value=orjson.dumps(alert))  # fmt: skip
    for value in replay_health:
        producer.send(dep.topics["health"], key=orjson.loads(value)["account_id"].encode(),
                      value=value)  # fmt: skip
    producer.flush()
    expected = fold(alerts)
    first, second = RedisServer(), RedisServer()
    first.start()
    server = Served(dep, port)
    try:
        server.start(first.url)

        def caught_up() -> bool:
            want = {a for episodes in expected.open_alerts.values() for a in episodes}
            got = server.get("/alerts/open?limit=1000")["alerts"]
            return {a["alert_id"] for a in got} == want

        dep.wait_for(caught_up, 120, "the read model to catch up")
        latest = {a: orjson.loads(v)["day"] for a, v in latest_by_account(replay_health).items()}

        def snapshots_in() -> bool:
            rows = server.get("/accounts?limit=1000")["accounts"]
            return {r["account_id"]: r["snapshot_day"] for r in rows} == latest

        dep.wait_for(snapshots_in, 120, "the health snapshots in Redis")
        yield dep, server, expected, producer, (first, second)
    finally:
        producer.close()
        dep.stop_all()
        first.stop()
        second.stop()


def _state(server: Served, account: str) -> dict:
    view = server.get(f"/accounts/{account}")
    return {a["alert_id"]: a.get("actions") for a in view["open_alerts"]} | {
        "snoozed_until": view["snoozed_until"],
        "needs_attention": view["needs_attention"],
    }


def _cli(dep: Deployment, base: str, *args: str) -> str:
    env = {**dep.env, "CHURNWATCH_API_TOKEN": TOKEN, "CHURNWATCH_API_URL": base}
    done = subprocess.run([sys.executable, "-m", "stream.cli", *args], env=env,
                          capture_output=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.decode()


def test_actions_survive_a_restart_and_a_rebuild_and_count_once(served):
    dep, server, expected, producer, (_, second) = served
    one, two = sorted(server.at_risk())[:2]
    alert_one = sorted(expected.open_alerts[one])[0]
    alert_two = sorted(expected.open_alerts[two])[0]
    last_day = max(date.fromisoformat(r["snapshot_day"])
                   for r in server.get("/accounts?limit=1000")["accounts"])  # fmt: skip
    until = last_day + timedelta(days=10)

    # Through the CLI and the API, as a CS team would.
    said = _cli(dep, server.base, "alerts", "ack", alert_one)
    assert f"acknowledged alert {alert_one} of account {one} as api" in said
    status, body = _call(
        f"{server.base}/alerts/{alert_one}/snooze",
        {"until": until.isoformat(), "reason": "renewal call booked"},
    )
    assert status == 201, body
    _cli(dep, server.base, "alerts", "dismiss", alert_two, "--reason", "paid by wire")
    _cli(dep, server.base, "alerts", "note", alert_two, "--text", "CFO confirmed the payment")
    assert one not in server.at_risk() and two not in server.at_risk()
    assert {one, two} <= server.at_risk("&snoozed=only")
    before = {a: _state(server, a) for a in (one, two)}
    assert before[one][alert_one]["acknowledged"]["by"] == "api"
    assert before[one]["snoozed_until"] == until.isoformat()
    assert before[two][alert_two]["notes"][0]["text"] == "CFO confirmed the payment"
    records = dep.read("actions")
    assert sorted(decode_action(r.value).kind for r in records) == [
        "ack", "dismiss", "note", "snooze"]  # fmt: skip

    # A restart of serve: the same Redis, the same group.
    server.stop()
    server.start(served[4][0].url)
    assert {a: _state(server, a) for a in (one, two)} == before

    # The topic delivers every action twice; then a new read model rebuilds Redis from scratch.
    for record in records:
        producer.send(dep.topics["actions"], key=record.key, value=record.value)
    producer.flush()
    server.stop()
    second.start()
    server.start(second.url, group_app_id=dep.app_id + "-rebuilt")

    def actions_read() -> float:
        found = re.search(r"^churnwatch_readmodel_actions_total (\S+)$",
                          _call(server.base + "/metrics")[1], re.M)  # fmt: skip
        return float(found.group(1)) if found else 0.0

    dep.wait_for(lambda: actions_read() == 8.0, 120, "the rebuild to read every action")
    # Every delivery was read; each action applied once (one note, not two).
    assert {a: _state(server, a) for a in (one, two)} == before

    # The snooze ends when the read model's event time reaches its day, through the feed.
    assert one not in server.at_risk()
    later = snap(two, (until - START).days - 1)  # its day closes at the snooze's day
    producer.send(dep.topics["health"], key=two.encode(), value=orjson.dumps(later))
    producer.flush()
    dep.wait_for(lambda: one in server.at_risk(), 60, "the snooze to end in event time")
    assert two not in server.at_risk()  # a dismissal lasts for the episode

    # The dismissal, exported for calibrate: once, though the topic holds it twice.
    exported = _cli(dep, server.base, "alerts", "actions", "--kind", "dismiss")
    lines = [orjson.loads(x) for x in exported.splitlines()]
    assert [(x["alert_id"], x["reason"], x["by"]) for x in lines] == [
        (alert_two, "paid by wire", "api")]  # fmt: skip
