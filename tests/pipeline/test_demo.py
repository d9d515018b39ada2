"""The README's first command: the demo runs end to end and shows alerts as they fire."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def test_demo_runs_a_broker_a_worker_and_a_feed_and_prints_alerts():
    done = subprocess.run(
        [sys.executable, "-m", "stream.cli", "demo", "--accounts", "60", "--days", "75",
         "--seconds", "12"],
        capture_output=True, timeout=600, check=False,
    )  # fmt: skip
    err = " ".join(done.stderr.decode().split())  # messages wrap at 80 columns
    assert done.returncode == 0, err
    lines = done.stdout.decode().splitlines()
    assert len(lines) >= 10, err
    # One episode per account at risk, led by its most severe reason: a drop reads as one.
    opened = [line for line in lines if " opened " in line]
    assert any("Logins fell" in line or "No product activity" in line for line in opened), lines
    assert "episodes opened: account_at_risk" in err
    assert "engagement_drop" in err.split("signals behind them")[1]
    # The demo checks itself: the worker's records are the ones replay gives for its feed.
    assert "live equals replay: yes" in err, err
