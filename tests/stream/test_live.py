"""The worker's per-record logic without Faust: validation, merge, flush, restore."""

from __future__ import annotations

from collections import Counter

import orjson
import pytest

from schemas.codec import dumps
from schemas.events import source_index
from stream.core.engine import PartitionedEngine, partition_for
from stream.core.policy import load_policy, parse_policy
from stream.core.state_codec import decode_state
from stream.devtools.simulator import SimConfig, generate
from stream.run.live import LiveProcessor, Record
from stream.run.replay import replay
from tests.helpers import at, event, model

PARTS = 3


# A failed payment alerts on the event itself when there is no grace: what these tests need
# from a billing record is an alert in the same call.
AT_ONCE = parse_policy({"defaults": {"payment_failed": {"grace_days": 0}}})


def _processor(**kw) -> LiveProcessor:
    """Without an idle wait unless asked: most tests are about what happens once records go."""
    kw.setdefault("max_idle_ms", 0)
    proc = LiveProcessor(AT_ONCE, PARTS, **kw)
    for p in range(PARTS):
        proc.assign(p, [])
    return proc


def _record(raw: dict | bytes, source: int = 0, offset: int = 0, key: bytes | None = None):
    value = raw if isinstance(raw, bytes) else dumps(raw)
    account = raw["account_id"] if isinstance(raw, dict) else "acct-1"
    part = partition_for(account, PARTS)
    return Record(source, part, offset, account.encode() if key is None else key, value)


def _one_partition(events: list[dict]) -> list[Record]:
    """``events`` as the records of one partition of the two input topics, offsets per topic."""
    records, next_offset = [], [0, 0]
    for raw in events:
        source = source_index(model(raw))
        records.append(Record(source, 0, next_offset[source], raw["account_id"].encode(),
                              dumps(raw)))  # fmt: skip
        next_offset[source] += 1
    return records


class _Feed:
    """The consumer's view of the input partitions, set by hand: caught up or not, and the
    time of the fetch response that last told each source's high watermark."""

    def __init__(self, up: bool, polled: tuple[int, int] = (0, 0)) -> None:
        self.up = up
        self.polled = list(polled)

    def caught_up(self, partition: int, source: int) -> bool:
        return self.up

    def polled_at(self, partition: int, source: int) -> int:
        return self.polled[source]


_always = _Feed(True)
_never = _Feed(False)


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
    assert proc.flush().checkpoints[part].offsets == (4, None), "dead letters are done"


def test_a_record_handed_over_twice_never_moves_the_commit_back():
    proc = _processor()
    first = _record(event("login", ts=at(1), user_id="u", event_id="twice"), offset=5)
    proc.handle(first, _always, 0)
    assert proc.flush().checkpoints[first.partition].offsets == (6, None)
    proc.handle(first, _always, 0)  # Faust sought back to the committed offset
    assert proc.flush().checkpoints == {}, "offset 6 is committed already"
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
    assert flush.checkpoints[login.partition].offsets == (9, 4)
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

    restored = LiveProcessor(AT_ONCE, PARTS, max_idle_ms=0)
    restored.assign(rec.partition, [(k, v) for _, k, v in writes])
    restored.handle(rec, _always, 0)  # redelivered after a crash
    assert restored.stats()["redelivered"] == 1
    assert restored.stats().get("applied", 0) == 0


def test_the_clock_comes_back_from_the_checkpoint_the_committed_offsets_match():
    proc = _processor()
    login = _record(event("login", ts=at(3), user_id="u"), offset=0)
    part = login.partition
    proc.handle(login, _always, 0)
    first = proc.flush().checkpoints[part]
    proc.confirm(first)  # committed
    proc.handle(_record(event("login", ts=at(9), user_id="u"), offset=1), _always, 0)
    flush = proc.flush()
    second = flush.checkpoints[part]
    assert second.clock_ms > first.clock_ms
    table = [(k, v) for _, k, v in flush.writes]
    table.append(proc.checkpoint_write(second)[1:])  # written; the commit never happened

    def restored_clock(committed) -> int:
        fresh = LiveProcessor(AT_ONCE, PARTS, max_idle_ms=0)
        fresh.assign(part, table, committed)
        return fresh._active[part].engine.clock_ms

    assert restored_clock((1, None)) == first.clock_ms, "the state is newer, the clock is not"
    assert restored_clock((2, None)) == second.clock_ms
    assert restored_clock((None, None)) == 0, "nothing committed: all is processed again"


