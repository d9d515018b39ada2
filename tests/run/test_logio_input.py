"""What users fed the log reader (issue 12): a byte-order mark, a cut .gz, a runaway line.

Each is checked where it is read (:class:`stream.run.logio.LogReader`) and where it ends up:
replay's events and rejects, and the records ``churnwatch produce`` would send.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import orjson
import pytest

from schemas.codec import dumps
from schemas.events import MAX_EVENT_BYTES
from stream.core.engine import PartitionedEngine
from stream.core.policy import load_policy
from stream.kafka.produce import produce
from stream.kafka.settings import WorkerSettings
from stream.run.logio import BOM, LogError, LogReader, RejectsFile
from stream.run.replay import replay
from stream.run.validate import (
    RAW_EXCERPT_BYTES,
    TOO_LARGE,
    OversizedLine,
    Rejection,
    reject_record,
    validate,
)
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


# oversized lines


def test_an_oversized_line_keeps_its_start_and_its_size_not_its_bulk(tmp_path):
    size = 3 * MAX_EVENT_BYTES + 17
    big = b'{"pad": "' + b"x" * (size - 11) + b'"}'
    assert len(big) == size
    (next_line,) = _events(1)
    path = tmp_path / "log.jsonl"
    path.write_bytes(big + b"\r\n" + next_line)
    read, _ = _read(path)
    (number, line), after = read
    assert number == 1 and isinstance(line, OversizedLine)
    assert line == big[:RAW_EXCERPT_BYTES] and line.size == size
    assert after == (2, next_line), "the next line is read whole"


def test_an_oversized_line_is_refused_with_its_size_and_its_start_in_the_rejects():
    line = OversizedLine(b'{"pad": "xxx', 200_000)
    verdict = validate(line)
    assert verdict == Rejection(
        f"line of 200000 bytes exceeds the {MAX_EVENT_BYTES}-byte event limit", TOO_LARGE
    )
    record = orjson.loads(reject_record(4, verdict.reason, line))
    assert record == {"line": 4, "reason": verdict.reason, "raw": '{"pad": "xxx', "bytes": 200_000}


def test_a_reject_longer_than_the_excerpt_says_how_long_it_was():
    raw = b"y" * (RAW_EXCERPT_BYTES + 10) + b"\n"
    record = orjson.loads(reject_record(1, "not valid JSON", raw))
    assert len(record["raw"]) == RAW_EXCERPT_BYTES and record["bytes"] == RAW_EXCERPT_BYTES + 10
    assert "bytes" not in orjson.loads(reject_record(1, "not valid JSON", b"y" * 10))


def test_replay_writes_an_oversized_lines_start_and_size_to_the_rejects(tmp_path):
    big = b'{"event_id": "' + b"z" * 100_000 + b'"}'
    path = tmp_path / "log.jsonl"
    path.write_bytes(big + b"\n" + b"".join(_events(2)))
    rejects: list[bytes] = []
    with LogReader(str(path)) as reader:
        report = replay(reader, PartitionedEngine(load_policy(None)), lambda _: None,
                        rejects.append)  # fmt: skip
    assert report.events == 2 and report.reject_reasons == {TOO_LARGE: 1}
    (record,) = [orjson.loads(r) for r in rejects]
    assert record["line"] == 1 and record["bytes"] == len(big)
    assert record["raw"] == big[:RAW_EXCERPT_BYTES].decode()
    assert "exceeds the 65536-byte event limit" in record["reason"]


def test_a_blank_line_stays_blank_however_long(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_bytes(b" " * 200_000 + b"\n" + _events(1)[0])
    read, _ = _read(path)
    assert read[0] == (1, b"\n")


def test_leading_blanks_do_not_hide_an_oversized_line(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_bytes(b" " * 100_000 + b"junk" + b"\n")
    ((_, line),), _ = _read(path)
    assert isinstance(line, OversizedLine) and line == b"junk" and line.size == 100_004


def test_produce_does_not_send_the_cut_start_of_an_oversized_line(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_bytes(b'{"a": "' + b"q" * 100_000 + b'"}\n' + _events(1)[0])
    producer, rejects = FakeProducer(), []
    with LogReader(str(path)) as reader:
        report = produce(reader, producer, WorkerSettings(), rejects.append,  # type: ignore[arg-type]
                         send_invalid=True)  # fmt: skip
    assert report.rejected == 1 and len(producer.sent) == 1
    assert orjson.loads(rejects[0])["bytes"] == 100_009


# a damaged .gz


def _truncated(tmp_path: Path, lines: list[bytes]) -> Path:
    whole = gzip.compress(b"".join(lines))
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(whole[: len(whole) * 2 // 3])
    return path


def test_a_truncated_gzip_raises_by_default(tmp_path):
    path = _truncated(tmp_path, _events(5000))
    with pytest.raises(LogError, match=r"truncated \.gz"):
        _read(path)


def test_a_truncated_gzip_yields_what_is_there_and_says_why_it_stopped(tmp_path):
    lines = _events(5000)
    path = _truncated(tmp_path, lines)
    read, reader = _read(path, stop_at_damage=True)
    assert 0 < len(read) < len(lines)
    assert [line for _, line in read] == lines[: len(read)], "every line yielded is whole"
    assert reader.incomplete is not None
    assert f"read failed after line {len(read)}" in reader.incomplete
    assert "truncated .gz" in reader.incomplete


def test_a_whole_log_is_complete(tmp_path):
    path = tmp_path / "log.jsonl.gz"
    path.write_bytes(gzip.compress(b"".join(_events(3))))
    read, reader = _read(path, stop_at_damage=True)
    assert len(read) == 3 and reader.incomplete is None


def test_corrupt_gzip_data_is_damage_too(tmp_path):
    data = bytearray(gzip.compress(b"".join(_events(5000))))
    data[-6] ^= 0xFF  # inside the CRC trailer
    path = tmp_path / "bad.jsonl.gz"
    path.write_bytes(bytes(data))
    read, reader = _read(path, stop_at_damage=True)
    assert reader.incomplete is not None and "corrupt" in reader.incomplete
    assert len(read) == 5000


# the rejects file


def test_rejects_to_a_device_or_pipe_leave_it_in_place(tmp_path):
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    with RejectsFile(str(pipe)):
        pass
    assert pipe.exists(), "a named pipe given as the rejects path is not removed"
    with RejectsFile(os.devnull) as rejects:
        rejects.write(b"x\n")
    assert Path(os.devnull).exists()


def test_a_stale_rejects_file_is_still_removed(tmp_path):
    stale = tmp_path / "r.jsonl"
    stale.write_bytes(b"old\n")
    with RejectsFile(str(stale)):
        pass
    assert not stale.exists()
