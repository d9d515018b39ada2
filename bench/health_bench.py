"""Account-health snapshots: how much they add to replay, and what the topic carries.

    python bench/health_bench.py [--accounts 2000] [--days 120] [--rounds 3]

A seeded simulated log (cached under bench/data/) is replayed in one process, alternating
(a) plain replay and (b) replay that also builds and writes every account's daily snapshot,
as the worker publishes them; the figures are medians of the rounds and their ratio.

The topic figures come from the snapshots of run (b): how many per account-day, their size
(mean, p50, max), what gzip would make of them in 64 KB batches (the worker's producer does
not compress; a ``compression.type`` on the topic would), and from those the bytes a day's
close writes for 100,000 accounts and the compacted topic's size (one latest snapshot per
account).

Results are printed and written to bench/results/health.json.
"""

from __future__ import annotations

import argparse
import gzip
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.replay_bench import ensure_log  # noqa: E402
from bench.results_file import write_results  # noqa: E402
from stream.core.engine import PartitionedEngine  # noqa: E402
from stream.core.policy import load_policy  # noqa: E402
from stream.run.replay import replay  # noqa: E402

SCALE = 100_000


def _lines(path: Path):
    with path.open("rb") as f:
        yield from enumerate(f, 1)


def _run(path: Path, snapshots: bool) -> tuple[float, int, list[bytes]]:
    engine = PartitionedEngine(load_policy(None), 6, snapshots=snapshots)
    kept: list[bytes] = []
    started = time.perf_counter()
    report = replay(
        _lines(path), engine, lambda _: None, lambda _: None,
        write_health=kept.append if snapshots else None,
    )  # fmt: skip
    return time.perf_counter() - started, report.events, kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    path = ensure_log(args.accounts, args.days, args.seed)
    plain, with_health = [], []
    snapshots: list[bytes] = []
    events = 0
    for _ in range(args.rounds):
        seconds, events, _kept = _run(path, False)
        plain.append(events / seconds)
        seconds, events, snapshots = _run(path, True)
        with_health.append(events / seconds)
    sizes = sorted(len(s) - 1 for s in snapshots)  # without the newline
    mean = statistics.fmean(sizes)
    # As a compressing producer would see them: batches of about 64 KB (70-odd snapshots).
    sample = snapshots[: min(len(snapshots), 20_000)]
    step = max(1, 65_536 // round(mean))
    batches = [b"".join(sample[i : i + step]) for i in range(0, len(sample), step)]
    gzip_ratio = sum(len(gzip.compress(b)) for b in batches) / sum(len(b) for b in batches)
    account_days = len(snapshots) / args.accounts
    result = {
        "command": f"python bench/health_bench.py --accounts {args.accounts} --days {args.days} "
        f"--rounds {args.rounds} --seed {args.seed}",
        "python": platform.python_version(),
        "log": {"accounts": args.accounts, "days": args.days, "events": events},
        "replay_events_per_s": {
            "plain_median": round(statistics.median(plain)),
            "with_snapshots_median": round(statistics.median(with_health)),
            "ratio": round(statistics.median(with_health) / statistics.median(plain), 3),
            "plain_runs": [round(x) for x in plain],
            "with_snapshots_runs": [round(x) for x in with_health],
        },
        "snapshots": {
            "count": len(snapshots),
            "per_account": round(account_days, 1),
            "bytes_mean": round(mean),
            "bytes_p50": sizes[len(sizes) // 2],
            "bytes_max": sizes[-1],
            "gzip_ratio": round(gzip_ratio, 3),
        },
        f"per_{SCALE}_accounts": {
            "records_per_day": SCALE,
            "mb_per_day_uncompressed": round(SCALE * mean / 1e6, 1),
            "mb_per_day_gzip": round(SCALE * mean * gzip_ratio / 1e6, 1),
            "compacted_topic_mb": round(SCALE * mean / 1e6, 1),
        },
    }
    where = write_results("health", result)
    rates = result["replay_events_per_s"]
    snap = result["snapshots"]
    scaled = result[f"per_{SCALE}_accounts"]
    print(
        f"replay events/s, median of {args.rounds}: plain {rates['plain_median']:,}, "
        f"with snapshots {rates['with_snapshots_median']:,} (ratio {rates['ratio']})"
    )
    print(
        f"snapshots: {snap['count']:,} ({snap['per_account']} per account), "
        f"{snap['bytes_mean']} bytes mean, {snap['bytes_max']} max, gzip x{snap['gzip_ratio']}"
    )
    print(
        f"{SCALE:,} accounts: {scaled['records_per_day']:,} records and "
        f"{scaled['mb_per_day_uncompressed']} MB a day ({scaled['mb_per_day_gzip']} MB gzip); "
        f"compacted topic about {scaled['compacted_topic_mb']} MB"
    )
    print(f"written to {where}")


if __name__ == "__main__":
    main()
