"""Commands that read what the worker published: serve, notify, alerts tail, account, portfolio.

The Kafka settings, the Redis client and the HTTP service are imported inside the handlers,
so that ``churnwatch --help`` and the offline commands never pay for them.
"""

from __future__ import annotations

import argparse
import sys

from schemas.alerts import SEVERITY_RANK
from schemas.codec import dumps_pretty
from stream.cli.actions import add_action_commands, add_export_command
from stream.cli.args import (
    PreformattedHelpFormatter,
    UsageError,
    add_command,
    host,
    log,
    non_negative,
    port,
    positive_int,
)
from stream.core.policy import load_policy
from stream.core.signals.registry import PUBLISHED
from stream.render.text import LEGEND
from stream.run.logs import log_format, setup_root_logging


def register(sub: argparse._SubParsersAction) -> None:
    _add_serve(sub)
    _add_notify(sub)
    _add_alerts(sub)
    _add_account(sub)
    _add_portfolio(sub)


# serve


def _add_serve(sub: argparse._SubParsersAction) -> None:
    s = add_command(
        sub,
        "serve",
        help="keep the Redis read model from the alerts topic and serve the HTTP API and page",
        description="Configured by the worker's CHURNWATCH_* variables, plus CHURNWATCH_REDIS_URL, "
        "_REDIS_PREFIX, _API_HOST and _API_PORT; --host and --port override the last two.",
    )
    s.set_defaults(handler=_cmd_serve)
    s.add_argument(
        "--host",
        type=host,
        help="address the API and page listen on (default: CHURNWATCH_API_HOST, else 127.0.0.1)",
    )
    s.add_argument(
        "--port",
        type=port,
        help="port the API and page listen on (default: CHURNWATCH_API_PORT, else 8080)",
    )


def _cmd_serve(args: argparse.Namespace) -> int:
    import logging

    from stream.kafka.settings import load_settings
    from stream.sinks.serve import run_service

    settings = load_settings()
    # A flag beats the variable, as on any command line; model_copy skips validation, which
    # the flags' own types have done.
    chosen = {"api_host": args.host, "api_port": args.port}
    settings = settings.model_copy(update={k: v for k, v in chosen.items() if v is not None})
    policy = load_policy(settings.policy)
    setup_root_logging(log_format(), settings.log_level, "[%(asctime)s] %(message)s")
    logging.getLogger("kafka").setLevel(logging.WARNING)
    run_service(settings, policy)
    return 0


# notify


def _add_notify(sub: argparse._SubParsersAction) -> None:
    n = add_command(
        sub,
        "notify",
        help="send new and escalated alerts to webhooks (Slack or signed JSON), and a daily "
        "digest per owner",
        description="Reads the alerts topic (the worker's CHURNWATCH_* variables) in its own "
        "consumer group, queues notifications in a persistent outbox, and sends them with "
        "retries; routes and the digest come from --config (see docs/notifications.md).",
    )
    n.set_defaults(handler=_cmd_notify)
    n.add_argument(
        "--config",
        help="notification routes, TOML (no default: needed, except with --status)",
    )
    n.add_argument(
        "--outbox",
        default="churnwatch-notify.db",
        help="the outbox file (SQLite); keep it on a persistent disk, one per notifier",
    )
    n.add_argument(
        "--from-beginning",
        action="store_true",
        help="a new notifier starts at the topic's first alert, not at its end",
    )
    n.add_argument(
        "--metrics-port",
        type=port,
        help="serve Prometheus metrics on this port (default: not served)",
    )
    n.add_argument(
        "--status",
        action="store_true",
        help="print the outbox's counts (pending, delivered, expired) and exit",
    )


def _cmd_notify(args: argparse.Namespace) -> int:
    import logging
    import signal

    from prometheus_client import start_http_server

    from stream.kafka.settings import load_settings
    from stream.run.metrics import Registry
    from stream.sinks.notifier import Notifier
    from stream.sinks.notify_config import load_notify_config
    from stream.sinks.outbox import Outbox

    if args.status:
        outbox = Outbox(args.outbox)
        try:
            print(dumps_pretty(outbox.counts()).decode())
        finally:
            outbox.close()
        return 0
    if not args.config:
        raise UsageError("notify needs --config FILE: the webhook routes (docs/notifications.md)")
    config = load_notify_config(args.config)
    settings = load_settings()
    setup_root_logging(log_format(), settings.log_level, "[%(asctime)s] %(message)s")
    logging.getLogger("kafka").setLevel(logging.WARNING)
    registry = Registry()
    notifier = Notifier(settings, config, args.outbox, registry, from_beginning=args.from_beginning)
    if args.metrics_port is not None:
        start_http_server(args.metrics_port, registry=registry)

    def stop(signum: int, frame: object) -> None:
        notifier.stop.set()

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, stop)
    log.info("notify: %d routes%s; outbox %s", len(config.route),
             ", daily digest" if config.digest else "", args.outbox)  # fmt: skip
    try:
        notifier.run()
    except KeyboardInterrupt:
        notifier.stop.set()
    return 0


