"""Every offset of a partition exactly once, in order: what the agent checks before processing.

The processor commits the end of each partition's done prefix, which is only right if it was
handed every record from the committed offset on. Faust does not guarantee that around a
recovery: it can deliver a record twice (it seeks back after the partition was resumed), and it
can skip a run of records (those fetched before the seek are dropped, and the seek's own fetch
is then taken for records already read). :class:`DeliveryGate` tracks the next offset expected
per (partition, source): a record below it is a second delivery, one above it is a jump that
the agent must explain, by a probe of the topic, before anything past the missing offset is
processed.
"""

from __future__ import annotations

from enum import Enum


class Verdict(Enum):
    PROCESS = "process"
    REPEAT = "repeat"  # handed over before: drop it
    JUMP = "jump"  # offsets missing before it: probe, then accept it or seek back
    AWAIT = "await"  # a seek back is under way; this record will come again after it


class DeliveryGate:
    def __init__(self) -> None:
        self._expected: dict[tuple[int, int], int] = {}
        self._seeking: set[tuple[int, int]] = set()
        self.counts = {"repeated": 0, "jumps_accepted": 0, "sought_back": 0}

    def assign(self, partition: int, committed: tuple[int | None, int | None]) -> None:
        """Processing resumes at the committed offsets (``None``: at the first record seen)."""
        for source, offset in enumerate(committed):
            key = (partition, source)
            self._seeking.discard(key)
            if offset is None:
                self._expected.pop(key, None)
            else:
                self._expected[key] = offset

    def revoke(self, partition: int) -> None:
        for source in (0, 1):
            self._expected.pop((partition, source), None)
            self._seeking.discard((partition, source))

    def expected(self, partition: int, source: int) -> int | None:
        return self._expected.get((partition, source))

    def check(self, partition: int, source: int, offset: int) -> Verdict:
        key = (partition, source)
        want = self._expected.get(key)
        if want is None or offset == want:
            self._expected[key] = offset + 1
            self._seeking.discard(key)
            return Verdict.PROCESS
        if offset < want:
            self.counts["repeated"] += 1
            return Verdict.REPEAT
        return Verdict.AWAIT if key in self._seeking else Verdict.JUMP

    def explained(self, partition: int, source: int, offset: int, first: int | None) -> Verdict:
        """A jump to ``offset``, where the probe found the first record at ``first``."""
        key = (partition, source)
        if first is None or first >= offset:  # nothing exists in between: a legitimate hole
            self.counts["jumps_accepted"] += 1
            self._expected[key] = offset + 1
            return Verdict.PROCESS
        self.counts["sought_back"] += 1
        self._expected[key] = first
        self._seeking.add(key)
        return Verdict.AWAIT
