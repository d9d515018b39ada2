"""The parent's feed of ``--jobs``: each line to the job of its partition, exactly as read."""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path

import pytest

from stream.core.partitioning import partition_for
from stream.run.feed import FedLines, FeedError, FeedingLines
from stream.run.logio import LogReader
from stream.run.validate import OversizedLine

PARTITIONS = 6
OWNERS = [-1, 0, 1, -1, 0, 1]  # the parent replays partitions 0 and 3, job 0 gets 1 and 4


def _line(account: str, n: int) -> bytes:
    return b'{"event_id":"e%d","account_id":"%s","type":"login"}\n' % (n, account.encode())


def _received(log: Path) -> tuple[list[list[tuple[int, bytes, int | None]]], list[int]]:
    """What the parent and two jobs read of ``log``: (number, raw, route) per line, and the
    number of lines each was told the log has."""
    pipes = [multiprocessing.Pipe(duplex=False) for _ in range(2)]
    got: list[list[tuple[int, bytes, int | None]]] = [[], [], []]
    totals = [0, 0, 0]

    def job(index: int) -> None:
        lines = FedLines(pipes[index][0])
        for number, raw in lines:
            got[index + 1].append((number, raw, lines.route(raw)))
        totals[index + 1] = lines.lines

    threads = [threading.Thread(target=job, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    with LogReader(str(log)) as reader:
        here = FeedingLines(reader, PARTITIONS, OWNERS, [send for _, send in pipes])
        for number, raw in here:
            got[0].append((number, raw, here.route(raw)))
        totals[0] = here.lines
    for thread in threads:
        thread.join(timeout=60)
    assert not here.broken
    return got, totals


def test_each_line_reaches_the_job_of_its_partition_as_it_was_read(tmp_path):
    accounts = [f"acct-{i}" for i in range(40)]
    lines = [_line(a, n) for n, a in enumerate(accounts * 3)]
    unroutable = b'{"account_id":"acct-1","x":NaN}\r\n'  # orjson refuses NaN
    lines.insert(10, unroutable)
    lines.insert(20, b"   \n")  # blank: no job gets it
    oversized = b'{"account_id":"acct-2","pad":"' + b"x" * 70_000 + b'"}\n'
    lines.insert(30, oversized)
    lines.append(_line("acct-3", 999).rstrip(b"\n"))  # the last line has no line ending
    log = tmp_path / "log.jsonl"
    log.write_bytes(b"".join(lines))

    got, totals = _received(log)

    assert totals == [len(lines)] * 3
    for job, seen in enumerate(got):
        routed = [(n, raw, p) for n, raw, p in seen if p is not None]
        assert routed and all(OWNERS[p] == job - 1 for _, _, p in routed)
        for number, raw, partition in routed:
            assert raw == lines[number - 1]
            account = raw.split(b'"account_id":"')[1].split(b'"')[0].decode()
            assert partition == partition_for(account, PARTITIONS)
        every = [(n, raw) for n, raw, p in seen if p is None]
        assert [n for n, _ in every] == [11, 31]  # every job validates what no route can place
        assert every[0][1] == unroutable
        big = every[1][1]
        assert isinstance(big, OversizedLine) and big.size == len(oversized) - 1
    numbers = sorted(n for seen in got for n, _, p in seen if p is not None)
    assert numbers == [n for n in range(1, len(lines) + 1) if n not in (11, 21, 31)]


def test_a_feed_cut_short_is_an_error_not_a_shorter_log():
    receive, send = multiprocessing.Pipe(duplex=False)
    send.close()
    with pytest.raises(FeedError, match="stopped coming after line 0"):
        list(FedLines(receive))


def test_a_job_that_stopped_reading_ends_the_feed_as_broken(tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_bytes(b"".join(_line(f"acct-{i}", i) for i in range(50)))
    receive, send = multiprocessing.Pipe(duplex=False)
    receive.close()  # the job is gone
    with LogReader(str(log)) as reader:
        here = FeedingLines(reader, PARTITIONS, [0] * PARTITIONS, [send])
        assert list(here) == []  # nothing was the parent's
    assert here.broken
