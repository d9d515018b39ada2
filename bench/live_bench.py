"""Live worker benchmarks on a real Apache Kafka broker.

    python bench/live_bench.py [--rounds 3] [--latency-runs 5] [--skip-throughput]
                               [--skip-latency] [--skip-recovery] [--results NAME]

1. Throughput: a seeded log is produced once into a deployment's topics; rounds alternate the
   trivial Faust agent (bench/trivial_agent.py: decode and count) and the churnwatch worker,
   each in its own consumer group on the same topics, and the worker once more with its daily
   account-health snapshots switched off (CHURNWATCH_HEALTH_SNAPSHOTS=false), to show their
   cost. The rate is taken while the group's committed offsets go from 10% to 90% of the
   input (start-up excluded). Medians and ratios. Each round also reports, over the same
   window, the consumer process's CPU time (its share of one core, and per record), how
   busy the box's cores were and the 1-minute load average: the box is shared, and a worker
   that needs a whole core loses rate to other processes where the trivial agent, which
   needs about half of one, does not.
2. Latency at a steady 2,000 events/s: input and alert topics stamp records with the broker's
   append time (LogAppendTime); each alert names its triggering record in a header, so latency
   is the alert record's append time minus the triggering record's. One run's tail is one
   unlucky moment on a shared box away from another figure, so the feed runs
   ``--latency-runs`` times (default 5), each on fresh topics with a fresh worker, and the
   worst run (highest p99) is the figure quoted; every run's p50/p90/p99 is printed too,
   with the load average before and after it and the worker's CPU share during the feed.
3. Recovery: 100,000 account states (clones of real ones from a replayed log) are written to
   the table's changelog; a worker starts and we time until every partition has its accounts
   back, next to the start-up time of a worker with an empty table in the same run.

Results are printed and written to bench/results/live.json.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.results_file import write_results  # noqa: E402
from stream.core.engine import PartitionedEngine, partition_for  # noqa: E402
from stream.core.policy import load_policy  # noqa: E402
from stream.core.state_codec import encode_state  # noqa: E402
from stream.devtools.brokers import KAFKA_VERSION, ApacheKafka  # noqa: E402
from stream.devtools.deployment import Deployment  # noqa: E402
from stream.run.replay import replay  # noqa: E402

PY = sys.executable
UVLOOP = [PY, "-c", "import asyncio, runpy, sys, uvloop; "
          "asyncio.set_event_loop_policy(uvloop.EventLoopPolicy()); "
          "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"]  # fmt: skip


_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of a process and its threads (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def _box_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole box since boot, all cores."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle and iowait
    return sum(values) - idle, sum(values)


class _Usage:
    """CPU use of one process and of the whole box between :meth:`start` and :meth:`stop`."""

    def start(self, pid: int) -> None:
        self.pid = pid
        self.wall, self.cpu, self.box = time.monotonic(), _cpu_seconds(pid), _box_ticks()
        self.load = os.getloadavg()[0]

    def stop(self) -> dict:
        wall = time.monotonic() - self.wall
        cpu, box = _cpu_seconds(self.pid) - self.cpu, _box_ticks()
        busy, total = box[0] - self.box[0], box[1] - self.box[1]
        return {"process_cpu_share": round(cpu / wall, 3),
                "box_busy_cores": round(os.cpu_count() * busy / total, 2) if total else None,
                "load_1min": round(self.load, 2), "cpu_seconds": cpu}  # fmt: skip


def measure_round(dep: Deployment, pid: int, timeout: float = 600) -> dict:
    """Records/s while the committed offsets go from 10% to 90% of the input (as
    ``Deployment.measure_rate``), with the process's and the box's CPU use in that window."""
    deadline = time.monotonic() + timeout
    usage, first = _Usage(), None
    while time.monotonic() < deadline:
        done, total = dep.consumed()
        now = time.monotonic()
        if first is None and done >= 0.1 * total:
            first = (now, done)
            usage.start(pid)
        if first is not None and done >= 0.9 * total:
            figures = usage.stop()
            records = done - first[1]
            figures["cpu_us_per_record"] = round(1e6 * figures.pop("cpu_seconds") / records, 1)
            return {"records_per_s": round(records / (now - first[0])), **figures}
        time.sleep(0.25)
    raise AssertionError(f"no rate within {timeout}s:\n{dep.worker_logs()}")


def _median(rounds: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in rounds)


def throughput(bootstrap: str, work: Path, log: Path, rounds: int, partitions: int) -> dict:
    dep = Deployment(bootstrap, work, partitions=partitions, prefix="tp")
    dep.cli("produce", str(log), "-q")
    base, worker, plain = [], [], []
    kinds = (("trivial", base), ("churnwatch", worker), ("no-snapshots", plain))
    for n in range(rounds):
        for kind, rates in kinds:
            dep.app_id = f"{kind}-{n}-{time.monotonic_ns()}"
            dep.env["CHURNWATCH_APP_ID"] = dep.app_id
            dep.env["CHURNWATCH_HEALTH_SNAPSHOTS"] = str(kind != "no-snapshots").lower()
            command = [*UVLOOP, str(ROOT / "bench" / "trivial_agent.py")] if kind == "trivial" \
                else None  # fmt: skip
            proc = dep.start_worker(command)
            figures = measure_round(dep, proc.pid)
            rates.append(figures)
            dep.stop_all()
            dep.workers.remove(proc)
            print(f"round {n + 1}: {kind} {figures['records_per_s']:,} records/s (process "
                  f"{figures['process_cpu_share']:.0%} of a core, "
                  f"{figures['cpu_us_per_record']} us CPU/record; box "
                  f"{figures['box_busy_cores']} cores busy, load {figures['load_1min']})",
                  flush=True)  # fmt: skip

    def summary(rounds: list[dict]) -> dict:
        return {"median": round(_median(rounds, "records_per_s")),
                "all": [r["records_per_s"] for r in rounds],
                "median_cpu_us_per_record": _median(rounds, "cpu_us_per_record"),
                "rounds": rounds}  # fmt: skip

    rate = lambda rounds: _median(rounds, "records_per_s")  # noqa: E731
    return {
        "records": dep.consumed()[1],
        "trivial_agent_records_per_s": summary(base),
        "worker_records_per_s": summary(worker),
        "worker_share_of_trivial": round(rate(worker) / rate(base), 3),
        "worker_without_snapshots_records_per_s": summary(plain),
        "without_snapshots_share_of_trivial": round(rate(plain) / rate(base), 3),
    }


def _append_time_topics(dep: Deployment, bootstrap: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    config = {"message.timestamp.type": "LogAppendTime", "retention.ms": "-1"}
    admin.create_topics([
        NewTopic(dep.topics[name], dep.partitions if name != "dead_letter" else 1, 1,
                 topic_configs=config)
        for name in ("usage", "billing", "alerts", "dead_letter")
    ])  # fmt: skip
    admin.close()


def latency_runs(
    bootstrap: str, work: Path, log: Path, rate: int, partitions: int, runs: int
) -> dict:
    """``runs`` latency runs; the worst (highest p99, then p90, then p50) is the result."""
    each = []
    for n in range(runs):
        figures = latency(bootstrap, work, log, rate, partitions, prefix=f"lat{n}")
        ms = figures["latency_ms"]
        print(f"latency run {n + 1}/{runs}: p50 {ms['p50']} ms, p90 {ms['p90']} ms, "
              f"p99 {ms['p99']} ms, max {ms['max']} ms; worker "
              f"{figures['worker_cpu_share']:.0%} of a core, load {figures['load_1min']}",
              flush=True)  # fmt: skip
        each.append(figures)
    worst = max(each, key=lambda f: (f["latency_ms"]["p99"], f["latency_ms"]["p90"],
                                     f["latency_ms"]["p50"]))  # fmt: skip
    ms = worst["latency_ms"]
    print(f"latency, worst of {runs}: p50 {ms['p50']} ms, p90 {ms['p90']} ms, "
          f"p99 {ms['p99']} ms", flush=True)  # fmt: skip
    return {**worst, "runs": runs, "worst_of": "highest p99",
            "each_run_ms": [f["latency_ms"] for f in each],
            "each_run_load_1min": [f["load_1min"] for f in each],
            "each_run_worker_cpu_share": [f["worker_cpu_share"] for f in each]}  # fmt: skip


def latency(
    bootstrap: str, work: Path, log: Path, rate: int, partitions: int, prefix: str = "lat"
) -> dict:
    dep = Deployment(bootstrap, work, partitions=partitions, prefix=prefix)
    _append_time_topics(dep, bootstrap)
    worker = dep.start_worker()
    time.sleep(8)  # joined and idle before the feed starts
    usage = _Usage()
    usage.start(worker.pid)
    started = time.monotonic()
    dep.cli("produce", str(log), "--rate", str(rate), "-q")
    feed_seconds = time.monotonic() - started
    figures = usage.stop()
    dep.wait_for(lambda: dep.progress() >= 1.0, 300, "the worker to drain the feed")
    inputs = {}
    for name in ("usage", "billing"):
        for record in dep.read(name):
            inputs[(record.topic, record.partition, record.offset)] = record.timestamp
    delays = []
    for alert in dep.read("alerts"):
        topic, partition, offset = dict(alert.headers)["churnwatch-trigger"].decode().rsplit(":", 2)
        delays.append(alert.timestamp - inputs[(topic, int(partition), int(offset))])
    dep.stop_all()
    delays.sort()
    pick = lambda q: delays[min(len(delays) - 1, int(q * len(delays)))]  # noqa: E731
    return {
        "rate_requested": rate,
        "records": len(inputs),
        "rate_achieved": round(len(inputs) / feed_seconds),
        "alerts": len(delays),
        "latency_ms": {"p50": pick(0.50), "p90": pick(0.90), "p99": pick(0.99),
                       "max": delays[-1]},
        "worker_cpu_share": figures["process_cpu_share"],
        "box_busy_cores": figures["box_busy_cores"],
        "load_1min": figures["load_1min"],
        "load_1min_after": round(os.getloadavg()[0], 2),
    }  # fmt: skip


def _restored_seconds(dep: Deployment, started_wall: float, partitions: int) -> float:
    """Seconds from process start to the last "partition N: M accounts restored" line."""

    def restorations() -> list:
        return [r for worker in range(len(dep.workers)) for r in dep.restorations(worker)]

    dep.wait_for(lambda: len({p for _, p in restorations()}) >= partitions, 600,
                 "every partition to be restored")  # fmt: skip
    return max(stamp.timestamp() for stamp, _ in restorations()) - started_wall


def recovery(bootstrap: str, work: Path, log: Path, accounts: int, partitions: int) -> dict:
    engine = PartitionedEngine(load_policy(None))
    with log.open("rb") as fh:
        replay(enumerate(fh, 1), engine, lambda _: None, lambda _: None)
    templates = list(engine.accounts())
    results = {}
    for label, count in (("empty_table_s", 0), ("full_table_s", accounts)):
        dep = Deployment(bootstrap, work, partitions=partitions, prefix="rec",
                         CHURNWATCH_LOG_LEVEL="info")  # fmt: skip
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        changelog = f"{dep.app_id}-accounts-changelog"
        admin.create_topics([NewTopic(changelog, partitions, 1,
                                      topic_configs={"cleanup.policy": "compact"})])  # fmt: skip
        admin.close()
        producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20,
                                 batch_size=1 << 20)  # fmt: skip
        size = 0
        for i in range(count):
            acct = templates[i % len(templates)]
            acct.account_id = f"bench-{i:07d}"
            value = encode_state(acct)
            size += len(value)
            producer.send(changelog, key=acct.account_id.encode(), value=value,
                          partition=partition_for(acct.account_id, partitions))  # fmt: skip
        producer.flush()
        producer.close()
        dep.cli("worker", "--check")
        # One record per partition, waiting before the worker starts, makes the agent restore
        # each partition as soon as Faust has read the changelog back.
        poke = KafkaProducer(bootstrap_servers=bootstrap)
        for p in range(partitions):
            account = next(f"poke-{i}" for i in range(10_000)
                           if partition_for(f"poke-{i}", partitions) == p)  # fmt: skip
            event = {"event_id": f"poke-{p}", "account_id": account, "type": "login",
                     "ts": "2026-01-05T00:00:00Z"}  # fmt: skip
            poke.send(dep.topics["usage"], key=account.encode(), value=orjson.dumps(event),
                      partition=p)  # fmt: skip
        poke.flush()
        poke.close()
        started = time.time()
        dep.start_worker()
        results[label] = round(_restored_seconds(dep, started, partitions), 2)
        if count:
            results["changelog_bytes"] = size
        dep.stop_all()
    results["accounts_in_full_table"] = accounts
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--accounts", type=int, default=300, help="accounts in the feed log")
    parser.add_argument("--days", type=int, default=100)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--rate", type=int, default=2000)
    parser.add_argument("--recovery-accounts", type=int, default=100_000)
    parser.add_argument(
        "--latency-runs",
        type=int,
        default=5,
        help="latency runs; the worst one is reported, with each run's p50/p90/p99",
    )
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--results", default="live", help="bench/results/NAME.json")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--skip-recovery", action="store_true")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="churnwatch-live-bench-"))
    log = ROOT / "bench" / "data" / f"live-{args.accounts}x{args.days}.jsonl"
    if not log.exists():
        log.parent.mkdir(parents=True, exist_ok=True)
        Deployment("unused:0", work).cli("simulate", "--accounts", str(args.accounts), "--days",
                                         str(args.days), "--seed", "9", "-o", str(log))  # fmt: skip
    result: dict = {
        "command": "python bench/live_bench.py " + " ".join(sys.argv[1:]),
        "machine": f"{platform.machine()}, python {platform.python_version()}",
        "log": str(log.relative_to(ROOT)),
        "partitions": args.partitions,
    }
    with ApacheKafka(heap="1g") as broker:
        result["broker"] = f"Apache Kafka {KAFKA_VERSION} (KRaft, local)"
        if not args.skip_throughput:
            result["throughput"] = throughput(broker.bootstrap, work, log, args.rounds,
                                              args.partitions)  # fmt: skip
            print(orjson.dumps(result["throughput"]).decode(), flush=True)
        if not args.skip_latency:
            result["latency"] = latency_runs(broker.bootstrap, work, log, args.rate,
                                             args.partitions, args.latency_runs)  # fmt: skip
            print(orjson.dumps(result["latency"]).decode(), flush=True)
        if not args.skip_recovery:
            result["recovery_seconds"] = recovery(
                broker.bootstrap, work, log, args.recovery_accounts, args.partitions
            )
            print(orjson.dumps(result["recovery_seconds"]).decode(), flush=True)
    print(f"written to {write_results(args.results, result)}")


if __name__ == "__main__":
    main()
