"""The worker's per-record logic without Faust: validation, merge, flush, restore."""

from __future__ import annotations

from schemas.codec import dumps
from stream.engine import partition_for
from stream.live import LiveProcessor, Record, clock_key
from stream.policy import load_policy
from stream.state_codec import decode_state
from tests.helpers import at, event

PARTS = 3


def _processor(**kw) -> LiveProcessor:
    proc = LiveProcessor(load_policy(None), PARTS, **kw)
    for p in range(PARTS):
        proc.assign(p, [])
    return proc


def _record(raw: dict | bytes, source: int = 0, offset: int = 0, key: bytes | None = None):
    value = raw if isinstance(raw, bytes) else dumps(raw)
    account = raw["account_id"] if isinstance(raw, dict) else "acct-1"
    part = partition_for(account, PARTS)
    return Record(source, part, offset, account.encode() if key is None else key, value)


def _always(partition: int, source: int) -> bool:
    return True


def _never(partition: int, source: int) -> bool:
    return False


def test_bad_records_become_dead_letters_with_reasons_and_are_done():
    proc = _processor(max_future_ms=86_400_000)
    cases = {
        b"not json": "not valid JSON",
        dumps({"type": "nps_response", "event_id": "e", "account_id": "acct-1",
               "ts": "2026-01-01T00:00:00Z", "score": 99}): "score: Input should be less",
    }  # fmt: skip
    for offset, (raw, reason) in enumerate(cases.items()):
        out = proc.handle(_record(raw, offset=offset), _always, 0)
        assert out.dead_letters[0].reason.startswith(reason)
    wrong_topic = proc.handle(
        _record(event("payment_failed", ts=at(1)), source=0, offset=2), _always, 0
    )
    assert wrong_topic.dead_letters[0].reason == "payment_failed belongs on the billing topic"
    future = proc.handle(
        _record(event("login", ts=at(400)), offset=3), _always, int(at(0).timestamp() * 1e3)
    )
    assert "ahead of the wall clock" in future.dead_letters[0].reason
    part = partition_for("acct-1", PARTS)
    assert proc.flush().commits == {(0, part): 4}, "dead letters are done: commit past them"


def test_a_record_handed_over_twice_never_moves_the_commit_back():
    proc = _processor()
    first = _record(event("login", ts=at(1), user_id="u", event_id="twice"), offset=5)
    proc.handle(first, _always, 0)
    assert proc.flush().commits == {(0, first.partition): 6}
    proc.handle(first, _always, 0)  # Faust sought back to the committed offset
    assert proc.flush().commits == {}, "offset 6 is committed already"
    assert proc.stats()["redelivered"] == 1


def test_wrongly_keyed_record_on_the_wrong_partition_is_rekeyed_or_dead_lettered():
    raw = event("login", "acct-1", at(1))
    right = partition_for("acct-1", PARTS)
    wrong = Record(0, (right + 1) % PARTS, 5, b"other", dumps(raw))
    assert _processor().handle(wrong, _always, 0).rekeyed == [wrong]
    strict = _processor(on_wrong_key="dead-letter")
    letter = strict.handle(wrong, _always, 0).dead_letters[0]
    assert letter.reason == "record key 'other' is not its account_id 'acct-1'"


def test_records_wait_for_the_other_topic_and_flush_hands_out_states_and_offsets():
    proc = _processor()
    login = _record(event("login", ts=at(1, 10), user_id="u"), source=0, offset=7)
    out = proc.handle(login, _never, 0)
    assert out.alerts == [] and proc.pending() == 0, "held: billing could still be earlier"
    failed = _record(event("payment_failed", ts=at(1, 9)), source=1, offset=3)
    out = proc.handle(failed, _never, 0)
    assert [a[0] for a in out.alerts] == [b"acct-1"], "the earlier billing record went first"
    assert proc.pending() == 1, "the login is still held (billing is not caught up)"
    proc.handle(_record(event("login", ts=at(1, 11)), source=0, offset=8), _always, 0)
    flush = proc.flush()
    assert flush.commits == {(1, login.partition): 4, (0, login.partition): 9}
    (part, key, value), *_ = flush.writes
    assert (part, key) == (login.partition, "acct-1")
    state = decode_state(value)
    assert state.applied == [8, 3]
    assert proc.flush().writes == [], "nothing changed since"


def test_a_restored_partition_skips_records_it_already_applied():
    proc = _processor()
    rec = _record(event("login", ts=at(1), user_id="u"), offset=41)
    proc.handle(rec, _always, 0)
    writes = proc.flush().writes

    restored = LiveProcessor(load_policy(None), PARTS)
    restored.assign(rec.partition, [(k, v) for _, k, v in writes])
    restored.handle(rec, _always, 0)  # redelivered after a crash
    assert restored.stats()["redelivered"] == 1
    assert restored.stats().get("applied", 0) == 0


def test_clock_is_restored_from_its_record_and_from_account_values():
    proc = LiveProcessor(load_policy(None), PARTS)
    proc.assign(0, [(clock_key(0), b"1700000000000"), (clock_key(1), b"1800000000000")])
    assert proc._active[0].engine.clock_ms == 1_700_000_000_000


def test_no_commit_passes_a_record_still_held_by_the_merger():
    proc = _processor()
    held = _record(event("login", ts=at(1, 10), user_id="u"), source=0, offset=1)
    proc.handle(held, _never, 0)  # waits in the merger for the billing topic
    junk = _record(b"not json", source=0, offset=2)
    junk.partition = held.partition
    assert proc.handle(junk, _never, 0).dead_letters
    assert proc.flush().commits == {}, "committing past the dead letter would skip offset 1"
    proc.handle(_record(event("invoice_paid", ts=at(1, 11)), source=1, offset=0), _always, 0)
    assert proc.flush().commits == {(0, held.partition): 3, (1, held.partition): 1}
