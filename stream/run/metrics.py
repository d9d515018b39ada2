"""Prometheus text exposition without a client library: counters, gauges and histograms.

The services expose a handful of series; a small registry keeps the dependency list to what
the project already uses. Thread-safe, since the read-model feed runs in its own thread.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections import defaultdict

Labels = tuple[tuple[str, str], ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(labels: Labels, extra: tuple[tuple[str, str], ...] = ()) -> str:
    pairs = (*labels, *extra)
    if not pairs:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in pairs) + "}"


def _number(value: float) -> str:
    """Exact for counts of any size (``%g`` would print 1234567 as 1.23457e+06)."""
    value = float(value)
    return str(int(value)) if value.is_integer() else repr(value)


class Registry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._help: dict[str, tuple[str, str]] = {}
        self._values: dict[str, dict[Labels, float]] = defaultdict(dict)
        self._buckets: dict[str, tuple[float, ...]] = {}
        self._hist: dict[str, dict[Labels, list[float]]] = defaultdict(dict)

    def describe(self, name: str, kind: str, text: str, buckets: tuple[float, ...] = ()) -> None:
        self._help[name] = (kind, text)
        if kind == "histogram":
            self._buckets[name] = buckets

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            series = self._values[name]
            series[key] = series.get(key, 0.0) + amount

    def set(self, name: str, value: float, **labels: str) -> None:
        with self._lock:
            self._values[name][tuple(sorted(labels.items()))] = value

    def observe(self, name: str, value: float, **labels: str) -> None:
        buckets = self._buckets[name]
        key = tuple(sorted(labels.items()))
        with self._lock:
            counts = self._hist[name].setdefault(key, [0.0] * (len(buckets) + 2))
            counts[bisect_left(buckets, value)] += 1  # the first bucket whose bound >= value
            counts[-1] += value

    def value(self, name: str, **labels: str) -> float:
        with self._lock:
            return self._values[name].get(tuple(sorted(labels.items())), 0.0)

    def render(self) -> str:
        lines = []
        with self._lock:
            for name, (kind, text) in sorted(self._help.items()):
                lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
                if kind != "histogram":
                    for labels, value in sorted(self._values.get(name, {}).items()):
                        lines.append(f"{name}{_labels(labels)} {_number(value)}")
                    continue
                bounds = self._buckets[name]
                for labels, counts in sorted(self._hist.get(name, {}).items()):
                    running = 0.0
                    for bound, count in zip((*bounds, float("inf")), counts, strict=False):
                        running += count
                        le = "+Inf" if bound == float("inf") else f"{bound:g}"
                        bucket = _labels(labels, (("le", le),))
                        lines.append(f"{name}_bucket{bucket} {_number(running)}")
                    lines.append(f"{name}_count{_labels(labels)} {_number(running)}")
                    lines.append(f"{name}_sum{_labels(labels)} {_number(counts[-1])}")
        return "\n".join(lines) + "\n"
