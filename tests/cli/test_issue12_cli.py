"""The command line as issue 12's reporters used it: damaged logs, ``--now``, where files go,
``serve`` flags, ``schema --write``, the alert-line legend, and ``worker --check``."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import ClassVar

import orjson
import pytest

from stream.cli import EXIT_INCOMPLETE, main
from stream.devtools.simulator import SimConfig, generate, serialize


@pytest.fixture(scope="module")
def log_lines() -> list[bytes]:
    """A small simulated log with alerts in it, as lines."""
    return list(serialize(generate(SimConfig(accounts=20, days=60, seed=5))))


def _truncated(path: Path, lines: list[bytes]) -> Path:
    whole = gzip.compress(b"".join(lines))
    path.write_bytes(whole[: len(whole) // 2])
    return path


# a damaged log


def test_replay_of_a_truncated_gzip_finishes_what_it_read_and_says_it_is_incomplete(
    tmp_path, log_lines, capsys
):
    log = _truncated(tmp_path / "cut.jsonl.gz", log_lines)
    out, summary = tmp_path / "alerts.jsonl", tmp_path / "summary.json"
    assert main(["replay", str(log), "-o", str(out), "--summary", str(summary)]) == EXIT_INCOMPLETE
    err = capsys.readouterr().err
    assert "INCOMPLETE" in err and "truncated .gz" in err and "Traceback" not in err

    counts = orjson.loads(summary.read_bytes())
    assert counts["complete"] is False
    assert counts["incomplete"].startswith(f"{log}: read failed after line {counts['lines']}")
    assert 0 < counts["lines"] < len(log_lines)

    # The alerts written are exactly a replay's of the lines that could be read.
    prefix = tmp_path / "prefix.jsonl"
    prefix.write_bytes(b"".join(log_lines[: counts["lines"]]))
    expected = tmp_path / "expected.jsonl"
    assert main(["replay", str(prefix), "-o", str(expected), "-q"]) == 0
    assert out.read_bytes() == expected.read_bytes()
    assert out.read_bytes().count(b"\n") == counts["alerts"] > 0


def test_a_whole_log_is_summarised_as_complete(tmp_path, log_lines):
    log = tmp_path / "log.jsonl.gz"
    log.write_bytes(gzip.compress(b"".join(log_lines)))
    summary = tmp_path / "summary.json"
    assert main(["replay", str(log), "-o", str(tmp_path / "a.jsonl"), "--summary",
                 str(summary), "-q"]) == 0  # fmt: skip
    counts = orjson.loads(summary.read_bytes())
    assert counts["complete"] is True and "incomplete" not in counts


def test_replay_says_it_is_incomplete_even_when_quiet(tmp_path, log_lines, capsys):
    log = _truncated(tmp_path / "cut.jsonl.gz", log_lines)
    assert main(["replay", str(log), "-o", str(tmp_path / "a.jsonl"), "-q"]) == EXIT_INCOMPLETE
    assert "INCOMPLETE" in capsys.readouterr().err


def test_produce_sends_what_it_read_of_a_truncated_gzip(tmp_path, log_lines, monkeypatch, capsys):
    import stream.kafka.produce as produce_module
    import stream.kafka.topics as topics_module

    sent: list[bytes] = []

    class Producer:
        def send(self, topic: str, key=None, value=b"", **_: object) -> None:
            sent.append(value)

        def flush(self) -> None:
            pass

        def close(self) -> None:
            pass

    monkeypatch.setattr(topics_module, "ensure_topics", lambda settings: {})
    monkeypatch.setattr(produce_module, "make_producer", lambda settings: Producer())
    log = _truncated(tmp_path / "cut.jsonl.gz", log_lines)
    rejects = tmp_path / "rejects.jsonl"
    assert main(["produce", str(log), "--rejects", str(rejects)]) == EXIT_INCOMPLETE
    err = capsys.readouterr().err
    assert "INCOMPLETE" in err and "truncated .gz" in err
    assert 0 < len(sent) < len(log_lines)
    assert sent == [line.rstrip(b"\n") for line in log_lines[: len(sent)]]


def test_backtest_of_a_truncated_gzip_writes_no_report(tmp_path, log_lines, capsys):
    log = _truncated(tmp_path / "cut.jsonl.gz", log_lines)
    report = tmp_path / "bt.json"
    assert main(["backtest", str(log), "-o", str(report), "-q"]) == 1
    assert "truncated .gz" in capsys.readouterr().err
    assert not report.exists()


@pytest.mark.parametrize("command", ["replay", "produce", "backtest", "calibrate"])
def test_help_says_what_a_damaged_log_does(command, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "1000")
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = capsys.readouterr().out
    assert "truncated or corrupt .gz" in text
    if command in ("replay", "produce"):
        assert f"{EXIT_INCOMPLETE} the log is damaged" in text


# --now: the worker's future-clock rule with a reference time the user fixes

FUTURE_LOG = (
    b'{"event_id":"e1","account_id":"acct-1","ts":"2026-01-05T10:00:00Z","type":"login"}\n'
    b'{"event_id":"e2","account_id":"acct-1","ts":"2999-01-01T00:00:00Z","type":"login"}\n'
    b'{"event_id":"e3","account_id":"acct-2","ts":"2026-01-05T11:00:00Z","type":"login"}\n'
)


@pytest.mark.timeout(60)
def test_replay_rejects_an_event_from_the_far_future_and_keeps_the_rest(tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_bytes(FUTURE_LOG)
    out, summary = tmp_path / "alerts.jsonl", tmp_path / "summary.json"
    assert main(["replay", str(log), "-o", str(out), "--summary", str(summary), "-q",
                 "--now", "2026-05-01T00:00:00Z"]) == 0  # fmt: skip
    counts = orjson.loads(summary.read_bytes())
    assert counts["reject_reasons"] == {"future": 1}
    assert counts["events"] == 2 and counts["engine"]["applied"] == 2
    assert counts["engine"].get("too_late", 0) == 0, "e3 is not late: the 2999 clock was refused"
    (reject,) = [orjson.loads(x) for x in Path(f"{out}.rejects.jsonl").read_bytes().splitlines()]
    assert reject["line"] == 2 and "past the latest time allowed" in reject["reason"]


def test_the_allowance_comes_from_the_workers_variable(tmp_path, monkeypatch):
    log = tmp_path / "log.jsonl"
    log.write_bytes(FUTURE_LOG)
    summary = tmp_path / "summary.json"

    def reasons(now: str) -> dict:
        assert main(["replay", str(log), "-o", str(tmp_path / "a.jsonl"), "-q", "--now", now,
                     "--summary", str(summary)]) == 0  # fmt: skip
        return orjson.loads(summary.read_bytes())["reject_reasons"]

    # 3 hours after the reference, e3 is within a 4-hour allowance and e2 is not.
    monkeypatch.setenv("CHURNWATCH_MAX_FUTURE_SECONDS", str(4 * 3600))
    assert reasons("2026-01-05T08:00:00Z") == {"future": 1}
    monkeypatch.setenv("CHURNWATCH_MAX_FUTURE_SECONDS", str(3600))
    assert reasons("2026-01-05T08:00:00Z") == {"future": 3}
    monkeypatch.setenv("CHURNWATCH_MAX_FUTURE_SECONDS", "0")  # the rule off, as in the worker
    assert "future" not in reasons("2026-01-05T08:00:00Z")


def test_without_now_the_reference_is_the_wall_clock(tmp_path):
    from datetime import UTC, datetime, timedelta

    soon = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    later = (datetime.now(UTC) + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    log = tmp_path / "log.jsonl"
    log.write_bytes(
        b'{"event_id":"a","account_id":"acct-1","ts":"%s","type":"login"}\n' % soon.encode()
        + b'{"event_id":"b","account_id":"acct-1","ts":"%s","type":"login"}\n' % later.encode()
    )
    summary = tmp_path / "summary.json"
    assert main(["replay", str(log), "-o", str(tmp_path / "a.jsonl"), "-q",
                 "--summary", str(summary)]) == 0  # fmt: skip
    counts = orjson.loads(summary.read_bytes())
    assert counts["events"] == 1 and counts["reject_reasons"] == {"future": 1}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("yesterday", "expected an ISO-8601 time like 2026-05-01T00:00:00Z, got 'yesterday'"),
        ("2026-13-01", "expected an ISO-8601 time"),
    ],
)
@pytest.mark.parametrize("command", ["replay", "backtest", "calibrate"])
def test_a_bad_now_is_a_one_line_usage_error(command, value, message, capsys):
    with pytest.raises(SystemExit) as stop:
        main([command, "log.jsonl", "--now", value])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_bad_allowance_variable_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    log = tmp_path / "log.jsonl"
    log.write_bytes(FUTURE_LOG)
    monkeypatch.setenv("CHURNWATCH_MAX_FUTURE_SECONDS", "-5")
    assert main(["replay", str(log), "-o", str(tmp_path / "a.jsonl"), "-q"]) == 2
    assert "CHURNWATCH_MAX_FUTURE_SECONDS: expected a whole number" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["backtest", "calibrate"])
def test_backtest_and_calibrate_replay_with_the_same_limit(command, tmp_path, monkeypatch):
    import stream.cli.offline as offline

    seen = []

    def job(spec, *args, **kwargs):
        seen.append(spec)
        raise offline.CalibrationError("stop here")

    monkeypatch.setattr(offline, command, job)
    monkeypatch.delenv("CHURNWATCH_MAX_FUTURE_SECONDS", raising=False)
    log = tmp_path / "log.jsonl"
    log.write_bytes(FUTURE_LOG)
    out = ["-o", str(tmp_path / "out"), "--report", str(tmp_path / "r.json")]
    main([command, str(log), "-q", "--now", "2026-05-01T00:00:00Z",
          *(out if command == "calibrate" else out[:2])])  # fmt: skip
    # 2026-05-01T00:00:00Z plus the worker's default day of allowance
    assert seen[0].not_after_ms == 1_777_593_600_000 + 86_400_000


def test_backtest_rejects_the_far_future_line(tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_bytes(FUTURE_LOG)
    report = tmp_path / "bt.json"
    assert main(["backtest", str(log), "-o", str(report), "-q",
                 "--now", "2026-05-01T00:00:00Z"]) == 0  # fmt: skip
    assert orjson.loads(report.read_bytes())["replay"] == {"lines": 3, "events": 2, "rejected": 1}
    (reject,) = Path(f"{report}.rejects.jsonl").read_bytes().splitlines()
    assert orjson.loads(reject)["line"] == 2


# calibrate writes only where it is told


@pytest.fixture(scope="module")
def churn_log(tmp_path_factory) -> Path:
    """A log calibration can learn from (it has cancellations), with one junk line."""
    path = tmp_path_factory.mktemp("calibrate") / "log.jsonl"
    lines = serialize(generate(SimConfig(accounts=80, days=120, seed=4)))
    path.write_bytes(b"".join(lines) + b"junk\n")
    return path


def test_calibrate_without_paths_prints_the_policy_and_leaves_the_directory_alone(
    churn_log, tmp_path, monkeypatch, capsys
):
    import tomllib

    from stream.core.policy import parse_policy

    monkeypatch.chdir(tmp_path)
    assert main(["calibrate", str(churn_log), "--now", "2026-06-01T00:00:00Z"]) == 0
    assert list(tmp_path.iterdir()) == [], "nothing written in the current directory"
    out, err = capsys.readouterr()
    assert out.startswith("# churnwatch policy calibrated from an event log")
    parse_policy(tomllib.loads(out), "stdout")  # the whole policy, and a valid one
    assert "calibrate: policy stdout, report not written" in err
    assert "1 rejected line(s) not kept (give --rejects FILE" in err


def test_calibrate_writes_the_report_and_rejects_where_told(churn_log, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    policy, report = out_dir / "p.toml", out_dir / "r.json"
    assert main(["calibrate", str(churn_log), "-q", "-o", str(policy), "--report", str(report),
                 "--now", "2026-06-01T00:00:00Z"]) == 0  # fmt: skip
    assert sorted(p.name for p in out_dir.iterdir()) == ["p.toml", "r.json", "r.json.rejects.jsonl"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    assert orjson.loads(report.read_bytes())["replay"]["rejected"] == 1


def test_calibrate_keeps_rejects_next_to_the_policy_without_a_report(churn_log, tmp_path):
    policy = tmp_path / "p.toml"
    assert main(["calibrate", str(churn_log), "-q", "-o", str(policy),
                 "--now", "2026-06-01T00:00:00Z"]) == 0  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.toml", "p.toml.rejects.jsonl"]


def test_calibrate_help_gives_the_new_defaults(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "1000")
    with pytest.raises(SystemExit):
        main(["calibrate", "--help"])
    text = capsys.readouterr().out
    assert "where the calibrated policy TOML goes (default: stdout)" in text
    assert "(default: not written;" in text
    assert "calibration.json" not in text and "calibrated-policy.toml" not in text


# serve --host / --port


@pytest.fixture
def served(monkeypatch) -> list:
    """The settings serve would start the service with (the service itself is not started)."""
    import stream.sinks.serve as serve

    started: list = []
    monkeypatch.setattr(serve, "run_service", lambda settings, policy: started.append(settings))
    for name in ("CHURNWATCH_API_HOST", "CHURNWATCH_API_PORT"):
        monkeypatch.delenv(name, raising=False)
    return started


def test_serve_listens_where_the_flags_say(served):
    assert main(["serve", "--host", "0.0.0.0", "--port", "9191"]) == 0
    assert (served[0].api_host, served[0].api_port) == ("0.0.0.0", 9191)


def test_serve_flags_beat_the_variables_and_the_variables_still_work(served, monkeypatch):
    monkeypatch.setenv("CHURNWATCH_API_HOST", "10.0.0.5")
    monkeypatch.setenv("CHURNWATCH_API_PORT", "7000")
    assert main(["serve"]) == 0
    assert main(["serve", "--port", "7001"]) == 0
    assert [(s.api_host, s.api_port) for s in served] == [("10.0.0.5", 7000), ("10.0.0.5", 7001)]


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--port", "65536", "must be at most 65535"),
        ("--port", "http", "expected a whole number"),
        ("--host", " ", "expected a host name or address"),
    ],
)
def test_bad_serve_flags_are_usage_errors(served, flag, value, message, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["serve", flag, value])
    assert stop.value.code == 2 and message in capsys.readouterr().err
    assert served == []


# schema --write


def _schema_at(root: Path, monkeypatch, pyproject: bool = True) -> Path:
    """Pretend churnwatch's published schema lives under ``root``."""
    import stream.cli.policy as policy_cli

    path = root / "schemas" / "alert.schema.json"
    path.parent.mkdir(parents=True)
    path.write_text("old\n")
    if pyproject:
        (root / "pyproject.toml").write_text("[project]\nname = 'churnwatch'\n")
    monkeypatch.setattr(policy_cli, "ALERT_SCHEMA_PATH", path)
    return path


