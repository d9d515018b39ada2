"""``--jobs``: the log read and routed once, each line sent to the job owning its partition.

When every job read the whole log and routed every line itself, each one paid for reading and
routing all the lines (an orjson parse each) to keep half of them, which capped two jobs near
1.5x one process. Here the parent does that once: it reads the log, places each line on its
partition with :func:`stream.run.routing.route_line` and adds it to the owning job's next
chunk, sent down the job's pipe when full. A line no cheap route can place (orjson
refuses it, it has no string ``account_id``, it is too long to read whole) goes to every job,
which validates it in full as before (:class:`stream.run.replay.Share`): its own job keeps it
if it is an event after all, and job 0 alone reports it otherwise.

A line travels as a fixed header and its bytes, exactly as read (the rejects file quotes them
and a JSON error's position depends on them); a job's lines go in chunks of a quarter
megabyte. After the last line each job gets an end frame with the number of lines read, so a
job can tell the end of the log from a parent that stopped feeding it (an error, not a
shorter replay). (Pickled lists of tuples were tried instead: the parent spent a third more.)
"""

from __future__ import annotations

import contextlib
import fcntl
import struct
from collections.abc import Callable, Iterator, Sequence
from multiprocessing.connection import Connection

from stream.run.logio import LogReader
from stream.run.routing import route_line
from stream.run.validate import OversizedLine

_FRAME = struct.Struct("<qiIq")
"""Line number, partition (-1: every job validates it), length, and the whole line's size
for an :class:`OversizedLine` (-1 for a line sent whole)."""
_EVERY_JOB = -1
_END = -2
CHUNK_BYTES = 1 << 18
"""A job's buffer is sent when it holds this much: large enough that a send costs little per
line, small enough that a few fit in a pipe and a job rarely waits on the parent."""


class FeedError(RuntimeError):
    """A job's feed ended without the end of the log: the parent stopped (it failed)."""


def widen(conn: Connection, size: int = 4 * CHUNK_BYTES) -> None:
    """Let a pipe hold a few chunks (Linux), so the parent rarely blocks on a busy job."""
    with contextlib.suppress(AttributeError, OSError):  # another OS, or over the limit: fine
        fcntl.fcntl(conn.fileno(), fcntl.F_SETPIPE_SZ, size)


def feed_jobs(
    reader: LogReader,
    partitions: int,
    owners: Sequence[int],
    conns: Sequence[Connection],
    on_progress: Callable[[int, int | None], None] | None = None,
) -> int:
    """Send every line of ``reader`` to the job that owns its partition (``owners[p]`` is the
    index in ``conns`` of partition p's job); returns the number of lines read. A job that has
    stopped (its pipe is broken) ends the feed early: the caller learns why from the job."""
    buffers = [bytearray() for _ in conns]
    pack = _FRAME.pack
    number = 0
    try:
        for number, raw in reader:
            if on_progress is not None and not number & 0x3FFF:
                on_progress(number, reader.position())
            if raw[0] <= 0x20 and not raw.strip():
                continue  # blank lines are not records (replay skips them the same way)
            if isinstance(raw, OversizedLine):
                head, partition = pack(number, _EVERY_JOB, len(raw), raw.size), None
            else:
                partition = route_line(raw, partitions)
                head = pack(number, _EVERY_JOB if partition is None else partition, len(raw), -1)
            if partition is None:
                for index, buffer in enumerate(buffers):
                    buffer += head
                    buffer += raw
                    if len(buffer) >= CHUNK_BYTES:
                        conns[index].send_bytes(buffer)
                        buffer.clear()
                continue
            index = owners[partition]
            buffer = buffers[index]
            buffer += head
            buffer += raw
            if len(buffer) >= CHUNK_BYTES:
                conns[index].send_bytes(buffer)
                buffer.clear()
        for conn, buffer in zip(conns, buffers, strict=True):
            buffer += pack(number, _END, 0, -1)
            conn.send_bytes(buffer)
    except BrokenPipeError:
        pass  # a job stopped: its own error says why
    finally:
        for conn in conns:
            conn.close()
    return number


class FedLines:
    """A job's side of the feed: ``(line number, raw line)`` as :class:`LogReader` yields
    them, for its partitions and the lines every job must see. :meth:`route` is the partition
    the parent placed the line last yielded on (None: every job got it), which is what a
    :class:`~stream.run.replay.Share` asks of each line. ``lines`` is the number of lines
    of the log, once the feed has ended."""

    def __init__(self, conn: Connection, on_chunk: Callable[[int], None] | None = None) -> None:
        self.conn = conn
        self.on_chunk = on_chunk
        self.lines = 0
        self._routed: int | None = None

    def route(self, raw: bytes) -> int | None:
        return self._routed

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        unpack, head = _FRAME.unpack_from, _FRAME.size
        recv = self.conn.recv_bytes
        number = 0
        while True:
            try:
                chunk = recv()
            except EOFError:
                raise FeedError(f"the log's lines stopped coming after line {number}") from None
            at, size = 0, len(chunk)
            while at < size:
                number, partition, length, whole = unpack(chunk, at)
                at += head
                if partition == _END:
                    self.lines = number
                    return
                raw = chunk[at : at + length]
                at += length
                self._routed = partition if partition >= 0 else None
                yield number, raw if whole < 0 else OversizedLine(raw, whole)
            if self.on_chunk is not None:
                self.on_chunk(number)
