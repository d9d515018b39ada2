"""Commands that work on event-log files, no broker needed: simulate, replay, backtest, calibrate.

Each command's flags sit directly above its handler so that a flag and its use are read together.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable
from pathlib import Path

from schemas.codec import dumps, dumps_pretty
from stream.cli.args import (
    DAMAGED_LOG_HELP,
    LOG_HELP,
    DeprecatedAlias,
    UsageError,
    add_command,
    add_now,
    add_partitions_and_jobs,
    date,
    fraction,
    holdout,
    incomplete_status,
    log,
    non_negative,
    non_negative_int,
    not_after_ms,
    open_fraction,
    positive_float,
    positive_int,
    rejects_note,
    with_completeness,
)
from stream.core.engine import PartitionedEngine
from stream.core.policy import load_policy
from stream.devtools.simulator import SCENARIOS, Label, Noise, SimConfig, generate, serialize
from stream.offline.backtest import OVERALL, Scoring, Split
from stream.offline.calibrate import OBJECTIVES
from stream.offline.dismissals import load_dismissals
from stream.offline.report_html import backtest_html, calibration_html
from stream.offline.tuning import (
    CalibrationError,
    LogSpec,
    backtest,
    calibrate,
    decisions,
    write_account_lists,
)
from stream.run.logio import LogReader, Progress, RejectsFile, open_output
from stream.run.parallel import ParallelRun, PolicySource, effective_jobs, run_parallel
from stream.run.replay import ReplayReport, replay

HOLDOUT_HELP = "share of accounts in the held-out (test) side of the seeded account split"


def register(sub: argparse._SubParsersAction) -> None:
    _add_simulate(sub)
    _add_replay(sub)
    _add_backtest(sub)
    _add_calibrate(sub)


# simulate


def _add_simulate(sub: argparse._SubParsersAction) -> None:
    s = add_command(sub, "simulate", help="write a seeded, realistic event log and its labels")
    s.set_defaults(handler=_cmd_simulate)
    s.add_argument(
        "-o", "--output", default="-", help="log JSONL, .gz to compress (default: stdout)"
    )
    s.add_argument(
        "--labels",
        help="write each account's true outcome as JSONL here (default: not written)",
    )
    s.add_argument(
        "--accounts", type=positive_int, default=1000, help="how many accounts to simulate"
    )
    s.add_argument(
        "--days", type=positive_int, default=150, help="length of the log in days from --start"
    )
    s.add_argument(
        "--seed",
        type=int,
        default=7,
        help="random seed: the same seed and flags give a byte-identical log",
    )
    s.add_argument("--start", type=date, default=SimConfig.start, help="first day, UTC")
    s.add_argument(
        "--new-fraction",
        type=fraction,
        default=SimConfig.new_fraction,
        help="share of accounts that sign up during the log",
    )
    s.add_argument(
        "--jitter-seconds",
        type=non_negative,
        default=0.0,
        help="deliver events up to this late (mild reordering)",
    )
    s.add_argument(
        "--scenario",
        choices=SCENARIOS,
        metavar="SCENARIO",
        default="decline",
        help="how churn arises: decline (usage fades first), level (renewals decided by how "
        "much key features are used, no decline), random (unrelated to behaviour), mixed; "
        "quality (bugs, ticket surges, slow support) and transactional (buyers without a "
        "subscription) for the quality and purchase signals",
    )
    s.add_argument(
        "--monthly-churn",
        type=fraction,
        default=None,
        help="share of accounts cancelling per month (realistic: 0.02-0.04) (default: "
        "decline's classic archetype mix, about 10%%; 0.03 for the other scenarios)",
    )
    s.add_argument("--duplicates", type=fraction, default=0.0, help="share delivered twice")
    s.add_argument("--junk", type=fraction, default=0.0, help="share of junk lines mixed in")


def _cmd_simulate(args: argparse.Namespace) -> int:
    cfg = SimConfig(
        accounts=args.accounts,
        days=args.days,
        seed=args.seed,
        start=args.start,
        new_fraction=args.new_fraction,
        scenario=args.scenario,
        monthly_churn=args.monthly_churn,
    )
    noise = Noise(
        jitter_seconds=args.jitter_seconds,
        duplicate_rate=args.duplicates,
        junk_rate=args.junk,
        seed=args.seed,
    )
    labels: list[Label] = []
    lines = 0
    with open_output(args.output) as out:
        for line in serialize(generate(cfg, labels), noise):
            out.write(line)
            lines += 1
    if args.labels:
        with open_output(args.labels) as out:
            for label in labels:
                out.write(dumps(label.as_dict()) + b"\n")
    churned = sum(1 for label in labels if label.outcome == "churned")
    log.info(
        f"simulate: {lines:,} lines for {cfg.accounts:,} accounts over {cfg.days} days "
        f"({churned:,} churn); seed {cfg.seed}"
    )
    return 0


# replay


def _add_replay(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "replay",
        help="run an event log through the core; write alerts as JSONL",
        epilog=f"{DAMAGED_LOG_HELP} For replay that means the alerts of the lines read are "
        'written, and the summary says "complete": false and, under "incomplete", why.',
    )
    p.set_defaults(handler=_cmd_replay)
    p.add_argument("log", help=LOG_HELP)
    p.add_argument("-o", "--output", default="-", help="alerts JSONL (default: stdout)")
    p.add_argument(
        "--health-out",
        metavar="FILE",
        help="also write every account's health snapshot at each day close as JSONL, as the "
        "worker publishes them to the account-health topic; .gz to compress (default: not "
        "written)",
    )
    p.add_argument(
        "--rejects",
        help="where bad lines go (default: OUTPUT.rejects.jsonl, "
        "or churnwatch-rejects.jsonl when writing to stdout)",
    )
    p.add_argument("--policy", help="policy TOML (default: the built-in policy)")
    add_partitions_and_jobs(p, "to match a live worker exactly")
    add_now(p)
    p.add_argument(
        "--summary",
        help='also write the run\'s counts as JSON to this file, with "complete": false '
        "when the log was damaged (default: not written)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress or summary on stderr")


def _cmd_replay(args: argparse.Namespace) -> int:
    policy = load_policy(args.policy)
    if args.rejects:
        rejects_path = args.rejects
    elif args.output == "-":
        rejects_path = "churnwatch-rejects.jsonl"
    else:
        rejects_path = f"{args.output}.rejects.jsonl"
    if args.output != "-" and Path(args.output).resolve() == Path(rejects_path).resolve():
        raise UsageError("--rejects must differ from --output")
    outputs = [Path(p).resolve() for p in (args.output, rejects_path) if p != "-"]
    if args.health_out == "-" and args.output == "-":
        raise UsageError("--health-out - needs -o FILE: both cannot go to stdout")
    if args.health_out not in (None, "-") and Path(args.health_out).resolve() in outputs:
        raise UsageError("--health-out must differ from --output and --rejects")
    not_after = not_after_ms(args.now)
    if effective_jobs(args.jobs, args.partitions, args.log) > 1:
        report, reader = _replay_in_jobs(args, rejects_path, not_after)
    else:
        engine = PartitionedEngine(policy, args.partitions, snapshots=bool(args.health_out))
        with (
            LogReader(args.log, stop_at_damage=True) as reader,
            open_output(args.output) as out,
            open_output(args.health_out) if args.health_out else contextlib.nullcontext() as health,
            RejectsFile(rejects_path) as rejects,
            Progress("replay", reader.size, enabled=False if args.quiet else None) as progress,
        ):
            report = replay(
                reader,
                engine,
                out.write,
                rejects.write,
                on_progress=lambda n: progress.update(n, reader.position()),
                not_after_ms=not_after,
                write_health=health.write if health is not None else None,
            )
    if args.summary:
        Path(args.summary).write_bytes(dumps(with_completeness(report.as_dict(), reader)) + b"\n")
    if not args.quiet:
        stats = report.engine
        log.info(
            f"replay: {report.lines:,} lines, {report.events:,} events, "
            f"{report.rejected:,} rejected{rejects_note(rejects_path, report.rejected)}, "
            f"{report.alerts:,} alerts "
            f"({stats['alerts_opened']:,} opened, {stats['alerts_updated']:,} updated, "
            f"{stats['alerts_resolved']:,} resolved); duplicates {stats['duplicate']:,}, "
            f"too late {stats['too_late']:,}, unknown types {stats['unknown_type']:,}"
        )
    return incomplete_status("replay", reader)


def _replay_in_jobs(
    args: argparse.Namespace, rejects_path: str, not_after: int | None
) -> tuple[ReplayReport, ParallelRun]:
    """Replay in ``--jobs`` processes (see :mod:`stream.run.parallel`), then merge their
    outputs into the files, in the order one process writes them."""
    size = Path(args.log).stat().st_size if Path(args.log).is_file() else None
    with Progress("replay", size, enabled=False if args.quiet else None) as progress:
        run = run_parallel(
            args.log, PolicySource(args.policy), args.partitions, args.jobs,
            on_progress=progress.update, snapshots=bool(args.health_out), not_after_ms=not_after,
        )  # fmt: skip
    with (
        run,
        open_output(args.output) as out,
        open_output(args.health_out) if args.health_out else contextlib.nullcontext() as health,
        RejectsFile(rejects_path) as rejects,
    ):
        run.write("alerts", out.write)
        if health is not None:
            run.write("health", health.write)
        run.write("rejects", rejects.write)
    return run.report, run


# backtest and calibrate: the same replay of a log, scored or learned from


SCORING_EPILOG = (
    "A damaged log (a truncated or corrupt .gz, a read error) stops it with exit status 1 and "
    "writes no report: figures from part of a log would pass for the whole log's."
)


def _add_scoring_args(t: argparse.ArgumentParser, rejects_help: str) -> None:
    """The flags backtest and calibrate share, so that one run's settings work for the other."""
    t.add_argument("log", help=LOG_HELP)
    t.add_argument("--labels", help="churn labels JSONL (default: cancellations in the log)")
    t.add_argument("--policy", help="policy TOML to start from (default: built-in)")
    t.add_argument(
        "--horizon-days",
        type=positive_int,
        default=Scoring.horizon_days,
        help="an alert counts as right if the account cancels within this",
    )
    t.add_argument(
        "--lead-days",
        type=non_negative_int,
        default=Scoring.lead_days,
        help="a churner counts as caught if alerted at least this early",
    )
    t.add_argument("--seed", type=int, default=7, help="seed of the account split")
    add_partitions_and_jobs(t, "as replay does")
    add_now(t)
    t.add_argument("--rejects", help=rejects_help)
    t.add_argument(
        "--html", help="also write a self-contained HTML report here (default: not written)"
    )
    t.add_argument(
        "--accounts-csv",
        metavar="PREFIX",
        help="also write the caught, missed and falsely alerted accounts as PREFIX-caught.csv, "
        "PREFIX-missed.csv and PREFIX-false-alarms.csv (calibrate: the held-out accounts "
        "under the calibrated policy; default: not written)",
    )
    t.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")


