"""What every command group shares: argument types, the help formatter, and the exit codes.

The argument types turn bad flag values into argparse's one-line usage error (exit status 2)
instead of a traceback deep inside a command, so each check lives here once.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from stream.run.logs import CLI_LOGGER

log = logging.getLogger(CLI_LOGGER)
"""Where the commands' summaries, warnings and errors go (see :mod:`stream.run.logs`)."""

EXIT_USAGE = 2
"""Bad flags, files, policies or settings: nothing was done."""
EXIT_IO = 1
"""A file or the broker could not be opened, read or written."""
EXIT_INCOMPLETE = 3
"""The log could not be read to its end (a truncated or corrupt .gz, a read error): the lines
before the damage were processed and their results written, marked incomplete."""

DAMAGED_LOG_HELP = (
    "Exit status: 0 done; 1 a file could not be opened or written; 2 bad flags or input; "
    f"{EXIT_INCOMPLETE} the log is damaged (a truncated or corrupt .gz, a read error): the "
    "lines before the damage are processed and their results written, and the run is "
    "reported as incomplete with the reason."
)

LOG_HELP = "JSONL event log (a path, '-' for stdin; gzip is detected)"


class UsageError(Exception):
    """Bad input found by a handler rather than by argparse; reported like a flag error."""


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, unless there is nothing useful to show.

    argparse's own formatter would also print ``(default: None)`` for options without one,
    ``(default: False)`` for every switch, and a second default after help that already
    explains its default in words (``(default: stdout)``), so those are left alone.
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            "%(default)" in text
            or "(default" in text
            or not action.option_strings
            or default is None
            or default is False
            or default is argparse.SUPPRESS
            or default == []
        ):
            return text
        if isinstance(default, datetime):  # a date reads better than repr-ish str()
            shown = default.date().isoformat() if default.time() == datetime.min.time() else (
                default.isoformat()
            )  # fmt: skip
            return f"{text} (default: {shown})".strip()
        return f"{text} (default: %(default)s)".strip()


