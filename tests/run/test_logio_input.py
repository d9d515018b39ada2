"""What users fed the log reader (issue 12): a byte-order mark, a cut .gz, a runaway line.

Each is checked where it is read (:class:`stream.run.logio.LogReader`) and where it ends up:
replay's events and rejects, and the records ``churnwatch produce`` would send.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from schemas.codec import dumps
from stream.core.engine import PartitionedEngine
from stream.core.policy import load_policy
from stream.kafka.produce import produce
from stream.kafka.settings import WorkerSettings
from stream.run.logio import BOM, LogReader
from stream.run.replay import replay
from tests.helpers import at, event


def _events(n: int) -> list[bytes]:
    return [dumps(event("login", ts=at(i + 1), user_id=f"u{i}")) + b"\n" for i in range(n)]


def _read(path: Path, **kwargs) -> tuple[list[tuple[int, bytes]], LogReader]:
    with LogReader(str(path), **kwargs) as reader:
        return list(reader), reader


class FakeProducer:
    """Records what would go to Kafka."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes]] = []

    def send(self, topic: str, key: bytes | None = None, value: bytes = b"", **_: object) -> None:
        self.sent.append((topic, key, value))

    def flush(self) -> None:
        pass


# byte-order mark


@pytest.mark.parametrize("zipped", [False, True], ids=["plain", "gzip"])
def test_a_byte_order_mark_is_not_part_of_the_first_line(tmp_path, zipped):
    lines = _events(2)
    data = BOM + b"".join(lines)
    path = tmp_path / ("log.jsonl.gz" if zipped else "log.jsonl")
    path.write_bytes(gzip.compress(data) if zipped else data)
    read, _ = _read(path)
    assert read == [(1, lines[0]), (2, lines[1])]


def test_only_a_leading_byte_order_mark_is_dropped(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_bytes(_events(1)[0] + BOM + b"{}\n")
    read, _ = _read(path)
    assert read[1] == (2, BOM + b"{}\n"), "a mark inside the file is data, and judged as such"


def test_replay_takes_the_first_event_of_a_log_with_a_byte_order_mark(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_bytes(BOM + b"".join(_events(3)))
    rejects: list[bytes] = []
    with LogReader(str(path)) as reader:
        report = replay(reader, PartitionedEngine(load_policy(None)), lambda _: None,
                        rejects.append)  # fmt: skip
    assert (report.events, report.rejected, rejects) == (3, 0, [])


def test_produce_sends_the_first_event_of_a_log_with_a_byte_order_mark(tmp_path):
    lines = _events(2)
    path = tmp_path / "log.jsonl"
    path.write_bytes(BOM + b"".join(lines))
    producer, rejects = FakeProducer(), []
    with LogReader(str(path)) as reader:
        report = produce(reader, producer, WorkerSettings(), rejects.append)  # type: ignore[arg-type]
    assert (report.sent, report.rejected, rejects) == (2, 0, [])
    assert producer.sent[0] == ("usage", b"acct-1", lines[0].rstrip(b"\n"))
