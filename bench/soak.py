"""Soak: one worker for a long run at a steady rate over a large simulated population.

    python bench/soak.py [--minutes 20] [--accounts 100000] [--rate 1000] [--store rocksdb]

A seeded log with ``--accounts`` accounts is cut to ``minutes × 60 × rate`` events (every
account appears on the first simulated days), produced with ``churnwatch produce --rate`` while
the worker consumes it. Every 30 s the worker's resident memory, the group's lag (input end
offsets minus committed offsets), dead letters and alerts are sampled. A healthy run has memory
that levels off once every account exists and lag that does not keep rising.

Results are printed and written to bench/results/soak.json.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path

import orjson
from kafka import KafkaConsumer, TopicPartition

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.results_file import write_results  # noqa: E402
from stream.devtools.brokers import KAFKA_VERSION, ApacheKafka  # noqa: E402
from stream.devtools.deployment import Deployment  # noqa: E402
from stream.devtools.simulator import SimConfig, generate  # noqa: E402

SAMPLE_EVERY_S = 30


def _log(accounts: int, events: int, seed: int) -> Path:
    path = ROOT / "bench" / "data" / f"soak-{accounts}-{events}-seed{seed}.jsonl"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with tmp.open("wb") as out:
            for event in islice(generate(SimConfig(accounts=accounts, days=30, seed=seed)), events):
                out.write(orjson.dumps(event) + b"\n")
        tmp.rename(path)
    return path


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _end_total(dep: Deployment, name: str, partitions: int) -> int:
    consumer = KafkaConsumer(bootstrap_servers=dep.bootstrap)
    try:
        tps = [TopicPartition(dep.topics[name], p) for p in range(partitions)]
        return sum(consumer.end_offsets(tps).values())
    finally:
        consumer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=20)
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--store", choices=("rocksdb", "memory"), default="rocksdb")
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()

    events = int(args.minutes * 60 * args.rate)
    log = _log(args.accounts, events, args.seed)
    work = Path(tempfile.mkdtemp(prefix="churnwatch-soak-"))
    samples: list[dict] = []
    with ApacheKafka(heap="768m") as broker:
        dep = Deployment(broker.bootstrap, work, partitions=args.partitions,
                         CHURNWATCH_STORE=args.store)  # fmt: skip
        dep.cli("worker", "--check")
        worker = dep.start_worker()
        feed = subprocess.Popen(
            [sys.executable, "-m", "stream.cli", "produce", str(log), "--rate", str(args.rate),
             "-q"], env=dep.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        started = time.monotonic()
        try:
            while True:
                time.sleep(SAMPLE_EVERY_S)
                done, total = dep.consumed()
                sample = {
                    "s": round(time.monotonic() - started),
                    "rss_mb": round(_rss_mb(worker.pid), 1),
                    "produced": total,
                    "lag": total - done,
                    "alerts": _end_total(dep, "alerts", args.partitions),
                    "dead_letters": _end_total(dep, "dead_letter", 1),
                }
                samples.append(sample)
                print(orjson.dumps(sample).decode(), flush=True)
                if worker.poll() is not None:
                    raise SystemExit(f"the worker died:\n{dep.worker_logs()}")
                if feed.poll() is not None and sample["lag"] == 0 and total >= events:
                    break
        finally:
            feed.kill()
            dep.stop_all()
    if feed.returncode not in (0, -9):
        raise SystemExit(f"produce failed: {feed.stderr.read().decode() if feed.stderr else ''}")
    half = samples[len(samples) // 2 :]
    result = {
        "command": "python bench/soak.py " + " ".join(sys.argv[1:]),
        "machine": f"{platform.machine()}, python {platform.python_version()}",
        "broker": f"Apache Kafka {KAFKA_VERSION} (KRaft, local)",
        "accounts": args.accounts,
        "events": events,
        "rate": args.rate,
        "store": args.store,
        "duration_s": samples[-1]["s"],
        "rss_mb": {"first": samples[0]["rss_mb"], "median_second_half":
                   statistics.median(s["rss_mb"] for s in half),
                   "max": max(s["rss_mb"] for s in samples), "last": samples[-1]["rss_mb"]},
        "lag": {"max": max(s["lag"] for s in samples),
                "median_second_half": statistics.median(s["lag"] for s in half)},
        "alerts": samples[-1]["alerts"],
        "dead_letters": samples[-1]["dead_letters"],
        "samples": samples,
    }  # fmt: skip
    print(f"written to {write_results('soak', result)}")


if __name__ == "__main__":
    main()
