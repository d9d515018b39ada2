"""Running a function in N worker processes, with progress, clear failures and no orphans.

Used by ``--jobs``: each job is a fresh interpreter (the ``spawn`` start method: forking a
process that may hold threads, such as a progress display's, is unsafe), given one picklable
task, which it runs and whose picklable result it sends back over a pipe. The parent waits on
the pipes and the processes together, so:

* a job that raises sends its error back: an error the user can act on (a damaged log, a bad
  labels file) is raised again as it is; anything else becomes :class:`JobError` with the
  job's traceback, and the other jobs are stopped;
* a job that dies without a word (killed, out of memory) is a :class:`JobError` naming its exit
  status, not a hang;
* Ctrl-C, SIGTERM (or any exception in the parent) terminates every job before it propagates;
  the jobs ignore SIGINT themselves, so the terminal's Ctrl-C does not print a traceback per
  job, and each job also stops when it finds its parent gone (killed with SIGKILL).

Progress: each job stores the line it has reached in a shared array, which the parent reads
while it waits.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import traceback
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection, wait
from typing import Any

from stream.run.logio import LogError

USER_ERRORS: tuple[type[BaseException], ...] = (LogError, ValueError)
"""Errors a job passes on unchanged: their message is already for the person running it."""


class JobError(RuntimeError):
    """A job failed for a reason that is not the input's fault (a bug, a killed process)."""


class JobProgress:
    """What a running job reports: the line it has reached (and, for job 0, the file position)."""

    def __init__(self, lines: Any, position: Any, index: int, parent: int) -> None:
        self._lines = lines
        self._position = position
        self._index = index
        self._parent = parent

    def update(self, line: int, position: int | None) -> None:
        self._lines[self._index] = line
        if position is not None and self._index == 0:
            self._position.value = position
        if os.getppid() != self._parent:  # the parent is gone: nobody will read the result
            os._exit(1)


def _child(
    conn: Connection,
    target: Callable[[Any, JobProgress], Any],
    task: Any,
    progress: JobProgress,
) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops its jobs on Ctrl-C
    try:
        result = target(task, progress)
    except BaseException as exc:  # everything goes back to the parent
        text = traceback.format_exc()
        try:
            conn.send(("error", exc if isinstance(exc, USER_ERRORS) else None, text))
        except Exception:  # the exception would not pickle
            conn.send(("error", None, text))
        conn.close()
        return
    conn.send(("ok", result, ""))
    conn.close()


def run_jobs(
    target: Callable[[Any, JobProgress], Any],
    tasks: Sequence[Any],
    on_progress: Callable[[int, int | None], None] | None = None,
    poll_seconds: float = 0.25,
    feed: Callable[[], None] | None = None,
) -> list[Any]:
    """``target(task, progress)`` for each task in a process of its own; the results in task
    order. ``on_progress(lines, position)`` gets the slowest job's line and job 0's position
    every ``poll_seconds``. ``target`` must be a module-level function (it is imported by name
    in the job). ``feed``, when given, runs here once every job has started, before the
    results are awaited: it sends the jobs their input (an exception in it stops them)."""
    context = multiprocessing.get_context("spawn")
    lines = context.Array("q", len(tasks), lock=False)
    position = context.Value("q", 0, lock=False)
    parent = os.getpid()
    procs, conns = [], []
    results: dict[int, Any] = {}
    stopped = _stop_on_sigterm()
    try:
        for index, task in enumerate(tasks):
            receive, send = context.Pipe(duplex=False)
            progress = JobProgress(lines, position, index, parent)
            proc = context.Process(
                target=_child, args=(send, target, task, progress), name=f"churnwatch-job-{index}"
            )
            proc.daemon = True  # never outlives the parent's interpreter
            proc.start()
            send.close()
            procs.append(proc)
            conns.append(receive)
        if feed is not None:
            feed()
        waiting = {conn: index for index, conn in enumerate(conns)}
        while waiting:
            sentinels = {procs[i].sentinel: i for i in waiting.values()}
            ready = wait([*waiting, *sentinels], timeout=poll_seconds)
            if on_progress is not None:
                on_progress(min(lines), position.value or None)
            for item in ready:
                if item in waiting:
                    index = waiting.pop(item)  # type: ignore[arg-type]
                    try:
                        status, value, text = item.recv()  # type: ignore[union-attr]
                    except EOFError:  # it died without a word: join it for its exit status
                        procs[index].join()
                        status, value, text = "died", None, ""
                    if status == "ok":
                        results[index] = value
                        continue
                    _raise(index, len(tasks), procs[index], status, value, text)
                elif sentinels.get(item) is not None:  # type: ignore[call-overload]
                    index = sentinels[item]  # type: ignore[index]
                    conn = conns[index]
                    if conn in waiting and not conn.poll():
                        procs[index].join()
                        _raise(index, len(tasks), procs[index], "died", None, "")
        for proc in procs:
            proc.join()
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
        for proc in procs:
            proc.join()
        for conn in conns:
            conn.close()
        if stopped is not None:
            signal.signal(signal.SIGTERM, stopped)
    return [results[i] for i in range(len(tasks))]


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _stop_on_sigterm() -> Any:
    """While jobs run, SIGTERM (``kill``, a supervisor) stops them as Ctrl-C does, instead of
    ending the parent alone; returns the handler to restore (None off the main thread)."""
    try:
        return signal.signal(signal.SIGTERM, _interrupted)
    except ValueError:  # not the main thread: leave signals to whoever owns them
        return None


def _raise(index: int, jobs: int, proc: Any, status: str, error: Any, text: str) -> None:
    if error is not None:
        raise error
    if status == "died":
        code = proc.exitcode
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit {code}"
        raise JobError(f"job {index + 1} of {jobs} stopped without a result ({how})")
    last = text.strip().splitlines()[-1] if text.strip() else "unknown error"
    raise JobError(f"job {index + 1} of {jobs} failed: {last}\n{text.rstrip()}")
