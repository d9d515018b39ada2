"""How long the backtest and calibrate HTML reports take to generate from their JSON reports.

    python bench/report_bench.py [--rounds 5] [--baseline PATH] [--backtest JSON --calibration JSON]

The inputs are a backtest and a calibrate JSON report. Without ``--backtest`` and
``--calibration`` they are made once from a seeded simulated log (600 accounts, 150 days,
seed 3) and cached under ``bench/data/``. Two figures per report:

* ``warm``: the median of ``--rounds`` calls of the HTML function in one process, after one
  call that is not counted: what each further report costs.
* ``cold``: the median of ``--rounds`` fresh interpreters that import the report module and
  write the report once: what one ``churnwatch backtest --html`` pays on top of its replay,
  the charting library's import included.

``--baseline PATH`` also times another copy of the report module in the same run, rounds
alternating, and gives the ratio: for instance the hand-drawn SVG version before the charts
came from matplotlib,
``git show 'cc931e3^:stream/offline/report_html.py' > /tmp/report_html_before.py``.
Results are printed and written to bench/results/report.json (or ``--name``).
"""

from __future__ import annotations

import argparse
import importlib.util
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.results_file import write_results  # noqa: E402

DATA = ROOT / "bench" / "data"
NOW = "2026-12-01T00:00:00Z"

_COLD = """
import sys, time
sys.path.insert(0, {root!r})
started = time.perf_counter()
import importlib.util
import orjson
spec = importlib.util.spec_from_file_location("report_under_test", {module!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
report = orjson.loads(open({json!r}, "rb").read())
getattr(module, {function!r})(report)
print(time.perf_counter() - started)
"""


def _cli(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "stream.cli", *args], check=True, cwd=ROOT)


def _inputs() -> tuple[Path, Path]:
    """The cached backtest and calibrate JSON reports of the seeded log, made when missing."""
    DATA.mkdir(parents=True, exist_ok=True)
    log, labels = DATA / "report-600x150-s3.jsonl.gz", DATA / "report-600x150-s3.labels.jsonl"
    backtest, calibration = DATA / "report-backtest.json", DATA / "report-calibration.json"
    if not log.exists():
        _cli("simulate", "--accounts", "600", "--days", "150", "--seed", "3", "-o", str(log),
             "--labels", str(labels))  # fmt: skip
    common = [str(log), "--labels", str(labels), "--now", NOW, "-q"]
    if not backtest.exists():
        _cli("backtest", *common, "-o", str(backtest), "--rejects", str(DATA / "r.jsonl"))
    if not calibration.exists():
        _cli("calibrate", *common, "--min-churners", "10", "-o", str(DATA / "report.toml"),
             "--report", str(calibration), "--rejects", str(DATA / "r.jsonl"))  # fmt: skip
    return backtest, calibration


def _load(module_path: Path):
    spec = importlib.util.spec_from_file_location("report_under_test", module_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _once(render, report: dict) -> float:
    started = time.perf_counter()
    render(report)
    return time.perf_counter() - started


def _cold(module_path: Path, json_path: Path, function: str) -> float:
    code = _COLD.format(root=str(ROOT), module=str(module_path), json=str(json_path),
                        function=function)  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, cwd=ROOT)
    return float(done.stdout)


def _shown(path: Path) -> str:
    path = path.resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--baseline", type=Path, help="another copy of the report module")
    parser.add_argument("--backtest", type=Path, help="a backtest JSON report")
    parser.add_argument("--calibration", type=Path, help="a calibrate JSON report")
    parser.add_argument("--name", default="report", help="bench/results/NAME.json")
    args = parser.parse_args()
    if args.backtest and args.calibration:
        inputs = {"backtest": args.backtest, "calibration": args.calibration}
    else:
        backtest, calibration = _inputs()
        inputs = {"backtest": backtest, "calibration": calibration}
    paths = {"current": ROOT / "stream/offline/report_html.py"}
    if args.baseline:
        paths["baseline"] = args.baseline
    modules = {name: _load(path) for name, path in paths.items()}
    result: dict = {
        "command": " ".join(["python", "bench/report_bench.py", *sys.argv[1:]]),
        "machine": f"{platform.machine()}, python {platform.python_version()}",
        "modules": {name: _shown(path) for name, path in paths.items()},
        "rounds": args.rounds,
        "reports": {},
    }
    for kind, json_path in inputs.items():
        function = f"{kind}_html"
        report = orjson.loads(json_path.read_bytes())
        figures = {}
        for name, module in modules.items():
            # One call not counted: first-call imports and caches.
            figures[name] = {"html_bytes": len(getattr(module, function)(report).encode()),
                             "warm": [], "cold": []}  # fmt: skip
        for _ in range(args.rounds):  # alternating, so drift on the box hits both alike
            for name, module in modules.items():
                figures[name]["warm"].append(_once(getattr(module, function), report))
                figures[name]["cold"].append(_cold(paths[name], json_path, function))
        entry: dict = {"input": _shown(json_path)}
        for name, f in figures.items():
            warm, cold = statistics.median(f["warm"]), statistics.median(f["cold"])
            entry[name] = {
                "html_bytes": f["html_bytes"],
                "warm_median_seconds": round(warm, 4),
                "cold_median_seconds": round(cold, 4),
                "warm_seconds": [round(x, 4) for x in f["warm"]],
                "cold_seconds": [round(x, 4) for x in f["cold"]],
            }
            print(f"{kind:12} {name:9} warm median {warm * 1000:8.1f} ms   "
                  f"cold median {cold * 1000:8.1f} ms   {f['html_bytes']:,} bytes")  # fmt: skip
        if "baseline" in entry:
            now, then = entry["current"], entry["baseline"]
            ratio = {
                "warm": round(now["warm_median_seconds"] / then["warm_median_seconds"], 1),
                "cold": round(now["cold_median_seconds"] / then["cold_median_seconds"], 2),
            }
            entry["ratio_current_to_baseline"] = ratio
            print(f"{kind:12} current / baseline: warm x{ratio['warm']}, cold x{ratio['cold']}")
        result["reports"][kind] = entry
    print(f"wrote {write_results(args.name, result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
