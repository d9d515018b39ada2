"""Request latencies for the API benchmarks, timed one way for all of them."""

from __future__ import annotations

import http.client
import time


def latencies(conn: http.client.HTTPConnection, paths: list[str]) -> dict:
    """The median and 99th percentile (ms, unrounded) of GETs of ``paths``, one after another on
    ``conn``, and how many were made. An answer other than 200 stops the benchmark: a figure
    for failed requests would be no figure."""
    took = []
    for path in paths:
        started = time.perf_counter()
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        took.append((time.perf_counter() - started) * 1000)
        assert response.status == 200, (path, response.status)
    took.sort()
    return {"p50_ms": took[len(took) // 2], "p99_ms": took[int(len(took) * 0.99)],
            "requests": len(took)}  # fmt: skip
