"""Failover: how long a killed worker's partitions stay silent, with and without standbys.

    python bench/failover_bench.py [--rounds 3] [--session-timeout 10]
    python bench/failover_bench.py --accounts 30000 --days 20 --kill-at 0.15 [--store rocksdb]

Two workers share a seeded log (by default 300 accounts × 100 days, seed 9, 3 partitions),
simulated once into bench/data and produced once into input topics that every round reads
with its own consumer group, table and alerts topic. Once a share of the log is committed
(``--kill-at``, 0.3 by default), the worker that owns partition 0 is killed with SIGKILL.
The figure is the time from the kill to the first alert the survivor appends for one of the
killed worker's partitions (the alerts topic stamps records with the broker's append time;
each alert names its triggering partition); next to it, the time to the survivor's "partition N:
M accounts restored" log line for the last of those partitions (the takeover itself, which does
not depend on how soon the next alert is due). Rounds alternate ``CHURNWATCH_STANDBY_REPLICAS``
0 and 1. The group only notices a dead member after the session timeout, which is most of the
figure with a small table; with a large one, reading the changelog back dominates. A standby
can only shorten that with ``--store rocksdb`` (the worker's default store; the tests use
memory), and only by as much of the changelog as it has read: with the memory store Faust
reads every changelog partition back from the start at each rebalance, standby or not.

Results are printed and written to bench/results/failover.json: the default table's run (memory
store) at the top level, other runs under ``by_table`` (e.g. ``"30000x20"``,
``"30000x20-rocksdb"``), merged with what is there.
"""

from __future__ import annotations

import argparse
import platform
import re
import signal
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import orjson
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import NewTopic

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agents.app import TABLE_NAME  # noqa: E402
from bench.results_file import RESULTS, write_results  # noqa: E402
from stream.devtools.brokers import KAFKA_VERSION, ApacheKafka  # noqa: E402
from stream.devtools.deployment import Deployment  # noqa: E402

PARTITIONS = 3
DEFAULT_TABLE = (300, 100, 9)  # accounts, days, seed: the live benchmark's log
# The survivor's takeover line, with its account count (stream/devtools/deployment.py parses
# the rest).
_RESTORED_COUNT = re.compile(r"^\[(\S+ \S+)\].*partition (\d+): (\d+) accounts restored", re.M)


def _log(accounts: int, days: int, seed: int) -> Path:
    suffix = "" if seed == DEFAULT_TABLE[2] else f"-seed{seed}"
    path = ROOT / "bench" / "data" / f"live-{accounts}x{days}{suffix}.jsonl"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        print(f"simulating {accounts} accounts × {days} days into {path.name}...", flush=True)
        Deployment("unused:0", path.parent).cli(
            "simulate", "--accounts", str(accounts), "--days", str(days), "--seed", str(seed),
            "-o", str(partial),
        )  # fmt: skip
        partial.rename(path)
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


def _first_alert_after(
    dep: Deployment, since_ms: float, partitions: set[int], timeout_s: float
) -> float:
    """Append time (ms) of the first alert after ``since_ms`` triggered by a record of one of
    ``partitions``, tailing the alerts topic from that time on."""
    topic = dep.topics["alerts"]
    consumer = KafkaConsumer(bootstrap_servers=dep.bootstrap, enable_auto_commit=False)
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        ends = consumer.end_offsets(tps)  # first: whatever lies past these came later
        found = consumer.offsets_for_times({tp: int(since_ms) for tp in tps})
        for tp in tps:
            stamp = found.get(tp)
            consumer.seek(tp, ends[tp] if stamp is None else stamp.offset)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for worker in dep.workers:
                if worker.poll() not in (None, -signal.SIGKILL, 0):
                    raise SystemExit(f"a worker died:\n{dep.worker_logs()}")
            stamps = [
                record.timestamp
                for batch in consumer.poll(timeout_ms=500).values()
                for record in batch
                if record.timestamp > since_ms and _trigger_partition(record.headers) in partitions
            ]
            if stamps:
                return min(stamps)
    finally:
        consumer.close()
    raise SystemExit(f"no alert for partitions {sorted(partitions)} within {timeout_s:.0f} s")


