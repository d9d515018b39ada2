"""Usage and billing merged by event time per partition, the same way live and in replay."""

from __future__ import annotations

from schemas.codec import dumps
from stream.core.engine import PartitionedEngine
from stream.core.policy import parse_policy
from stream.run.merge import Merger
from stream.run.replay import replay
from tests.helpers import at, event


def _never(partition: int, source: int, ts: int, head: object) -> bool:
    return False


def _always(partition: int, source: int, ts: int, head: object) -> bool:
    return True


def test_heads_are_merged_by_event_time_and_each_source_keeps_its_order():
    m: Merger[str] = Merger()
    for ts, name in [(10, "u1"), (5, "u2"), (30, "u3")]:
        m.push(0, 0, ts, name)
    for ts, name in [(7, "b1"), (30, "b2")]:
        m.push(0, 1, ts, name)
    # u2 (5) is behind u1 (10) in its own source, so it waits for u1: sources keep their order.
    # At the tie (30, 30) billing goes first.
    assert list(m.pop_ready(0, _always)) == ["b1", "u1", "u2", "b2", "u3"]


def test_a_head_waits_while_the_other_source_could_still_deliver_something_earlier():
    m: Merger[str] = Merger()
    m.push(0, 0, 10, "u1")
    assert list(m.pop_ready(0, _never)) == []
    assert m.pending(0) == 1
    m.push(0, 1, 8, "b1")
    assert list(m.pop_ready(0, _never)) == ["b1"]
    assert list(m.pop_ready(0, _always)) == ["u1"]
    assert m.pending() == 0


def test_partitions_are_independent():
    m: Merger[str] = Merger()
    m.push(0, 0, 10, "p0")
    m.push(1, 1, 1, "p1")
    assert list(m.pop_ready(1, _always)) == ["p1"]
    assert m.partitions() == [0]


def test_pop_before_takes_what_no_later_record_can_precede():
    m: Merger[str] = Merger()
    m.push(0, 0, 10, "u1")
    m.push(0, 0, 20, "u2")
    assert m.pop_before(0, 10) == []  # a billing record stamped 10 would still go first
    assert m.pop_before(0, 11) == ["u1"]
    m.push(0, 1, 20, "b1")
    assert m.pop_before(0, 0) == ["b1"]  # both heads known: billing wins the tie
    assert m.pop_before(0, 21) == ["u2"]
    m.push(0, 1, 30, "b2")
    assert m.pop_before(0, 29) == []
    assert m.pop_before(0, 30) == ["b2"]  # a usage record stamped 30 would come after it
    assert m.pending() == 0


def test_pop_before_is_pop_ready_with_a_floor():
    def fill() -> Merger[str]:
        m: Merger[str] = Merger()
        for i, (source, ts) in enumerate([(0, 5), (1, 5), (0, 7), (1, 9), (0, 9), (0, 12)]):
            m.push(3, source, ts, f"{source}-{i}")
        return m

    for floor in range(4, 14):

        def settled(partition: int, source: int, ts: int, head: object, floor: int = floor) -> bool:
            return floor > ts if source == 1 else floor >= ts

        assert fill().pop_before(3, floor) == list(fill().pop_ready(3, settled)), floor


class _Spy(PartitionedEngine):
    def __init__(self) -> None:
        super().__init__(parse_policy({}), partitions=1)
        self.seen: list[str] = []
        inner = self.partitions[0].process

        def spy(ev, **where):
            self.seen.append(ev.event_id)
            return inner(ev, **where)

        self.partitions[0].process = spy


def test_replay_applies_the_merge_not_the_file_order():
    log = [
        event("login", ts=at(0, 10.05), event_id="u-late"),
        event("payment_failed", ts=at(0, 10.0), event_id="b-early"),
        event("login", ts=at(0, 10.1), event_id="u-next"),
    ]
    spy = _Spy()
    replay(enumerate((dumps(e) for e in log), 1), spy, lambda _: None, lambda _: None)
    assert spy.seen == ["b-early", "u-late", "u-next"]


def test_on_equal_timestamps_billing_goes_first_in_replay_whatever_the_file_order():
    """A subscription and a login stamped alike: the login must already see the plan."""
    same = at(0, 9.0)
    log = [
        event("login", ts=same, event_id="u-same"),
        event("subscription_started", ts=same, event_id="b-same", plan="pro", mrr=2000.0,
              seats=10),
        event("login", ts=at(0, 9.5), event_id="u-next"),
    ]  # fmt: skip
    spy = _Spy()
    replay(enumerate((dumps(e) for e in log), 1), spy, lambda _: None, lambda _: None)
    assert spy.seen == ["b-same", "u-same", "u-next"]
