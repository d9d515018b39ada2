"""How good could any detector be on the ``level`` scenario? The ceiling, by the backtest's rules.

The ``level`` simulator decides churn at each renewal with a known probability (the key
features' levels, the first renewal's lift). This benchmark gives a perfect "model" those true
probabilities: each account-day's chance of cancelling within the horizon, from the renewals
that fall in it. Its threshold is chosen on the training seed within the alert budget, as
``calibrate`` chooses the learned model's, and it is scored on the test seed. No detector that
sees only the events can beat it on average, so it says how far the learned model is from the
best possible, and whether a target is reachable at all.

Run ``bench/detection_bench.py --scenario level`` first (it writes the two logs), then:

    python bench/detection_ceiling.py
"""

from __future__ import annotations

import argparse
import sys
from array import array
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.detection_bench import log_arguments  # noqa: E402
from bench.results_file import write_results  # noqa: E402
from stream.core.policy import load_policy  # noqa: E402
from stream.core.timeutil import DAY_MS, to_ms  # noqa: E402
from stream.devtools.simulator import SimConfig, level_renewal_risks  # noqa: E402
from stream.offline import risk_calibration as rc  # noqa: E402
from stream.offline import risk_learning as rl  # noqa: E402
from stream.offline.backtest import Scoring  # noqa: E402
from stream.offline.evaluation import run_log  # noqa: E402

DATA = ROOT / "bench" / "data" / "detection" / "level"


def truth_samples(log: Path, cfg: SimConfig, horizon: int) -> tuple[rl.Samples, rc.Context]:
    """Every judged account-day of ``log``, scored with its true chance of cancelling."""
    accounts: list[str] = []
    days = array("q")

    def probe(acct, ctx) -> None:
        accounts.append(acct.account_id)
        days.append(ctx.day)

    run, _ = run_log(str(log), load_policy(None), str(log) + ".rejects", quiet=True, probe=probe)
    risks = level_renewal_risks(cfg)
    start_day = to_ms(cfg.start) // DAY_MS
    order = sorted(range(len(accounts)), key=lambda i: (accounts[i], days[i]))
    truth = np.zeros((len(order), 1))
    for row, i in enumerate(order):
        day = days[i] - start_day
        stays = 1.0
        for renewal, p in risks.get(accounts[i], ()):
            if day < renewal <= day + horizon:
                stays *= 1 - p
        truth[row, 0] = 1 - stays
    samples = rl.Samples(
        names=["true_probability"],
        accounts=[accounts[i] for i in order],
        days=np.array([days[i] for i in order], dtype=np.int64),
        x=truth,
    )
    return samples, rc.Context(run.outcomes.accounts, run.span_ms[1], Scoring(horizon))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    log_arguments(parser)
    parser.add_argument("--budget", type=float, default=5.0)
    args = parser.parse_args()
    sets = []
    for seed, name in ((args.train_seed, "train"), (args.test_seed, "test")):
        cfg = SimConfig(accounts=args.accounts, days=args.days, seed=seed, scenario="level",
                        monthly_churn=args.monthly_churn)  # fmt: skip
        sets.append(truth_samples(DATA / f"{name}.jsonl.gz", cfg, 60))
    (train, train_ctx), (test, test_ctx) = sets
    keep = set(train.accounts)
    choice = rc.choose_threshold(train, rl.AccountRows.of(train), train.x[:, 0], train_ctx,
                                 keep, args.budget)  # fmt: skip
    t = choice.threshold
    opened = rl.openings_for(test, rl.AccountRows.of(test), test.x[:, 0], t, t * rc.CLEAR_RATIO,
                             set(test.accounts))  # fmt: skip
    figures = test_ctx.score(opened, set(test.accounts))  # openings at their days' close
    keys = ("f1", "precision", "recall", "per_100_accounts_per_month")
    row = {key: figures[key] for key in keys}
    print(
        f"level ceiling (true probabilities, threshold {t:.3f} chosen on seed "
        f"{args.train_seed}): F1 {row['f1']} (P {row['precision']}, R {row['recall']}) at "
        f"{row['per_100_accounts_per_month']}/100am on seed {args.test_seed}"
    )
    write_results("detection_ceiling", {"config": vars(args), "threshold": t, "test": row})


if __name__ == "__main__":
    main()