def _spec(args: argparse.Namespace, default_rejects: str) -> LogSpec:
    rejects = args.rejects or default_rejects
    # Fail before a long replay, not after it, when a result could not be written.
    outputs = (args.output, getattr(args, "report", None), args.html, rejects,
               args.accounts_csv and f"{args.accounts_csv}-caught.csv")  # fmt: skip
    for path in filter(None, outputs):
        if not Path(path).resolve().parent.is_dir():
            raise UsageError(f"cannot write {path}: its directory does not exist")
    for path in filter(None, (args.labels, args.policy)):
        if not Path(path).is_file():
            raise UsageError(f"{path}: no such file")
    return LogSpec(args.log, rejects, args.labels, args.policy, args.partitions, args.quiet,
                   not_after_ms(args.now), args.jobs)  # fmt: skip


def _write_reports(
    report: dict, path: str | None, html: str | None, render: Callable[[dict], str]
) -> None:
    if path:
        Path(path).write_bytes(dumps_pretty(report) + b"\n")
    if html:
        Path(html).write_text(render(report), encoding="utf-8")


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _add_backtest(sub: argparse._SubParsersAction) -> None:
    bt = add_command(
        sub,
        "backtest",
        help="score a log's alerts against its cancellations: precision, recall, lead",
        epilog=SCORING_EPILOG,
    )
    bt.set_defaults(handler=_cmd_backtest)
    _add_scoring_args(bt, "where bad lines go (default: OUTPUT.rejects.jsonl, by the report)")
    bt.add_argument("-o", "--output", default="backtest.json", help="JSON report")
    bt.add_argument(
        "--split",
        choices=("all", "train", "test"),
        default="all",
        help="score all accounts, or one side of the seeded split",
    )
    # calibrate's name for the same share; --test-fraction, its old name here, still works.
    bt.add_argument("--holdout", type=open_fraction, default=0.5, help=HOLDOUT_HELP)
    bt.add_argument(
        "--test-fraction",
        dest="holdout",
        type=open_fraction,
        action=DeprecatedAlias,
        replacement="--holdout",
    )