class PreformattedHelpFormatter(HelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Like :class:`HelpFormatter`, but the description and epilog keep their own line breaks
    (a legend laid out in columns would be run together into one paragraph otherwise)."""


class DeprecatedAlias(argparse.Action):
    """An old spelling of an option, kept so that scripts using it still work.

    It is left out of ``--help`` (one name per setting there) and says on stderr which name
    to use instead, so that scripts get updated before the alias is ever dropped.
    """

    def __init__(self, option_strings: list[str], dest: str, replacement: str,
                 **kwargs: Any) -> None:  # fmt: skip
        kwargs.setdefault("help", argparse.SUPPRESS)
        kwargs.setdefault("default", argparse.SUPPRESS)
        super().__init__(option_strings, dest, **kwargs)
        self.replacement = replacement

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:  # fmt: skip
        log.warning("%s: %s is deprecated; use %s, which means the same", parser.prog,
                    option_string, self.replacement)  # fmt: skip
        setattr(namespace, self.dest, values)


def add_command(
    sub: argparse._SubParsersAction, name: str, **kwargs: Any
) -> argparse.ArgumentParser:
    """A subcommand parser; argparse does not pass the formatter down to subparsers itself."""
    kwargs.setdefault("formatter_class", HelpFormatter)
    return sub.add_parser(name, **kwargs)


def _whole(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
    return value


def port(text: str) -> int:
    """A TCP port; 0 lets the system pick a free one, as the settings allow."""
    value = _whole(text, 0)
    if value > 65_535:
        raise argparse.ArgumentTypeError(f"must be at most 65535, got {value}")
    return value


def host(text: str) -> str:
    value = text.strip()
    if not value:
        raise argparse.ArgumentTypeError("expected a host name or address, got nothing")
    return value


def positive_int(text: str) -> int:
    return _whole(text, 1)


def non_negative_int(text: str) -> int:
    return _whole(text, 0)


def number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value != value:
        raise argparse.ArgumentTypeError("expected a number, got NaN")
    return value


def fraction(text: str) -> float:
    value = number(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return value


def non_negative(text: str) -> float:
    value = number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {text}")
    return value


def positive_float(text: str) -> float:
    value = number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {value}")
    return value


def open_fraction(text: str) -> float:
    """A split needs accounts on both sides, so 0 and 1 are refused."""
    value = fraction(text)
    if value in (0, 1):
        raise argparse.ArgumentTypeError(f"must be strictly between 0 and 1, got {text}")
    return value


def holdout(text: str) -> float:
    """Calibration may hold out nothing (0: learn on all) but must keep something to learn."""
    value = fraction(text)
    if value == 1:
        raise argparse.ArgumentTypeError("1 would leave nothing to learn from")
    return value


def date(text: str) -> datetime:
    """An ISO date or time; naive values are UTC, like every timestamp in the event log."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date like 2026-01-05, got {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def instant(text: str) -> datetime:
    """An ISO-8601 time (a date alone is its midnight); naive values are UTC, as in the log."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an ISO-8601 time like 2026-05-01T00:00:00Z, got {text!r}"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


MAX_FUTURE_VARIABLE = "CHURNWATCH_MAX_FUTURE_SECONDS"

NOW_HELP = (
    "reference time, ISO-8601 like 2026-05-01T00:00:00Z, for the worker's rule against clocks "
    f"in the future: an event stamped more than {MAX_FUTURE_VARIABLE} (the worker's setting, "
    "86400 unless set; 0 turns the rule off) after it is rejected as 'future', as the worker "
    "dead-letters it, instead of moving the clock on and making the rest of the log late; "
    "give it for a run that repeats exactly (default: the wall clock)"
)


def default_partitions() -> int:
    """The worker's default partition count (``CHURNWATCH_PARTITIONS``'s default), so that an
    offline run emulates what a live worker of the default deployment does."""
    from stream.kafka.settings import WorkerSettings

    return WorkerSettings.model_fields["partitions"].default


def jobs_count(text: str) -> int:
    """``--jobs``: a whole number of processes, at least 1."""
    return _whole(text, 1)


def add_partitions_and_jobs(parser: argparse.ArgumentParser, what: str) -> None:
    """``--partitions`` and ``--jobs``, which only make sense together: jobs split partitions."""
    partitions = default_partitions()
    parser.add_argument(
        "--partitions",
        type=positive_int,
        default=partitions,
        help=f"emulate this many Kafka partitions, one event-time clock each, {what} "
        f"(default: {partitions}, the worker's CHURNWATCH_PARTITIONS default)",
    )
    cores = os.cpu_count() or 1
    parser.add_argument(
        "--jobs",
        type=jobs_count,
        default=cores,
        help="processes to replay in, each a share of the partitions (so at most --partitions "
        "of them do work); the output is byte-identical for any number (default: the number "
        f"of cores, {cores} here; stdin is read by one)",
    )


def add_now(parser: argparse.ArgumentParser) -> None:
    """``--now``, for the commands that replay a log as the worker would have processed it."""
    parser.add_argument("--now", type=instant, metavar="TIME", help=NOW_HELP)


def max_future_seconds(environ: Mapping[str, str] | None = None) -> int:
    """The worker's allowance for clocks ahead of its reference time, from its own variable.

    Only this variable is read, not the whole worker configuration: an offline run must not
    fail on a broker or Redis setting it never uses.
    """
    from stream.kafka.settings import WorkerSettings

    raw = (os.environ if environ is None else environ).get(MAX_FUTURE_VARIABLE)
    if raw is None:
        return WorkerSettings.model_fields["max_future_seconds"].default
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise UsageError(f"{MAX_FUTURE_VARIABLE}: expected a whole number of seconds, 0 or more, "
                         f"got {raw!r}")  # fmt: skip
    return value


def not_after_ms(now: datetime | None, environ: Mapping[str, str] | None = None) -> int | None:
    """The latest event time a run accepts: ``now`` (default: the wall clock) plus the
    worker's allowance; None when the allowance is 0, which turns the rule off."""
    from stream.core.timeutil import to_ms

    allowance = max_future_seconds(environ)
    if not allowance:
        return None
    return to_ms(now or datetime.now(UTC)) + allowance * 1000


class Completeness(Protocol):
    """Whatever read the log: a :class:`LogReader`, or a parallel run of several."""

    incomplete: str | None


def rejects_note(path: str, rejected: int) -> str:
    """Point at the rejects file in a summary only when there is one to look at."""
    return f" (see {path})" if rejected else ""


def with_completeness(summary: dict, reader: Completeness) -> dict:
    """A run summary that says whether the whole log was read, and if not, why."""
    if reader.incomplete is None:
        return {**summary, "complete": True}
    return {**summary, "complete": False, "incomplete": reader.incomplete}


def incomplete_status(command: str, reader: Completeness) -> int:
    """0, or the damaged-log status after saying so; said even with -q, as an error is."""
    if reader.incomplete is None:
        return 0
    log.error("churnwatch %s: INCOMPLETE: %s; what is written covers the lines before it",
              command, reader.incomplete)  # fmt: skip
    return EXIT_INCOMPLETE