def test_a_crash_between_flushes_and_commits_gives_the_alerts_of_a_run_without_one():
    """States newer than the committed offsets, some of a flush's writes lost: the restored
    worker reprocesses from the committed point and, together with what the first one sent,
    publishes exactly the alerts of an uninterrupted run."""
    events = sorted(generate(SimConfig(accounts=20, days=80, seed=4)), key=lambda e: e["ts"])
    records = _one_partition(events)

    def run(proc: LiveProcessor, batch) -> set[bytes]:
        return {a[1] for r in batch for a in proc.handle(r, _always, 0).alerts}

    clean = LiveProcessor(load_policy(None), 1, max_idle_ms=0)
    clean.assign(0, [])
    expected = run(clean, records)

    crashed = LiveProcessor(load_policy(None), 1, max_idle_ms=0)
    crashed.assign(0, [])
    table: dict[str, bytes | None] = {}
    third = len(records) // 3
    sent = run(crashed, records[:third])
    flush = crashed.flush()
    table.update({k: v for _, k, v in flush.writes})
    checkpoint = flush.checkpoints[0]
    table.update([crashed.checkpoint_write(checkpoint)[1:]])
    crashed.confirm(checkpoint)  # committed at a third of the log
    sent |= run(crashed, records[third : 2 * third])
    lost_half = crashed.flush().writes[::2]  # kill -9 while the flush was being sent
    table.update({k: v for _, k, v in lost_half})

    restored = LiveProcessor(load_policy(None), 1, max_idle_ms=0)
    restored.assign(0, [(k, v) for k, v in table.items() if v is not None], checkpoint.offsets)
    resumed = [r for r in records if r.offset >= (checkpoint.offsets[r.source] or 0)]
    sent |= run(restored, resumed)
    assert restored.stats()["redelivered"] > 0, "some states were newer than the commit"
    assert sent == expected
    assert len(expected) > 20


def test_no_commit_passes_a_record_still_held_by_the_merger():
    proc = _processor()
    held = _record(event("login", ts=at(1, 10), user_id="u"), source=0, offset=1)
    proc.handle(held, _never, 0)  # waits in the merger for the billing topic
    junk = _record(b"not json", source=0, offset=2)
    junk.partition = held.partition
    assert proc.handle(junk, _never, 0).dead_letters
    assert proc.flush().checkpoints == {}, "committing past the dead letter would skip offset 1"
    proc.handle(_record(event("invoice_paid", ts=at(1, 11)), source=1, offset=0), _always, 0)
    assert proc.flush().checkpoints[held.partition].offsets == (3, 1)


def test_dead_letters_are_counted_by_a_short_reason_kind():
    proc = _processor(max_future_ms=86_400_000, on_wrong_key="dead-letter")
    now = int(at(0).timestamp() * 1e3)
    part = partition_for("acct-1", PARTS)
    records = [
        _record(b"not json", offset=0),
        _record(b"[1, 2]", offset=1),
        _record(dumps({"type": "nps_response", "event_id": "e", "account_id": "acct-1",
                       "ts": "2026-01-01T00:00:00Z", "score": 99}), offset=2),
        _record(dumps({"type": "nps_response", "event_id": "f", "account_id": "acct-1",
                       "ts": "2026-01-01T00:00:00Z", "score": 11}), offset=3),
        _record(event("payment_failed", ts=at(1)), source=0, offset=4),
        _record(event("login", ts=at(400)), offset=5),
        _record(event("login", ts=at(1)), offset=6, key=b"acct-other"),
        Record(0, part, 7, b"acct-1", None),
        Record(0, part, 8, b"acct-1", b" " * 70_000),
    ]  # fmt: skip
    for record in records:
        assert proc.handle(record, _always, now).dead_letters
    assert proc.dead_letter_kinds == {
        "not valid JSON": 1,
        "not a JSON object": 1,
        "score": 2,
        "wrong topic": 1,
        "future": 1,
        "wrong key": 1,
        "no value": 1,
        "too large": 1,
    }
    assert sum(proc.dead_letter_kinds.values()) == proc.stats()["dead_letters"]
    assert proc.processed == ({}, {}), "a dead letter is not a processed event"


