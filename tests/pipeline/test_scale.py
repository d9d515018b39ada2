"""More than one worker, and faults: the group shares the partitions, a killed worker's
partitions move to the survivor, a broker restart is survived; every time the alert set is
exactly replay's."""

from __future__ import annotations

import pytest

from stream.devtools.brokers import ApacheKafka
from stream.devtools.deployment import Deployment
from tests.pipeline.conftest import PARTITIONS, ROCKSDB, start_worker

pytestmark = pytest.mark.slow


@pytest.fixture
def deployments(kafka, tmp_path):
    made: list[Deployment] = []

    def make(bootstrap: str = kafka, **extra: str) -> Deployment:
        dep = Deployment(bootstrap, tmp_path, partitions=PARTITIONS,
                         CHURNWATCH_LOG_LEVEL="info", **{**ROCKSDB, **extra})  # fmt: skip
        made.append(dep)
        return dep

    yield make
    for dep in made:
        dep.stop_all()


def _start(dep: Deployment, workers: int) -> None:
    for _ in range(workers):
        start_worker(dep)
    dep.wait_for(lambda: dep.group() == ("Stable", workers), 180, f"a group of {workers}")


def _alerts(dep: Deployment) -> set[bytes]:
    return {record.value for record in dep.read("alerts")}


@pytest.mark.parametrize("workers", [2, 3])
def test_workers_share_the_partitions_and_together_give_replays_alerts(
    deployments, simulated, workers
):
    log, expected = simulated
    dep = deployments()
    # The log goes in first: produced while workers run, the feed's weeks of event time per
    # second would let usage and billing skew by more than the allowed lateness.
    dep.cli("produce", str(log), "-q")
    for _ in range(workers):
        start_worker(dep)
    dep.wait_for(lambda: dep.progress() >= 1.0, 300, "the group to catch up")
    assert _alerts(dep) == expected
    owned = [dep.restored_partitions(n) for n in range(workers)]
    # All start together; one may join after the others have handed out the whole log.
    assert sum(1 for mine in owned if mine) >= 2, f"the partitions were shared: {owned}"
    assert set().union(*owned) == set(range(PARTITIONS))


def test_a_killed_worker_s_partitions_move_to_the_survivor(deployments, simulated):
    log, expected = simulated
    dep = deployments(CHURNWATCH_STANDBY_REPLICAS="1")
    dep.cli("produce", str(log), "-q")
    _start(dep, 2)
    dep.wait_for(lambda: dep.progress() >= 0.4, 300, "the first half")
    dep.kill(dep.workers[0])
    # Every partition's offsets reach the end: the killed worker's unfinished ones included.
    dep.wait_for(lambda: dep.progress() >= 1.0, 300, "the survivor to finish")
    assert dep.workers[1].poll() is None
    assert _alerts(dep) == expected


def test_the_worker_rides_out_a_broker_restart(deployments, simulated):
    log, expected = simulated
    broker = ApacheKafka()
    broker.start()
    dep = deployments(broker.bootstrap)
    try:
        dep.cli("produce", str(log), "-q")
        start_worker(dep)
        dep.wait_for(lambda: dep.progress() >= 0.3, 300, "a third of the log")
        broker.stop(keep_storage=True)
        broker.restart()
        dep.wait_for(lambda: dep.progress() >= 1.0, 300, "the worker after the restart")
        assert _alerts(dep) == expected
        assert dep.workers[0].poll() is None, "the worker reconnected by itself"
    finally:
        dep.stop_all()
        broker.stop()