def _trigger_partition(headers: list[tuple[str, bytes]]) -> int:
    return int(dict(headers)["churnwatch-trigger"].decode().rsplit(":", 2)[1])


def _changelog_records(dep: Deployment, partitions: set[int]) -> int:
    """Records in the table's changelog for these partitions, all of which a takeover without
    a local copy (no standby, or the memory store) reads back."""
    consumer = KafkaConsumer(bootstrap_servers=dep.bootstrap)
    try:
        topic = f"{dep.app_id}-{TABLE_NAME}-changelog"
        ends = consumer.end_offsets([TopicPartition(topic, p) for p in partitions])
        return sum(ends.values())
    finally:
        consumer.close()


def _accounts_restored(dep: Deployment, worker: int, after: datetime) -> dict[int, int]:
    """Partition -> accounts the worker took over with, from its log lines after ``after``."""
    path = dep.workdir / f"worker-{worker}.log"
    text = path.read_text(errors="replace") if path.exists() else ""
    return {
        int(partition): int(accounts)
        for stamp, partition, accounts in _RESTORED_COUNT.findall(text)
        if datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f") > after
    }


def one_round(
    bootstrap: str, work: Path, inputs: Deployment, standbys: int, timeout_s: int,
    kill_at: float, store: str,
) -> dict:  # fmt: skip
    """Seconds to the first alert for the killed worker's partitions and to their takeover,
    with what the survivor had to restore."""
    dep = Deployment(bootstrap, work, partitions=PARTITIONS, prefix="fo",
                     CHURNWATCH_LOG_LEVEL="info", CHURNWATCH_STANDBY_REPLICAS=str(standbys),
                     CHURNWATCH_SESSION_TIMEOUT_SECONDS=str(timeout_s),
                     CHURNWATCH_STORE=store)  # fmt: skip
    for name, variable in (("usage", "USAGE"), ("billing", "BILLING")):
        dep.topics[name] = inputs.topics[name]  # the log produced once, read by every round
        dep.env[f"CHURNWATCH_{variable}_TOPIC"] = inputs.topics[name]
    _alerts_with_append_time(dep)
    total = dep.consumed()[1]
    patience = max(300.0, total / 500)  # generous for the slowest box: 500 records/s
    for n in range(2):  # RocksDB locks its files: one data directory per worker
        dep.start_worker(CHURNWATCH_DATA_DIR=str(work / f"data-{dep.app_id}-{n}"))
    dep.wait_for(lambda: dep.progress() >= kill_at, patience, f"{kill_at:.0%} of the log")
    owners = _owners(dep)
    victim = owners[0]
    orphaned = {p for p, owner in owners.items() if owner == victim}
    dep.kill(dep.workers[victim])
    killed_ms = time.time() * 1000  # the process is gone: later alerts are the survivor's
    killed_at = datetime.now()  # the worker log's clock (local time, no zone)
    changelog = _changelog_records(dep, orphaned)
    first = _first_alert_after(dep, killed_ms, orphaned, patience)
    survivor = 1 - victim
    takeovers = {p: (stamp - killed_at).total_seconds()
                 for stamp, p in dep.restorations(survivor) if stamp > killed_at}  # fmt: skip
    restored = _accounts_restored(dep, survivor, killed_at)
    dep.stop_all()
    taken = [takeovers[p] for p in orphaned if p in takeovers]
    return {
        "silent_s": round((first - killed_ms) / 1000, 2),
        # None: the survivor's "restored" line for one of them was not seen
        "takeover_s": round(max(taken), 2) if len(taken) == len(orphaned) else None,
        "killed_partitions": sorted(orphaned),
        "changelog_records_at_kill": changelog,
        "accounts_restored": sum(restored.get(p, 0) for p in orphaned),
    }


