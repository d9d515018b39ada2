"""``churnwatch``: the one command for everything a person runs.

Every subcommand turns bad input (flags, files, policies) into a one-line error on stderr and
exit status 2, never a traceback; I/O failures exit with 1. A log that cannot be read to its
end (a truncated .gz) gives 3 from replay and produce, after they finish on the lines before
the damage and say the run is incomplete. A reader that stops reading
(``churnwatch alerts tail | head``) ends the command quietly with status 0.

What the commands say on stderr (summaries, warnings, errors) goes through the
``churnwatch.cli`` logger: plain lines by default, one JSON object per line with
``CHURNWATCH_LOG_FORMAT=json`` (:mod:`stream.run.logs`), as the worker's and ``serve``'s logs.

The commands live one module per group, each command's flags next to its handler:
:mod:`~stream.cli.offline` (simulate, replay, backtest, calibrate), :mod:`~stream.cli.live`
(broker, worker, produce, demo), :mod:`~stream.cli.read` (serve, alerts tail, account) and
:mod:`~stream.cli.policy` (policy, schema); :mod:`~stream.cli.args` holds what they share.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from kafka.errors import KafkaError

from stream.cli import live, offline, policy, read
from stream.cli.args import EXIT_INCOMPLETE, EXIT_IO, EXIT_USAGE, HelpFormatter, UsageError
from stream.core.policy import PolicyError
from stream.devtools.brokers import BrokerError
from stream.kafka.topics import TopicError
from stream.offline.outcomes import LabelsError
from stream.run import logs
from stream.run.jobs import JobError
from stream.run.logio import LogError, close_displays

__all__ = [
    "EXIT_INCOMPLETE",
    "EXIT_IO",
    "EXIT_USAGE",
    "UsageError",
    "build_parser",
    "main",
    "package_version",
]


def package_version() -> str:
    """The installed distribution's version; "unknown" when run from a tree never installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("churnwatch")
    except PackageNotFoundError:
        return "unknown"


class _VersionAction(argparse.Action):
    """``--version``, looked up only when asked for: reading package metadata costs start-up."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS,
                 default: str = argparse.SUPPRESS, help: str | None = None) -> None:  # fmt: skip
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:  # fmt: skip
        print(f"{parser.prog} {package_version()}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="churnwatch",
        description="Streaming churn early-warning: detect risk signals, emit explainable alerts.",
        epilog=f"{logs.LOG_FORMAT_VARIABLE}=json writes what the commands log on stderr (the "
        "worker's and serve's logs, summaries, warnings, errors) as one JSON object per line; "
        "the default, text, is for people.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action=_VersionAction, help="print the version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in (offline, live, read, policy):
        group.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _run(argv)
    except BrokenPipeError:
        # The reader went away (``| head``): what it wanted is printed, so this is success.
        # Point stdout at devnull so the interpreter's final flush cannot fail again.
        _stdout_to_devnull()
        return 0


def _run(argv: Sequence[str] | None) -> int:
    # Logging is set up before the flags are parsed, so that a deprecated flag's warning has
    # the format too; a bad CHURNWATCH_LOG_FORMAT is reported (in text) once the command is known.
    try:
        log_format, bad_format = logs.log_format(), None
    except logs.LogFormatError as exc:
        log_format, bad_format = "text", exc
    log = logs.setup_command_logging(log_format)
    try:
        args = build_parser().parse_args(argv)
        if bad_format is not None:
            log.error("churnwatch %s: %s", args.command, bad_format)
            return EXIT_USAGE
        try:
            return args.handler(args)
        except BrokenPipeError:
            raise  # an OSError, but not a failure: see main
        except (PolicyError, UsageError, ValueError, TopicError, BrokerError, LabelsError) as exc:
            close_displays()
            log.error("churnwatch %s: %s", args.command, exc)
            return EXIT_USAGE
        except (LogError, OSError, KafkaError, JobError) as exc:
            close_displays()
            log.error("churnwatch %s: %s", args.command, exc)
            return EXIT_IO
        except KeyboardInterrupt:
            close_displays()
            log.error("churnwatch %s: interrupted", args.command)
            return 130
    finally:
        # Output small enough to sit in the buffer meets a closed pipe only here, and would
        # otherwise fail at interpreter exit with "Exception ignored" and status 120.
        sys.stdout.flush()


def _stdout_to_devnull() -> None:
    try:
        fd = sys.stdout.fileno()
    except (OSError, ValueError):  # replaced by something without a descriptor (tests)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)
