"""A seeded simulated log gives the expected alerts, and decliners are caught in time.

The golden file pins the exact alert stream of a small seeded log (one line per alert plus a
digest of the full payloads), so any change of behaviour shows up as a readable diff. After an
intended change, regenerate it with ``UPDATE_GOLDEN=1 pytest tests/stream/test_golden.py`` and
review the diff like code.
"""

from __future__ import annotations

import hashlib
import os
from datetime import datetime
from pathlib import Path

import pytest

from schemas.alerts import AlertEvent
from schemas.codec import dump_model
from stream.core.engine import PartitionedEngine
from stream.core.policy import load_policy
from stream.devtools.simulator import DECLINING, Label, Noise, SimConfig, generate, serialize
from stream.run.replay import replay

GOLDEN = Path(__file__).parents[1] / "golden" / "replay_seed11_300x150.txt"
CONFIG = SimConfig(accounts=300, days=150, seed=11)


@pytest.fixture(scope="module")
def run() -> tuple[list, list[Label]]:
    labels: list[Label] = []
    lines = serialize(
        generate(CONFIG, labels), Noise(jitter_seconds=120, duplicate_rate=0.01, seed=CONFIG.seed)
    )
    out: list[bytes] = []
    replay(enumerate(lines, 1), PartitionedEngine(load_policy(None)), out.append, _refuse)
    return [AlertEvent.model_validate_json(raw) for raw in out], labels


def _refuse(record: bytes) -> None:
    raise AssertionError(f"the simulated log has no bad lines: {record!r}")


def _render(alerts: list) -> str:
    digest = hashlib.sha256(b"".join(dump_model(a) + b"\n" for a in alerts)).hexdigest()
    rows = [
        f"{a.ts.isoformat()} {a.account_id} {a.signal} {a.kind} {a.severity} {a.alert_id}"
        for a in alerts
    ]
    return (
        f"# {len(alerts)} alerts, sha256 of the JSONL payloads: {digest}\n" + "\n".join(rows) + "\n"
    )


def test_seeded_log_gives_the_golden_alerts(run):
    alerts, _ = run
    rendered = _render(alerts)
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(rendered)
    expected = GOLDEN.read_text()
    assert rendered.splitlines()[1:] == expected.splitlines()[1:], "the alert stream changed"
    assert rendered.splitlines()[0] == expected.splitlines()[0], "alert payloads changed"


def test_every_clearly_declining_churner_is_alerted_before_it_cancels(run):
    alerts, labels = run
    first_alert: dict[str, datetime] = {}
    for alert in alerts:
        if alert.kind == "opened":
            first_alert.setdefault(alert.account_id, alert.ts)
    decliners = [lb for lb in labels if lb.archetype in DECLINING and lb.outcome == "churned"]
    assert len(decliners) >= 20, "the seeded log must contain enough decliners to mean something"
    missed = [
        lb.account_id
        for lb in decliners
        if lb.account_id not in first_alert
        or first_alert[lb.account_id] >= datetime.fromisoformat(lb.cancel_ts)
    ]
    assert missed == []


def test_decliners_are_flagged_by_a_usage_signal_during_their_decline(run):
    alerts, labels = run
    usage = {"engagement_drop", "time_in_product_drop", "danger_zone", "footprint_shrink"}
    for label in labels:
        if label.archetype not in DECLINING or label.outcome != "churned":
            continue
        cancelled = datetime.fromisoformat(label.cancel_ts)
        days = [
            (a.ts - CONFIG.start).days
            for a in alerts
            if a.account_id == label.account_id
            and a.kind in ("opened", "updated")
            and a.signal in usage
            and a.ts < cancelled
        ]
        assert any(day >= label.decline_day for day in days), (
            f"{label.account_id} declined from day {label.decline_day} without a usage alert"
        )
