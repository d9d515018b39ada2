"""The core's layering: no import cycle whichever module comes first, and no client library.

Each module is imported first in a fresh interpreter, because a cycle only shows when the
import starts at the wrong end (``schemas.alerts`` -> registry -> signal modules, and the
state, policy and engine that also read the registry).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
FIRST = [
    "schemas.alerts",
    "stream.core.signals.registry",
    "stream.core.signals.base",
    "stream.core.signals.usage",
    "stream.core.signals.adoption",
    "stream.core.signals.billing",
    "stream.core.signals.voice",
    "stream.core.state",
    "stream.core.state_codec",
    "stream.core.policy",
    "stream.core.health",
    "stream.core.episodes",
    "stream.core.account_episodes",
    "stream.core.alert_builder",
    "stream.core.effects",
    "stream.core.engine",
]
CLIENTS = ("kafka", "aiokafka", "faust", "redis", "rocksdict", "aiohttp")


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )


@pytest.mark.parametrize("module", FIRST)
def test_imports_cleanly_when_imported_first(module):
    done = _python(f"import {module}")
    assert done.returncode == 0, done.stderr


def test_the_core_loads_no_client_library():
    modules = "; ".join(f"import {m}" for m in FIRST)
    done = _python(
        f"import sys; {modules}; "
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({CLIENTS!r})))"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