def _schema_text() -> str:
    from schemas.alerts import alert_json_schema_text
    from stream.core.signals.registry import SIGNALS

    return alert_json_schema_text(SIGNALS)


def test_schema_write_regenerates_a_source_checkouts_file(tmp_path, monkeypatch):
    path = _schema_at(tmp_path / "checkout", monkeypatch)
    assert main(["schema", "--write"]) == 0
    assert path.read_text() == _schema_text()


@pytest.mark.parametrize("where", ["site-packages", "no-pyproject"])
def test_schema_write_refuses_to_rewrite_an_installed_package(where, tmp_path, monkeypatch, capsys):
    if where == "site-packages":
        path = _schema_at(tmp_path / "lib" / "python3" / "site-packages", monkeypatch)
    else:
        path = _schema_at(tmp_path / "somewhere", monkeypatch, pyproject=False)
    assert main(["schema", "--write"]) == 2
    err = capsys.readouterr().err
    assert "is part of an installed churnwatch" in err and "churnwatch schema --write FILE" in err
    assert path.read_text() == "old\n", "the installed file is untouched"


def test_schema_write_to_a_file_works_anywhere(tmp_path, monkeypatch):
    installed = _schema_at(tmp_path / "site-packages", monkeypatch)
    target = tmp_path / "alert.schema.json"
    assert main(["schema", "--write", str(target)]) == 0
    assert target.read_text() == _schema_text() and installed.read_text() == "old\n"


