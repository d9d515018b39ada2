"""One gate for live, replay and produce: the same bytes get the same verdict and words."""

from __future__ import annotations

import orjson
import pytest

from schemas.codec import dumps
from schemas.events import MAX_EVENT_BYTES, EventBase, reason_kind
from stream.core.engine import PartitionedEngine
from stream.core.policy import load_policy
from stream.run.replay import replay
from stream.run.validate import (
    NO_VALUE,
    OVERSIZED_LINE,
    TOO_LARGE,
    Rejection,
    reject_record,
    validate,
)
from tests.helpers import at, event


def _padded(size: int) -> bytes:
    """A valid login of exactly ``size`` bytes (padded with an unknown, ignored field)."""
    base = dumps({**event("login", ts=at(1)), "pad": ""})
    return base[:-2] + b"x" * (size - len(base)) + b'"}'


def test_a_valid_record_becomes_its_event():
    out = validate(dumps(event("login", ts=at(1), user_id="u")))
    assert isinstance(out, EventBase) and out.type == "login"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("raw", "starts", "kind"),
    [
        (b"not json", "not valid JSON", "not valid JSON"),
        (b"[1, 2]", "not a JSON object", "not a JSON object"),
        (dumps({**event("nps_response"), "score": 99}), "score: Input should be", "score"),
    ],
)
def test_bad_records_are_refused_with_the_schema_reason_and_a_short_kind(raw, starts, kind):
    out = validate(raw)
    assert isinstance(out, Rejection)
    assert out.reason.startswith(starts) and out.kind == kind == reason_kind(out.reason)


def test_size_is_refused_with_its_size_and_counted_under_one_kind():
    out = validate(b" " * 70_000)
    assert out == Rejection(f"record of 70000 bytes exceeds the {MAX_EVENT_BYTES}-byte limit",
                            TOO_LARGE)  # fmt: skip


def test_no_bytes_means_what_the_caller_says_it_means():
    assert validate(None) is NO_VALUE and NO_VALUE.kind == "no value"
    assert validate(None, OVERSIZED_LINE) is OVERSIZED_LINE
    assert OVERSIZED_LINE.reason == f"line exceeds the {MAX_EVENT_BYTES}-byte event limit"
    assert OVERSIZED_LINE.kind == TOO_LARGE


def test_a_line_ending_does_not_count_against_the_limit():
    """A line replay reads is the record produce sends: both must get the same verdict."""
    raw = _padded(MAX_EVENT_BYTES)
    assert isinstance(validate(raw), EventBase)
    assert isinstance(validate(raw + b"\n"), EventBase)
    assert isinstance(validate(raw + b"\r\n"), EventBase)
    assert validate(_padded(MAX_EVENT_BYTES + 1)).kind == TOO_LARGE  # type: ignore[union-attr]


def test_reject_record_keeps_line_reason_and_escaped_text():
    line = orjson.loads(reject_record(7, "not valid JSON: x", b"\x00\xff junk\r\n"))
    assert line == {"line": 7, "reason": "not valid JSON: x", "raw": "\x00\\xff junk"}
    assert orjson.loads(reject_record(3, OVERSIZED_LINE.reason, None))["raw"] is None


def test_replay_counts_rejections_by_kind():
    big = b"{" + b" " * 70_000 + b"\n"
    lines = [b"not json\n", None, big, b"\n", dumps(event("login")) + b"\n"]
    rejects: list[bytes] = []
    report = replay(enumerate(lines, 1), PartitionedEngine(load_policy(None)),
                    lambda _: None, rejects.append)  # fmt: skip
    assert report.events == 1 and report.rejected == 3
    assert report.reject_reasons == {"not valid JSON": 1, TOO_LARGE: 2}
    assert [orjson.loads(r)["line"] for r in rejects] == [1, 2, 3]
