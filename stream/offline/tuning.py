"""The backtest and calibrate jobs: replay a log, score it, learn from it, write the results.

``churnwatch backtest`` and ``churnwatch calibrate`` are thin wrappers around
:func:`backtest` and :func:`calibrate`, which tests call directly. Reports are plain data and
deterministic: the same log, labels, policy and seed give byte-identical JSON.
"""

from __future__ import annotations

import csv
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from stream.core.features import describe
from stream.core.policy import Policy, load_policy, parse_policy, to_toml
from stream.core.signals import registry
from stream.core.signals.base import Ctx
from stream.core.state import AccountState
from stream.offline import danger_rerun, policy_rerun
from stream.offline import risk_calibration as rc
from stream.offline.backtest import OVERALL, Mark, Scoring, Split, score
from stream.offline.calibrate import (
    DangerSamples,
    calibrated_policy_data,
    choose_lines,
    gate_signals,
)
from stream.offline.dismissals import Dismissal, relabel
from stream.offline.evaluation import LogRun, run_log
from stream.offline.outcomes import apply_labels_file
from stream.run.parallel import PolicySource

ACCOUNT_COLUMNS = ("account_id", "segment", "mrr", "first_alert", "cancelled", "churn",
                   "lead_days", "alerts")  # fmt: skip
"""The account lists' CSV columns: what scoring knows of each account (``first_alert`` is the
first alert in the horizon before a churner's cancellation, a retained account's first alert;
``lead_days`` from it to the cancellation; ``churn`` voluntary or involuntary)."""
CSV_FILES = {"caught": "caught", "missed": "missed", "false_alarms": "false-alarms"}


