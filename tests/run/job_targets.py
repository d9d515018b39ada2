"""Job targets for the tests of :mod:`stream.run.jobs`: a job imports its target by name, so
they live in a module, not in a test function."""

from __future__ import annotations

import os

from stream.run.logio import LogError


def double(task: int, progress) -> int:
    progress.update(task, None)
    return task * 2


def boom_on_two(task: int, progress) -> int:
    if task == 2:
        raise KeyError("no such thing")
    return task


def exit_on_two(task: int, progress) -> int:
    if task == 2:
        os._exit(7)
    return task


def bad_log_on_two(task: int, progress) -> int:
    if task == 2:
        raise LogError("log.gz: read failed after line 9: the compressed data ends early")
    return task
