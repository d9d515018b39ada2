"""``--jobs``: the log read and routed once, each line sent to the job owning its partition.

When every job read the whole log and routed every line itself, each one paid for reading and
routing all the lines (an orjson parse each) to keep half of them, which capped two jobs near
1.5x one process. Here the parent does that once, and is a job itself: it reads the log,
places each line on its partition with :func:`stream.run.routing.route_line`, replays its own
partitions' lines and sends every other line to the job that owns it. (A parent that only
routed would be one process more than the jobs: on a box with a core per job it takes a
share of their cores.) A line no cheap route can place (orjson
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


class FeedingLines:
    """The parent's side of the feed, and its own share of the work: iterating it reads the
    log and yields ``(line number, raw line)`` for the parent's own partitions and for the
    lines every job must see, while every other line is sent to the job that owns its
    partition. ``owners[p]`` is the index in ``conns`` of partition p's job, or -1 for the
    parent. :meth:`route` and :attr:`lines` are as :class:`FedLines` has them.

    The jobs get their end frames only when the log has been read to its end; if the parent
    stops early (an error), its pipes close without one and each job fails instead of
    finishing a shorter replay. A job that stopped (its pipe broke) ends the iteration, and
    :attr:`broken` says so: the run has failed, and the job's own error says why.
    """

    def __init__(
        self,
        reader: LogReader,
        partitions: int,
        owners: Sequence[int],
        conns: Sequence[Connection],
        on_progress: Callable[[int, int | None], None] | None = None,
    ) -> None:
        self.reader = reader
        self.partitions = partitions
        self.owners = owners
        self.conns = conns
        self.on_progress = on_progress
        self.lines = 0
        self.broken = False
        self._routed: int | None = None

    def route(self, raw: bytes) -> int | None:
        return self._routed

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        reader, partitions, owners, conns = self.reader, self.partitions, self.owners, self.conns
        on_progress = self.on_progress
        buffers = [bytearray() for _ in conns]
        pack = _FRAME.pack
        number = 0
        try:
            for number, raw in reader:
                if on_progress is not None and not number & 0x3FFF:
                    on_progress(number, reader.position())
                if raw[:1] <= b" " and not raw.strip():
                    continue  # blank lines are not records (replay skips them the same way)
                if isinstance(raw, OversizedLine):
                    partition, head = None, pack(number, _EVERY_JOB, len(raw), raw.size)
                else:
                    partition = route_line(raw, partitions)
                    if partition is not None:
                        index = owners[partition]
                        if index < 0:
                            self._routed = partition
                            yield number, raw
                            continue
                        buffer = buffers[index]
                        buffer += pack(number, partition, len(raw), -1)
                        buffer += raw
                        if len(buffer) >= CHUNK_BYTES:
                            conns[index].send_bytes(buffer)
                            buffer.clear()
                        continue
                    head = pack(number, _EVERY_JOB, len(raw), -1)
                for index, buffer in enumerate(buffers):  # every job validates this line
                    buffer += head
                    buffer += raw
                    if len(buffer) >= CHUNK_BYTES:
                        conns[index].send_bytes(buffer)
                        buffer.clear()
                self._routed = None
                yield number, raw
            self.lines = number
            for conn, buffer in zip(conns, buffers, strict=True):
                buffer += pack(number, _END, 0, -1)
                conn.send_bytes(buffer)
        except BrokenPipeError:
            self.broken = True  # a job stopped: its own error says why
        finally:
            for conn in conns:
                conn.close()


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
