"""What users asked of the command line: defaults in --help, --version, quiet ``| head``,
one name for the held-out share, and a --help that stays fast because nothing heavy loads."""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

import stream.cli
from stream.cli import build_parser, main
from stream.cli.args import HelpFormatter

CLI = [sys.executable, "-m", "stream.cli"]
# Unknown CHURNWATCH_* variables are refused by the settings, so children get a clean slate.
ENV = {k: v for k, v in os.environ.items() if not k.startswith("CHURNWATCH_")}


def _commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every parser that ends a command line, with the words that reach it."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield path, parser
    for action in subs:
        for name, child in action.choices.items():
            yield from _commands(child, (*path, name))


COMMANDS = [path for path, _ in _commands(build_parser())]


def _help(capsys: pytest.CaptureFixture[str], *words: str) -> str:
    with pytest.raises(SystemExit) as stop:
        main([*words, "--help"])
    assert stop.value.code == 0
    return capsys.readouterr().out


def test_the_command_set_is_unchanged_and_every_command_has_a_handler():
    assert sorted(" ".join(path) for path in COMMANDS) == [
        "account", "alerts ack", "alerts actions", "alerts dismiss", "alerts note",
        "alerts snooze", "alerts tail", "backtest", "broker", "calibrate", "demo", "notify",
        "policy", "portfolio", "produce", "replay", "schema", "serve", "simulate", "worker",
    ]  # fmt: skip
    for path, parser in _commands(build_parser()):
        assert callable(parser.get_default("handler")), path


@pytest.mark.parametrize("words", [(), *COMMANDS], ids=lambda w: " ".join(w) or "churnwatch")
def test_every_help_fits_80_columns(words, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    text = _help(capsys, *words)
    too_wide = [line for line in text.splitlines() if len(line) > 80]
    assert not too_wide


@pytest.mark.parametrize("words", COMMANDS, ids=" ".join)
def test_every_option_with_a_default_shows_it(words):
    parser = dict(_commands(build_parser()))[words]
    formatter = HelpFormatter(parser.prog)
    for action in parser._actions:
        default = action.default
        if not action.option_strings or default in (None, argparse.SUPPRESS, []):
            continue
        if default is False or action.help == argparse.SUPPRESS:
            continue
        assert "(default" in formatter._get_help_string(action), action.option_strings


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (
            ("simulate",),
            [
                "how many accounts to simulate (default: 1000)",
                "length of the log in days from --start (default: 150)",
                "the same seed and flags give a byte-identical log (default: 7)",
                "first day, UTC (default: 2026-01-05)",
                "log JSONL, .gz to compress (default: stdout)",  # not a second "(default: -)"
            ],
        ),
        (
            ("calibrate",),
            [
                "precision target, 0 to 1: --objective recall picks the best-recall line at or "
                "above it, and other signals whose alerts fall below it are switched off "
                "(default: 0.6)",
                "(0: learn on all) (default: 0.5)",
            ],
        ),
        (("backtest",), ["(default: backtest.json)", "seeded account split (default: 0.5)"]),
        (("alerts", "tail"), ["(repeatable; default: all): engagement_drop, "]),
    ],
)
def test_help_text_and_defaults(words, expected, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "1000")  # one line per option, to match whole sentences
    text = _help(capsys, *words)
    for sentence in expected:
        assert sentence in text
    assert "(default: False)" not in text and "(default: None)" not in text


def test_version_prints_the_installed_version(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out == f"churnwatch {importlib.metadata.version('churnwatch')}\n"


def test_version_without_package_metadata_is_unknown(capsys, monkeypatch):
    def missing(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", missing)
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out == "churnwatch unknown\n"


def _assert_quiet(proc: subprocess.Popen) -> None:
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0, err
    assert "Broken pipe" not in err and "Traceback" not in err and "Exception ignored" not in err


def test_alerts_tail_into_head_exits_quietly():
    # The real tail needs a broker; this one prints like it, endlessly, until the pipe breaks.
    script = (
        "import stream.sinks.terminal as terminal\n"
        "def tail(settings, emit, *rest):\n"
        "    while True:\n"
        "        emit('2026-01-05 10:00  !!  high  opened  payment_failed  acct-1')\n"
        "terminal.tail = tail\n"
        "from stream.cli import main\n"
        "raise SystemExit(main(['alerts', 'tail']))\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=ENV)  # fmt: skip
    assert b"payment_failed" in proc.stdout.readline()  # what `head -1` reads
    proc.stdout.close()
    _assert_quiet(proc)


@pytest.mark.parametrize(
    "words",
    [
        ("simulate", "--accounts", "30", "--days", "30"),  # fails while writing
        ("policy", "show"),  # small enough to fail only in the final flush
    ],
)
def test_a_reader_that_went_away_is_not_an_error(words):
    proc = subprocess.Popen([*CLI, *words], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
    proc.stdout.close()  # before the child can write: every write meets a closed pipe
    _assert_quiet(proc)


def test_broken_pipe_with_a_stdout_that_has_no_descriptor(capsys, monkeypatch):
    def broken(args: argparse.Namespace) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    parser = build_parser()
    monkeypatch.setattr(stream.cli, "build_parser", lambda: parser)
    dict(_commands(parser))[("policy",)].set_defaults(handler=broken)
    assert main(["policy", "show"]) == 0
    assert capsys.readouterr().err == ""


def test_other_os_errors_still_exit_1(tmp_path, capsys):
    assert main(["replay", str(tmp_path / "missing.jsonl"), "-q"]) == 1
    assert "cannot open" in capsys.readouterr().err


def test_backtest_takes_holdout_and_still_its_old_test_fraction():
    parse = build_parser().parse_args
    assert parse(["backtest", "log"]).holdout == 0.5
    assert parse(["backtest", "log", "--holdout", "0.3"]).holdout == 0.3
    assert parse(["backtest", "log", "--test-fraction", "0.25"]).holdout == 0.25
    assert parse(["calibrate", "log", "--holdout", "0"]).holdout == 0  # 0: learn on all


def test_the_old_spelling_is_hidden_but_still_checked(capsys):
    assert "--test-fraction" not in _help(capsys, "backtest")
    with pytest.raises(SystemExit) as stop:
        main(["backtest", "log", "--test-fraction", "1"])
    assert stop.value.code == 2
    assert "must be strictly between 0 and 1" in capsys.readouterr().err


def test_help_loads_none_of_the_heavy_modules():
    heavy = ("faust", "redis", "uvloop", "agents.app", "stream.sinks.serve",
             "stream.sinks.terminal", "stream.devtools.demo", "stream.kafka.produce")  # fmt: skip
    probe = (
        "import sys\nfrom stream.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        f"print([m for m in {heavy!r} if m in sys.modules])\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, env=ENV,
                          timeout=120, check=True)  # fmt: skip
    assert done.stdout.decode().splitlines()[-1] == "[]"
