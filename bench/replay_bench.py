"""Replay throughput against an orjson baseline, and memory per tracked account.

    python bench/replay_bench.py [--accounts 10000] [--days 60] [--rounds 3] [--partitions 6]

Throughput: a seeded simulated log (cached under bench/data/) is read in the same process by
(a) the baseline, a loop that only does ``orjson.loads`` per line, and (b) the full replay,
:func:`stream.run.replay.replay` as ``churnwatch replay --jobs 1`` runs it (reading the log,
decode and validate, the merge of usage and billing per emulated partition, the core, alert
encoding; only the file writes are left out). Rounds alternate a and b so both see the same
machine load; the figures are medians and their ratio.

Cost split: on a smaller log held in memory, microseconds per event of each stage: orjson
alone, decode and validate, the core on decoded events (and its day closes), and the whole
replay loop over the same lines; what the loop costs beyond decode and core is replay's own
(the merge, rejects and bookkeeping).

Memory: a second log long enough that every account carries 120 days of history is replayed
once; the size of every account's state is summed object by object (``sys.getsizeof`` over the
state and everything it holds) and divided by the number of accounts.

Results are printed and written to bench/results/replay.json.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import sys
import time
from array import array
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.results_file import write_results  # noqa: E402
from schemas.events import decode_event  # noqa: E402
from stream.core.engine import PartitionedEngine, PartitionEngine  # noqa: E402
from stream.core.policy import load_policy  # noqa: E402
from stream.core.state import AccountState, Episode  # noqa: E402
from stream.devtools.simulator import SimConfig, generate, serialize  # noqa: E402
from stream.run.logio import LogReader  # noqa: E402
from stream.run.replay import replay  # noqa: E402

DATA = ROOT / "bench" / "data"


def ensure_log(accounts: int, days: int, seed: int) -> Path:
    path = DATA / f"sim-{accounts}x{days}-seed{seed}.jsonl"
    if not path.exists():
        DATA.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with tmp.open("wb", buffering=1 << 20) as out:
            for line in serialize(generate(SimConfig(accounts=accounts, days=days, seed=seed))):
                out.write(line)
        tmp.rename(path)
    return path


def baseline(path: Path) -> int:
    n = 0
    loads = orjson.loads
    with path.open("rb") as f:
        for line in f:
            loads(line)
            n += 1
    return n


class _Sink:
    """Counts encoded alerts: the replay pays for encoding, not for disk writes."""

    def __init__(self) -> None:
        self.bytes = 0

    def write(self, data: bytes) -> None:
        self.bytes += len(data)


def replay_file(
    path: Path, policy_path: str | None = None, partitions: int = 1
) -> tuple[int, PartitionedEngine, int]:
    """Replay a log file as the CLI does (without writing files): lines, engine, alert bytes."""
    engine = PartitionedEngine(load_policy(policy_path), partitions)
    sink = _Sink()
    with LogReader(str(path)) as reader:
        report = replay(reader, engine, sink.write, lambda _: None)
    return report.lines, engine, sink.bytes


class _TimedCloses(PartitionEngine):
    """The engine with a stopwatch around day closes, for the cost split only."""

    close_seconds = 0.0

    def _close_through(self, acct, last):  # type: ignore[override]
        started = time.perf_counter()
        try:
            return super()._close_through(acct, last)
        finally:
            _TimedCloses.close_seconds += time.perf_counter() - started


def cost_split(path: Path, rounds: int, policy_path: str | None = None) -> dict:
    """Microseconds per event for each stage, from in-memory lines (medians of ``rounds``)."""
    lines = path.read_bytes().splitlines()
    events = [decode_event(line) for line in lines]
    policy = load_policy(policy_path)
    # A replay holds a few events at a time, this split holds all of them: kept out of the
    # collector, they are not walked by every full collection (which would bill the stages
    # measured after them for a cost a streaming replay never has).
    gc.collect()
    gc.freeze()
    parse, decode, core, closes, loop = [], [], [], [], []
    for _ in range(rounds):
        t = time.perf_counter()
        for line in lines:
            orjson.loads(line)
        parse.append(time.perf_counter() - t)
        t = time.perf_counter()
        for line in lines:
            decode_event(line)
        decode.append(time.perf_counter() - t)
        engine = _TimedCloses(policy)
        _TimedCloses.close_seconds = 0.0
        t = time.perf_counter()
        for event in events:
            engine.process(event)
        core.append(time.perf_counter() - t)
        closes.append(_TimedCloses.close_seconds)
        whole = PartitionedEngine(policy)
        t = time.perf_counter()
        replay(enumerate(lines, 1), whole, lambda _: None, lambda _: None)
        loop.append(time.perf_counter() - t)
    gc.unfreeze()
    n = len(lines)
    day_closes = engine.stats["day_closes"]
    return {
        "log": str(path.relative_to(ROOT)),
        "events": n,
        "orjson_loads_us": round(statistics.median(parse) / n * 1e6, 2),
        "decode_and_validate_us": round(statistics.median(decode) / n * 1e6, 2),
        "core_us": round(statistics.median(core) / n * 1e6, 2),
        "replay_loop_us": round(statistics.median(loop) / n * 1e6, 2),
        "replay_own_us": round(
            (statistics.median(loop) - statistics.median(decode) - statistics.median(core))
            / n
            * 1e6,
            2,
        ),
        "day_closes_per_event": round(day_closes / n, 3),
        "us_per_day_close": round(statistics.median(closes) / day_closes * 1e6, 1),
        "day_closes_us_per_event": round(statistics.median(closes) / n * 1e6, 2),
    }


def deep_size(obj: object, seen: set[int]) -> int:
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    size = sys.getsizeof(obj)
    if isinstance(obj, AccountState | Episode):
        for name in type(obj).__slots__:
            size += deep_size(getattr(obj, name), seen)
    elif isinstance(obj, dict):
        for key, value in obj.items():
            size += deep_size(key, seen) + deep_size(value, seen)
    elif isinstance(obj, list | tuple | set):
        for item in obj:
            size += deep_size(item, seen)
    elif isinstance(obj, (bytes, bytearray, array, str, int, float)) or obj is None:
        pass
    return size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--memory-accounts", type=int, default=2_000)
    parser.add_argument("--memory-days", type=int, default=130)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--split-accounts",
        type=int,
        default=2_000,
        help="accounts in the (in-memory) log used for the per-stage cost split",
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--partitions", type=int, default=6, help="emulated partitions, as replay's default"
    )
    parser.add_argument(
        "--policy",
        help="a policy file (e.g. one calibrate wrote, with a learned churn-risk model) instead "
        "of the built-in one: what live scoring costs per event, and per account",
    )
    args = parser.parse_args()

    log = ensure_log(args.accounts, args.days, args.seed)
    base_rates, replay_rates = [], []
    lines = alerts_bytes = 0
    engine = None
    for round_no in range(args.rounds):
        gc.collect()
        t = time.perf_counter()
        lines = baseline(log)
        base_rates.append(lines / (time.perf_counter() - t))
        gc.collect()
        t = time.perf_counter()
        lines, engine, alerts_bytes = replay_file(log, args.policy, args.partitions)
        replay_rates.append(lines / (time.perf_counter() - t))
        print(
            f"round {round_no + 1}: baseline {base_rates[-1]:,.0f} lines/s, "
            f"replay {replay_rates[-1]:,.0f} events/s",
            flush=True,
        )
    assert engine is not None
    stats = engine.stats
    accounts = sum(1 for _ in engine.accounts())
    del engine
    gc.collect()

    mem_log = ensure_log(args.memory_accounts, args.memory_days, args.seed)
    _, mem_engine, _ = replay_file(mem_log, args.policy, args.partitions)
    tracked = list(mem_engine.accounts())
    seen: set[int] = set()
    per_account = [deep_size(acct, seen) for acct in tracked]
    history = [acct.head_day - acct.first_day + 1 for acct in tracked]
    full = [size for size, days in zip(per_account, history, strict=True) if days >= 120]

    split_log = ensure_log(args.split_accounts, args.days, args.seed)
    split = cost_split(split_log, args.rounds, args.policy)

    base, rep = statistics.median(base_rates), statistics.median(replay_rates)
    result = {
        "command": "python bench/replay_bench.py " + " ".join(sys.argv[1:]),
        "machine": f"{platform.machine()}, python {platform.python_version()}",
        "load_average_after": os.getloadavg(),
        "policy": args.policy or "built-in",
        "partitions": args.partitions,
        "log": {
            "path": str(log.relative_to(ROOT)),
            "lines": lines,
            "accounts": accounts,
            "days": args.days,
            "bytes": log.stat().st_size,
        },
        "rounds": args.rounds,
        "baseline_lines_per_s": {"median": round(base), "all": [round(r) for r in base_rates]},
        "replay_events_per_s": {"median": round(rep), "all": [round(r) for r in replay_rates]},
        "replay_share_of_baseline": round(rep / base, 4),
        "engine": {k: stats[k] for k in sorted(stats)},
        "alert_bytes": alerts_bytes,
        "cost_split_us_per_event": split,
        "memory": {
            "log": str(mem_log.relative_to(ROOT)),
            "accounts": len(tracked),
            "accounts_with_120_days": len(full),
            "bytes_per_account_median": round(statistics.median(full or per_account)),
            "bytes_per_account_max": max(full or per_account),
        },
    }
    written = write_results("replay" if args.policy is None else "replay_policy", result)
    print(f"baseline (orjson.loads per line): {base:,.0f} lines/s (median of {args.rounds})")
    print(f"replay (as replay --jobs 1):      {rep:,.0f} events/s (median of {args.rounds})")
    print(f"replay / baseline: {rep / base:.1%}")
    print(
        f"cost split on {split['log']} (us/event): orjson.loads {split['orjson_loads_us']}, "
        f"decode+validate {split['decode_and_validate_us']}, core {split['core_us']} (day closes "
        f"{split['day_closes_us_per_event']}: {split['day_closes_per_event']} closes/event x "
        f"{split['us_per_day_close']} us); whole replay loop {split['replay_loop_us']}, of "
        f"which replay's own {split['replay_own_us']}"
    )
    print(
        f"state per account with 120 days of history: median "
        f"{result['memory']['bytes_per_account_median']:,} bytes, max "
        f"{result['memory']['bytes_per_account_max']:,} ({len(full):,} accounts)"
    )
    print(f"written to {written}")


if __name__ == "__main__":
    main()