def test_schema_without_write_prints_it(capsys):
    assert main(["schema"]) == 0
    assert capsys.readouterr().out == _schema_text()


# the alert line's legend


def _alert(severity: str, kind: str) -> dict:
    return {"ts": "2026-04-03T00:00:00Z", "severity": severity, "kind": kind,
            "signal": "engagement_drop", "account_id": "acct-1", "explanation": "why",
            "resolution": "recovered"}  # fmt: skip


def test_the_legend_explains_every_mark_and_kind_an_alert_line_shows():
    from schemas.alerts import SEVERITY_RANK
    from stream.render.text import LEGEND, alert_line

    assert all(len(line) <= 80 for line in LEGEND.splitlines())
    for severity in SEVERITY_RANK:
        mark = alert_line(_alert(severity, "opened")).split()[2]
        assert f"{mark} {severity}" in LEGEND
    for kind in ("opened", "updated", "resolved", "churned"):
        assert f" {kind} " in alert_line(_alert("high", kind))
        assert f"{kind} (" in LEGEND


def test_an_alert_line_names_the_account_and_its_owner_when_the_events_did():
    from stream.render.text import alert_line

    alert = _alert("high", "opened")
    plain = alert_line(alert)
    named = alert_line({**alert, "account": {"name": "Maple Freight GmbH", "owner": "Priya Shah"}})
    assert "Maple Freight GmbH, Priya Shah: " in named and named.endswith(plain.split("  ")[-1])
    assert "Maple" not in plain
    wrapped = alert_line({**alert, "account": {"name": "Maple Freight GmbH", "owner": None}}, 80)
    assert all(len(line) <= 80 for line in wrapped.splitlines())
    assert "Maple Freight GmbH: " in wrapped


