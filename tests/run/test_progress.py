"""The progress display of long runs (replay, backtest, calibrate, produce).

It is for a person watching a terminal: a share, lines, lines per second and an ETA there, and
not one byte anywhere else (a pipe, a file, CI, ``-q``), where it would only litter logs.
A fake clock drives it, so the figures are exact.
"""

from __future__ import annotations

import re
from io import StringIO

import pytest
from rich.console import Console

from stream.run.logio import Progress, close_displays

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
CHUNK = 16_384
"""Lines between two progress calls, as replay and produce make them."""


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def not_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)


def _terminal() -> tuple[Console, StringIO]:
    out = StringIO()
    return Console(force_terminal=True, file=out, width=120), out


def _run(progress: Progress, clock: Clock, steps: int = 4, total: int | None = 1000) -> None:
    """One update a second, each a tenth of the file further on."""
    for step in range(1, steps + 1):
        clock.now += 1.0
        progress.update(CHUNK * step, None if total is None else step * total // 10)
    progress.done()


def _text(raw: str) -> str:
    return ANSI.sub("", raw)


def test_a_terminal_shows_share_lines_rate_and_eta():
    console, out = _terminal()
    clock = Clock()
    _run(Progress("replay", 1000, console=console, clock=clock), clock)
    shown = _text(out.getvalue())
    assert "replay:" in shown
    assert "40%" in shown
    assert "65,536 lines" in shown
    # 16,384 lines a second; a tenth of the file a second with 60% to go: 6 seconds.
    assert "16,384 lines/s" in shown
    assert re.search(r"ETA 0:00:06\b", shown), shown
    assert out.getvalue().endswith("\x1b[2K"), "done() clears the line it drew"
    assert "\x1b[?25h" in out.getvalue(), "and gives the terminal its cursor back"


def test_without_a_size_there_is_a_rate_but_no_share_or_eta():
    console, out = _terminal()
    clock = Clock()
    _run(Progress("replay", None, console=console, clock=clock), clock, total=None)
    shown = _text(out.getvalue())
    assert "16,384 lines/s" in shown
    assert "ETA" not in shown and "%" not in shown


def test_nothing_is_written_when_stderr_is_not_a_terminal(monkeypatch):
    err = StringIO()  # what a pipe or a file looks like: isatty() is False
    monkeypatch.setattr("sys.stderr", err)
    clock = Clock()
    progress = Progress("replay", 1000, clock=clock)
    assert not progress.enabled
    _run(progress, clock)
    assert err.getvalue() == ""


def test_nothing_is_written_to_a_stream_that_is_not_a_terminal():
    out, clock = StringIO(), Clock()
    _run(Progress("produce", 1000, stream=out, clock=clock), clock)
    assert out.getvalue() == ""


def test_ci_and_quiet_keep_a_terminal_silent(monkeypatch):
    clock = Clock()
    console, out = _terminal()
    _run(Progress("backtest", 1000, console=console, enabled=False, clock=clock), clock)
    monkeypatch.setenv("CI", "true")
    _run(Progress("calibrate", 1000, console=console, clock=clock), clock)
    assert out.getvalue() == ""


def test_a_run_shorter_than_half_a_second_draws_nothing():
    console, out = _terminal()
    clock = Clock()
    progress = Progress("replay", 1000, console=console, clock=clock)
    clock.now += 0.4
    progress.update(CHUNK, 500)
    progress.done()
    assert out.getvalue() == ""


def test_a_failed_run_still_gets_its_display_removed():
    """A run that raises never calls done(); the command line closes what is still shown
    before it prints the error."""
    console, out = _terminal()
    clock = Clock()
    progress = Progress("replay", 1000, console=console, clock=clock)
    clock.now += 1.0
    progress.update(CHUNK, 100)
    assert "lines/s" in _text(out.getvalue())
    close_displays()
    assert out.getvalue().endswith("\x1b[2K") and "\x1b[?25h" in out.getvalue()
    progress.done()  # and a done() afterwards is harmless


def test_used_as_a_context_manager_it_is_removed_on_an_exception():
    console, out = _terminal()
    clock = Clock()
    with pytest.raises(RuntimeError), Progress("produce", 1000, console=console,
                                               clock=clock) as progress:  # fmt: skip
        clock.now += 1.0
        progress.update(CHUNK, 100)
        raise RuntimeError("broker went away")
    assert out.getvalue().endswith("\x1b[2K")