# alerts tail


def _add_alerts(sub: argparse._SubParsersAction) -> None:
    al = add_command(sub, "alerts", help="terminal views of the alerts topic, and actions on "
                     "alerts (ack, snooze, dismiss, note)")  # fmt: skip
    al_sub = al.add_subparsers(dest="alerts_command", required=True, metavar="ACTION")
    add_action_commands(al_sub)
    add_export_command(al_sub)
    tail_p = add_command(
        al_sub,
        "tail",
        help="print alerts as they arrive, readable or as JSON",
        description="Print alerts as they arrive, one line each (or JSON with --json).\n\n"
        + LEGEND,
        formatter_class=PreformattedHelpFormatter,
    )
    tail_p.set_defaults(handler=_cmd_alerts_tail)
    tail_p.add_argument(
        "--signal",
        action="append",
        choices=PUBLISHED,
        default=[],
        metavar="SIGNAL",  # the list of choices would overflow the usage line
        help="only alerts about this signal, as their own or as one of an account episode's "
        f"reasons (repeatable; default: all): {', '.join(PUBLISHED)}",
    )
    tail_p.add_argument(
        "--severity",
        action="append",
        choices=tuple(SEVERITY_RANK),
        default=[],
        help="only this severity (repeatable; default: all)",
    )
    tail_p.add_argument(
        "--owner",
        action="append",
        default=[],
        metavar="NAME",
        help="only alerts about this owner's (CSM's) accounts: my accounts; the whole name, "
        "ignoring case, as the API's owner= filter (repeatable; default: every owner)",
    )
    tail_p.add_argument(
        "--from-beginning",
        action="store_true",
        help="start at the topic's first record, not its end",
    )
    tail_p.add_argument("--json", action="store_true", help="one alert JSON per line")
    tail_p.add_argument(
        "--max", type=positive_int, help="stop after this many alerts (default: no limit)"
    )
    tail_p.add_argument(
        "--idle-seconds",
        type=non_negative,
        help="stop after this long without a record (default: never)",
    )


def _cmd_alerts_tail(args: argparse.Namespace) -> int:
    from stream.kafka.settings import load_settings
    from stream.sinks.terminal import print_line, tail

    tail(load_settings(), print_line, set(args.signal), set(args.severity), args.from_beginning,
         args.json, args.max, args.idle_seconds, args.owner)  # fmt: skip
    return 0


# account


def _add_account(sub: argparse._SubParsersAction) -> None:
    acc = add_command(sub, "account", help="explain one account from the read model")
    acc.set_defaults(handler=_cmd_account)
    acc.add_argument("account_id", help="the account's id, as in its events")
    acc.add_argument("--json", action="store_true", help="the API's JSON instead of text")


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
        log.warning("churnwatch account: %r is not in the read model (no alert and no health "
                    "snapshot of it yet)", args.account_id)  # fmt: skip
        return 1
    if args.json:
        sys.stdout.write(dumps_pretty(view).decode() + "\n")
    else:
        print(explain_account(view, load_policy(settings.policy)))
    return 0


# portfolio


def _add_portfolio(sub: argparse._SubParsersAction) -> None:
    pf = add_command(
        sub,
        "portfolio",
        help="MRR at risk, churn per month by reason and managed or not, and what became of "
        "alerted accounts, from the read model",
        description="The figures GET /portfolio serves, read from the read model in Redis "
        "(CHURNWATCH_REDIS_URL, _REDIS_PREFIX).",
    )
    pf.set_defaults(handler=_cmd_portfolio)
    pf.add_argument(
        "--months", type=positive_int, default=6, help="the last N months, in the text (default: 6)"
    )
    pf.add_argument("--json", action="store_true", help="the API's JSON (every month)")


def _cmd_portfolio(args: argparse.Namespace) -> int:
    import redis

    from stream.kafka.settings import load_settings
    from stream.sinks.readmodel_store import RedisReadModel
    from stream.sinks.terminal import portfolio_text

    settings = load_settings()
    store = RedisReadModel.from_url(settings.redis_url.get_secret_value(), settings.redis_prefix)
    try:
        report = store.portfolio_report()
    except redis.RedisError as exc:
        raise UsageError(f"cannot read the read model in Redis: {exc}") from None
    if args.json:
        sys.stdout.write(dumps_pretty(report).decode() + "\n")
    else:  # in the words of the taxonomy serve classified by: the policy's
        print(portfolio_text(report, args.months, load_policy(settings.policy).churn_reasons))
    return 0
