"""``--jobs``: replay on one core against several, and calibrate's wall time against replay's.

    python bench/parallel_bench.py [--accounts 2000] [--days 120] [--rounds 3] [--jobs 2]

The log is the seeded simulation of bench/replay_bench.py (cached under bench/data/). Each
round runs, as whole ``churnwatch`` processes on the same log, ``replay --jobs 1`` and
``replay --jobs N`` (their order alternating from round to round, so both see the same load
on a shared box), then ``calibrate --jobs N``; and, in this process, the baseline: a loop
that only does ``orjson.loads`` per line of the same file. Figures are medians of the rounds
and ratios of those medians. Every replay's alerts must be byte-identical (the digests are
compared), and every calibrated policy too.

The box these run on is shared: when other work keeps its cores busy, a second job finds no
free core and the wall-clock speedup says more about the neighbours than about ``--jobs``.
So the CPU seconds of every run are recorded too (the command and its jobs, from
``getrusage``), and one more in-process run of N jobs reports each share's own CPU time (the
parent's share includes reading and routing the whole log): the longest is the wall time a
box with a free core per job would see.

Results are printed and written to bench/results/parallel.json.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.replay_bench import baseline, ensure_log  # noqa: E402
from bench.results_file import write_results  # noqa: E402
from stream.run.parallel import PolicySource, run_parallel  # noqa: E402

NOW = "2027-01-01T00:00:00Z"
"""A fixed --now, so that every run judges future-stamped lines alike."""


CPU: dict[str, list[float]] = {}
"""CPU seconds (user + system, the command and its jobs) of each timed run, by kind."""


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(args: list[str], kind: str) -> float:
    started, cpu = time.perf_counter(), _cpu()
    done = subprocess.run([sys.executable, "-m", "stream.cli", *args], cwd=ROOT,
                          capture_output=True, check=False)  # fmt: skip
    seconds = time.perf_counter() - started
    CPU.setdefault(kind, []).append(_cpu() - cpu)
    if done.returncode != 0:
        raise SystemExit(f"churnwatch {args[0]} failed:\n{done.stderr.decode()}")
    return seconds


def critical_path(log: Path, partitions: int, jobs: int) -> list[float]:
    """Each share's own CPU seconds in one run of ``jobs`` shares: first this process's (it
    reads and routes the log and replays share 0; counted from the call, so without the
    interpreter's start), then each job's (from its start). On a box with a free core per
    share, the longest one is the wall time (plus the merge), whatever else the box runs."""
    started = time.process_time()
    with run_parallel(str(log), PolicySource(None), partitions, jobs) as run:
        run.write("alerts", lambda _: None)
        cpu = [result.cpu_seconds for result in run.results]
    cpu[0] -= started
    return [round(seconds, 2) for seconds in cpu]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=2_000)
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2, help="the parallel side (default 2)")
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--skip-calibrate", action="store_true")
    args = parser.parse_args()

    log = ensure_log(args.accounts, args.days, args.seed)
    work = Path(tempfile.mkdtemp(prefix="churnwatch-parallel-bench-"))
    times: dict[str, list[float]] = {"orjson": [], "jobs_1": [], "jobs_n": [], "calibrate": []}
    digests: set[str] = set()
    policies: set[str] = set()
    lines = 0
    for n in range(args.rounds):
        started = time.perf_counter()
        lines = baseline(log)
        times["orjson"].append(time.perf_counter() - started)
        order = [("jobs_1", 1), ("jobs_n", args.jobs)]
        for key, jobs in order if n % 2 == 0 else order[::-1]:
            out = work / f"alerts-{key}.jsonl"
            times[key].append(_timed(["replay", str(log), "-o", str(out), "-q", "--now", NOW,
                                      "--jobs", str(jobs), "--partitions",
                                      str(args.partitions)], key))  # fmt: skip
            digests.add(_digest(out))
        if not args.skip_calibrate:
            policy = work / "policy.toml"
            times["calibrate"].append(_timed(["calibrate", str(log), "-o", str(policy), "-q",
                                              "--now", NOW, "--jobs", str(args.jobs),
                                              "--partitions", str(args.partitions)],
                                             "calibrate"))  # fmt: skip
            policies.add(_digest(policy))
        print(f"round {n + 1}: " + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in times.items() if v),
              flush=True)  # fmt: skip
    shutil.rmtree(work, ignore_errors=True)
    median = {key: statistics.median(values) for key, values in times.items() if values}
    jobs_cpu = critical_path(log, args.partitions, args.jobs)
    result = {
        "command": "python bench/parallel_bench.py " + " ".join(sys.argv[1:]),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"python {platform.python_version()}",
        "load_average_after": os.getloadavg(),
        "log": {"path": str(log.relative_to(ROOT)), "lines": lines,
                "accounts": args.accounts, "days": args.days, "bytes": log.stat().st_size},
        "partitions": args.partitions,
        "jobs": args.jobs,
        "rounds": args.rounds,
        "seconds": {key: {"median": round(median[key], 2), "all": [round(v, 2) for v in values]}
                    for key, values in times.items() if values},
        "orjson_lines_per_s": round(lines / median["orjson"]),
        "replay_jobs_1_events_per_s": round(lines / median["jobs_1"]),
        "replay_jobs_n_events_per_s": round(lines / median["jobs_n"]),
        "speedup_jobs_n_over_1": round(median["jobs_1"] / median["jobs_n"], 3),
        "alerts_byte_identical": len(digests) == 1,
        "cpu_seconds": {key: {"median": round(statistics.median(v), 2),
                              "all": [round(x, 2) for x in v]} for key, v in CPU.items()},
        "cpu_seconds_per_job": jobs_cpu,
        "critical_path_speedup": round(statistics.median(CPU["jobs_1"]) / max(jobs_cpu), 3),
    }  # fmt: skip
    if "calibrate" in median:
        result["calibrate_over_replay_jobs_n"] = round(median["calibrate"] / median["jobs_n"], 2)
        result["policies_byte_identical"] = len(policies) == 1
    written = write_results("parallel", result)
    print(f"baseline orjson.loads: {result['orjson_lines_per_s']:,} lines/s")
    print(f"replay --jobs 1: {result['replay_jobs_1_events_per_s']:,} lines/s; --jobs "
          f"{args.jobs}: {result['replay_jobs_n_events_per_s']:,} lines/s; speedup "
          f"{result['speedup_jobs_n_over_1']}x; alerts identical: "
          f"{result['alerts_byte_identical']}")  # fmt: skip
    print(f"CPU seconds: --jobs 1 {result['cpu_seconds']['jobs_1']['median']}, --jobs "
          f"{args.jobs} {result['cpu_seconds']['jobs_n']['median']} in all, per share (the "
          f"parent's first) {jobs_cpu}: "
          f"critical-path speedup {result['critical_path_speedup']}x")  # fmt: skip
    if "calibrate" in median:
        print(
            f"calibrate --jobs {args.jobs}: {median['calibrate']:.1f} s, "
            f"{result['calibrate_over_replay_jobs_n']}x replay --jobs {args.jobs}"
        )
    print(f"written to {written}")


if __name__ == "__main__":
    main()
