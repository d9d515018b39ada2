"""What the end-to-end tests share: one seeded log and the alerts replay gives for it."""

from __future__ import annotations

from pathlib import Path

import pytest

from stream.devtools.deployment import Deployment

PARTITIONS = 3
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
    """A seeded log and the alerts ``churnwatch replay`` gives for it with 3 partitions."""
    work = tmp_path_factory.mktemp("sim")
    log = work / "log.jsonl"
    probe = Deployment("unused:0", work)
    probe.cli("simulate", "--accounts", "90", "--days", "110", "--seed", "21",
              "--jitter-seconds", "60", "--duplicates", "0.01", "-o", str(log))  # fmt: skip
    probe.cli("replay", str(log), "-o", str(work / "replay.jsonl"), "--partitions",
              str(PARTITIONS), "-q")  # fmt: skip
    expected = set((work / "replay.jsonl").read_bytes().splitlines())
    assert len(expected) >= 100, "the log must give enough alerts to compare"
    return log, expected