def write_account_lists(lists: dict[str, list[dict]], prefix: str) -> list[str]:
    """PREFIX-caught.csv, PREFIX-missed.csv and PREFIX-false-alarms.csv, a row per account in
    the report's order, empty cells for what is not known; returns the paths written."""
    written = []
    for kind, suffix in CSV_FILES.items():
        path = f"{prefix}-{suffix}.csv"
        with open(path, "w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(ACCOUNT_COLUMNS)
            for row in lists.get(kind, []):
                writer.writerow("" if row[c] is None else row[c] for c in ACCOUNT_COLUMNS)
        written.append(path)
    return written


@dataclass(frozen=True)
class LogSpec:
    """Where a job's input comes from and how it is replayed."""

    log: str
    rejects: str
    labels: str | None = None
    policy: str | None = None
    partitions: int = 1
    quiet: bool = False
    not_after_ms: int | None = None  # events stamped later are rejected (see replay())
    jobs: int = 1  # processes to replay in (see stream.run.parallel); the results do not vary
    rerun: bool = True
    """calibrate: derive the calibrated policies' alerts from the first replay and its samples
    where that is exact (:mod:`stream.offline.policy_rerun`); False replays them (the tests
    compare the two)."""


@dataclass
class CalibrationProbe:
    """The day probe of calibration's sampling replay: the danger-zone levels and the risk
    model's feature vectors of every judged account-day.

    Picklable, so that each ``--jobs`` job fills a copy; :meth:`merged` puts the copies
    together in an order that does not depend on how many there were (accounts sorted; the
    feature rows are sorted by account and day when frozen anyway).
    """

    danger: DangerSamples
    metrics: rc.FeatureSamples

    def __call__(self, acct: AccountState, ctx: Ctx) -> None:
        self.danger(acct, ctx)
        self.metrics(acct, ctx)

    def count_records(self, published: Callable[[], int]) -> None:
        """Have each sampled day close note how many alert records came before it."""
        self.metrics.published = published

    def merged(self, parts: list[CalibrationProbe]) -> CalibrationProbe:
        danger, metrics = DangerSamples(), rc.FeatureSamples(self.metrics.tracked)
        lines: dict[tuple[str, str], float] = {}
        for part in parts:
            danger.by_account.update(part.danger.by_account)
            for cell, line in part.danger.current_lines.items():
                lines.setdefault(cell, line)
            metrics.extend(part.metrics)
        danger.by_account = dict(sorted(danger.by_account.items()))
        danger.current_lines = dict(sorted(lines.items()))
        return CalibrationProbe(danger, metrics)


def _run(
    spec: LogSpec, policy: PolicySource, label: str, probe: CalibrationProbe | None = None
) -> tuple[LogRun, CalibrationProbe | None]:
    run, probed = run_log(
        spec.log, policy, spec.rejects, spec.partitions, label, spec.quiet, probe,
        spec.not_after_ms, spec.jobs,
    )  # fmt: skip
    if spec.labels:
        text = Path(spec.labels).read_bytes()
        apply_labels_file(run.outcomes, text, spec.labels)
    return run, probed


def _replay_counts(run: LogRun) -> dict:
    return {"lines": run.report.lines, "events": run.report.events,
            "rejected": run.report.rejected}  # fmt: skip


def _score(run: LogRun, scoring: Scoring, split: Split) -> dict:
    start, end = run.span_ms
    return score(run.marks, run.outcomes.accounts, start, end, scoring, split)


def backtest(spec: LogSpec, scoring: Scoring, split: Split) -> dict:
    load_policy(spec.policy)  # a bad policy stops here, before any job starts
    run, _ = _run(spec, PolicySource(spec.policy), "backtest")
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
    budget: float = rc.rl.DAY_ALERT_BUDGET,
    dismissals: Sequence[Dismissal] = (),
) -> tuple[dict, str]:
    """Learn on ``split``'s side (train, or all); with a train split, also compare the base and
    the calibrated policy, and the naive baselines, on the held-out side. Returns the report
    and the policy's TOML.

    Two things are learned: the danger-zone lines (as before) and the churn-risk model over
    every metric the state keeps. The model is written into the policy only when it beats the
    better naive baseline on the held-out accounts; otherwise the report says so plainly and
    the policy carries the other decisions only.
    """
    base_data = tomllib.loads(Path(spec.policy).read_text()) if spec.policy else {}
    load_policy(spec.policy)  # a bad base policy stops here, with its own message
    tracked = rc.top_features(spec.log) if spec.log != "-" else ()
    tracking_data = rc.tracking_policy_data(base_data, tracked)
    base_policy = parse_policy(tracking_data, "the base policy")
    tracking = PolicySource(data=tracking_data, name="the base policy")
    empty = CalibrationProbe(DangerSamples(), rc.FeatureSamples(tracked))
    run, probed = _run(spec, tracking, "calibrate", probe=empty)
    assert probed is not None
    danger, metrics = probed.danger, probed.metrics
    outcomes = run.outcomes.accounts
    if not outcomes:
        raise CalibrationError(f"{spec.log}: no valid events to learn from")
    learn_on = {a: out for a, out in outcomes.items() if split(a)}
    churners = sum(1 for out in learn_on.values() if out.churned)
    if churners == 0:
        raise CalibrationError(
            f"{spec.log}: no account in the learning set cancelled, so there is nothing to "
            "learn what precedes churn from (give --labels, or a log with cancellations)"
        )
    choices = choose_lines(danger, learn_on, run.span_ms[1], scoring, objective,
                           min_precision, min_churners)  # fmt: skip
    per_signal = _judged_signals(run, scoring, split)
    if dismissals:  # the team's word where the log cannot judge yet (stream.offline.dismissals)
        per_signal = relabel(per_signal, run.marks, learn_on, run.span_ms[1],
                             scoring.horizon_days, list(dismissals))  # fmt: skip
    disabled = gate_signals(per_signal, min_precision)
    data = calibrated_policy_data(base_data, choices, disabled)
    report: dict = {
        "log": spec.log,
        "policy": spec.policy or "built-in",
        "labels": spec.labels or "cancellations in the log",
        "split": split.describe(),
        "objective": objective
        if objective == "f1"
        else f"best recall with precision >= {min_precision:.0%}",
        "scoring": {"horizon_days": scoring.horizon_days, "lead_days": scoring.lead_days},
        "alert_budget_per_100_account_months": budget,
        "replay": _replay_counts(run),
        "cells": [asdict(choice) for choice in choices],
        "disabled_signals": disabled,
    }
    if dismissals:
        report["dismissals"] = {
            "count": len(dismissals),
            "signals": {s: {**n["dismissals"], "precision": n["precision"]}
                        for s, n in per_signal.items() if any(n["dismissals"].values())},
        }  # fmt: skip
    samples = metrics.frozen()
    if not _has_usage(samples):
        raise CalibrationError(
            f"{spec.log}: the log has no product usage (no login, session or feature_used "
            "event), so there is no behaviour to learn what precedes churn from; give a log "
            "with the usage topic's events alongside billing"
        )
    context = rc.Context(outcomes, run.span_ms[1], scoring)
    train = set(learn_on)
    # The model spends what budget the calibrated rules leave: their alerts on this very log
    # are merged with the model's into one episode per account while its threshold is chosen.
    rules = _calibrated_rules(spec, run, danger, base_policy, data, disabled)
    model = None
    if len(samples):
        try:
            spans = rc.rule_spans(rules, train)
            model = rc.learn(samples, context, train, budget, spans, drop_rules=True)
        except ValueError as exc:
            report["risk_model"] = {"learned": False, "why": str(exc)}
    rules_only = data
    if model is not None and model.dropped_rules:
        data = calibrated_policy_data(base_data, choices, {**disabled, **model.dropped_rules})
    with_model = data
    if model is not None:
        with_model = rc.model_policy_data(data, model, tracked, scoring.horizon_days)
        report["risk_model"] = _model_summary(model, tracked)
    tuned_policy = parse_policy(with_model, "the calibrated policy")  # never write one it refuses
    written = with_model
    if split.part == "train":
        held_out = Split("test", split.seed, split.test_fraction)
        test = {a for a in outcomes if held_out(a)}
        off = {*disabled, *(model.dropped_rules if model is not None else {})}
        marks = None
        if spec.rerun:
            marks = policy_rerun.held_out_marks(
                run, danger, metrics, base_policy, tuned_policy, off, test
            )
        if marks is not None:
            tuned = LogRun(run.report, run.outcomes, marks, run.portfolio, run.cancels)
        else:
            tuned_source = PolicySource(data=with_model, name="the calibrated policy")
            tuned, _ = _run(spec, tuned_source, "held-out check")
        scored_before, scored_after = (
            _score(run, scoring, held_out),
            _score(tuned, scoring, held_out),
        )
        before, after = scored_before["signals"][OVERALL], scored_after["signals"][OVERALL]
        naive = rc.baselines(samples, context, train, test, budget) if len(samples) else {}
        report["holdout"] = {"base policy": before, "calibrated policy": after, **naive}
        report["holdout_change"] = _change(before, after)
        report["holdout_signals"] = {
            signal: {"before": _figures(old), "after": _figures(new), "change": _change(old, new)}
            for signal, old in scored_before["signals"].items()
            for new in (scored_after["signals"][signal],)
        }
        # Who the calibrated policy caught, missed and falsely alerted among the held-out
        # accounts, per segment and churn type: the accounts it never learned from.
        report["holdout_accounts"] = {
            key: scored_after[key]
            for key in ("population", "segments", "churn_types", "churn_reasons", "accounts")
        }
        judged = rc.fair(naive, budget)
        best_name = max(judged, key=lambda name: judged[name]["f1"] or 0.0, default="")
        best = judged.get(best_name, {"f1": 0.0, "per_100_accounts_per_month": 0.0})
        beats = (after["f1"] or 0.0) > (best["f1"] or 0.0)
        report["verdict"] = _verdict(beats, after, best_name, best, model is not None)
        if model is not None and not beats:
            written = rules_only  # the model did not earn its place: do not ship it
            report["risk_model"]["written"] = False
        elif model is not None:
            # The method has proved itself on accounts it never saw; the policy gets the same
            # method fitted on every account, twice the history to learn from.
            everyone = set(outcomes)
            kept = {
                signal: spans
                for signal, spans in rc.rule_spans(rules, everyone).items()
                if signal not in disabled and signal not in model.dropped_rules
            }
            final = rc.learn(samples, context, everyone, budget, kept)
            final.dropped_rules = model.dropped_rules
            written = rc.model_policy_data(data, final, tracked, scoring.horizon_days)
            parse_policy(written, "the calibrated policy")
            report["risk_model"] = {
                **_model_summary(final, tracked),
                "refit_on": "all accounts, after the held-out check",
                "held_out_check_threshold": model.threshold,
            }
    if model is not None and written is not rules_only:
        report["disabled_signals"] = {**disabled, **model.dropped_rules}
    return report, _policy_text(report, written)