def _cmd_backtest(args: argparse.Namespace) -> int:
    scoring = Scoring(args.horizon_days, args.lead_days)
    split = Split(args.split, args.seed, args.holdout)
    report = backtest(_spec(args, f"{args.output}.rejects.jsonl"), scoring, split)
    _write_reports(report, args.output, args.html, backtest_html)
    if args.accounts_csv:
        write_account_lists(report["accounts"], args.accounts_csv)
    if not args.quiet:
        s = report["signals"][OVERALL]
        per_account = load_policy(args.policy).alerting.per_account
        counted = "account episodes" if per_account else "all signals"
        log.info(
            f"backtest: {report['population']['accounts']:,} accounts, "
            f"{report['population']['churned']:,} churned; {counted}: precision "
            f"{_pct(s['precision'])}, recall {_pct(s['recall'])} "
            f"({s['churners_detected']}/{s['churners_eligible']}), median lead "
            f"{s['lead_days']['median']} days, {s['per_100_accounts_per_month']} alerts per 100 "
            f"accounts per month; report {args.output}"
        )
        boxes = s["confusion"]
        log.info(
            f"backtest: {boxes['caught']:,} churners caught in time, {boxes['missed']:,} "
            f"missed, {boxes['false_alarms']:,} false alarms, F1 {s['f1']}"
            + (f"; account lists {args.accounts_csv}-*.csv" if args.accounts_csv else "")
        )
    return 0


