"""Where every benchmark writes its figures: ``bench/results/NAME.json``, indented, sorted as
given, and said on stdout, so a run always leaves the file BENCHMARKS.md quotes."""

from __future__ import annotations

from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def write_results(name: str, result: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2) + b"\n")
    return path.relative_to(ROOT)