def _calibrated_rules(
    spec: LogSpec, run: LogRun, danger: DangerSamples, base: Policy, data: dict,
    disabled: dict[str, str],
) -> list[Mark]:  # fmt: skip
    """The calibrated rules' marks on the log: the base replay's, with the danger zone judged
    again at the learned lines from the samples, when that gives what a replay of the rules
    would (:mod:`stream.offline.danger_rerun`, checked against the base replay's own danger
    zone); otherwise a replay of the rules."""
    rules = parse_policy(data, "the calibrated rules")
    held = run.report.engine.get("held_by_exclusion", 0)
    if spec.rerun and danger_rerun.exact_for(rules, disabled, held):
        again = danger_rerun.episodes(danger.by_account, run.cancels, base)
        if danger_rerun.same_as_published(again, run.marks):
            kept = [m for m in run.marks
                    if m.signal != danger_rerun.SIGNAL and m.signal not in disabled]  # fmt: skip
            found = danger_rerun.episodes(danger.by_account, run.cancels, rules)
            return kept + danger_rerun.as_marks(found)
    source = PolicySource(data=data, name="the calibrated rules")
    return _run(spec, source, "calibrated rules")[0].marks


FIGURES = ("precision", "recall", "f1", "per_100_accounts_per_month")
"""What the held-out comparison sets side by side, and gives the change of."""