def test_alerts_tail_help_shows_the_legend_as_laid_out(capsys):
    from stream.render.text import LEGEND

    with pytest.raises(SystemExit):
        main(["alerts", "tail", "--help"])
    assert LEGEND in capsys.readouterr().out


# worker --check and the alerts topic


class FakeAdmin:
    """A broker's topic metadata, as kafka-python's admin client describes it."""

    topics: ClassVar[dict[str, int]] = {}

    def __init__(self, **_: object) -> None:
        pass

    def describe_topics(self, names: list[str]) -> list[dict]:
        return [
            {"name": name, "error_code": 0, "partitions": [{}] * self.topics[name]}
            if name in self.topics
            else {"name": name, "error_code": 3, "partitions": []}
            for name in names
        ]

    def create_topics(self, new: list, **_: object) -> None:
        for topic in new:
            self.topics[topic.name] = topic.num_partitions

    def close(self) -> None:
        pass


@pytest.fixture
def broker(monkeypatch) -> type[FakeAdmin]:
    import stream.kafka.topics as topics

    for name in ("CHURNWATCH_PARTITIONS", "CHURNWATCH_ALERTS_TOPIC", "CHURNWATCH_CREATE_TOPICS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(topics, "KafkaAdminClient", FakeAdmin)
    monkeypatch.setattr(FakeAdmin, "topics", {})
    return FakeAdmin


def test_worker_check_refuses_an_alerts_topic_partitioned_unlike_the_input(broker, capsys):
    broker.topics.update({"usage": 6, "billing": 6, "alerts": 3, "churnwatch-dead-letters": 1})
    assert main(["worker", "--check"]) == 2
    err = capsys.readouterr().err
    assert "alerts has 3 partitions but usage and billing have 6" in err
    assert "recreate it with 6 partitions" in err and "Traceback" not in err


def test_worker_check_passes_when_every_topic_has_the_count(broker, capsys):
    broker.topics.update({"usage": 6, "billing": 6, "alerts": 6, "churnwatch-dead-letters": 1})
    assert main(["worker", "--check"]) == 0
    assert "usage, billing, alerts: 6 partitions each" in capsys.readouterr().err


def test_worker_check_creates_missing_topics_with_the_count(broker, monkeypatch):
    monkeypatch.setenv("CHURNWATCH_PARTITIONS", "4")
    assert main(["worker", "--check"]) == 0
    assert broker.topics == {"usage": 4, "billing": 4, "alerts": 4, "churnwatch-dead-letters": 1,
                             "account-health": 4, "alert-actions": 4}  # fmt: skip


# every option says what happens when it is not given


def test_every_option_without_a_default_value_says_its_default_in_words():
    """An option whose default is None still has a default behaviour (stdout, not written,
    the wall clock, a variable); its help must say which. Switches need not."""
    import argparse

    from stream.cli import build_parser
    from tests.cli.test_usability import _commands

    silent = []
    for words, parser in _commands(build_parser()):
        for action in parser._actions:
            if not action.option_strings or action.help == argparse.SUPPRESS:
                continue
            if action.nargs == 0 or action.required:  # switches, and what must be given
                continue
            if action.default not in (None, []):  # the formatter shows these
                continue
            if "default" not in (action.help or ""):
                silent.append((" ".join(words), action.option_strings[-1]))
    assert silent == []


# the held-out share has one name


def test_the_old_holdout_name_still_works_and_says_the_new_one(capsys):
    from stream.cli import build_parser

    args = build_parser().parse_args(["backtest", "log", "--test-fraction", "0.25"])
    assert args.holdout == 0.25
    err = capsys.readouterr().err
    assert "churnwatch backtest: --test-fraction is deprecated; use --holdout" in err
    build_parser().parse_args(["backtest", "log", "--holdout", "0.25"])
    assert capsys.readouterr().err == "", "the current name is not warned about"


# a reader that goes away


@pytest.mark.parametrize("words", [("replay", "LOG", "-q"), ("schema",), ("--help",),
                                   ("alerts", "tail", "--help")])  # fmt: skip
def test_more_commands_on_stdout_end_quietly_when_the_reader_goes(words, tmp_path, log_lines):
    import os
    import subprocess
    import sys

    log = tmp_path / "log.jsonl"
    log.write_bytes(b"".join(log_lines))
    argv = [str(log) if w == "LOG" else w for w in words]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHURNWATCH_")}
    proc = subprocess.Popen([sys.executable, "-m", "stream.cli", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=tmp_path, env=env)  # fmt: skip
    proc.stdout.close()  # type: ignore[union-attr]
    err = proc.stderr.read().decode()  # type: ignore[union-attr]
    assert proc.wait(timeout=120) == 0, err
    assert "Broken pipe" not in err and "Traceback" not in err and "Exception ignored" not in err