def _add_calibrate(sub: argparse._SubParsersAction) -> None:
    cal = add_command(
        sub,
        "calibrate",
        help="learn what precedes churn in a log (danger lines, a risk model); write a policy",
        epilog=SCORING_EPILOG,
    )
    cal.set_defaults(handler=_cmd_calibrate)
    # Nothing lands in the current directory unasked: the policy goes to stdout by default,
    # and the report and the rejects only where a path is given (or next to one given).
    _add_scoring_args(
        cal,
        "where bad lines go (default: REPORT.rejects.jsonl with --report, else "
        "OUTPUT.rejects.jsonl when -o is a file; with neither they are only counted)",
    )
    cal.add_argument(
        "-o",
        "--output",
        default="-",
        help="where the calibrated policy TOML goes (default: stdout)",
    )
    cal.add_argument(
        "--report",
        help="also write the JSON report here (default: not written; what was decided is "
        "printed on stderr either way)",
    )
    cal.add_argument(
        "--holdout",
        type=holdout,
        default=0.5,
        help=f"{HOLDOUT_HELP}, not learned from but used to compare the policies (0: learn on all)",
    )
    cal.add_argument(
        "--objective",
        choices=OBJECTIVES,
        default="recall",
        help="recall: best recall at --min-precision; f1: best F1",
    )
    cal.add_argument(
        "--min-precision",
        type=fraction,
        default=0.6,
        help="precision target, 0 to 1: --objective recall picks the best-recall line at or "
        "above it, and other signals whose alerts fall below it are switched off",
    )
    cal.add_argument(
        "--min-churners",
        type=positive_int,
        default=30,
        help="a segment and stage with fewer churners keeps its line",
    )
    cal.add_argument(
        "--max-openings-per-100-account-months",
        dest="budget",
        type=positive_float,
        default=5.0,
        help="alert budget: the learned risk threshold keeps openings at or below this",
    )
    cal.add_argument(
        "--dismissals",
        metavar="FILE",
        help="the team's dismissals (churnwatch alerts actions --kind dismiss) as labels: an "
        "alert the log cannot judge yet counts as a false alarm (default: none)",
    )


