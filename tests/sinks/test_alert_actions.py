"""The rules of alert actions and of the API's tokens and sessions, without any server."""

from __future__ import annotations

import random

import pytest
from pydantic import ValidationError

from schemas.actions import AlertAction, InvalidAction, decode_action, encode_action
from stream.sinks.alert_actions import NEVER, attention, day_ms, fold, hidden, hidden_until
from stream.sinks.auth import Auth, TokenConfigError, load_tokens
from stream.sinks.terminal import acted

TOKEN = "s3cret-token-0123456789"


def act(kind: str, at: str, action_id: str, **extra) -> dict:
    base = {"action_id": action_id, "kind": kind, "alert_id": "al_1", "account_id": "a1",
            "signal": "danger_zone", "severity": extra.pop("severity", "medium"),
            "at": at, "by": extra.pop("by", "ana"),
            "episode_start": "2026-04-28T09:00:00Z"}  # fmt: skip
    return {**base, **extra}


def test_actions_fold_by_time_whatever_the_arrival_order():
    actions = [
        act("ack", "2026-05-02T10:00:00Z", "a-2", by="bo"),
        act("ack", "2026-05-01T10:00:00Z", "a-1", by="ana"),
        act("snooze", "2026-05-01T11:00:00Z", "s-1", until="2026-05-10", reason="on holiday"),
        act("snooze", "2026-05-03T11:00:00Z", "s-2", until="2026-05-20", reason="call booked"),
        act("note", "2026-05-02T12:00:00Z", "n-2", text="second"),
        act("note", "2026-05-01T12:00:00Z", "n-1", text="first"),
    ]
    states = [fold(random.Random(seed).sample(actions, len(actions)))["al_1"] for seed in range(6)]
    assert all(state == states[0] for state in states)
    state = states[0]
    assert state["acknowledged"]["by"] == "ana"  # who saw it first
    assert state["snoozed"]["until"] == "2026-05-20" and state["snoozed"]["reason"] == "call booked"
    assert [n["text"] for n in state["notes"]] == ["first", "second"]
    assert state["dismissed"] is None


def test_a_snooze_hides_until_its_day_and_an_escalation_ends_it():
    state = fold([act("snooze", "2026-05-01T00:00:00Z", "s-1", until="2026-05-10",
                      reason="renewal call booked")])["al_1"]  # fmt: skip
    assert hidden_until(state, "medium") == day_ms("2026-05-10")
    assert hidden_until(state, "low") == day_ms("2026-05-10")  # a calmer alert stays snoozed
    assert hidden_until(state, "high") == 0  # escalated: back on the list at once
    assert hidden_until(None, "high") == 0


def test_a_dismissal_hides_for_the_episode_unless_it_escalates():
    state = fold([act("dismiss", "2026-05-01T00:00:00Z", "d-1", reason="seasonal dip",
                      severity="high")])["al_1"]  # fmt: skip
    assert hidden_until(state, "high") == NEVER
    assert hidden_until(state, "critical") == 0


def test_attention_counts_at_event_time():
    alerts = [{"alert_id": "al_1", "severity": "medium"}, {"alert_id": "al_2", "severity": "low"}]
    states = fold([
        act("snooze", "2026-05-01T00:00:00Z", "s-1", until="2026-05-10", reason="x"),
        {**act("dismiss", "2026-05-01T00:00:00Z", "d-1", reason="y", severity="low"),
         "alert_id": "al_2"},
        act("ack", "2026-05-01T00:00:00Z", "k-1"),
    ])  # fmt: skip
    marks = hidden(alerts, states)
    before = attention(marks, 1, day_ms("2026-05-09"))
    assert before == {"needs_attention": False, "acknowledged_alert_count": 1,
                      "snoozed_alert_count": 1, "dismissed_alert_count": 1,
                      "snoozed_until": "2026-05-10"}  # fmt: skip
    after = attention(marks, 1, day_ms("2026-05-10"))  # the snooze's day has come
    assert after["needs_attention"] is True and after["snoozed_until"] is None
    assert after["snoozed_alert_count"] == 0 and after["dismissed_alert_count"] == 1
    assert attention([], 0, 0)["needs_attention"] is False  # no open alert, nothing to do


