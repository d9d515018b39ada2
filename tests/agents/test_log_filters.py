"""The worker's log filters quiet what is expected and keep what needs action.

Every clean start logged aiokafka's ERROR "Group Coordinator Request failed:
GroupCoordinatorNotAvailableError" while the group coordinator was being elected, and load
logged mode's "Timer ..._flush_timer is overlapping" warnings. Synthetic records, as those
libraries make them, go through the filters and through real loggers with an INFO handler.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import pytest
from aiokafka.errors import GroupAuthorizationFailedError, GroupCoordinatorNotAvailableError

from agents.app import (
    COORDINATOR_FILTER,
    START_GRACE_SECONDS,
    TIMER_FILTER,
    CoordinatorElectionFilter,
    OwnTimerOverlapFilter,
    build_app,
)
from stream.kafka.settings import load_settings

COORDINATOR = "aiokafka.consumer.group_coordinator"
FLUSH_TIMER = "agents.hooks.install.<locals>._flush_timer"
OVERLAP = "Timer %s is overlapping (interval=%r runtime=%r)"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _record(name: str, level: int, msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def _coordinator_failed(error: Exception) -> logging.LogRecord:
    return _record(COORDINATOR, logging.ERROR, "Group Coordinator Request failed: %s", error)


def test_the_coordinator_election_is_debug_while_starting_and_error_after():
    clock = Clock()
    quiet = CoordinatorElectionFilter(clock)
    record = _coordinator_failed(GroupCoordinatorNotAvailableError())
    assert quiet.filter(record) and record.levelno == logging.ERROR, "not starting: kept"

    quiet.starting()
    record = _coordinator_failed(GroupCoordinatorNotAvailableError())
    assert quiet.filter(record), "downgraded, never dropped: a debug log still has it"
    assert (record.levelno, record.levelname) == (logging.DEBUG, "DEBUG")
    assert "GroupCoordinatorNotAvailableError" in record.getMessage()

    clock.now += START_GRACE_SECONDS + 1  # still no coordinator a minute in: say so
    record = _coordinator_failed(GroupCoordinatorNotAvailableError())
    assert quiet.filter(record) and record.levelno == logging.ERROR

    quiet.starting()
    quiet.started()  # joined the group: a coordinator going away later is trouble
    record = _coordinator_failed(GroupCoordinatorNotAvailableError())
    assert quiet.filter(record) and record.levelno == logging.ERROR


def test_other_coordinator_errors_keep_their_level_while_starting():
    quiet = CoordinatorElectionFilter(Clock())
    quiet.starting()
    denied = _coordinator_failed(GroupAuthorizationFailedError("churnwatch"))
    fatal = _record(COORDINATOR, logging.ERROR, "Attempt to join group failed due to fatal error")
    for record in (denied, fatal):
        assert quiet.filter(record) and record.levelno == logging.ERROR


def test_only_churnwatchs_own_timers_lose_the_overlap_warning():
    quiet = OwnTimerOverlapFilter()
    ours = _record("mode.timers", logging.WARNING, OVERLAP, FLUSH_TIMER, 0.05, 0.21)
    assert quiet.filter(ours) and ours.levelno == logging.DEBUG
    assert ours.getMessage() == f"Timer {FLUSH_TIMER} is overlapping (interval=0.05 runtime=0.21)"
    theirs = _record("mode.timers", logging.WARNING, OVERLAP, "Consumer._commit_livelock", 1, 2)
    assert quiet.filter(theirs) and theirs.levelno == logging.WARNING
    late = _record("mode.timers", logging.INFO, "Timer %s woke up too late", FLUSH_TIMER)
    assert quiet.filter(late) and late.levelno == logging.INFO


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)  # as the worker's handler, at CHURNWATCH_LOG_LEVEL
        self.seen: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append(record)


@pytest.fixture
def worker_logs(tmp_path) -> Iterator[_Collect]:
    """A worker built the normal way, and what an INFO handler on the root logger shows."""
    settings = load_settings({"CHURNWATCH_STORE": "memory", "CHURNWATCH_DATA_DIR": str(tmp_path)})
    handler = _Collect()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)  # mode leaves the root logger at DEBUG
    try:
        build_app(settings)
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        COORDINATOR_FILTER.started()


def test_build_app_installs_the_filters_once_on_the_loggers_that_write_the_records(worker_logs):
    assert logging.getLogger(COORDINATOR).filters.count(COORDINATOR_FILTER) == 1
    assert logging.getLogger("mode.timers").filters.count(TIMER_FILTER) == 1

    logging.getLogger(COORDINATOR).error(
        "Group Coordinator Request failed: %s", GroupCoordinatorNotAvailableError()
    )
    logging.getLogger("mode.timers").warning(OVERLAP, FLUSH_TIMER, 0.05, 0.3)
    assert worker_logs.seen == [], "both expected records are below the handler's INFO"

    logging.getLogger(COORDINATOR).error("Heartbeat session expired - marking coordinator dead")
    logging.getLogger("mode.timers").warning(OVERLAP, "faust.Consumer.timer", 1.0, 2.0)
    assert [r.levelname for r in worker_logs.seen] == ["ERROR", "WARNING"]


def test_the_start_up_window_closes_when_the_worker_gets_its_partitions(tmp_path):
    settings = load_settings({"CHURNWATCH_STORE": "memory", "CHURNWATCH_DATA_DIR": str(tmp_path)})
    churn = build_app(settings)
    record = _coordinator_failed(GroupCoordinatorNotAvailableError())
    assert COORDINATOR_FILTER.filter(record) and record.levelno == logging.DEBUG
    asyncio.run(churn.app.on_partitions_assigned.send(assigned=set()))
    record = _coordinator_failed(GroupCoordinatorNotAvailableError())
    assert COORDINATOR_FILTER.filter(record) and record.levelno == logging.ERROR
