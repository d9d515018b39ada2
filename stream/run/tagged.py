"""Output lines tagged with their place in a single-process replay, and their merge.

A job of ``--jobs`` writes its alert, reject and snapshot lines to files of its own, each line
prefixed with the :class:`~stream.run.replay.Position` it was written at (line, partition) and
its running number in the job. Every (line, partition) belongs to one job, so merging the jobs'
files by that key gives exactly the order one process writes them in. Files, not memory: a
health-snapshot stream of a large log is gigabytes.
"""

from __future__ import annotations

import heapq
import struct
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from stream.run.replay import Position

_HEAD = struct.Struct("<qqqI")
"""line, partition, running number, payload size."""

Tagged = tuple[int, int, int, bytes]


class TaggedWriter:
    """Writes lines prefixed with where ``position`` says the replay is."""

    def __init__(self, path: Path, position: Position) -> None:
        self.path = path
        self.position = position
        self.count = 0
        self._out: BinaryIO = open(path, "wb", buffering=1 << 20)  # noqa: SIM115 - close()

    def write(self, data: bytes) -> None:
        where = self.position
        self._out.write(_HEAD.pack(where.line, where.partition, self.count, len(data)))
        self._out.write(data)
        self.count += 1

    def close(self) -> None:
        self._out.close()


def read_tagged(path: Path) -> Iterator[Tagged]:
    """The tagged lines of one file, in the order written (which is their key order)."""
    size = _HEAD.size
    with open(path, "rb", buffering=1 << 20) as source:
        read = source.read
        while head := read(size):
            line, partition, number, length = _HEAD.unpack(head)
            yield line, partition, number, read(length)


def merge_tagged(paths: Iterable[Path], write: Callable[[bytes], object]) -> int:
    """Write the lines of every file in key order; returns how many were written.

    Keys never tie across files (a (line, partition) is one job's), so the payloads are never
    compared."""
    written = 0
    for *_, data in heapq.merge(*(read_tagged(path) for path in paths)):
        write(data)
        written += 1
    return written
