"""What the end-to-end tests share: one seeded log, the alerts replay gives for it, and
workers on RocksDB, the production store.

:class:`~stream.devtools.deployment.Deployment` defaults to the memory store; these tests pass
``CHURNWATCH_STORE`` themselves, and give each worker a data directory of its own, as
production does (two RocksDB workers in one directory would fight over its locks). The memory
store keeps a parity test of its own (``test_live_parity.py``), so both stores that
``agents/table_writer.py`` writes to are guarded.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import orjson
import pytest

from stream.devtools.deployment import Deployment

PARTITIONS = 3
STORES = ("rocksdb", "memory")
ROCKSDB = {"CHURNWATCH_STORE": "rocksdb"}
"""Environment of a deployment whose workers run on RocksDB."""
JUNK_LINES = [
    b"not json",
    b'{"type": "login"}',
    b'{"type": "nps_response", "event_id": "j1", "account_id": "acct-00001", '
    b'"ts": "2026-02-01T00:00:00Z", "score": 99}',
    b"[1, 2, 3]",
]
"""Lines that are not valid events, mixed into logs to test dead-lettering."""


@pytest.fixture(scope="session")
def simulated(tmp_path_factory) -> tuple[Path, set[bytes]]:
    """A seeded log and the alerts ``churnwatch replay`` gives for it with 3 partitions (its
    health snapshots are written beside the log, see :func:`replay_health`)."""
    work = tmp_path_factory.mktemp("sim")
    log = work / "log.jsonl"
    probe = Deployment("unused:0", work)
    probe.cli("simulate", "--accounts", "90", "--days", "110", "--seed", "21",
              "--jitter-seconds", "60", "--duplicates", "0.01", "-o", str(log))  # fmt: skip
    probe.cli("replay", str(log), "-o", str(work / "replay.jsonl"), "--partitions",
              str(PARTITIONS), "--health-out", str(work / "health.jsonl"), "-q")  # fmt: skip
    expected = set((work / "replay.jsonl").read_bytes().splitlines())
    assert len(expected) >= 100, "the log must give enough alerts to compare"
    return log, expected


@pytest.fixture(scope="session")
def replay_health(simulated) -> list[bytes]:
    """The account-health snapshots replay gives for the simulated log, in order."""
    log, _ = simulated
    return log.with_name("health.jsonl").read_bytes().splitlines()


def latest_by_account(payloads: list[bytes]) -> dict[str, bytes]:
    """Each account's last snapshot, as compaction (and the read model) keep it."""
    return {orjson.loads(p)["account_id"]: p for p in payloads}


def start_worker(
    dep: Deployment, command: list[str] | None = None, **extra: str
) -> subprocess.Popen:
    """Start a worker with a data directory of its own (RocksDB locks its files)."""
    data = dep.workdir / f"data-{dep.app_id}-{len(dep.workers)}"
    return dep.start_worker(command, CHURNWATCH_DATA_DIR=str(data), **extra)
