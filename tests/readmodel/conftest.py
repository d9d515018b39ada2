"""A real redis-server per session, and the alerts replay gives for a seeded log."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from stream.core.engine import PartitionedEngine
from stream.core.policy import load_policy
from stream.devtools.redis_server import RedisServer
from stream.devtools.simulator import SimConfig, generate, serialize
from stream.run.replay import replay
from stream.sinks.readmodel_store import RedisReadModel


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:  # a failure, never a skip: CI installs it
        pytest.fail("redis-server is not installed: `make test` installs it (scripts/provision.sh)")
    with RedisServer() as server:
        yield server


@pytest.fixture
def store(redis_server: RedisServer, request) -> RedisReadModel:
    """A read model under a prefix of its own, so tests never see each other's keys."""
    return RedisReadModel.from_url(redis_server.url, prefix=f"t-{request.node.name[:40]}")


@pytest.fixture(scope="session")
def replayed(tmp_path_factory) -> tuple[Path, list[dict]]:
    """A seeded log (200 accounts, 120 days) and its alerts as dicts, in replay order."""
    log = tmp_path_factory.mktemp("readmodel") / "log.jsonl"
    lines = list(serialize(generate(SimConfig(accounts=200, days=120, seed=13))))
    log.write_bytes(b"".join(lines))
    out: list[bytes] = []
    replay(enumerate(lines, 1), PartitionedEngine(load_policy(None)), out.append, lambda _: None)
    alerts = [orjson.loads(line) for line in out]
    assert len(alerts) > 200
    return log, alerts


@pytest.fixture(scope="session")
def replayed_health(replayed) -> tuple[list[dict], list[dict]]:
    """The same log replayed with health snapshots: (alerts, snapshots), each in the order
    the worker would publish them."""
    log, _ = replayed
    lines = log.read_bytes().splitlines(keepends=True)
    alerts: list[bytes] = []
    snapshots: list[bytes] = []
    replay(enumerate(lines, 1), PartitionedEngine(load_policy(None), 3, snapshots=True),
           alerts.append, lambda _: None, write_health=snapshots.append)  # fmt: skip
    assert len(snapshots) > 200 * 100
    return [orjson.loads(x) for x in alerts], [orjson.loads(x) for x in snapshots]
