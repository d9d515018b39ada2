"""One processing order for two input topics: merge usage and billing by event time.

Kafka keeps order within a partition, not across topics, so a worker that processed usage and
billing records as they happen to arrive would apply an account's events in an order that
depends on fetch timing, and a failed payment could land after the payment that fixed it. Per
partition, the worker and replay both take, from the heads of the two sources, the record with
the smaller event time, which is how Kafka Streams orders co-partitioned inputs. On a tie the
billing record goes first: an account's ``subscription_started`` and its first login often
share a timestamp, and the login's alert should already know the plan, seats and MRR. Within
one source, records keep their order.

When one source has nothing queued, the other's head may go only once nothing earlier can still
come from the empty source: in replay, when the file has moved past the head by the allowed
lateness (or ended); in the worker, when that partition is caught up with its high watermark
and the head has waited the idle time (see :mod:`stream.run.live`). :class:`Merger` holds the
queues; the caller says which sources are settled.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")
SOURCES = ("usage", "billing")
_USAGE, _BILLING = 0, 1


class Merger(Generic[T]):
    """Per-partition queues of ``(ts_ms, item)`` for the two sources, merged by event time."""

    def __init__(self) -> None:
        self._queues: dict[int, tuple[deque[tuple[int, T]], deque[tuple[int, T]]]] = {}

    def push(self, partition: int, source: int, ts_ms: int, item: T) -> None:
        queues = self._queues.get(partition)
        if queues is None:
            queues = self._queues[partition] = (deque(), deque())
        queues[source].append((ts_ms, item))

    def pending(self, partition: int | None = None) -> int:
        if partition is not None:
            queues = self._queues.get(partition)
            return len(queues[0]) + len(queues[1]) if queues else 0
        return sum(len(a) + len(b) for a, b in self._queues.values())

    def partitions(self) -> list[int]:
        return [p for p, (a, b) in self._queues.items() if a or b]

    def pop_ready(self, partition: int, settled: Callable[[int, int, int, T], bool]) -> Iterator[T]:
        """Yield the partition's items in merge order for as long as the order is certain.

        ``settled(partition, source, ts_ms, head)`` says whether ``source`` can no longer
        deliver an item that goes before ``head`` (the other source's head, stamped ``ts_ms``)
        on that partition; it is asked only about an empty source.
        """
        queues = self._queues.get(partition)
        if queues is None:
            return
        usage, billing = queues
        while usage or billing:
            if usage and billing:
                take = usage if usage[0][0] < billing[0][0] else billing
            elif usage:
                if not settled(partition, _BILLING, *usage[0]):
                    return
                take = usage
            else:
                if not settled(partition, _USAGE, *billing[0]):
                    return
                take = billing
            yield take.popleft()[1]

    def pop_before(self, partition: int, floor: int) -> list[T]:
        """The partition's items in merge order for as long as the order is certain, given
        that nothing still to come on it is stamped earlier than ``floor``.

        :meth:`pop_ready` with that knowledge as its ``settled``: an empty billing source is
        settled for a usage head stamped before ``floor`` (a billing record wins a tie), an
        empty usage source for a billing head stamped at or before it. Replay knows such a
        floor for every partition (its newest time less the allowed lateness), and asking for
        it as a number instead of a callback per item, into a list instead of a generator,
        is a sizeable part of replay's per-event cost.
        """
        queues = self._queues.get(partition)
        if queues is None:
            return []
        usage, billing = queues
        ready: list[T] = []
        while True:
            if usage:
                if billing:
                    take = usage if usage[0][0] < billing[0][0] else billing
                elif usage[0][0] < floor:
                    take = usage
                else:
                    return ready
            elif billing and billing[0][0] <= floor:
                take = billing
            else:
                return ready
            ready.append(take.popleft()[1])
