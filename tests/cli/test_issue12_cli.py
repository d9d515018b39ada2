"""The command line as issue 12's reporters used it: damaged logs, ``--now``, where files go,
``serve`` flags, ``schema --write``, the alert-line legend, and ``worker --check``."""

from __future__ import annotations

import gzip
from pathlib import Path

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
