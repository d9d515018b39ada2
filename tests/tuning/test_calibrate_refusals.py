"""calibrate on a log it cannot learn from says why, in one line, and writes nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

from stream.devtools.simulator import SimConfig, generate, serialize

USAGE = {b"login", b"session", b"feature_used"}
CALIBRATE = [sys.executable, "-m", "stream.cli", "calibrate"]


def _log(path: Path, keep_usage: bool = True, **config) -> Path:
    lines = serialize(generate(SimConfig(accounts=40, days=60, seed=9, **config)))
    with path.open("wb") as out:
        for line in lines:
            if keep_usage or orjson.loads(line)["type"].encode() not in USAGE:
                out.write(line)
    return path


def _calibrate(log: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    policy = tmp_path / "policy.toml"
    done = subprocess.run(
        [*CALIBRATE, str(log), "-o", str(policy), "-q", "--report", str(tmp_path / "r.json")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert not policy.exists(), "a refused calibration writes no policy"
    return done


def test_a_log_without_churners_is_refused_with_a_reason(tmp_path):
    log = _log(tmp_path / "calm.jsonl", scenario="level", monthly_churn=0.0)
    done = _calibrate(log, tmp_path)
    assert done.returncode == 1
    assert "no account in the learning set cancelled" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_log_without_usage_is_refused_with_a_reason(tmp_path):
    log = _log(tmp_path / "no-usage.jsonl", keep_usage=False, scenario="level", monthly_churn=0.2)
    done = _calibrate(log, tmp_path)
    assert done.returncode == 1
    assert "the log has no product usage" in done.stderr
    assert "Traceback" not in done.stderr