def _median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(statistics.median(known), 2) if known else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--session-timeout", type=int, default=10)
    parser.add_argument("--accounts", type=int, default=DEFAULT_TABLE[0])
    parser.add_argument("--days", type=int, default=DEFAULT_TABLE[1])
    parser.add_argument("--seed", type=int, default=DEFAULT_TABLE[2])
    parser.add_argument(
        "--store",
        choices=("memory", "rocksdb"),
        default="memory",
        help="the table store (memory, as in the tests; rocksdb is the worker's default)",
    )
    parser.add_argument(
        "--kill-at", type=float, default=0.3, help="share of the log committed before the kill"
    )
    args = parser.parse_args()
    log = _log(args.accounts, args.days, args.seed)
    work = Path(tempfile.mkdtemp(prefix="churnwatch-failover-"))
    rounds: dict[int, list[dict]] = {0: [], 1: []}
    with ApacheKafka() as broker:
        inputs = Deployment(broker.bootstrap, work, partitions=PARTITIONS, prefix="in")
        started = time.monotonic()
        inputs.cli("produce", str(log), "-q", "--rejects", str(work / "rejects.jsonl"))
        records = inputs.consumed()[1]
        print(f"produced {records:,} records in {time.monotonic() - started:.0f} s", flush=True)
        for n in range(args.rounds):
            for standbys in (0, 1):
                one = one_round(broker.bootstrap, work, inputs, standbys, args.session_timeout,
                                args.kill_at, args.store)  # fmt: skip
                rounds[standbys].append(one)
                print(
                    f"round {n + 1}: standbys={standbys} silent for {one['silent_s']:.2f} s "
                    f"(takeover after {one['takeover_s']} s; partitions "
                    f"{one['killed_partitions']}, {one['accounts_restored']:,} accounts, "
                    f"{one['changelog_records_at_kill']:,} changelog records)",
                    flush=True,
                )
    seconds = {k: [one["silent_s"] for one in v] for k, v in rounds.items()}
    takeover = {k: [one["takeover_s"] for one in v] for k, v in rounds.items()}
    table = (args.accounts, args.days, args.seed)
    result = {
        "command": "python bench/failover_bench.py " + " ".join(sys.argv[1:]),
        "machine": f"{platform.machine()}, python {platform.python_version()}",
        "broker": f"Apache Kafka {KAFKA_VERSION} (KRaft, local)",
        "log": f"{log.relative_to(ROOT)} ({args.accounts} accounts × {args.days} days, "
        f"seed {args.seed}, {records:,} records)",
        "session_timeout_s": args.session_timeout,
        "store": args.store,
        "kill_at": args.kill_at,
        "silent_seconds": {
            f"standbys_{k}": {"median": statistics.median(v), "all": v} for k, v in seconds.items()
        },
        "takeover_seconds": {
            f"standbys_{k}": {"median": _median(v), "all": v} for k, v in takeover.items()
        },
        "standby_to_no_standby_silent_ratio": round(
            statistics.median(seconds[1]) / statistics.median(seconds[0]), 3
        ),
        "rounds": {f"standbys_{k}": v for k, v in rounds.items()},
    }
    print(orjson.dumps({k: result[k] for k in ("silent_seconds", "takeover_seconds")}).decode())
    out = RESULTS / "failover.json"
    saved = orjson.loads(out.read_bytes()) if out.exists() else {}
    if table == DEFAULT_TABLE and args.store == "memory":
        saved = {**result, "by_table": saved.get("by_table", {})}
    else:
        seed = "" if args.seed == DEFAULT_TABLE[2] else f"-seed{args.seed}"
        store = "" if args.store == "memory" else f"-{args.store}"
        saved.setdefault("by_table", {})[f"{args.accounts}x{args.days}{seed}{store}"] = result
    print(f"written to {write_results('failover', saved)}")


if __name__ == "__main__":
    main()
