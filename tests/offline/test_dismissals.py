"""Dismissals as labels: matched to the openings a replay scores, outcome before opinion."""

from __future__ import annotations

import orjson
import pytest

from stream.core.timeutil import DAY_MS, from_ms
from stream.offline.backtest import Mark
from stream.offline.dismissals import DismissalsError, load_dismissals, relabel
from stream.offline.outcomes import AccountOutcome

DAY0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def _iso(ms: int) -> str:
    return from_ms(ms).isoformat().replace("+00:00", "Z")


def action(account: str, signal: str, start_ms: int, kind: str = "dismiss", n: int = 0) -> bytes:
    extra = {"dismiss": {"reason": "not real"}, "ack": {}}[kind]
    return orjson.dumps({
        "schema_version": 1, "action_id": f"act-{account}-{n:04d}", "kind": kind,
        "alert_id": f"al_{account}", "account_id": account, "signal": signal, "severity": "high",
        "episode_start": _iso(start_ms), "at": "2026-11-28T10:00:00Z", "by": "ana", **extra,
    })  # fmt: skip


def test_a_dismissal_labels_only_what_the_log_cannot_judge_yet():
    end = DAY0 + 100 * DAY_MS
    day = lambda d: DAY0 + d * DAY_MS  # noqa: E731
    marks = [
        # a: account episode dismissed at day 80, the log ends before its 30-day horizon
        Mark("a", "account_at_risk", "opened", day(80)),
        Mark("a", "support_silence", "opened", day(80), overall=False),
        # b: dismissed at day 10, horizon ended inside the log: a false alarm anyway
        Mark("b", "account_at_risk", "opened", day(10)),
        Mark("b", "support_silence", "opened", day(10), overall=False),
        # c: dismissed at day 85, then cancelled at day 90: the dismissal was wrong
        Mark("c", "account_at_risk", "opened", day(85)),
        Mark("c", "support_silence", "opened", day(85), overall=False),
        # d: unsettled and never dismissed: stays censored
        Mark("d", "support_silence", "opened", day(90), overall=True),
    ]
    text = b"\n".join([action("a", "account_at_risk", day(80)), action("b", "account_at_risk",
                       day(10)), action("c", "account_at_risk", day(85)),
                       action("d", "support_silence", day(90), kind="ack")])  # fmt: skip
    dismissals = load_dismissals(text, "dismissals.jsonl")
    assert [d.account_id for d in dismissals] == ["a", "b", "c"]
    outcomes = {a: AccountOutcome(a, DAY0) for a in "abd"} | {
        "c": AccountOutcome("c", DAY0, cancel_ms=day(90))
    }
    figures = {"support_silence": {"hits": 1, "false_alarms": 1, "censored": 2, "precision": 0.5}}
    got = relabel(figures, marks, outcomes, end, 30, dismissals)["support_silence"]
    assert got["dismissals"] == {"proven_wrong": 1, "confirmed": 1, "unsettled": 1,
                                 "precision_from_the_log_alone": 0.5}  # fmt: skip
    assert (got["false_alarms"], got["censored"], got["precision"]) == (2, 1, round(1 / 3, 4))
    untouched = relabel(figures, marks, outcomes, end, 30, [])["support_silence"]
    assert untouched["precision"] == 0.5 and untouched["dismissals"]["unsettled"] == 0


def test_a_bad_line_names_itself():
    with pytest.raises(DismissalsError, match=r"dismissals\.jsonl, line 2: not an alert action"):
        load_dismissals(action("a", "x", DAY0) + b"\n{}\n", "dismissals.jsonl")
