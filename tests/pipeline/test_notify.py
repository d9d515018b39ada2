"""``churnwatch notify`` on a real broker against a webhook that fails, times out and drops
connections, killed with -9 halfway: every notification arrives, and a key that came twice
came with the same body (a receiver that keeps keys acts once)."""

from __future__ import annotations

import sys

import orjson
import pytest
from kafka import KafkaProducer

from schemas.alerts import SEVERITY_RANK
from stream.devtools.deployment import Deployment
from stream.devtools.webhook_receiver import Faults, WebhookReceiver
from stream.sinks.notify_format import verify
from tests.pipeline.conftest import PARTITIONS

pytestmark = pytest.mark.slow
SECRET = "pipeline-secret"


def _expected_keys(alerts: list[dict]) -> set[str]:
    """Opened episodes and updates that raised the severity, worked out from the records."""
    rank: dict[str, int] = {}
    keys = set()
    for alert in alerts:
        before = rank.get(alert["alert_id"])
        now = SEVERITY_RANK[alert["severity"]]
        if alert["kind"] == "opened" or (
            alert["kind"] == "updated" and before is not None and now > before
        ):
            keys.add(f"all:{alert['alert_id']}:{alert['sequence']}")
        rank[alert["alert_id"]] = now
    return keys


def test_every_notification_arrives_through_faults_and_a_kill_9(kafka, tmp_path, simulated):
    log, _ = simulated
    alerts = [
        orjson.loads(line) for line in log.with_name("replay.jsonl").read_bytes().splitlines()
    ]
    expected = _expected_keys(alerts)
    assert len(expected) >= 50
    dep = Deployment(kafka, tmp_path, partitions=PARTITIONS, CW_HOOK_SECRET=SECRET)
    dep.cli("worker", "--check")  # creates the topics
    producer = KafkaProducer(bootstrap_servers=kafka)
    for alert in alerts:
        producer.send(dep.topics["alerts"], key=alert["account_id"].encode(),
                      value=orjson.dumps(alert))  # fmt: skip
    producer.flush()
    producer.close()

    faults = Faults(error_rate=0.25, drop_rate=0.1, slow_rate=0.05, slow_seconds=1.0, seed=7)
    with WebhookReceiver(faults) as hook:
        config = tmp_path / "notify.toml"
        config.write_text(
            "retry_base_seconds = 0.05\nretry_max_seconds = 0.5\n"
            f'[[route]]\nname = "all"\nurl = "{hook.url}"\nformat = "json"\n'
            'secret_env = "CW_HOOK_SECRET"\ntimeout_seconds = 0.5\n'
        )
        outbox = str(tmp_path / "outbox.db")
        command = [sys.executable, "-m", "stream.cli", "notify", "--config", str(config),
                   "--outbox", outbox, "--from-beginning"]  # fmt: skip
        first = dep.start_worker(command)
        dep.wait_for(lambda: len(set(hook.keys())) >= len(expected) * 0.4, 120,
                     "the first notifier to deliver 40%")  # fmt: skip
        dep.kill(first)
        halfway = len(set(hook.keys()))
        assert halfway < len(expected), "the kill must come before the end"
        dep.start_worker(command)
        dep.wait_for(lambda: set(hook.keys()) >= expected, 180, "every notification")

        def outbox_status() -> dict:
            return orjson.loads(dep.cli("notify", "--config", str(config), "--outbox", outbox,
                                        "--status").stdout)  # fmt: skip

        # A request that timed out may have been taken all the same: the outbox retries it
        # (the receiver sees its key again) until a 2xx reaches the notifier.
        dep.wait_for(lambda: "pending" not in outbox_status(), 60, "the outbox to empty")
        dep.stop_all()
        keys = hook.keys()
        assert set(keys) == expected, "nothing lost and nothing invented"
        bodies: dict[str, bytes] = {}
        for accepted in hook.accepted:
            assert bodies.setdefault(accepted.key, accepted.body) == accepted.body
            assert verify(SECRET.encode(), accepted.signature or "", accepted.body,
                          int(accepted.at))  # fmt: skip
        assert outbox_status() == {"delivered": len(expected)}
        assert hook.refused > 0
        print(f"{len(expected)} notifications, {len(keys) - len(expected)} keys twice "
              f"(timeouts and the kill), {hook.refused} refused attempts")  # fmt: skip