def _figures(numbers: dict) -> dict:
    return {key: numbers[key] for key in (*FIGURES, "openings", "confusion")}


def _change(before: dict, after: dict) -> dict:
    return {
        key: None if before[key] is None or after[key] is None
        else round(after[key] - before[key], 4)
        for key in FIGURES
    }  # fmt: skip


def _has_usage(samples: rc.rl.Samples) -> bool:
    usage = [samples.names.index(n) for n in ("logins_per_week", "minutes_per_week",
                                              "feature_uses_per_week")]  # fmt: skip
    return bool(samples.x[:, usage].any())


class CalibrationError(ValueError):
    """A log calibration cannot learn from; the message says why and what to give instead."""


def _judged_signals(run: LogRun, scoring: Scoring, split: Split) -> dict[str, dict]:
    """Each signal's figures against the churn it predicts.

    Payment signals foretell involuntary churn (the card failed, the invoice went unpaid): an
    account that left for other reasons is not their miss, and a whole-churn precision would
    switch off the one signal that catches involuntary churners. So they
    (``registry.INVOLUNTARY_SIGNALS``) are scored against involuntary cancellations only;
    every other signal, the purchase signals of the billing dimension included, against all
    churn.
    """
    start, end = run.span_ms
    outcomes = run.outcomes.accounts
    overall = score(run.marks, outcomes, start, end, scoring, split)["signals"]
    involuntary = {
        a: out if out.involuntary else replace(out, cancel_ms=None, involuntary=None)
        for a, out in outcomes.items()
    }
    billing = score(run.marks, involuntary, start, end, scoring, split)["signals"]
    return {
        signal: billing[signal] if signal in registry.INVOLUNTARY_SIGNALS else numbers
        for signal, numbers in overall.items()
    }  # fmt: skip


def _model_summary(model: rc.Model, tracked: tuple[str, ...]) -> dict:
    def strongest(fitted: rc.Fitted) -> list[dict]:
        ranked = sorted(
            zip(model.names, fitted.coefficients, strict=True),
            key=lambda kv: (-abs(kv[1]), kv[0]),
        )
        return [
            {"metric": name, "words": describe(name), "weight": weight}
            for name, weight in ranked[:12]
        ]

    return {
        "learned": True,
        "written": True,
        "tracked_features": list(tracked),
        "threshold": model.threshold,
        "train": model.train,
        "weights": strongest(model.shared),
        "segments": {
            segment: {
                "note": note,
                "weights": strongest(model.segments[segment]) if segment in model.segments else [],
            }
            for segment, note in model.segment_notes.items()
        },
        "cohorts": model.cohorts,
    }


def _verdict(beats: bool, after: dict, name: str, best: dict, learned: bool) -> str:
    def figures(numbers: dict) -> str:
        return (
            f"F1 {numbers['f1'] or 0.0:.2f} at {numbers['per_100_accounts_per_month'] or 0.0:.1f} "
            "openings per 100 account-months"
        )

    if beats:
        return (
            f"The calibrated policy beats the best naive baseline on the held-out accounts "
            f"({figures(after)}, against {figures(best)} for '{name}'): recommended."
        )
    tail = " The learned risk model is not written into the policy." if learned else ""
    return (
        f"The calibrated policy does NOT beat the naive baseline '{name}' on the held-out "
        f"accounts ({figures(after)}, against {figures(best)}). Behaviour does not predict "
        f"churn well in this log, or there is too little of it: expect few useful alerts.{tail}"
    )


def decisions(report: dict) -> list[str]:
    """What calibration decided, a line each: for the policy file's header and the terminal."""
    lines = [
        f"danger zone {cell['segment']}/{cell['stage']}: line {cell['line']} "
        f"(was {cell['current']}): {cell['note']}"
        for cell in report["cells"]
    ]
    lines += [f"{signal} switched off: {why}" for signal, why in report["disabled_signals"].items()]
    model = report.get("risk_model")
    if model and model.get("learned"):
        top = ", ".join(w["words"] for w in model["weights"][:3])
        state = "written" if model.get("written") else "NOT written"
        lines.append(
            f"churn risk model {state}: alert at probability {model['threshold']:.3f}; "
            f"strongest metrics: {top}"
        )
    elif model:
        lines.append(f"churn risk model not learned: {model['why']}")
    if report.get("verdict"):
        lines.append(report["verdict"])
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
