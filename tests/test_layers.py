"""The layers only import downwards, the core does no I/O, and no module imports itself back.

Reading the imports with ``ast`` (not by importing) sees every import, including those inside
functions, which are the ones that creep in unnoticed. Imports under ``if TYPE_CHECKING:``
are annotations only and do not count.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("schemas", "stream", "agents")

RANK = {
    "schemas": 0,
    "stream.core": 1,
    "stream.render": 2,
    "stream.run": 3,
    "stream.kafka": 4,
    "stream.sinks": 5,
    "stream.offline": 5,
    "stream.devtools": 6,
    "agents": 7,
    "stream.cli": 8,
}
"""A module may import its own layer and those ranked below it; equal ranks stay apart."""

CORE_FORBIDDEN = ("faust", "aiokafka", "kafka", "redis", "aiohttp", "numpy", "socket",
                  "subprocess", "asyncio", "threading", "urllib", "http")  # fmt: skip
"""What the pure core must never import: brokers, stores, servers, networking, heavy maths."""


def layer_of(module: str) -> str | None:
    best = None
    for layer in RANK:
        if (module == layer or module.startswith(layer + ".")) and (
            best is None or len(layer) > len(best)
        ):
            best = layer
    return best


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _runtime_imports(tree: ast.AST, module: str) -> list[tuple[str, int]]:
    """(imported module, line) for every import outside ``if TYPE_CHECKING:`` blocks."""
    found: list[tuple[str, int]] = []
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for child in node.body for n in ast.walk(child))
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.rsplit(".", node.level)[0]
                base = f"{package}.{base}" if base else package
            found.append((base, node.lineno))
            found += [(f"{base}.{alias.name}", node.lineno) for alias in node.names]
    return found


def check_tree(root: Path) -> list[str]:
    """Every layering problem under ``root``, one readable line each."""
    problems: list[str] = []
    modules: dict[str, list[tuple[str, int]]] = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            name = _module_name(path, root)
            modules[name] = _runtime_imports(ast.parse(path.read_text()), name)
    for name, imports in modules.items():
        layer = layer_of(name)
        if layer is None:
            continue
        reported: set[int] = set()
        for target, line in imports:
            if line in reported:
                continue  # `from a import b` yields a and a.b: one problem per line
            where = f"{name.replace('.', '/')}.py:{line}"
            if layer == "stream.core" and target.split(".")[0] in CORE_FORBIDDEN:
                problems.append(f"{where}: the core imports {target}, which does I/O")
                reported.add(line)
            other = layer_of(target)
            known = target in modules or target.rsplit(".", 1)[0] in modules
            if other is None or other == layer or not known:
                continue
            if RANK[other] >= RANK[layer]:
                problems.append(f"{where}: {layer} imports {target} ({other} is not below it)")
                reported.add(line)
    problems += _cycles({n: {t for t, _ in imps if t in modules} for n, imps in modules.items()})
    return sorted(set(problems))


def _cycles(graph: dict[str, set[str]]) -> list[str]:
    """Import loops between modules (a package's ``__init__`` importing its children is fine)."""
    found = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt == node or nxt.startswith(node + "."):
                continue
            if state.get(nxt) == 1:
                loop = [*stack[stack.index(nxt) :], nxt]
                found.append("import loop: " + " -> ".join(loop))
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def test_the_repository_keeps_its_layers() -> None:
    assert check_tree(ROOT) == []


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_the_rule_catches_a_core_module_importing_faust(tmp_path: Path) -> None:
    _write(tmp_path, {
        "schemas/__init__.py": "",
        "stream/__init__.py": "",
        "stream/core/__init__.py": "",
        "stream/core/engine.py": "def f():\n    import faust\n    return faust\n",
        "agents/__init__.py": "",
    })  # fmt: skip
    assert check_tree(tmp_path) == [
        "stream/core/engine.py:2: the core imports faust, which does I/O"
    ]


def test_the_rule_catches_upward_imports_and_loops(tmp_path: Path) -> None:
    _write(tmp_path, {
        "schemas/__init__.py": "",
        "stream/__init__.py": "",
        "stream/core/__init__.py": "",
        "stream/core/state.py": "from stream.run.live import x\n",
        "stream/run/__init__.py": "",
        "stream/run/live.py": "from stream.run.merge import y\nx = 1\n",
        "stream/run/merge.py": "from stream.run.live import x\ny = 2\n",
        "stream/sinks/__init__.py": "",
        "stream/sinks/api.py": "from stream.offline.report import z\n",
        "stream/offline/__init__.py": "",
        "stream/offline/report.py": "z = 3\n",
        "agents/__init__.py": "",
    })  # fmt: skip
    problems = check_tree(tmp_path)
    assert any("stream/core/state.py:1: stream.core imports stream.run.live" in p for p in problems)
    assert any("stream/sinks/api.py:1: stream.sinks imports stream.offline" in p for p in problems)
    assert any(p.startswith("import loop: stream.run.live -> stream.run.merge") for p in problems)


def test_type_checking_imports_do_not_count(tmp_path: Path) -> None:
    _write(tmp_path, {
        "schemas/__init__.py": "",
        "stream/__init__.py": "",
        "stream/core/__init__.py": "",
        "stream/core/state.py": "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from stream.run.live import x\n",
        "stream/run/__init__.py": "",
        "stream/run/live.py": "x = 1\n",
        "agents/__init__.py": "",
    })  # fmt: skip
    assert check_tree(tmp_path) == []