def test_an_action_record_carries_exactly_what_its_kind_needs():
    good = AlertAction.model_validate(act("note", "2026-05-01T00:00:00Z", "n-000001", text="hi"))
    assert decode_action(encode_action(good)) == good
    with pytest.raises(ValidationError, match="a snooze needs until"):
        AlertAction.model_validate(act("snooze", "2026-05-01T00:00:00Z", "s-000001", reason="x"))
    with pytest.raises(ValidationError, match="a ack takes no reason"):
        AlertAction.model_validate(act("ack", "2026-05-01T00:00:00Z", "k-000001", reason="x"))
    with pytest.raises(InvalidAction, match="action_id"):
        decode_action(b'{"action_id": "x", "kind": "ack"}')
    with pytest.raises(InvalidAction):
        decode_action(b"not json")


def test_tokens_come_from_the_variable_and_a_named_file(tmp_path):
    path = tmp_path / "tokens"
    path.write_text(f"# the CS team\nana {TOKEN}-ana\n\nbo   {TOKEN}-bo\n")
    tokens = load_tokens({"CHURNWATCH_API_TOKEN": TOKEN, "CHURNWATCH_API_TOKENS_FILE": str(path)})
    auth = Auth(tokens)
    assert [t.name for t in tokens] == ["api", "ana", "bo"]
    assert auth.name_of(f"{TOKEN}-bo") == "bo" and auth.name_of(TOKEN) == "api"
    assert auth.name_of(TOKEN[:-1]) is None and auth.name_of("") is None
    assert TOKEN not in repr(tokens)  # only digests are kept
    assert load_tokens({}) == () and not Auth().enabled


@pytest.mark.parametrize(("text", "problem"), [
    (f"ana {TOKEN} extra\n", "line 1: expected 'name token'"),
    ("ana short\n", "line 1: a token must be at least 16"),
    (f"a/b {TOKEN}\n", "line 1: a token's name"),
    (f"ana {TOKEN}\nana {TOKEN}x\n", "share a name"),
    (f"ana {TOKEN}\nbo {TOKEN}\n", "configured twice"),
])  # fmt: skip
def test_a_bad_tokens_file_names_the_line_never_the_token(tmp_path, text, problem):
    path = tmp_path / "tokens"
    path.write_text(text)
    with pytest.raises(TokenConfigError, match=problem) as caught:
        load_tokens({"CHURNWATCH_API_TOKENS_FILE": str(path)})
    message = str(caught.value)
    assert TOKEN not in message and " short" not in message


def test_sessions_are_signed_expire_and_end_with_their_token():
    auth = Auth(load_tokens({"CHURNWATCH_API_TOKEN": TOKEN}))
    cookie = auth.session("api", now=1_000_000)
    assert auth.session_name(cookie, now=1_000_010) == "api"
    assert auth.session_name(cookie, now=1_000_000 + 13 * 3600) is None  # expired
    forged = cookie[:-2] + ("AA" if not cookie.endswith("AA") else "BB")
    assert auth.session_name(forged, now=1_000_010) is None
    assert auth.session_name("garbage", now=1_000_010) is None
    rotated = Auth(load_tokens({"CHURNWATCH_API_TOKEN": TOKEN + "-new"}))
    assert rotated.session_name(cookie, now=1_000_010) is None  # the token changed
    assert auth.csrf_ok(cookie, auth.csrf(cookie))
    assert not auth.csrf_ok(cookie, auth.csrf(auth.session("api", now=1_000_001)))
    assert not auth.csrf_ok(cookie, None)


def test_the_terminal_account_view_says_what_the_team_did():
    state = fold(
        [
            act("ack", "2026-05-01T10:00:00Z", "k-1"),
            act("snooze", "2026-05-01T11:00:00Z", "s-1", until="2026-05-10", reason="call"),
            act("note", "2026-05-01T12:00:00Z", "n-1", text="spoke to the CFO"),
        ]
    )["al_1"]
    assert acted(state) == [
        "acknowledged by ana at 2026-05-01T10:00:00Z",
        "snoozed until 2026-05-10 by ana: call",
        "note by ana at 2026-05-01T12:00:00Z: spoke to the CFO",
    ]
    assert acted(None) == []
