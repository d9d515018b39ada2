"""Placing a raw log line on its emulated Kafka partition without validating it.

``--jobs`` splits a replay by partition: the parent reads the log once and sends each job the
lines of its own partitions (:mod:`stream.run.feed`), so it must tell cheaply, for every line,
whose it is. Validating a line into its event model costs about four times a plain orjson
parse, so a line is routed by the ``account_id`` orjson reads. (A byte search was measured
too: checking that the key it finds is the event's own costs more than orjson's whole parse,
0.64 against 0.40 µs a line.)

A valid event's keys read the same with orjson as with the validator, so a routed line is
validated by its partition's job alone, which also reports it if it is bad. A line orjson
cannot read, or without a string ``account_id``, gives None: every job validates it in full,
the job it belongs to (if it is an event after all) keeps it, and job 0 alone reports it as
bad (see :class:`stream.run.replay.Share`). Junk lines are rare, so that costs nothing in
practice, and the outcome never depends on the cheap path.
"""

from __future__ import annotations

import orjson

from stream.core.partitioning import partition_for


def account_of(raw: bytes) -> str | None:
    """The line's top-level ``account_id`` string, or None (full validation decides)."""
    try:
        event = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    account = event.get("account_id") if isinstance(event, dict) else None
    return account if isinstance(account, str) else None


def route_line(raw: bytes, partitions: int) -> int | None:
    """The partition of the line's account, or None when only full validation can tell."""
    account = account_of(raw)
    return None if account is None else partition_for(account, partitions)


def assign(partitions: int, jobs: int) -> list[frozenset[int]]:
    """The partitions of each job: partition p goes to job p mod jobs, so the jobs' shares
    differ by one partition at most. Jobs beyond the partition count would get nothing, so
    there are never more shares than partitions."""
    used = min(jobs, partitions)
    return [frozenset(range(job, partitions, used)) for job in range(used)]
