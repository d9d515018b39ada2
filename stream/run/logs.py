"""What churnwatch's log lines look like: the human text format, or one JSON object per line.

``CHURNWATCH_LOG_FORMAT`` picks the format for every command: ``text`` (the default; the
worker keeps Faust's own layout, ``serve`` and the other commands theirs) or ``json``, for a
log collector: each line one JSON object with ``timestamp`` (ISO-8601, UTC), ``level``,
``logger`` and ``message``; ``account``, ``topic``, ``partition`` and ``offset`` when the log
call passed them as ``extra=``; and ``exception`` with the traceback when there was one.

The libraries keep their own loggers; only the handlers at the root (and the command line's
own logger, :data:`CLI_LOGGER`) are given the format, so Faust's, aiokafka's and aiohttp's
lines come out the same way as churnwatch's.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

LOG_FORMAT_VARIABLE = "CHURNWATCH_LOG_FORMAT"
FORMATS = ("text", "json")
CONTEXT_FIELDS = ("account", "topic", "partition", "offset")
"""``extra=`` fields of a log call that a JSON line carries, when the call passes them."""
CLI_LOGGER = "churnwatch.cli"
"""What the commands say on stderr: their summaries, warnings and one-line errors."""
CLI_TEXT_FORMAT = "%(message)s"
"""The command line's own lines read as they always have, without a time or a level."""
_OURS = "_churnwatch_handler"
"""Marks a handler installed here, so that setting the format again replaces it."""


class LogFormatError(ValueError):
    """``CHURNWATCH_LOG_FORMAT`` holds something other than ``text`` or ``json``."""


def log_format(environ: Mapping[str, str] | None = None) -> str:
    """The format ``CHURNWATCH_LOG_FORMAT`` asks for; unset or empty means ``text``."""
    env = os.environ if environ is None else environ
    raw = env.get(LOG_FORMAT_VARIABLE, "")
    chosen = raw.strip().lower() or "text"
    if chosen not in FORMATS:
        raise LogFormatError(f"{LOG_FORMAT_VARIABLE} must be text or json, got {raw!r}")
    return chosen


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (a traceback is a string inside it)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "timestamp": _utc(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = record.__dict__
        for name in CONTEXT_FIELDS:
            value = fields.get(name)
            if value is not None:
                line[name] = value.decode(errors="replace") if isinstance(value, bytes) else value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(line, default=str).decode()


def _utc(created: float) -> str:
    moment = datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
    return moment.replace("+00:00", "Z")


def formatter(fmt: str, text_format: str) -> logging.Formatter:
    """The formatter of ``fmt``; ``text_format`` is the %-style layout of the text format."""
    return JsonFormatter() if fmt == "json" else logging.Formatter(text_format)


class _Stderr(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record comes, as Python's last-resort
    handler does (a test capturing stderr, or a runner that replaced it, sees the lines)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


def _handler(fmt: str, text_format: str, stream: TextIO | None) -> logging.Handler:
    handler = logging.StreamHandler(stream) if stream is not None else _Stderr()
    handler.setFormatter(formatter(fmt, text_format))
    setattr(handler, _OURS, True)
    return handler


def _replace_handler(logger: logging.Logger, handler: logging.Handler | None) -> None:
    for old in [h for h in logger.handlers if getattr(h, _OURS, False)]:
        logger.removeHandler(old)
    if handler is not None:
        logger.addHandler(handler)


def setup_command_logging(fmt: str, stream: TextIO | None = None) -> logging.Logger:
    """Give the command line's logger the format, and in JSON everything else too.

    The command line's lines (:data:`CLI_LOGGER`) stay plain messages in text, as they were
    when they were printed. In JSON the root logger gets a JSON handler for warnings and
    errors, and Python's ``warnings`` go through it too, so that every line on stderr is JSON;
    in text the root logger is left as Python leaves it. A command that logs more (``serve``)
    or a framework that configures logging itself (the worker's Faust) replaces the root's
    handler afterwards. Calling this again (tests run many commands in one process) replaces
    what the previous call installed instead of adding to it.
    """
    cli = logging.getLogger(CLI_LOGGER)
    cli.setLevel(logging.INFO)
    cli.propagate = False
    _replace_handler(cli, _handler(fmt, CLI_TEXT_FORMAT, stream))
    root = logging.getLogger()
    if fmt == "json":
        _replace_handler(root, _handler(fmt, CLI_TEXT_FORMAT, stream))
        logging.captureWarnings(True)
    else:
        _replace_handler(root, None)
        logging.captureWarnings(False)
    return cli


def setup_root_logging(
    fmt: str, level: str | int, text_format: str, stream: TextIO | None = None
) -> None:
    """Log everything at ``level`` and above to stderr in ``fmt`` (for a long-running service
    that configures logging itself, as ``serve`` does)."""
    root = logging.getLogger()
    handler = _handler(fmt, text_format, stream)
    handler.setLevel(level if isinstance(level, int) else level.upper())
    _replace_handler(root, handler)
    root.setLevel(handler.level)


def worker_logging_config(fmt: str, level: str) -> dict[str, Any] | None:
    """What to hand ``faust.Worker(logging_config=...)`` for ``fmt``; None keeps Faust's own.

    Faust (through mode) sets up logging when the worker starts, from its own dictConfig; a
    ``logging_config`` with ``"merge": True`` is merged into it, so replacing its handler
    named ``default`` gives every record of the worker, Faust's own included, the JSON layout
    at the level Faust would have used.
    """
    if fmt != "json":
        return None
    return {
        "merge": True,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "json",
                "level": level.upper(),
            }
        },
    }