def test_events_are_counted_by_source_and_type_once_processed():
    proc = _processor()
    login = _record(event("login", ts=at(1, 10), user_id="u"), source=0, offset=0)
    proc.handle(login, _never, 0)
    assert proc.processed == ({}, {}), "held by the merger: not processed yet"
    proc.handle(_record(event("invoice_paid", ts=at(1, 11)), source=1, offset=0), _always, 0)
    proc.handle(_record(event("login", ts=at(1, 12), user_id="u"), offset=1), _always, 0)
    proc.handle(_record(event("brand_new_type", ts=at(1, 13)), offset=2), _always, 0)
    again = _record(event("login", ts=at(1, 14), user_id="u", event_id="dup"), offset=3)
    proc.handle(again, _always, 0)
    proc.handle(_record(event("login", ts=at(1, 14), user_id="u", event_id="dup"), offset=4),
                _always, 0)  # fmt: skip
    assert proc.processed == ({"login": 4, "unknown": 1}, {"invoice_paid": 1}), (
        "a duplicate is processed (and dropped by the engine); unknown types share one label"
    )
    raw = event("login", "acct-1", at(1))
    right = partition_for("acct-1", PARTS)
    proc.handle(Record(0, (right + 1) % PARTS, 9, b"other", dumps(raw)), _always, 0)
    assert proc.processed[0]["login"] == 4, "a re-keyed record counts when it comes back"


def test_alerts_are_counted_by_signal_severity_and_kind():
    events = sorted(generate(SimConfig(accounts=20, days=80, seed=4)), key=lambda e: e["ts"])
    proc = LiveProcessor(load_policy(None), 1, max_idle_ms=0)
    proc.assign(0, [])
    offsets = [0, 0]
    published = []
    for raw in events:
        source = source_index(model(raw))
        record = Record(source, 0, offsets[source], raw["account_id"].encode(), dumps(raw))
        offsets[source] += 1
        published += [a[1] for a in proc.handle(record, _always, 0).alerts]
    alerts = [orjson.loads(p) for p in published]
    assert len(alerts) > 20
    assert proc.alert_counts == Counter((a["signal"], a["severity"], a["kind"]) for a in alerts)
    assert sum(sum(c.values()) for c in proc.processed) == len(events)


def test_a_record_waits_until_the_other_topic_is_known_caught_up_after_it_arrived():
    """A high watermark read before the producer's billing record landed says "caught up"
    while that earlier record is on its way: the login waits for a billing fetch response at
    least as new as the one that brought the login."""
    proc = _processor()
    feed = _Feed(True, polled=(1_000, 900))  # billing's high watermark is older than the login
    login = _record(event("login", ts=at(1, 10), user_id="u"), source=0, offset=0)
    assert proc.handle(login, feed, 1_000).alerts == []
    assert proc.held() == 1
    assert proc.release(feed, 5_000) == {} and proc.held() == 1, "waiting is not enough"
    failed = _record(event("payment_failed", ts=at(1, 9)), source=1, offset=0)
    feed.polled[1] = 1_000
    feed.up = False  # the response brought the failed payment, not yet handed over
    assert proc.release(feed, 5_000) == {}
    out = proc.handle(failed, feed, 1_010)
    assert [a[0] for a in out.alerts] == [b"acct-1"], "the earlier billing record went first"
    assert proc.held() == 1, "the login waits on: billing is behind"
    feed.up = True
    proc.release(feed, 1_020)
    assert proc.held() == 0
    assert proc.flush().checkpoints[login.partition].offsets == (1, 1)
    assert proc.stats()["applied"] == 2


def test_an_idle_time_holds_a_record_even_once_the_other_topic_is_caught_up():
    proc = _processor(max_idle_ms=250)
    login = _record(event("login", ts=at(1, 10), user_id="u"), source=0, offset=0)
    proc.handle(login, _always, 1_000)
    assert proc.release(_always, 1_249) == {} and proc.held() == 1
    proc.release(_always, 1_250)
    assert proc.held() == 0


def test_a_record_behind_its_partition_clock_is_dead_lettered_as_too_late():
    proc = _processor()
    proc.handle(_record(event("login", ts=at(5), user_id="u"), offset=0), _always, 0)
    late = _record(event("invoice_paid", ts=at(1)), source=1, offset=0)
    out = proc.handle(late, _always, 0)
    (letter,) = out.dead_letters
    assert letter.record is late
    assert letter.reason == "too late: 345,600 s behind its partition's event time, 300 s allowed"
    assert proc.dead_letter_kinds == {"too late": 1}
    assert proc.stats()["too_late"] == 1
    assert proc.flush().checkpoints[late.partition].offsets == (1, 1), "a dead letter is done"


