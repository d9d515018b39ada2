"""The commit protocol against fakes: a crash at any point commits nothing past unflushed state.

The fakes stand for Kafka: :class:`FakeChangelog` keeps what a table write put in the local
store and, separately, what Kafka confirmed (a crash keeps only the latter), and
:class:`FakeGroup` keeps the committed offsets. A "crash" throws the worker away; a restart
rebuilds a :class:`LiveProcessor` from the confirmed changelog at the committed offsets and
processes the records from there, as the worker does.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Mapping

import orjson
import pytest
from faust.types import TP

from agents.checkpointer import Checkpointer, CheckpointerBroken
from schemas.codec import dumps
from schemas.events import source_index
from stream.core.policy import load_policy
from stream.core.state_codec import decode_state
from stream.devtools.simulator import SimConfig, generate
from stream.run.live import CLOCK_KEY_PREFIX, LiveProcessor, Record
from tests.helpers import model

TOPICS = ("usage", "billing")


def _sync(test: Callable[[], Awaitable[None]]) -> Callable[[], None]:
    """Run an async test in a fresh event loop (the suite has no asyncio plugin)."""

    @functools.wraps(test)
    def run() -> None:
        asyncio.run(test())

    return run


class FakeChangelog:
    """The table: local writes at once, Kafka's copy once a send is confirmed."""

    def __init__(self, confirmed: dict[str, bytes | None] | None = None) -> None:
        self.auto = True  # confirm every send at once, as a healthy broker soon does
        self.confirmed: dict[str, bytes | None] = dict(confirmed or {})
        self.waiting: list[tuple[asyncio.Future, str, bytes | None]] = []
        self.puts = 0

    def put(self, partition: int, key: bytes, value: bytes | None) -> asyncio.Future:
        self.puts += 1
        future = asyncio.get_running_loop().create_future()
        self.waiting.append((future, key.decode(), value))
        if self.auto:
            self.confirm()
        return future

    def confirm(self) -> None:
        for future, key, value in self.waiting:
            self.confirmed[key] = value
            future.set_result(None)
        self.waiting = []

    def fail(self, exc: BaseException) -> None:
        for future, _, _ in self.waiting:
            future.set_exception(exc)
        self.waiting = []

    def unconfirmed(self) -> int:
        return len(self.waiting)

    def items(self) -> list[tuple[str, bytes]]:
        return [(k, v) for k, v in self.confirmed.items() if v is not None]


class FakeGroup:
    """The consumer group's committed offsets; can refuse or fail a commit request."""

    def __init__(self, changelog: FakeChangelog) -> None:
        self.changelog = changelog
        self.committed: dict[TP, int] = {}
        self.requests: list[dict[TP, int]] = []
        self.answer: bool | BaseException = True
        self.gate: asyncio.Event | None = None  # set: the request waits for it

    async def __call__(self, offsets: Mapping[TP, int]) -> bool:
        assert self.changelog.unconfirmed() == 0, "offsets moved before the changelog had all"
        self.requests.append(dict(offsets))
        if self.gate is not None:
            await self.gate.wait()
        if isinstance(self.answer, BaseException):
            raise self.answer
        if self.answer:
            self.committed.update(offsets)
        return self.answer

    def offsets(self, partition: int = 0) -> tuple[int | None, int | None]:
        usage, billing = (self.committed.get(TP(t, partition)) for t in TOPICS)
        return usage, billing


def _records() -> list[Record]:
    events = sorted(generate(SimConfig(accounts=20, days=80, seed=4)), key=lambda e: e["ts"])
    records, offsets = [], [0, 0]
    for raw in events:
        source = source_index(model(raw))
        records.append(Record(source, 0, offsets[source], raw["account_id"].encode(),
                              dumps(raw)))  # fmt: skip
        offsets[source] += 1
    return records


RECORDS = _records()


