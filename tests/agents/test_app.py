"""The worker is wired as one piece, and the agents' imports go one way (no cycle)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from agents.app import build_app
from stream.kafka.settings import load_settings


def test_the_agent_modules_never_import_the_app_module():
    code = (
        "import sys, agents.ingest, agents.checkpointer, agents.hooks, agents.intake, "
        "agents.metrics; assert 'agents.app' not in sys.modules, 'agents.app was imported'"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, check=False)
    assert done.returncode == 0, done.stderr.decode()


@pytest.mark.parametrize("store", ["rocksdb", "memory"])
def test_build_app_registers_the_ingest_agent_on_either_store(store, tmp_path):
    settings = load_settings({"CHURNWATCH_STORE": store, "CHURNWATCH_DATA_DIR": str(tmp_path)})
    churn = build_app(settings)
    assert list(churn.app.agents) == ["churnwatch-ingest"]
    assert churn.topics == (settings.usage_topic, settings.billing_topic)
    assert churn.app.conf.store.scheme == store