def test_health_snapshots_match_replay_and_survive_a_crash_between_flush_and_commit():
    """The worker's snapshots are replay's, account by account and in order; a restart from
    an earlier commit publishes some again (identical bytes), never a different one."""
    events = sorted(generate(SimConfig(accounts=20, days=60, seed=5)), key=lambda e: e["ts"])
    records = _one_partition(events)

    def run(proc: LiveProcessor, batch) -> list[tuple[bytes, bytes]]:
        return [s for r in batch for s in proc.handle(r, _always, 0).snapshots]

    clean = LiveProcessor(load_policy(None), 1, max_idle_ms=0, snapshots=True)
    clean.assign(0, [])
    live = run(clean, records)

    replayed: list[bytes] = []
    lines = enumerate((dumps(raw) for raw in events), 1)
    engine = PartitionedEngine(load_policy(None), 1, snapshots=True)
    replay(lines, engine, lambda _: None, lambda _: None, write_health=replayed.append)
    assert [payload + b"\n" for _, payload in live] == replayed
    assert len({key for key, _ in live}) == 20 and len(live) > 20 * 50

    crashed = LiveProcessor(load_policy(None), 1, max_idle_ms=0, snapshots=True)
    crashed.assign(0, [])
    half = len(records) // 2
    sent = run(crashed, records[: half // 2])
    flush = crashed.flush()
    table = {k: v for _, k, v in flush.writes}
    checkpoint = flush.checkpoints[0]
    table.update([crashed.checkpoint_write(checkpoint)[1:]])
    sent += run(crashed, records[half // 2 : half])
    table.update({k: v for _, k, v in crashed.flush().writes[::2]})  # died mid-flush
    restored = LiveProcessor(load_policy(None), 1, max_idle_ms=0, snapshots=True)
    restored.assign(0, [(k, v) for k, v in table.items() if v is not None], checkpoint.offsets)
    sent += run(restored, [r for r in records if r.offset >= (checkpoint.offsets[r.source] or 0)])
    assert set(sent) == set(live), "every snapshot published, none that a clean run would not"
    latest = {key: payload for key, payload in sent}
    assert latest == {key: payload for key, payload in live}, "the last word per account agrees"


@pytest.mark.parametrize("scenario", ["quality", "transactional"])
def test_quality_and_purchase_events_give_replays_alerts_across_a_restore(scenario):
    """Ticket lifecycles, issue links and orders (event schema 3) through the worker's logic,
    restored from its table half-way (state codec 5), give exactly replay's alerts."""
    cfg = SimConfig(accounts=40, days=110, seed=6, scenario=scenario)
    events = sorted(generate(cfg), key=lambda e: e["ts"])
    types = Counter(raw["type"] for raw in events)
    new = {"issue_linked", "issue_resolved"} if scenario == "quality" else {"order_placed"}
    assert all(types[t] for t in new), types
    records = _one_partition(events)

    def run(proc: LiveProcessor, batch) -> list[bytes]:
        return [a[1] for r in batch for a in proc.handle(r, _always, 0).alerts]

    first = LiveProcessor(load_policy(None), 1, max_idle_ms=0)
    first.assign(0, [])
    half = len(records) // 2
    live = run(first, records[:half])
    flush = first.flush()
    table = {k: v for _, k, v in flush.writes}
    checkpoint = flush.checkpoints[0]
    table.update([first.checkpoint_write(checkpoint)[1:]])
    first.confirm(checkpoint)
    restored = LiveProcessor(load_policy(None), 1, max_idle_ms=0)
    restored.assign(0, [(k, v) for k, v in table.items() if v is not None], checkpoint.offsets)
    live += run(restored, records[half:])

    replayed: list[bytes] = []
    lines = enumerate((dumps(raw) for raw in events), 1)
    replay(lines, PartitionedEngine(load_policy(None), 1), replayed.append, lambda _: None)
    assert [orjson.loads(a) for a in live] == [orjson.loads(a) for a in replayed]
    reasons = {r["signal"] for a in live for r in orjson.loads(a)["reasons"]}
    expected = (
        {"bug_exposure", "support_surge", "slow_support"}
        if scenario == "quality"
        else {"purchase_cadence", "order_value_decline"}
    )
    assert expected <= reasons, reasons
