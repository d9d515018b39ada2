"""Reading and writing JSONL event logs: files, stdin, gzip, and lines that are not events.

A log is read as raw lines with their line numbers; nothing here parses JSON, so a bad line
can never stop the reader. Lines longer than the event size limit are not buffered whole (a
runaway file without newlines stays cheap): their start is kept for the rejects file and the
rest is counted and skipped. A UTF-8 byte-order mark, which some Windows tools put at the start
of a text file, is not part of the first event and is dropped.
"""

from __future__ import annotations

import gzip
import io
import os
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, TextIO

from schemas.events import MAX_EVENT_BYTES
from stream.run.validate import RAW_EXCERPT_BYTES, OversizedLine

if TYPE_CHECKING:  # rich is imported when a display starts: most runs never show one
    from rich.console import Console
    from rich.progress import Progress as RichProgress
    from rich.progress import ProgressColumn, TaskID

_GZIP_MAGIC = b"\x1f\x8b"
BOM = b"\xef\xbb\xbf"
"""The UTF-8 byte-order mark: no JSON parser takes it, and editors on Windows add it."""
_SKIP_CHUNK = 1 << 16


class LogError(OSError):
    """A log that cannot be opened or read; the message is for the person who named it."""


class Progress:
    """Progress of a long run on a terminal: share done, lines, lines per second and an ETA.

    Drawn with rich on stderr, and only where someone watches it: never when stderr is not a
    terminal (a pipe, a file, a test), under CI (``CI`` set) or when ``enabled`` is False
    (``-q``). It appears half a second into a run, so short runs print nothing, and
    :meth:`done` removes it. ``total_bytes`` and the positions given to :meth:`update` are
    bytes of the file (compressed bytes for gzip); without a size (stdin) there is no share or
    ETA. ``console`` replaces the terminal (tests pass one with ``force_terminal``); ``clock``
    replaces :func:`time.monotonic`.
    """

    def __init__(
        self,
        label: str,
        total_bytes: int | None,
        stream: TextIO | None = None,
        enabled: bool | None = None,
        console: Console | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if enabled is None:
            if console is not None:
                watched = console.is_terminal
            else:
                target = stream or sys.stderr
                watched = hasattr(target, "isatty") and target.isatty()
            enabled = watched and not os.environ.get("CI")
        self.enabled = enabled
        self.label = label
        self.total = total_bytes or None
        self.stream = stream
        self.console = console
        self.clock = clock
        self.started = clock()
        self._next = self.started + 0.5
        self._bar: RichProgress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.done()

    def update(self, lines: int, position: int | None) -> None:
        if not self.enabled:
            return
        now = self.clock()
        if now < self._next:
            return
        self._next = now + 0.5
        bar = self._bar or self._prepare()
        assert self._task is not None
        rate = lines / max(now - self.started, 1e-9)
        done = None
        if self.total and position is not None:
            done = min(position, self.total)
        bar.update(self._task, completed=done, lines=lines, rate=rate)
        if self._bar is None:
            bar.start()  # drawn as it starts
            self._bar = bar
            _SHOWN.add(self)
        else:
            bar.refresh()

    def done(self) -> None:
        bar, self._bar = self._bar, None
        _SHOWN.discard(self)
        if bar is not None:
            bar.stop()

    def _prepare(self) -> RichProgress:
        from rich.console import Console
        from rich.progress import BarColumn, TaskProgressColumn, TextColumn, TimeRemainingColumn
        from rich.progress import Progress as RichProgress

        console = self.console or Console(
            file=self.stream or sys.stderr, force_terminal=True, highlight=False
        )
        columns: list[str | ProgressColumn] = [TextColumn("{task.description}:")]
        if self.total:
            columns += [BarColumn(bar_width=24), TaskProgressColumn()]
        columns.append(TextColumn("{task.fields[lines]:,} lines, {task.fields[rate]:,.0f} lines/s"))
        if self.total:
            columns += [TextColumn("ETA"), TimeRemainingColumn()]
        # Refreshed by update() rather than a thread of its own; stdout and stderr stay the
        # process's own (alerts may be going to stdout while the display runs).
        bar = RichProgress(
            *columns, console=console, auto_refresh=False, transient=True,
            redirect_stdout=False, redirect_stderr=False, get_time=self.clock,
        )  # fmt: skip
        self._task = bar.add_task(self.label, total=self.total, lines=0, rate=0.0)
        return bar


_SHOWN: set[Progress] = set()
"""Displays on the terminal now, for :func:`close_displays`."""


def close_displays() -> None:
    """Remove every progress display still shown, before an error is printed: a run that
    fails never reaches its own :meth:`Progress.done`, and the terminal gets its cursor back."""
    for progress in list(_SHOWN):
        progress.done()


class LogReader:
    """Iterate ``(line_number, raw_line)`` over a log file, stdin (``-``), plain or gzip.

    A line longer than ``max_line_bytes`` comes back as an
    :class:`~stream.run.validate.OversizedLine` (its start and its size), which
    :func:`stream.run.validate.validate` refuses as too large; one made of blanks only is a
    blank line however long, and comes back as one.

    A log that cannot be read to its end (a truncated or corrupt ``.gz``, a disk error) raises
    :class:`LogError` by default, so a caller that cannot use part of a log (a backtest scoring
    outcomes) never gets one silently. With ``stop_at_damage``, the lines before the damage are
    yielded, iteration ends there, and :attr:`incomplete` says why; a caller like replay can
    then finish its work on them and report the run as incomplete instead of losing it.
    """

    def __init__(
        self, path: str, max_line_bytes: int = MAX_EVENT_BYTES, stop_at_damage: bool = False
    ) -> None:
        self.path = path
        self.max_line_bytes = max_line_bytes
        self.stop_at_damage = stop_at_damage
        self.incomplete: str | None = None
        """Why the last iteration stopped before the end of the log; None when it did not."""
        self._raw: BinaryIO | None = None
        self._stream: BinaryIO | None = None
        self.size: int | None = None

    def __enter__(self) -> LogReader:
        try:
            if self.path == "-":
                raw: BinaryIO = sys.stdin.buffer
            else:
                raw = open(self.path, "rb")
                self.size = os.fstat(raw.fileno()).st_size
        except OSError as exc:
            raise LogError(f"{self.path}: cannot open: {exc.strerror or exc}") from None
        buffered = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(raw)
        self._raw = buffered
        try:
            zipped = buffered.peek(2)[:2] == _GZIP_MAGIC
        except OSError as exc:
            raise LogError(f"{self.path}: cannot read: {exc.strerror or exc}") from None
        if zipped:
            self._stream = gzip.GzipFile(fileobj=buffered, mode="rb")  # type: ignore[assignment]
        else:
            self._stream = buffered
        return self

    def __exit__(self, *exc: object) -> None:
        if self.path != "-" and self._raw is not None:
            self._raw.close()

    def position(self) -> int | None:
        """Bytes consumed from the underlying file (compressed bytes for gzip)."""
        if self._raw is None or self.path == "-":
            return None
        try:
            return self._raw.tell()
        except OSError:
            return None

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        assert self._stream is not None, "use LogReader as a context manager"
        self.incomplete = None
        limit = self.max_line_bytes + 2  # room for "\r\n"
        readline = self._stream.readline
        number = 0
        try:
            while True:
                # The first line may carry a byte-order mark, which is no part of its event.
                line = readline(limit + len(BOM) if number == 0 else limit)
                if not line:
                    return
                number += 1
                if number == 1 and line.startswith(BOM):
                    line = line[len(BOM) :]
                if len(line) >= limit and not line.endswith(b"\n"):
                    yield number, self._rest_of_oversized(line)
                    continue
                yield number, line
        except (OSError, EOFError, zlib.error) as exc:
            where = "stdin" if self.path == "-" else self.path
            reason = f"{where}: read failed after line {number}: {_damage(exc)}"
            if not self.stop_at_damage:
                raise LogError(reason) from None
            self.incomplete = reason

    def _rest_of_oversized(self, head: bytes) -> bytes:
        """Skip the rest of a line that began with ``head``, keeping its start and its size.

        The rest is read in chunks and only counted, so memory stays bounded however long the
        line is. Leading blanks are left out of the excerpt; a line of blanks only is returned
        as a blank line, which every caller skips as it skips a short one.
        """
        assert self._stream is not None
        readline = self._stream.readline
        size = len(head)
        excerpt = head.lstrip()[:RAW_EXCERPT_BYTES]
        tail = head[-2:]
        ended = False
        while not ended:
            rest = readline(_SKIP_CHUNK)
            if not rest:
                break
            size += len(rest)
            tail = (tail + rest)[-2:]
            ended = rest.endswith(b"\n")
            if len(excerpt) < RAW_EXCERPT_BYTES:
                excerpt = (excerpt + rest).lstrip()[:RAW_EXCERPT_BYTES]
        if ended:  # the line ending is not part of the line
            size -= 2 if tail == b"\r\n" else 1
        excerpt = excerpt.rstrip(b"\r\n")
        if not excerpt:
            return b"\n"
        return OversizedLine(excerpt, size)


def _damage(exc: BaseException) -> str:
    """What went wrong in words a person who handed over the file can act on."""
    if isinstance(exc, EOFError):
        return "the compressed data ends early (a truncated .gz file)"
    if isinstance(exc, zlib.error | gzip.BadGzipFile):
        return f"the compressed data is corrupt ({exc})"
    return str(exc.strerror or exc) if isinstance(exc, OSError) else str(exc)


@contextmanager
def open_output(path: str) -> Iterator[BinaryIO]:
    """``-`` is stdout; ``*.gz`` is compressed deterministically (no name or time in the header)."""
    if path == "-":
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    target = Path(path)
    try:
        if target.parent and not target.parent.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
        raw = open(target, "wb", buffering=1 << 20)  # noqa: SIM115 - closed below
    except OSError as exc:
        raise LogError(f"{path}: cannot write: {exc.strerror or exc}") from None
    try:
        if target.suffix == ".gz":
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as zipped:
                yield zipped  # type: ignore[misc]
        else:
            yield raw
    finally:
        raw.close()


class RejectsFile:
    """Where bad lines go, created on the first one: a clean run leaves no empty file behind.

    A file left at the path by an earlier run is removed at the start, as opening it for
    writing would have emptied it, so what is there afterwards is always this run's. Only a
    regular file is removed: ``/dev/null`` or a named pipe given on purpose is written to, and
    removing a device node would break far more than this run.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._stack = ExitStack()
        self._out: BinaryIO | None = None

    def __enter__(self) -> RejectsFile:
        target = Path(self.path)
        if self.path != "-" and (target.is_symlink() or target.is_file()):
            try:
                target.unlink(missing_ok=True)
            except OSError as exc:
                raise LogError(f"{self.path}: cannot write: {exc.strerror or exc}") from None
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stack.close()

    def write(self, line: bytes) -> None:
        if self._out is None:
            self._out = self._stack.enter_context(open_output(self.path))
        self._out.write(line)