def _cmd_calibrate(args: argparse.Namespace) -> int:
    scoring = Scoring(args.horizon_days, args.lead_days)
    split = Split("train", args.seed, args.holdout) if args.holdout else Split()
    dismissals = []
    if args.dismissals:
        try:
            text = Path(args.dismissals).read_bytes()
        except OSError as exc:
            raise UsageError(f"--dismissals {args.dismissals}: {exc.strerror or exc}") from None
        dismissals = load_dismissals(text, args.dismissals)
    try:
        report, policy_text = calibrate(
            _spec(args, _calibrate_rejects(args)), scoring, split, args.objective,
            args.min_precision, args.min_churners, args.budget, dismissals,
        )  # fmt: skip
    except CalibrationError as exc:
        log.error(f"churnwatch calibrate: {exc}")
        return 1
    if args.output == "-":
        sys.stdout.write(policy_text)
    else:
        Path(args.output).write_text(policy_text, encoding="utf-8")
    _write_reports(report, args.report, args.html, calibration_html)
    if args.accounts_csv:
        if "holdout_accounts" in report:
            write_account_lists(report["holdout_accounts"]["accounts"], args.accounts_csv)
        else:
            log.warning("calibrate: no account lists with --holdout 0 (nothing held out to "
                        "judge the calibrated policy on); no CSV written")  # fmt: skip
    if not args.quiet:
        for line in decisions(report):
            log.info(f"calibrate: {line}")
        change = report.get("holdout_change")
        if change:
            before, after = report["holdout"]["base policy"], report["holdout"]["calibrated policy"]
            log.info(
                f"calibrate: held-out accounts, base -> calibrated: precision "
                f"{_pct(before['precision'])} -> {_pct(after['precision'])}, recall "
                f"{_pct(before['recall'])} -> {_pct(after['recall'])}, F1 {before['f1']} -> "
                f"{after['f1']}, alerts per 100 accounts per month "
                f"{before['per_100_accounts_per_month']} -> {after['per_100_accounts_per_month']}"
            )
        rejected = report["replay"]["rejected"]
        if rejected and not args.rejects and not args.report and args.output == "-":
            log.warning(f"calibrate: {rejected:,} rejected line(s) not kept (give --rejects "
                        "FILE to keep them)")  # fmt: skip
        policy = "stdout" if args.output == "-" else args.output
        log.info(f"calibrate: policy {policy}, report {args.report or 'not written'}")
    return 0


def _calibrate_rejects(args: argparse.Namespace) -> str:
    """Next to a file the user named; with none named, bad lines are only counted."""
    if args.report:
        return f"{args.report}.rejects.jsonl"
    if args.output != "-":
        return f"{args.output}.rejects.jsonl"
    return os.devnull