class _CaughtUp:
    """A feed that has handed over everything, as of a fetch newer than any record."""

    def caught_up(self, partition: int, source: int) -> bool:
        return True

    def polled_at(self, partition: int, source: int) -> int:
        return 0


_always = _CaughtUp()


class FakeAlerts:
    """The alerts topic: a send is a future, and only a confirmed alert survives a crash."""

    def __init__(self) -> None:
        self.auto = True
        self.confirmed: list[bytes] = []
        self.waiting: list[tuple[asyncio.Future, bytes]] = []

    def send(self, payload: bytes) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        self.waiting.append((future, payload))
        if self.auto:
            self.confirm()
        return future

    def confirm(self) -> None:
        for future, payload in self.waiting:
            self.confirmed.append(payload)
            future.set_result(None)
        self.waiting = []

    def fail(self, exc: BaseException) -> None:
        for future, _ in self.waiting:
            future.set_exception(exc)
        self.waiting = []


class Worker:
    """A worker's processor and checkpointer over the fakes; ``start`` is a (re)start."""

    def __init__(
        self,
        changelog: FakeChangelog,
        group: FakeGroup,
        flush_every: int = 50,
        alerts: FakeAlerts | None = None,
    ):
        self.changelog, self.group = changelog, group
        self.sink = alerts or FakeAlerts()
        self.processor = LiveProcessor(load_policy(None), 1, max_idle_ms=0)
        self.processor.assign(0, changelog.items(), group.offsets())
        # No flush on the clock: each test decides when a flush is due.
        self.checkpointer = Checkpointer(
            self.processor, changelog, group, TOPICS, flush_every=flush_every, flush_period=1e9
        )

    @property
    def alerts(self) -> list[bytes]:
        """The alerts Kafka has: what is left of this worker's after a crash."""
        return self.sink.confirmed

    async def feed(self, records: list[Record]) -> None:
        """Each record the way the agent hands it over: its alerts are sent (not awaited)
        and tracked, then a flush once enough records wait."""
        resume = self.group.offsets()
        for record in records:
            if resume[record.source] is not None and record.offset < resume[record.source]:
                continue  # before the committed offsets: Kafka does not deliver it again
            self.checkpointer.busy = True
            outcome = self.processor.handle(record, _always, 0)
            self.checkpointer.track(
                [self.sink.send(payload) for _, payload, _, _ in outcome.alerts]
            )
            self.checkpointer.busy = False
            await self.checkpointer.flush_if_full()


def _started(flush_every: int = 50) -> tuple[FakeChangelog, FakeGroup, Worker]:
    """A first start: an empty changelog and consumer group, and a worker over them."""
    changelog = FakeChangelog()
    group = FakeGroup(changelog)
    return changelog, group, Worker(changelog, group, flush_every)


def _assert_nothing_committed_past_the_changelog(changelog: FakeChangelog, group: FakeGroup):
    """Every record below a committed offset has its effect in Kafka's copy of the table."""
    committed = group.offsets()
    states = {
        k: decode_state(v) for k, v in changelog.items() if not k.startswith(CLOCK_KEY_PREFIX)
    }
    for record in RECORDS:
        mark = committed[record.source]
        if mark is None or record.offset >= mark:
            continue
        account = orjson.loads(record.value)["account_id"]
        state = states.get(account)
        if state is None:
            continue  # evicted (a delete in the changelog), or never a tracked account
        assert state.applied[record.source] >= record.offset, (account, record.offset)
    if committed != (None, None):  # and the clock of exactly that point is stored with it
        stored = orjson.loads(changelog.confirmed[f"{CLOCK_KEY_PREFIX}0"])
        assert committed in [tuple(entry[:2]) for entry in stored]


def _clean_alerts() -> set[bytes]:
    async def run() -> set[bytes]:
        _, _, worker = _started()
        await worker.feed(RECORDS)
        return set(worker.alerts)

    return asyncio.run(run())


