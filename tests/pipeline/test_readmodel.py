"""The read model end to end: worker, Kafka, ``churnwatch serve``, Redis, the API and page.

One run, shared by the tests below: a seeded log goes into Kafka in two halves, a worker
turns it into alerts and daily account-health snapshots, and ``churnwatch serve`` keeps Redis
up to date from the alerts and health topics. ``redis-server`` is stopped after the first half
and started again once the worker has finished the second; the read model must end up
exactly as the two topics fold, with nothing lost. A value on the health topic that is not a
snapshot is counted and skipped.
"""

from __future__ import annotations

import re
import sys
import time
import urllib.request
from urllib.error import HTTPError
from urllib.parse import quote

import orjson
import pytest
from kafka import KafkaProducer

from schemas.events import decode_event
from stream.core.portfolio import Portfolio
from stream.devtools.brokers import free_port
from stream.devtools.deployment import Deployment
from stream.devtools.redis_server import RedisServer
from stream.sinks.health_model import HealthModel, list_fields
from stream.sinks.readmodel import fold
from tests.browser import Marks, render
from tests.pipeline.conftest import PARTITIONS, ROCKSDB, latest_by_account


def _get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, orjson.loads(response.read())
    except HTTPError as exc:
        return exc.code, orjson.loads(exc.read())


