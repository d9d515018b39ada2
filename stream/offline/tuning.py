"""The backtest and calibrate jobs: replay a log, score it, learn from it, write the results.

``churnwatch backtest`` and ``churnwatch calibrate`` are thin wrappers around
:func:`backtest` and :func:`calibrate`, which tests call directly. Reports are plain data and
deterministic: the same log, labels, policy and seed give byte-identical JSON.
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path

from stream.core.policy import Policy, load_policy, parse_policy, to_toml
from stream.offline.backtest import OVERALL, Scoring, Split, score
from stream.offline.calibrate import (
    DangerSamples,
    calibrated_policy_data,
    choose_lines,
    gate_signals,
)
from stream.offline.evaluation import LogRun, run_log
from stream.offline.outcomes import apply_labels_file


@dataclass(frozen=True)
class LogSpec:
    """Where a job's input comes from and how it is replayed."""

    log: str
    rejects: str
    labels: str | None = None
    policy: str | None = None
    partitions: int = 1
    quiet: bool = False


def _run(spec: LogSpec, policy: Policy, label: str, probe=None) -> LogRun:
    run = run_log(spec.log, policy, spec.rejects, spec.partitions, label, spec.quiet, probe)
    if spec.labels:
        text = Path(spec.labels).read_bytes()
        apply_labels_file(run.outcomes, text, spec.labels)
    return run


def _replay_counts(run: LogRun) -> dict:
    return {"lines": run.report.lines, "events": run.report.events,
            "rejected": run.report.rejected}  # fmt: skip


def _score(run: LogRun, scoring: Scoring, split: Split) -> dict:
    start, end = run.span_ms
    return score(run.marks, run.outcomes.accounts, start, end, scoring, split)


def backtest(spec: LogSpec, scoring: Scoring, split: Split) -> dict:
    run = _run(spec, load_policy(spec.policy), "backtest")
    return {
        "log": spec.log,
        "policy": spec.policy or "built-in",
        "labels": spec.labels or "cancellations in the log",
        "split": split.describe(),
        "replay": _replay_counts(run),
        **_score(run, scoring, split),
        "portfolio": run.portfolio_months(),
    }


def calibrate(
    spec: LogSpec,
    scoring: Scoring,
    split: Split,
    objective: str = "recall",
    min_precision: float = 0.6,
    min_churners: int = 30,
) -> tuple[dict, str]:
    """Learn on ``split``'s side (train, or all); with a train split, also compare the base and
    the calibrated policy on the held-out side. Returns the report and the policy's TOML."""
    base = load_policy(spec.policy)
    samples = DangerSamples()
    run = _run(spec, base, "calibrate", probe=samples)
    learn_on = {a: out for a, out in run.outcomes.accounts.items() if split(a)}
    choices = choose_lines(samples, learn_on, run.span_ms[1], scoring, objective,
                           min_precision, min_churners)  # fmt: skip
    per_signal = _score(run, scoring, split)["signals"]
    disabled = gate_signals(per_signal, min_precision)
    base_data = tomllib.loads(Path(spec.policy).read_text()) if spec.policy else {}
    data = calibrated_policy_data(base_data, choices, disabled)
    tuned_policy = parse_policy(data, "the calibrated policy")  # never write one it would refuse
    report: dict = {
        "log": spec.log,
        "policy": spec.policy or "built-in",
        "labels": spec.labels or "cancellations in the log",
        "split": split.describe(),
        "objective": objective
        if objective == "f1"
        else f"best recall with precision >= {min_precision:.0%}",
        "scoring": {"horizon_days": scoring.horizon_days, "lead_days": scoring.lead_days},
        "replay": _replay_counts(run),
        "cells": [asdict(choice) for choice in choices],
        "disabled_signals": disabled,
    }
    if split.part == "train":
        held_out = Split("test", split.seed, split.test_fraction)
        tuned = _run(spec, tuned_policy, "held-out check")
        before = _score(run, scoring, held_out)["signals"][OVERALL]
        after = _score(tuned, scoring, held_out)["signals"][OVERALL]
        report["holdout"] = {"base policy": before, "calibrated policy": after}
        report["holdout_change"] = {
            key: None if before[key] is None or after[key] is None
            else round(after[key] - before[key], 4)
            for key in ("precision", "recall", "f1", "per_100_accounts_per_month")
        }  # fmt: skip
    return report, _policy_text(report, data)


def decisions(report: dict) -> list[str]:
    """What calibration decided, a line each: for the policy file's header and the terminal."""
    lines = [
        f"danger zone {cell['segment']}/{cell['stage']}: line {cell['line']} "
        f"(was {cell['current']}): {cell['note']}"
        for cell in report["cells"]
    ]
    lines += [f"{signal} switched off: {why}" for signal, why in report["disabled_signals"].items()]
    return lines


def _policy_text(report: dict, data: dict) -> str:
    lines = [
        "# churnwatch policy calibrated from an event log (churnwatch calibrate).",
        f"# log: {report['log']}; labels: {report['labels']}; learned on the {report['split']}",
        f"# objective: {report['objective']}; horizon {report['scoring']['horizon_days']} days, "
        f"lead {report['scoring']['lead_days']} days",
        *(f"# {line}" for line in decisions(report)),
    ]
    return "\n".join(lines) + "\n" + to_toml(data).lstrip("\n") + "\n"