CLEAN = _clean_alerts()


async def _restart_and_finish(changelog: FakeChangelog, group: FakeGroup, before: list[bytes]):
    """After a crash: Kafka's copies only; the alerts of both runs are the clean run's."""
    changelog.waiting = []  # sends Kafka never confirmed died with the process
    _assert_nothing_committed_past_the_changelog(changelog, group)
    again = Worker(changelog, group)
    await again.feed(RECORDS)
    assert set(before) | set(again.alerts) == CLEAN


def test_the_simulated_log_gives_alerts_to_compare():
    assert len(CLEAN) > 20


@_sync
async def test_alerts_sent_but_never_flushed_commit_nothing():
    changelog, group, worker = _started(flush_every=10**9)
    await worker.feed(RECORDS[:200])
    assert await worker.checkpointer.commit() is False
    assert group.requests == [] and changelog.puts == 0
    await _restart_and_finish(changelog, group, worker.alerts)  # crash: everything again


@_sync
async def test_offsets_wait_until_kafka_confirmed_every_state_and_the_checkpoint():
    changelog, group, worker = _started()
    changelog.auto = False
    await worker.feed(RECORDS[:200])
    await worker.checkpointer.flush()
    commit = asyncio.create_task(worker.checkpointer.commit())
    await asyncio.sleep(0.01)
    assert not commit.done() and group.requests == [], "states are still on their way"
    changelog.confirm()  # the states and the clock checkpoint written just now
    assert await commit is True
    assert group.offsets() == _done_offsets(RECORDS[:200])
    _assert_nothing_committed_past_the_changelog(changelog, group)


def _done_offsets(records: list[Record]) -> tuple[int | None, int | None]:
    ends: list[int | None] = [None, None]
    for record in records:
        ends[record.source] = record.offset + 1
    return ends[0], ends[1]


@_sync
async def test_a_crash_after_the_table_writes_but_before_kafka_confirmed_them():
    changelog, group, worker = _started()
    await worker.feed(RECORDS[:100])
    assert await worker.checkpointer.commit()
    changelog.auto = False
    await worker.feed(RECORDS[100:300])  # flushed: local writes done, changelog sends in flight
    await worker.checkpointer.flush()
    assert changelog.unconfirmed() > 0
    await _restart_and_finish(changelog, group, worker.alerts)


@_sync
async def test_a_failed_changelog_write_means_no_commit_ever_again():
    changelog, group, worker = _started()
    changelog.auto = False
    await worker.feed(RECORDS[:200])
    await worker.checkpointer.flush()
    commit = asyncio.create_task(worker.checkpointer.commit())
    await asyncio.sleep(0)
    changelog.fail(OSError("broker gone"))
    with pytest.raises(OSError):
        await commit
    changelog.auto = True
    puts = changelog.puts
    with pytest.raises(CheckpointerBroken):
        await worker.feed(RECORDS[200:400])  # the worker must restart: no more states...
    assert changelog.puts == puts
    with pytest.raises(CheckpointerBroken):
        await worker.checkpointer.commit()  # ...and no offsets, which would cover the lost ones
    assert await worker.checkpointer.close() is False, "not at shutdown either"
    assert group.requests == []
    await _restart_and_finish(changelog, group, worker.alerts)


@_sync
async def test_a_crash_after_the_checkpoint_write_but_before_the_commit():
    changelog, group, worker = _started()
    await worker.feed(RECORDS[:100])
    assert await worker.checkpointer.commit()
    first = group.offsets()
    await worker.feed(RECORDS[100:300])
    group.answer = ConnectionError("coordinator gone")  # the process dies in the request
    with pytest.raises(ConnectionError):
        await worker.checkpointer.commit()
    assert group.offsets() == first
    # The changelog holds states newer than the committed offsets, and two checkpoints: the
    # restart takes the clock of the one the committed offsets match.
    stored = orjson.loads(changelog.confirmed[f"{CLOCK_KEY_PREFIX}0"])
    assert tuple(stored[0][:2]) == first
    restarted = LiveProcessor(load_policy(None), 1, max_idle_ms=0)
    restarted.assign(0, changelog.items(), group.offsets())
    assert restarted.clock_ms(0) == stored[0][2] < stored[1][2]
    await _restart_and_finish(changelog, group, worker.alerts)


