"""CHURNWATCH_LOG_FORMAT: the JSON line of one record, the variable's values, and the config
handed to Faust, run through mode's own logging set-up as the worker runs it."""

from __future__ import annotations

import logging
import sys
from datetime import datetime
from io import StringIO

import orjson
import pytest
from mode.utils.logging import setup_logging

from stream.run.logs import (
    CLI_LOGGER,
    JsonFormatter,
    LogFormatError,
    log_format,
    setup_command_logging,
    setup_root_logging,
    worker_logging_config,
)


@pytest.fixture
def clean_logging():
    """Whatever a test does to the root and the command line's logger is undone after it."""
    root, cli = logging.getLogger(), logging.getLogger(CLI_LOGGER)
    saved = (root.handlers[:], root.level, cli.handlers[:], cli.level, cli.propagate)
    yield
    root.handlers[:], cli.handlers[:] = saved[0], saved[2]
    root.setLevel(saved[1])
    cli.setLevel(saved[3])
    cli.propagate = saved[4]
    logging.captureWarnings(False)


def _record(**extra: object) -> logging.LogRecord:
    logger = logging.getLogger("churnwatch.ingest")
    return logger.makeRecord(logger.name, logging.WARNING, __file__, 1,
                             "%s:%d: offsets %d to %d were never delivered", ("usage", 2, 40, 41),
                             None, extra=extra)  # fmt: skip


def test_a_record_is_one_json_line_with_time_level_logger_and_message():
    line = JsonFormatter().format(_record())
    assert "\n" not in line
    entry = orjson.loads(line)
    assert list(entry) == ["timestamp", "level", "logger", "message"]
    assert entry["level"] == "WARNING" and entry["logger"] == "churnwatch.ingest"
    assert entry["message"] == "usage:2: offsets 40 to 41 were never delivered"
    assert entry["timestamp"].endswith("Z")
    moment = datetime.fromisoformat(entry["timestamp"])
    assert moment.utcoffset().total_seconds() == 0


def test_extra_fields_give_account_topic_partition_and_offset():
    record = _record(account=b"acct-00042", topic="usage", partition=2, offset=40, other="x")
    entry = orjson.loads(JsonFormatter().format(record))
    assert entry["account"] == "acct-00042"  # a record key comes as bytes
    assert (entry["topic"], entry["partition"], entry["offset"]) == ("usage", 2, 40)
    assert "other" not in entry


def test_an_exception_is_a_string_inside_the_line():
    logger = logging.getLogger("churnwatch.ingest")
    try:
        raise ValueError("table value cannot be decoded\nsecond line")
    except ValueError:
        record = logger.makeRecord(logger.name, logging.CRITICAL, __file__, 1,
                                   "stopping the worker", (), sys.exc_info(),
                                   extra={"partition": 0, "offset": 7})  # fmt: skip
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = orjson.loads(line)
    assert entry["level"] == "CRITICAL" and entry["message"] == "stopping the worker"
    assert entry["exception"].startswith("Traceback (most recent call last):")
    assert "ValueError: table value cannot be decoded\nsecond line" in entry["exception"]
    assert (entry["partition"], entry["offset"]) == (0, 7)


def test_values_json_cannot_hold_are_written_as_text():
    record = _record(topic=object())
    record.args = (b"usage", 2, 40, 41)
    entry = orjson.loads(JsonFormatter().format(record))
    assert entry["topic"].startswith("<object object")


@pytest.mark.parametrize(
    ("value", "chosen"), [(None, "text"), ("", "text"), ("text", "text"), ("json", "json"),
                          (" JSON ", "json")],
)  # fmt: skip
def test_the_variable_picks_the_format_and_text_is_the_default(value, chosen):
    env = {} if value is None else {"CHURNWATCH_LOG_FORMAT": value}
    assert log_format(env) == chosen


def test_another_value_is_an_error_that_names_the_variable_and_the_choices():
    with pytest.raises(LogFormatError) as caught:
        log_format({"CHURNWATCH_LOG_FORMAT": "logfmt"})
    assert str(caught.value) == "CHURNWATCH_LOG_FORMAT must be text or json, got 'logfmt'"


def test_faust_set_up_with_the_config_writes_every_record_as_json(clean_logging, monkeypatch):
    """mode's set-up (what faust.Worker runs as it starts) merges the config into its own:
    Faust's records, a library's and churnwatch's all come out as JSON at the chosen level."""
    err = StringIO()
    monkeypatch.setattr("sys.stderr", err)
    setup_logging(loglevel="info", logging_config=worker_logging_config("json", "info"))
    logging.getLogger("faust.worker").info("[^Worker]: Starting...")
    logging.getLogger("aiokafka.consumer.group_coordinator").info("Discovered coordinator 1")
    logging.getLogger("churnwatch.ingest").info("partition %d: restored", 3,
                                                extra={"partition": 3})  # fmt: skip
    logging.getLogger("faust.worker").debug("not at info")
    entries = [orjson.loads(line) for line in err.getvalue().splitlines()]
    assert [e["logger"] for e in entries] == [
        "faust.worker", "aiokafka.consumer.group_coordinator", "churnwatch.ingest"]  # fmt: skip
    assert entries[0]["message"] == "[^Worker]: Starting..."
    assert entries[2]["partition"] == 3


def test_text_keeps_fausts_own_logging():
    assert worker_logging_config("text", "info") is None


def test_the_command_lines_logger_is_plain_text_or_json(clean_logging):
    out = StringIO()
    cli = setup_command_logging("text", stream=out)
    cli.info("replay: 10 lines")
    assert out.getvalue() == "replay: 10 lines\n"
    assert not [h for h in logging.getLogger().handlers if isinstance(h.formatter, JsonFormatter)]

    out = StringIO()
    cli = setup_command_logging("json", stream=out)
    cli.warning("churnwatch backtest: --test-fraction is deprecated")
    logging.getLogger("py.warnings").warning("a library's warning")
    cli.info("backtest: done")
    levels = [(e["logger"], e["level"]) for e in map(orjson.loads, out.getvalue().splitlines())]
    assert levels == [(CLI_LOGGER, "WARNING"), ("py.warnings", "WARNING"), (CLI_LOGGER, "INFO")]
    # Set up again (the next command in this process): replaced, not doubled.
    setup_command_logging("json", stream=out)
    handlers = logging.getLogger(CLI_LOGGER).handlers
    assert len([h for h in handlers if isinstance(h.formatter, JsonFormatter)]) == 1


def test_a_service_logs_at_its_level_in_the_format(clean_logging):
    out = StringIO()
    setup_root_logging("json", "warning", "[%(asctime)s] %(message)s", stream=out)
    logging.getLogger("churnwatch.readmodel").info("not at warning")
    logging.getLogger("churnwatch.readmodel").warning("Redis write failed (%s); retrying", "down")
    (entry,) = map(orjson.loads, out.getvalue().splitlines())
    assert entry["message"] == "Redis write failed (down); retrying"

    first, out = out, StringIO()
    setup_root_logging("text", "info", "[%(asctime)s] %(message)s", stream=out)
    logging.getLogger("churnwatch.serve").info("API on %s", "http://127.0.0.1:8080")
    assert out.getvalue().startswith("[")
    assert out.getvalue().endswith("] API on http://127.0.0.1:8080\n")
    streams = [h for h in logging.getLogger().handlers if getattr(h, "stream", None) is not None
               and h.stream in (out, first)]  # fmt: skip
    assert streams == [logging.getLogger().handlers[-1]], "replaced, not kept beside the first"
