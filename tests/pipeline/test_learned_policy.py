"""A policy that calibrate learned (a churn-risk model over per-feature counts) gives the same
alerts live as in replay: the worker scores the model with the same dot product over the same
feature vector, from state that round-trips through the changelog."""

from __future__ import annotations

import orjson
import pytest

from stream.devtools.deployment import Deployment
from tests.pipeline.conftest import PARTITIONS, start_worker

pytestmark = pytest.mark.slow


@pytest.fixture
def learned(kafka, tmp_path, simulated):
    """A deployment, the log, a policy learned from it, and replay's alerts under that policy."""
    log, _ = simulated
    dep = Deployment(kafka, tmp_path, partitions=PARTITIONS, CHURNWATCH_STORE="rocksdb")
    policy = tmp_path / "learned.toml"
    # --holdout 0 learns on every account and writes the model without the held-out verdict:
    # this test is about scoring a model live, not about whether it is a good one.
    dep.cli("calibrate", str(log), "--holdout", "0", "-o", str(policy), "-q",
            "--report", str(tmp_path / "calibration.json"))  # fmt: skip
    assert "[risk_model]" in policy.read_text()
    out = tmp_path / "replay.jsonl"
    dep.cli("replay", str(log), "--policy", str(policy), "-o", str(out),
            "--partitions", str(PARTITIONS), "-q")  # fmt: skip
    yield dep, log, policy, set(out.read_bytes().splitlines())
    dep.stop_all()


def test_the_worker_scores_a_learned_model_exactly_as_replay_does(learned):
    dep, log, policy, expected = learned
    alerts = [orjson.loads(raw) for raw in expected]
    reasons = [r for a in alerts if a["kind"] not in ("resolved", "churned") for r in a["reasons"]]
    risk = [r for r in reasons if r["signal"] == "churn_risk"]
    assert risk, "the learned model must fire in this log, or the test proves nothing"
    assert all("mostly from:" in r["explanation"] for r in risk)
    dep.cli("produce", str(log), "-q")
    start_worker(dep, CHURNWATCH_POLICY=str(policy))
    dep.wait_for(lambda: dep.progress() >= 1.0, 300, "the worker to catch up")
    payloads = [r.value for r in dep.read("alerts")]
    assert set(payloads) == expected
    assert len(payloads) == len(expected)
