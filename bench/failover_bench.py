"""Failover: how long a killed worker's partitions stay silent, with and without standbys.

    python bench/failover_bench.py [--rounds 3] [--session-timeout 10]

Two workers share a seeded log produced beforehand (300 accounts × 100 days, 3 partitions).
Once a third of it is committed, the worker that owns partitions is killed with SIGKILL. The
figure is the time from the kill to the first alert the survivor appends for one of the killed
worker's partitions (the alerts topic stamps records with the broker's append time; each alert
names its triggering partition). Rounds alternate ``CHURNWATCH_STANDBY_REPLICAS`` 0 and 1.
The group only notices a dead member after the session timeout, which is most of the figure.

Results are printed and written to bench/results/failover.json.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson
from kafka import KafkaAdminClient
from kafka.admin import NewTopic

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stream.brokers import KAFKA_VERSION, ApacheKafka  # noqa: E402
from stream.testing import Deployment  # noqa: E402

RESULTS = ROOT / "bench" / "results"
PARTITIONS = 3


def _log() -> Path:
    path = ROOT / "bench" / "data" / "live-300x100.jsonl"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # the same log as bench/live_bench.py's default
        Deployment("unused:0", path.parent).cli(
            "simulate", "--accounts", "300", "--days", "100", "--seed", "9", "-o", str(path)
        )
    return path


def _alerts_with_append_time(dep: Deployment) -> None:
    admin = KafkaAdminClient(bootstrap_servers=dep.bootstrap)
    config = {"message.timestamp.type": "LogAppendTime", "retention.ms": "-1"}
    admin.create_topics([NewTopic(dep.topics["alerts"], PARTITIONS, 1, topic_configs=config)])
    admin.close()


def _owners(dep: Deployment) -> dict[int, int]:
    """Partition -> the worker that restored it last (the first join hands out everything)."""
    latest = sorted(
        (stamp, partition, worker)
        for worker in range(len(dep.workers))
        for stamp, partition in dep.restorations(worker)
    )
    return {partition: worker for _, partition, worker in latest}


def one_round(bootstrap: str, work: Path, log: Path, standbys: int, timeout_s: int) -> float:
    dep = Deployment(bootstrap, work, partitions=PARTITIONS, prefix="fo",
                     CHURNWATCH_LOG_LEVEL="info", CHURNWATCH_STANDBY_REPLICAS=str(standbys),
                     CHURNWATCH_SESSION_TIMEOUT_SECONDS=str(timeout_s))  # fmt: skip
    _alerts_with_append_time(dep)
    dep.cli("produce", str(log), "-q")
    for _ in range(2):
        dep.start_worker()
    dep.wait_for(lambda: dep.progress() >= 0.3, 300, "a third of the log")
    owners = _owners(dep)
    victim = owners[0]
    orphaned = {p for p, owner in owners.items() if owner == victim}
    dep.kill(dep.workers[victim])
    killed_ms = time.time() * 1000  # the process is gone: later alerts are the survivor's
    dep.wait_for(lambda: dep.progress() >= 1.0, 300, "the survivor to finish")
    after = sorted(
        record.timestamp
        for record in dep.read("alerts")
        if record.timestamp > killed_ms
        and int(dict(record.headers)["churnwatch-trigger"].decode().rsplit(":", 2)[1]) in orphaned
    )
    dep.stop_all()
    if not after:
        raise SystemExit("no alert for the killed worker's partitions after the kill")
    return (after[0] - killed_ms) / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--session-timeout", type=int, default=10)
    args = parser.parse_args()
    log = _log()
    work = Path(tempfile.mkdtemp(prefix="churnwatch-failover-"))
    seconds: dict[int, list[float]] = {0: [], 1: []}
    with ApacheKafka() as broker:
        for n in range(args.rounds):
            for standbys in (0, 1):
                took = one_round(broker.bootstrap, work, log, standbys, args.session_timeout)
                seconds[standbys].append(round(took, 2))
                print(f"round {n + 1}: standbys={standbys} silent for {took:.2f} s", flush=True)
    result = {
        "command": "python bench/failover_bench.py " + " ".join(sys.argv[1:]),
        "machine": f"{platform.machine()}, python {platform.python_version()}",
        "broker": f"Apache Kafka {KAFKA_VERSION} (KRaft, local)",
        "session_timeout_s": args.session_timeout,
        "silent_seconds": {
            f"standbys_{k}": {"median": statistics.median(v), "all": v} for k, v in seconds.items()
        },
    }
    print(orjson.dumps(result["silent_seconds"]).decode())
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "failover.json"
    out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2) + b"\n")
    print(f"written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
