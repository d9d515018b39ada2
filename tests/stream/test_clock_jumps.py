"""A clock that jumps far ahead costs a bounded amount per account, and late records are
refused with a reason in replay as in the worker."""

from __future__ import annotations

import orjson

from schemas.codec import dumps
from stream.core.engine import PartitionedEngine
from stream.core.policy import load_policy
from stream.core.ring import RING_DAYS
from stream.run.replay import replay
from tests.helpers import at, event


def _replay(log: list[dict], **kw) -> tuple[list[bytes], list[dict], PartitionedEngine]:
    engine = PartitionedEngine(load_policy(None))
    alerts: list[bytes] = []
    rejects: list[bytes] = []
    lines = enumerate((dumps(e) for e in log), 1)
    replay(lines, engine, alerts.append, rejects.append, **kw)
    return alerts, [orjson.loads(r) for r in rejects], engine


def test_a_jump_of_years_closes_a_bounded_number_of_days_per_account():
    log = [event("login", account=f"acct-{i}", ts=at(0, 9), user_id="u") for i in range(5)]
    log.append(event("login", account="acct-0", ts=at(365 * 30, 9), user_id="u"))
    _, _, engine = _replay(log)
    closes = engine.stats["day_closes"]
    assert 5 * RING_DAYS <= closes <= 5 * (RING_DAYS + 2), closes


def test_a_jump_judges_the_first_silent_days_and_the_last_one_like_a_day_by_day_run():
    """The days in between add nothing: a silent account's alerts come from its first
    RING_DAYS silent days (the history windows emptying) and from the day the clock reached."""
    quiet = [event("login", ts=at(d, 9), user_id="u") for d in range(60)]
    near = [*quiet, event("login", account="acct-2", ts=at(60 + RING_DAYS + 1, 9), user_id="v")]
    far = [*quiet, event("login", account="acct-2", ts=at(60 + 20 * RING_DAYS, 9), user_id="v")]
    near_alerts, _, _ = _replay(near)
    far_alerts, _, _ = _replay(far)
    kinds = [(a["signal"], a["kind"]) for a in map(orjson.loads, near_alerts)]
    assert kinds, "the silence is alerted within the first RING_DAYS days"
    assert [(a["signal"], a["kind"]) for a in map(orjson.loads, far_alerts)] == kinds


def test_a_far_future_line_is_rejected_against_the_reference_time_and_the_rest_still_counts():
    log = [
        event("login", ts=at(1, 9), user_id="u", event_id="first"),
        event("login", ts=at(1, 10), user_id="u", event_id="future"),
        event("login", ts=at(1, 11), user_id="u", event_id="after"),
    ]
    log[1]["ts"] = "2999-01-01T00:00:00Z"
    limit = 1_800_000_000_000  # 2027-01-15: --now plus the allowance
    _, rejects, engine = _replay(log, not_after_ms=limit)
    assert [(r["line"], r["reason"].split(" h ")[1]) for r in rejects] == [
        (2, "past the latest time allowed")
    ]
    assert engine.stats["applied"] == 2 and engine.stats["too_late"] == 0


def test_a_record_later_than_the_allowance_goes_to_the_rejects_with_its_reason():
    log = [
        event("login", ts=at(5, 9), user_id="u"),
        event("login", account="acct-2", ts=at(5, 10), user_id="v"),
        event("login", account="acct-3", ts=at(2, 9), user_id="w"),  # three days behind
    ]
    _, rejects, engine = _replay(log)
    assert len(rejects) == 1
    assert rejects[0]["line"] == 3
    assert rejects[0]["reason"] == (
        "too late: 262,800 s behind its partition's event time, 300 s allowed"
    )
    assert orjson.loads(rejects[0]["raw"])["account_id"] == "acct-3"
    assert engine.stats["too_late"] == 1
