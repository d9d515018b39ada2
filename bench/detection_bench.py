"""Detection quality across churn shapes: learn on one seed, score on another.

For each scenario of ``churnwatch simulate`` it writes a training log (one seed) and a test log
(another seed), runs ``churnwatch calibrate`` on the training log (which holds half of it out
and ships the learned model only if it beats the naive baselines there), then scores both the
built-in policy and the calibrated one on the unseen test log with ``churnwatch backtest``.
It prints F1, precision, recall and openings per 100 account-months, the calibration verdict,
and calibrate's wall time next to a plain replay's on the same log, and writes the figures to
``bench/results/detection.json``.

    python bench/detection_bench.py --accounts 1500 --days 150
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.results_file import write_results  # noqa: E402

DATA = ROOT / "bench" / "data" / "detection"


def cli(*args: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "stream.cli", *args], check=True, cwd=ROOT)
    return time.perf_counter() - started


def overall(path: Path) -> dict:
    numbers = json.loads(path.read_text())["signals"]["all_signals"]
    keep = ("f1", "precision", "recall", "per_100_accounts_per_month", "churners_eligible",
            "openings", "alerted_accounts")  # fmt: skip
    out = {key: numbers[key] for key in keep}
    out["openings_per_alerted_account"] = (
        round(numbers["openings"] / numbers["alerted_accounts"], 2)
        if numbers["alerted_accounts"]
        else None
    )
    return out


def run(scenario: str, accounts: int, days: int, churn: float, seeds: tuple[int, int]) -> dict:
    work = DATA / scenario
    work.mkdir(parents=True, exist_ok=True)
    train, test = work / "train.jsonl.gz", work / "test.jsonl.gz"
    for seed, path in zip(seeds, (train, test), strict=True):
        cli("simulate", "--scenario", scenario, "--monthly-churn", str(churn), "--accounts",
            str(accounts), "--days", str(days), "--seed", str(seed), "-o", str(path))  # fmt: skip
    replay_s = cli("replay", str(train), "-o", str(work / "alerts.jsonl"), "-q")
    policy, report = work / "calibrated.toml", work / "calibration.json"
    calibrate_s = cli("calibrate", str(train), "-o", str(policy), "--report", str(report), "-q")
    cli("backtest", str(test), "-o", str(work / "builtin.json"), "-q")
    cli("backtest", str(test), "--policy", str(policy), "-o", str(work / "calibrated.json"), "-q")
    calibration = json.loads(report.read_text())
    model = calibration.get("risk_model", {})
    return {
        "scenario": scenario,
        "built_in": overall(work / "builtin.json"),
        "calibrated": overall(work / "calibrated.json"),
        "model_written": bool(model.get("written")),
        "verdict": calibration.get("verdict"),
        "holdout": {
            name: {k: v[k] for k in ("f1", "per_100_accounts_per_month")}
            for name, v in calibration.get("holdout", {}).items()
        },
        "replay_seconds": round(replay_s, 2),
        "calibrate_seconds": round(calibrate_s, 2),
        "calibrate_over_replay": round(calibrate_s / replay_s, 2),
    }


def log_arguments(parser: argparse.ArgumentParser) -> None:
    """The logs' shape and seeds, shared with ``detection_ceiling.py``, which reads them."""
    parser.add_argument("--accounts", type=int, default=1500)
    parser.add_argument("--days", type=int, default=150)
    parser.add_argument("--monthly-churn", type=float, default=0.03)
    parser.add_argument("--train-seed", type=int, default=11)
    parser.add_argument("--test-seed", type=int, default=12)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    log_arguments(parser)
    parser.add_argument(
        "--scenario", action="append", choices=("level", "random", "decline", "mixed")
    )
    args = parser.parse_args()
    rows = []
    for scenario in args.scenario or ("level", "random", "decline", "mixed"):
        row = run(scenario, args.accounts, args.days, args.monthly_churn,
                  (args.train_seed, args.test_seed))  # fmt: skip
        rows.append(row)
        b, c = row["built_in"], row["calibrated"]
        print(
            f"{scenario:8} built-in F1 {b['f1']} at {b['per_100_accounts_per_month']}/100am | "
            f"calibrated F1 {c['f1']} (P {c['precision']}, R {c['recall']}) at "
            f"{c['per_100_accounts_per_month']}/100am, {c['openings_per_alerted_account']} per "
            f"alerted account | model written: {row['model_written']} | "
            f"calibrate {row['calibrate_over_replay']}x replay",
            flush=True,
        )
        print(f"         {row['verdict']}", flush=True)
    write_results("detection", {"config": vars(args), "rows": rows})


if __name__ == "__main__":
    main()