@_sync
async def test_a_commit_that_fails_after_the_writes_is_retried_with_the_same_offsets():
    changelog, group, worker = _started()
    await worker.feed(RECORDS[:150])
    group.answer = False  # e.g. every partition was revoked meanwhile
    assert await worker.checkpointer.commit() is False
    group.answer = ConnectionError("request timed out")
    with pytest.raises(ConnectionError):
        await worker.checkpointer.commit()
    assert group.committed == {}
    group.answer = True
    assert await worker.checkpointer.commit() is True
    assert group.offsets() == _done_offsets(RECORDS[:150])
    assert group.requests[0] == group.requests[1] == group.requests[2]
    await _restart_and_finish(changelog, group, worker.alerts)


@_sync
async def test_a_crash_right_after_the_commit_replays_nothing_that_was_committed():
    changelog, group, worker = _started()
    await worker.feed(RECORDS[:250])
    assert await worker.checkpointer.close() is True  # flushes the rest, then commits
    assert group.offsets() == _done_offsets(RECORDS[:250])
    await _restart_and_finish(changelog, group, worker.alerts)


@_sync
async def test_a_flush_during_a_commit_waits_for_the_next_one_and_its_own_writes():
    changelog, group, worker = _started()
    await worker.feed(RECORDS[:100])
    group.gate = asyncio.Event()
    first = asyncio.create_task(worker.checkpointer.commit())
    await asyncio.sleep(0.01)
    assert len(group.requests) == 1, "the first commit is in its request"
    changelog.auto = False
    await worker.feed(RECORDS[100:200])
    await worker.checkpointer.flush()
    second = asyncio.create_task(worker.checkpointer.commit())
    await asyncio.sleep(0.01)
    assert len(group.requests) == 1, "commits never overlap"
    group.gate.set()
    assert await first is True
    assert group.offsets() == _done_offsets(RECORDS[:100])
    await asyncio.sleep(0.01)
    assert not second.done(), "the second waits for its own states"
    changelog.confirm()
    assert await second is True
    assert group.offsets() == _done_offsets(RECORDS[:200])
    _assert_nothing_committed_past_the_changelog(changelog, group)


@_sync
async def test_the_timer_never_flushes_a_record_in_the_middle_of_its_sends():
    changelog, _, worker = _started(flush_every=10**9)
    await worker.feed(RECORDS[:20])
    worker.checkpointer.flush_period = 0  # due at once
    worker.checkpointer.busy = True
    await worker.checkpointer.flush_if_idle()
    assert changelog.puts == 0
    worker.checkpointer.busy = False
    await worker.checkpointer.flush_if_idle()
    assert changelog.puts > 0


@_sync
async def test_flush_if_full_writes_once_enough_records_are_done():
    changelog, _, worker = _started(flush_every=30)
    await worker.feed(RECORDS[:29])
    assert changelog.puts == 0
    await worker.feed(RECORDS[29:30])
    assert changelog.puts > 0 and worker.processor.pending() == 0


@_sync
async def test_no_commit_while_rebalancing_nor_for_a_revoked_partition():
    _, group, worker = _started()
    await worker.feed(RECORDS[:100])
    rebalancing = [True]
    worker.checkpointer.rebalancing = lambda: rebalancing[0]
    assert await worker.checkpointer.commit() is False
    rebalancing[0] = False
    worker.checkpointer.revoke(0)
    assert await worker.checkpointer.commit() is False
    assert group.requests == []


