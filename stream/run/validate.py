"""One gate for incoming records: raw bytes in, a valid event or the reason it is refused out.

The live worker (Kafka records), replay (log lines) and ``churnwatch produce`` (log lines on
their way to Kafka) all refuse the same records for the same reasons, with the same words, so
a line replay rejects is a record the worker dead-letters and vice versa. What only the worker
can judge (wrong topic, wrong key, a time far in the future) stays in the worker; this module
decides only whether the bytes are an event at all.

Each refusal carries a reason (one line, for a rejects file or a dead-letter header) and a
short ``kind`` for counting (a metric label or a summary key), which never contains a number
that varies from record to record.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.codec import dumps
from schemas.events import MAX_EVENT_BYTES, EventBase, InvalidEvent, decode_event, reason_kind

RAW_EXCERPT_BYTES = 4096
"""Rejected lines are kept whole up to this size in the rejects file, then cut (and the
record says how long the whole line was)."""


class OversizedLine(bytes):
    """The start of a log line too long to be any event, with the whole line's size.

    :class:`stream.run.logio.LogReader` keeps only these first bytes and counts the rest while
    skipping it, so one runaway line cannot fill memory; the rejects file can still show what
    the line was and how long. The bytes are at most :data:`RAW_EXCERPT_BYTES`, without the
    line's leading blanks (so a long line is never mistaken for a blank one) or its ending;
    ``size`` counts every byte of the line but its ending.
    """

    size: int

    def __new__(cls, excerpt: bytes, size: int) -> OversizedLine:
        line = super().__new__(cls, excerpt)
        line.size = size
        return line


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a record is not an event: ``reason`` for people, ``kind`` for counters."""

    reason: str
    kind: str


TOO_LARGE = "too large"
"""The kind of every refusal for size, whatever the size was."""

NO_VALUE = Rejection("record has no value", "no value")
"""A Kafka record without a value (a tombstone, or a producer bug)."""

OVERSIZED_LINE = Rejection(f"line exceeds the {MAX_EVENT_BYTES}-byte event limit", TOO_LARGE)
"""A line that some source cut off unread, its length unknown. :class:`~stream.run.logio.LogReader`
yields an :class:`OversizedLine` instead, refused with its size."""


def validate(raw: bytes | None, missing: Rejection = NO_VALUE) -> EventBase | Rejection:
    """The event ``raw`` holds, or why it holds none.

    ``None`` means there were no bytes to look at; ``missing`` says why (a Kafka record with
    no value, or a log line too long to read). A trailing line ending is not counted against
    the size limit, so a log line is judged exactly as the record ``produce`` makes of it.
    The size limit, the JSON and the schema are checked by
    :func:`schemas.events.decode_event`, whose reasons are used as they are; only the size
    refusal gets its own kind, as its reason contains the size.
    """
    if raw is None:
        return missing
    if isinstance(raw, OversizedLine):
        return Rejection(
            f"line of {raw.size} bytes exceeds the {MAX_EVENT_BYTES}-byte event limit", TOO_LARGE
        )
    if len(raw) > MAX_EVENT_BYTES:  # the line ending does not count (JSON ignores it anyway)
        raw = raw.rstrip(b"\r\n")
    try:
        return decode_event(raw)
    except InvalidEvent as exc:
        kind = TOO_LARGE if len(raw) > MAX_EVENT_BYTES else reason_kind(exc.reason)
        return Rejection(exc.reason, kind)


def reject_record(line_number: int, reason: str, raw: bytes | None) -> bytes:
    """One line of a rejects file: where the bad line was, why, and (the start of) its text.

    Undecodable bytes are escaped rather than dropped, so the file stays valid JSONL and
    still shows what was sent. When ``raw`` holds only the start of the line (a line longer
    than :data:`RAW_EXCERPT_BYTES`), ``bytes`` gives the whole line's length, so a reader can
    tell an excerpt from the line.
    """
    if raw is None:
        return dumps({"line": line_number, "reason": reason, "raw": None}) + b"\n"
    if isinstance(raw, OversizedLine):
        size = raw.size
    else:
        raw = raw.rstrip(b"\r\n")
        size = len(raw)
    record: dict[str, object] = {
        "line": line_number,
        "reason": reason,
        "raw": raw[:RAW_EXCERPT_BYTES].decode("utf-8", "backslashreplace"),
    }
    if isinstance(raw, OversizedLine) or size > RAW_EXCERPT_BYTES:
        record["bytes"] = size
    return dumps(record) + b"\n"
