"""A non-editable install (a Docker image, a wheel) ships every package and data file the
code imports or reads; the editable .venv would hide a missing one."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_python_package_is_listed_for_setuptools():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
                 ["packages"])  # fmt: skip
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for top in ("agents", "schemas", "stream")
        for init in (ROOT / top).rglob("__init__.py")
    }
    assert found - listed == set(), "packages a wheel would leave out"
    assert listed - found == set(), "listed packages that do not exist"