@pytest.fixture(scope="module")
def served(kafka, simulated, tmp_path_factory):
    log, _ = simulated
    work = tmp_path_factory.mktemp("served")
    redis_server = RedisServer()
    redis_server.start()
    port = free_port()
    dep = Deployment(kafka, work, partitions=PARTITIONS, prefix="rm",
                     CHURNWATCH_REDIS_URL=redis_server.url, CHURNWATCH_API_PORT=str(port),
                     CHURNWATCH_LOG_LEVEL="info", **ROCKSDB)  # fmt: skip
    health_topic = dep.topics["health"]
    lines = log.read_bytes().splitlines(keepends=True)
    halves = [work / "first.jsonl", work / "second.jsonl"]
    halves[0].write_bytes(b"".join(lines[: len(lines) // 2]))
    halves[1].write_bytes(b"".join(lines[len(lines) // 2 :]))
    dep.cli("produce", str(halves[0]), "-q")
    dep.start_worker()
    dep.start_worker([sys.executable, "-m", "stream.cli", "serve"])
    base = f"http://127.0.0.1:{port}"
    try:
        dep.wait_for(lambda: dep.progress() >= 1.0, 300, "the worker to finish the first half")

        def in_redis() -> bool:
            status, body = _get(f"{base}/alerts/open?limit=1000")
            return status == 200 and len(body["alerts"]) > 0

        dep.wait_for(in_redis, 60, "the first alerts in Redis")
        producer = KafkaProducer(bootstrap_servers=dep.bootstrap)
        producer.send(health_topic, key=b"acct-junk", value=b"not a snapshot")
        producer.send(health_topic, key=b"acct-junk", value=b'{"account_id": "acct-junk"}')
        producer.flush()
        producer.close()
        redis_server.stop()  # the outage: the worker goes on, the feed holds its batch
        before = len(dep.read("alerts"))
        dep.cli("produce", str(halves[1]), "-q")
        dep.wait_for(lambda: dep.progress() >= 1.0, 300, "the worker to finish the log")
        assert len(dep.read("alerts")) > before + 10  # alerts kept coming during the outage
        status, body = _get(f"{base}/healthz")
        assert status == 503 and body["redis"] is False
        time.sleep(2)
        redis_server.start()
        records = dep.read("alerts")
        expected = fold(orjson.loads(r.value) for r in sorted(
            records, key=lambda r: (r.partition, r.offset)))  # fmt: skip

        def caught_up() -> bool:
            status, body = _get(f"{base}/alerts/open?limit=1000")
            want = {a for episodes in expected.open_alerts.values() for a in episodes}
            return status == 200 and {a["alert_id"] for a in body["alerts"]} == want

        dep.wait_for(caught_up, 120, "the read model to catch up")
        health = HealthModel()
        for record in sorted(dep.read("health"), key=lambda r: (r.partition, r.offset)):
            if record.key != b"acct-junk":
                health.apply(orjson.loads(record.value))
        assert len(health.latest) == 90  # every account of the log, alerted or not

        def snapshots_in() -> bool:
            status, body = _get(f"{base}/accounts?limit=1000")
            days = {r["account_id"]: r["snapshot_day"] for r in body.get("accounts", [])}
            return status == 200 and days == {
                a: s["day"] for a, s in health.latest.items()}  # fmt: skip

        dep.wait_for(snapshots_in, 120, "the health snapshots in Redis")
        yield dep, base, expected, work, health
    finally:
        dep.stop_all()
        redis_server.stop()


def _row(expected, health: HealthModel, account: str) -> dict:
    """The account's row as the two topics fold: facts from the newer of alert and snapshot."""
    snapshot = health.latest.get(account)
    return expected.row(account, list_fields(snapshot) if snapshot else None)


def test_after_a_redis_outage_the_read_model_equals_the_alert_topics_fold(served):
    dep, base, expected, _, health = served
    assert "Redis write failed" in dep.worker_logs()  # the outage really happened mid-run
    for account, view in expected.accounts.items():
        status, body = _get(f"{base}/accounts/{quote(account)}")
        assert status == 200, account
        row = _row(expected, health, account)
        assert body["health"] == row["health"] and body["last_alert_ts"] == view["last_alert_ts"]
        assert {a["alert_id"]: a["sequence"] for a in body["open_alerts"]} == {
            a: e["sequence"] for a, e in expected.open_alerts.get(account, {}).items()
        }
    _, body = _get(f"{base}/accounts/at-risk?limit=1000")
    ranked = {v["account_id"]: v["risk"] for v in body["accounts"]}
    # At risk means an open alert, whatever the health figure.
    assert ranked == {a: _row(expected, health, a)["risk"]
                      for a, open_ in expected.open_alerts.items() if open_}  # fmt: skip
    _, body = _get(f"{base}/portfolio")
    assert {k: v for k, v in body.items() if k != "months"} == expected.mrr_at_risk()
    assert body["months"] == served_portfolio(dep)


def test_every_accounts_snapshots_reach_redis_and_a_bad_value_is_counted(served):
    _, base, expected, _, health = served
    status, body = _get(f"{base}/accounts?limit=1000")
    assert status == 200 and body["totals"]["accounts"] == len(health.latest) == 90
    assert {r["account_id"] for r in body["accounts"]} == set(health.latest)
    never = sorted(set(health.latest) - set(expected.accounts))
    for account in [*never[:3], *sorted(expected.accounts)[:3]]:
        status, view = _get(f"{base}/accounts/{quote(account)}")
        assert status == 200 and view["snapshot"] == health.latest[account], account
        # The topic is compacted: what it still holds is a subset of what the feed applied.
        days = {p["day"]: p for p in view["history"]}
        assert all(days.get(p["day"]) == p for p in health.history(account)), account
        assert view["history"][-1]["day"] == health.latest[account]["day"]
    assert never, "the log should have accounts that were never alerted"
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as response:
        metrics = response.read().decode()
    invalid = re.search(r"^churnwatch_readmodel_health_invalid_total (\S+)$", metrics, re.M)
    assert invalid and float(invalid.group(1)) == 2.0


def test_every_account_in_redis_has_replays_latest_snapshot(served, replay_health):
    """The issue's end-to-end check: the read model's latest health of every account of the
    log is byte for byte what ``churnwatch replay --health-out`` gives for it."""
    _, base, _, _, _ = served
    latest = {account: orjson.loads(raw) for account, raw in
              latest_by_account(replay_health).items()}  # fmt: skip
    assert len(latest) == 90
    for account, snapshot in sorted(latest.items()):
        status, view = _get(f"{base}/accounts/{quote(account)}")
        assert status == 200 and view["snapshot"] == snapshot, account
        assert view["health"] == snapshot["health"] or view["last_alert_ts"] > snapshot["ts"]


def served_portfolio(dep: Deployment) -> list[dict]:
    """The backtest's portfolio of the same log, in the order the billing topic holds it, with
    what became of the alerted accounts (from every record on the alerts topic)."""
    reference = Portfolio()
    for record in sorted(dep.read("billing"), key=lambda r: (r.partition, r.offset)):
        reference.observe(decode_event(record.value))
    for record in dep.read("alerts"):
        reference.alert(orjson.loads(record.value))
    return reference.report()


def test_terminal_tail_and_account(served):
    dep, _, expected, _, _ = served
    done = dep.cli("alerts", "tail", "--from-beginning", "--max", "5", "--idle-seconds", "20")
    lines = done.stdout.decode().splitlines()
    assert len(lines) == 5 and all(" opened " in line or " resolved " in line or " updated "
                                   in line for line in lines)  # fmt: skip
    done = dep.cli("alerts", "tail", "--from-beginning", "--json", "--severity", "critical",
                   "--idle-seconds", "5")  # fmt: skip
    shown = [orjson.loads(line) for line in done.stdout.splitlines()]
    assert shown and all(a["severity"] == "critical" for a in shown)
    # My accounts: one owner's alerts, the name given in another case, and all of them.
    records = [orjson.loads(r.value) for r in dep.read("alerts")]
    owner = sorted({a["account"].get("owner") or "" for a in records} - {""})[0]
    done = dep.cli("alerts", "tail", "--from-beginning", "--json", "--owner", owner.upper(),
                   "--idle-seconds", "5")  # fmt: skip
    shown = [orjson.loads(line) for line in done.stdout.splitlines()]
    assert sorted((a["alert_id"], a["sequence"]) for a in shown) == sorted(
        (a["alert_id"], a["sequence"]) for a in records if a["account"].get("owner") == owner
    )
    assert 0 < len(shown) < len(records)
    account = next(a for a, episodes in expected.open_alerts.items() if episodes)
    text = dep.cli("account", account).stdout.decode()
    assert account in text and "why:" in text and "held against" in text
    missing = dep.cli("account", "no-such-account", check=False)
    assert missing.returncode == 1 and b"is not in the read model" in missing.stderr


def test_the_documented_python_consumer_applies_the_idempotency_rule(served):
    dep, _, expected, _, _ = served
    done = dep.cli_script("examples/alerts_consumer.py", "--bootstrap", dep.bootstrap,
                          "--topic", dep.topics["alerts"], "--group", "doc-example")  # fmt: skip
    lines = done.stdout.decode().splitlines()
    open_now = sum(len(episodes) for episodes in expected.open_alerts.values())
    assert lines[-1] == f"{open_now} open episodes"


def test_the_page_renders_accounts_with_charts_and_alerts_in_chromium(served, tmp_path):
    _, base, expected, _, _ = served
    marks = Marks()
    _, shot = render(f"{base}/", tmp_path, marks)
    at_risk = sum(1 for open_ in expected.open_alerts.values() if open_)
    assert marks.classes.get("acct") == min(at_risk, 50)
    assert marks.classes.get("engagement") == marks.classes["acct"]  # a chart per account
    assert marks.classes.get("series", 0) >= 1 and marks.classes.get("danger", 0) >= 1
    assert marks.classes.get("alert", 0) >= marks.classes["acct"]
    assert shot > 20_000
    account = next(a for a, episodes in expected.open_alerts.items() if episodes)
    detail = Marks()
    render(f"{base}/view/accounts/{quote(account)}", tmp_path, detail)
    assert detail.classes.get("acct") == 1
    # The trend and timeline always; the alert's login chart when it carries usage evidence.
    assert detail.classes.get("trend") == 1 and detail.classes.get("timeline") == 1
    assert detail.classes.get("engagement", 0) <= 1
