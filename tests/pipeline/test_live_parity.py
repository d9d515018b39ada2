"""The whole pipeline on a real broker: the worker agrees with replay, survives kill -9, and
dead-letters bad records without losing good ones."""

from __future__ import annotations

from collections import Counter

import orjson
import pytest
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic

from stream.core.engine import partition_for
from stream.devtools.deployment import Deployment
from tests.pipeline.conftest import (
    JUNK_LINES,
    PARTITIONS,
    STORES,
    latest_by_account,
    start_worker,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def deployment(kafka, tmp_path, request):
    """A deployment on RocksDB, the production store, unless the test asks for another."""
    store = getattr(request, "param", "rocksdb")
    dep = Deployment(kafka, tmp_path, partitions=PARTITIONS, CHURNWATCH_STORE=store)
    yield dep
    dep.stop_all()


def _caught_up(dep: Deployment) -> bool:
    return dep.progress() >= 1.0


@pytest.mark.parametrize("deployment", STORES, indirect=True)
def test_worker_gives_exactly_the_alerts_replay_gives(deployment, simulated, replay_health):
    log, expected = simulated
    deployment.cli("produce", str(log), "-q")
    start_worker(deployment)
    deployment.wait_for(lambda: _caught_up(deployment), 300, "the worker to catch up")
    records = deployment.read("alerts")
    payloads = [r.value for r in records]
    assert set(payloads) == expected
    assert len(payloads) == len(expected), "no alert was published twice in a clean run"
    for record in records:
        assert record.key == orjson.loads(record.value)["account_id"].encode()
    # Health snapshots: replay's, one per account and closed day, keyed by account.
    health = deployment.read("health")
    assert sorted(r.value for r in health) == sorted(replay_health)
    assert all(r.key == orjson.loads(r.value)["account_id"].encode() for r in health)


def test_kill_9_halfway_then_restart_loses_nothing(deployment, simulated, replay_health):
    log, expected = simulated
    deployment.cli("produce", str(log), "-q")
    first = deployment.start_worker()  # both workers share the deployment's data directory
    deployment.wait_for(lambda: deployment.progress() >= 0.4, 300, "the first half")
    deployment.kill(first)
    halfway = {r.value for r in deployment.read("alerts")}
    assert 0 < len(halfway) < len(expected), "the crash must really be halfway"

    # The same data directory: RocksDB may hold states newer than the changelog's.
    deployment.start_worker()
    deployment.wait_for(lambda: _caught_up(deployment), 300, "the restarted worker")
    payloads = [r.value for r in deployment.read("alerts")]
    assert set(payloads) == expected, "state came back from the changelog: same alerts"
    # Alerts published again after the restart are byte-identical re-sends (same ids).
    again = Counter(payloads)
    assert all(orjson.loads(p)["alert_id"] for p in again)
    assert sum(again.values()) >= len(expected)
    # Every snapshot replay makes was published (some twice, byte-identical), none other.
    health = [r.value for r in deployment.read("health")]
    assert set(health) == set(replay_health)
    assert latest_by_account(health) == latest_by_account(replay_health)


def test_bad_records_go_to_the_dead_letter_topic_and_good_ones_are_processed(
    deployment, simulated, tmp_path
):
    log, expected = simulated
    lines = log.read_bytes().splitlines()
    junk = [*JUNK_LINES, b"\xff\xfe\x00"]  # and bytes that are not UTF-8
    mixed = lines[:5000] + junk + lines[5000:]
    mixed_log = tmp_path / "mixed.jsonl"
    mixed_log.write_bytes(b"\n".join(mixed) + b"\n")
    deployment.cli("produce", str(mixed_log), "--send-invalid", "-q",
                   "--rejects", str(tmp_path / "rejects.jsonl"))  # fmt: skip

    # A valid billing event on the usage topic is refused too: it would be merged as usage.
    producer = KafkaProducer(bootstrap_servers=deployment.bootstrap)
    wrong_topic = orjson.dumps(
        {
            "type": "invoice_paid",
            "event_id": "wt-1",
            "account_id": "acct-00002",
            "ts": "2026-01-06T00:00:00Z",
        }
    )
    producer.send(deployment.topics["usage"], key=b"acct-00002", value=wrong_topic)
    producer.flush()
    producer.close()

    start_worker(deployment)
    deployment.wait_for(lambda: _caught_up(deployment), 300, "the worker to catch up")
    dead = deployment.read("dead_letter")
    assert sorted(r.value for r in dead) == sorted([*junk, wrong_topic])
    reasons = {r.value: dict(r.headers)["churnwatch-reason"].decode() for r in dead}
    assert reasons[b"not json"].startswith("not valid JSON")
    assert reasons[junk[2]] == "score: Input should be less than or equal to 10"
    assert reasons[wrong_topic] == "invoice_paid belongs on the billing topic"
    for record in dead:
        headers = dict(record.headers)
        assert headers["churnwatch-source-topic"] == deployment.topics["usage"].encode()
        assert int(headers["churnwatch-source-offset"]) >= 0
    assert {r.value for r in deployment.read("alerts")} == expected, "every valid record counted"


def test_a_corrupt_table_value_stops_the_worker_with_a_message_naming_it(deployment):
    """Not a restart loop that keeps the process up while its offsets never move."""
    admin = KafkaAdminClient(bootstrap_servers=deployment.bootstrap)
    changelog = f"{deployment.app_id}-accounts-changelog"
    admin.create_topics([NewTopic(changelog, PARTITIONS, 1,
                                  topic_configs={"cleanup.policy": "compact"})])  # fmt: skip
    admin.close()
    deployment.cli("worker", "--check")
    account = "acct-corrupt"
    partition = partition_for(account, PARTITIONS)
    producer = KafkaProducer(bootstrap_servers=deployment.bootstrap)
    producer.send(changelog, key=account.encode(), value=b"garbage", partition=partition)
    login = {"event_id": "c1", "account_id": account, "type": "login", "ts": "2026-01-05T00:00:00Z"}
    producer.send(deployment.topics["usage"], key=account.encode(), value=orjson.dumps(login),
                  partition=partition)  # fmt: skip
    producer.flush()
    producer.close()
    worker = start_worker(deployment)
    assert worker.wait(120) != 0
    assert "table value for 'acct-corrupt': not a churnwatch account state" in (
        deployment.worker_logs()
    )
