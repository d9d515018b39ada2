"""The table value format: every field survives, and foreign bytes are refused."""

from __future__ import annotations

import pytest

from schemas.codec import dump_model
from stream.core.engine import PartitionEngine
from stream.core.state_codec import StateFormatError, decode_state, encode_state
from stream.core.timeutil import to_ms
from tests.helpers import Harness, at, event, model


def _busy_account(episodes: str = "signal") -> Harness:
    h = Harness(episodes=episodes)
    h.subscribe(day=0, seats=12, mrr=480)
    h.daily_logins(range(0, 75), 8, users=6, minutes=20)
    h.send("support_ticket", ts=at(75, 1))
    h.send("payment_failed", ts=at(75, 2))
    h.send("nps_response", ts=at(75, 3), score=2, user_id="u")
    h.send(
        "plan_changed",
        ts=at(75, 4),
        previous_plan="pro",
        new_plan="starter",
        previous_mrr=480,
        new_mrr=200,
        segment="smb",
    )
    h.send("invoice_overdue", ts=at(75, 5), days_late=9, invoice_id="i-1")
    h.daily_logins(range(76, 90), 1, users=1)
    return h


def _episodes(acct) -> dict:
    return {s: (e.start_ms, e.severity, e.seq, e.opens, e.reason) for s, e in acct.episodes.items()}


@pytest.mark.parametrize("episodes", ["signal", "account"])
def test_state_round_trips_and_keeps_behaving_the_same(episodes):
    original = _busy_account(episodes)
    acct = original.engine.accounts["acct-1"]
    data = encode_state(acct)
    copy = decode_state(data)
    assert encode_state(copy) == data
    for name in type(acct).__slots__:
        if name == "episodes":
            continue
        assert getattr(copy, name) == getattr(acct, name), name
    assert _episodes(copy) == _episodes(acct)
    if episodes == "account":
        # The account episode and every open signal's kept reason survive the bytes.
        assert copy.episodes["account_at_risk"].is_open
        kept = {s for s, e in copy.episodes.items() if e.reason is not None}
        assert kept == {s for s, e in copy.episodes.items() if e.is_open} - {"account_at_risk"}
        assert len(kept) >= 4
        assert any(e.reason.facts for e in copy.episodes.values() if e.reason is not None)

    # An engine restored from the bytes goes on to produce exactly the same alerts.
    restored = PartitionEngine(original.policy, {"acct-1": copy}, original.engine.clock_ms)
    later = [("login", at(92, 9)), ("invoice_paid", at(93, 9))]

    def run(engine):
        out = []
        for kind, ts in later:
            out += engine.process(model(event(kind, ts=ts, event_id=f"{kind}-later")))
        out += engine.process(model(event("x", "other", at(120, 1), event_id="clock")))
        return [dump_model(a) for a in out]

    again = run(restored)
    assert again and again == run(original.engine)


def test_value_is_compact():
    acct = _busy_account().engine.accounts["acct-1"]
    assert len(encode_state(acct)) < 3_000


def test_value_with_an_account_episode_and_its_reasons_stays_within_4_kib():
    acct = _busy_account("account").engine.accounts["acct-1"]
    assert sum(1 for e in acct.episodes.values() if e.reason is not None) >= 4
    assert len(encode_state(acct)) <= 4_096


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"{}", "not a churnwatch account state"),
        (b"CW\x09\x00\x00\x00\x02[]", "version 9 is not readable"),
    ],
)
def test_foreign_or_newer_bytes_are_refused(data, message):
    with pytest.raises(StateFormatError, match=message):
        decode_state(data)


def test_truncated_state_is_refused():
    data = encode_state(_busy_account().engine.accounts["acct-1"])
    with pytest.raises(StateFormatError, match="truncated"):
        decode_state(data[:-10])


def test_feature_counts_round_trip_and_version_1_values_still_decode():
    from array import array

    from stream.core import feature_counts
    from stream.core.state import AccountState
    from stream.core.state_codec import decode_state, encode_state

    acct = AccountState("acct-f", 20_000)
    feature_counts.add(acct, 2, 3, 20_000)
    feature_counts.add(acct, 2, 3, 20_001)
    again = decode_state(encode_state(acct))
    assert again.feature_weeks == acct.feature_weeks and again.feature_week == acct.feature_week
    assert [recent for recent, _ in feature_counts.recent_and_all(again, 20_001, 4)] == [0, 0, 2]
    # a version 1 value: no feature counts, one risk byte fewer
    plain = AccountState("acct-v1", 20_000)
    v2 = encode_state(plain)
    import orjson

    size = int.from_bytes(v2[3:7], "big")
    scalars = orjson.loads(v2[7 : 7 + size])
    from stream.core.state_codec import _SCALARS

    del scalars[-3:]  # the urgent days, ticket log and purchase log of version 5
    for name in ("owner", "name", "feature_week"):  # added by versions 4, 4 and 2
        del scalars[_SCALARS.index(name)]
    del scalars[-2]  # the feature counts list
    head = orjson.dumps(scalars)
    v1 = b"CW\x01" + len(head).to_bytes(4, "big") + head + v2[7 + size : -(len(plain.risk) - 10)]
    old = decode_state(v1)
    assert old.account_id == "acct-v1" and old.feature_weeks == array("H")
    assert len(old.risk) == len(plain.risk) and old.risk[-1] == 0


def test_ticket_and_purchase_logs_round_trip_and_version_4_values_still_decode():
    import orjson

    from stream.core.state_codec import _SCALARS

    h = Harness()
    h.subscribe(day=0)
    h.send("support_ticket", ts=at(1), ticket_id="T-1", category="bug", linked_issue="ENG-1",
           priority="urgent")  # fmt: skip
    h.send("support_ticket", ts=at(2), ticket_id="T-2", status="solved", resolution_s=7200.0)
    h.send("issue_resolved", ts=at(3), linked_issue="ENG-2")
    h.send("order_placed", ts=at(4), order_id="O-1", amount=12.34, currency="EUR")
    h.send("order_placed", ts=at(5), order_id="O-2", amount=9.0, currency="USD")
    acct = h.engine.accounts["acct-1"]
    data = encode_state(acct)
    copy = decode_state(data)
    assert encode_state(copy) == data
    assert copy.ticket_log == acct.ticket_log
    assert copy.ticket_log.bugs == [("T-1", "ENG-1", to_ms(at(1)))]
    assert copy.purchases.cents.tolist() == [1234, -1] and copy.purchases.last_id == "O-2"
    assert copy.hot_days == acct.hot_days and len(acct.hot_days) == 1
    # The same account as version 4 wrote it: no logs, eleven risk bytes.
    size = int.from_bytes(data[3:7], "big")
    scalars = orjson.loads(data[7 : 7 + size])
    assert len(scalars) == len(_SCALARS) + 7
    head = orjson.dumps(scalars[:-3])
    rings = data[7 + size : -(len(acct.risk) - 11)]
    old = decode_state(b"CW\x04" + len(head).to_bytes(4, "big") + head + rings)
    assert old.ticket_log is None and old.purchases is None and not old.hot_days
    assert old.risk[:11] == acct.risk[:11] and len(old.risk) == len(acct.risk)
    assert old.tickets == acct.tickets and old.account_id == "acct-1"
