"""Backtest and calibrate on simulated logs: throughput, and the calibrated policy's targets.

    python bench/tuning_bench.py [--accounts 2000] [--days 180] [--rounds 3]

Two seeded logs of the same shape: calibration learns on one (seed 21; its own held-out
half gives the in-log comparison), and the policy it writes is backtested on the other
(seed 22), a log it has never seen, against the built-in policy. Throughput is events per
second of wall time for ``replay`` (the baseline, same log, same run), ``backtest`` and
``calibrate`` (which replays once, with the day probe, and derives the calibrated policies'
alerts for the model fit and the held-out check from that replay; see
stream/offline/policy_rerun.py); medians of the rounds. Every command runs with its default
``--jobs`` (the number of cores). Results are printed and written to bench/results/tuning.json.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.results_file import write_results  # noqa: E402

TARGETS = {"recall": 0.8, "precision": 0.6, "per_100_accounts_per_month": 5.0}


def _cli(*args: str) -> float:
    quiet = [] if args[0] == "simulate" else ["-q"]
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "stream.cli", *args, *quiet], check=True, cwd=ROOT)
    return time.perf_counter() - started


def _log(accounts: int, days: int, seed: int) -> Path:
    path = ROOT / "bench" / "data" / f"tuning-{accounts}x{days}-s{seed}.jsonl.gz"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        _cli("simulate", "--accounts", str(accounts), "--days", str(days), "--seed", str(seed),
             "-o", str(path))  # fmt: skip
    return path


def _overall(report: Path) -> dict:
    numbers = orjson.loads(report.read_bytes())["signals"]["all_signals"]
    keep = ("precision", "recall", "f1", "per_100_accounts_per_month", "openings",
            "churners_detected", "churners_eligible", "lead_days")  # fmt: skip
    return {k: numbers[k] for k in keep}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    learn, unseen = _log(args.accounts, args.days, 21), _log(args.accounts, args.days, 22)
    out = Path(tempfile.mkdtemp(prefix="churnwatch-tuning-"))
    summary = out / "replay.json"
    _cli("replay", str(learn), "-o", "/dev/null", "--summary", str(summary),
         "--rejects", str(out / "r.jsonl"))  # fmt: skip
    events = orjson.loads(summary.read_bytes())["events"]
    seconds: dict[str, list[float]] = {"replay": [], "backtest": [], "calibrate": []}
    for n in range(args.rounds):
        seconds["replay"].append(_cli("replay", str(learn), "-o", "/dev/null",
                                      "--rejects", str(out / "r.jsonl")))  # fmt: skip
        seconds["backtest"].append(_cli("backtest", str(learn), "-o", str(out / "bt.json")))
        seconds["calibrate"].append(
            _cli(
                "calibrate",
                str(learn),
                "-o",
                str(out / "policy.toml"),
                "--report",
                str(out / "calibration.json"),
            )
        )
        print(f"round {n + 1}: " + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in seconds.items()),
              flush=True)  # fmt: skip
    calibration = orjson.loads((out / "calibration.json").read_bytes())
    _cli("backtest", str(unseen), "-o", str(out / "unseen-base.json"))
    _cli("backtest", str(unseen), "--policy", str(out / "policy.toml"),
         "-o", str(out / "unseen-calibrated.json"), "--html", str(out / "unseen.html"))  # fmt: skip
    base, tuned = _overall(out / "unseen-base.json"), _overall(out / "unseen-calibrated.json")
    rates = {k: round(events / statistics.median(v)) for k, v in seconds.items()}
    result = {
        "command": "python bench/tuning_bench.py " + " ".join(sys.argv[1:]),
        "machine": f"{platform.machine()}, python {platform.python_version()}",
        "log": {
            "accounts": args.accounts,
            "days": args.days,
            "events": events,
            "learn_seed": 21,
            "unseen_seed": 22,
        },
        "events_per_second": rates,
        "share_of_replay": {k: round(rates[k] / rates["replay"], 3) for k in rates},
        "seconds": seconds,
        "calibration": {
            "cells": [
                {
                    k: c[k]
                    for k in ("segment", "stage", "line", "current", "churners", "learned", "note")
                }
                for c in calibration["cells"]
            ],
            "disabled_signals": calibration["disabled_signals"],
            "held_out_half": calibration["holdout_change"],
        },
        "unseen_log": {"base policy": base, "calibrated policy": tuned},
        "targets": {
            key: {
                "target": target,
                "calibrated": tuned[key],
                "met": tuned[key] <= target if key.startswith("per_100") else tuned[key] >= target,
            }
            for key, target in TARGETS.items()
        },
    }
    print(orjson.dumps({k: result[k] for k in ("events_per_second", "targets")}).decode())
    path = write_results("tuning", result)
    print(f"written to {path}; HTML report of the unseen log: {out}/unseen.html")


if __name__ == "__main__":
    main()