@_sync
async def test_a_flush_is_due_once_its_period_is_over():
    changelog, _, worker = _started(flush_every=10**9)
    now = [0.0]
    worker.checkpointer.clock = lambda: now[0]
    worker.checkpointer.flush_period = 0.5
    worker.checkpointer._flushed_at = 0.0
    await worker.feed(RECORDS[:20])
    now[0] = 0.49
    await worker.checkpointer.flush_if_idle()
    assert changelog.puts == 0
    now[0] = 0.5
    await worker.checkpointer.flush_if_idle()
    assert changelog.puts > 0 and worker.processor.pending() == 0


@_sync
async def test_states_wait_until_kafka_confirmed_the_alerts_of_their_records():
    changelog, group, worker = _started(flush_every=10**9)
    worker.sink.auto = False
    await worker.feed(RECORDS[:2500])
    assert worker.sink.waiting, "the log's first 2,500 records raise alerts"
    flush = asyncio.create_task(worker.checkpointer.flush())
    await asyncio.sleep(0.01)
    assert not flush.done() and changelog.puts == 0, "a state would make a restart skip them"
    await asyncio.sleep(0)
    # A crash now: the unconfirmed alerts die with the process, and so does the flush.
    flush.cancel()
    worker.sink.waiting = []
    await _restart_and_finish(changelog, group, worker.alerts)


@_sync
async def test_the_flush_writes_once_the_alerts_are_confirmed_and_later_records_wait_for_the_next():
    changelog, group, worker = _started(flush_every=10**9)
    worker.sink.auto = False
    await worker.feed(RECORDS[:2500])
    flush = asyncio.create_task(worker.checkpointer.flush())
    await asyncio.sleep(0.01)
    await worker.feed(RECORDS[2500:2700])  # the agent goes on meanwhile
    first_batch = len(worker.sink.waiting)
    worker.sink.confirm()
    await flush
    assert changelog.puts > 0 and worker.processor.pending() == 200
    assert await worker.checkpointer.commit() is True
    assert group.offsets() == _done_offsets(RECORDS[:2500])
    _assert_nothing_committed_past_the_changelog(changelog, group)
    assert first_batch > 0


@_sync
async def test_a_failed_alert_send_means_no_commit_ever_again():
    changelog, group, worker = _started(flush_every=10**9)
    worker.sink.auto = False
    await worker.feed(RECORDS[:2500])
    flush = asyncio.create_task(worker.checkpointer.flush())
    await asyncio.sleep(0)
    assert worker.sink.waiting
    worker.sink.fail(OSError("broker gone"))
    with pytest.raises(OSError):
        await flush
    assert changelog.puts == 0
    worker.sink.auto = True
    await worker.feed(RECORDS[2500:2700])
    with pytest.raises(CheckpointerBroken):
        await worker.checkpointer.flush()  # their states would cover the lost alerts
    assert changelog.puts == 0
    with pytest.raises(CheckpointerBroken):
        await worker.checkpointer.commit()
    assert await worker.checkpointer.close() is False
    assert group.requests == []
    await _restart_and_finish(changelog, group, worker.alerts)


@_sync
async def test_a_record_that_failed_before_its_sends_were_tracked_stops_all_writes():
    changelog, group, worker = _started(flush_every=10**9)
    await worker.feed(RECORDS[:2552])
    assert await worker.checkpointer.commit() is False  # nothing flushed yet
    # The agent applied a record, then failed before its alerts were sent: its state is in
    # the processor, its alerts nowhere.
    assert worker.processor.handle(RECORDS[2552], _always, 0).alerts
    worker.checkpointer.fail(RuntimeError("send failed"))
    with pytest.raises(CheckpointerBroken):
        await worker.checkpointer.flush()
    assert changelog.puts == 0 and await worker.checkpointer.close() is False
    assert group.requests == []
    await _restart_and_finish(changelog, group, worker.alerts)
