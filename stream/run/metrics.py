"""The Prometheus registry each service serves at ``GET /metrics``, from ``prometheus_client``.

One :class:`Registry` per app instance (not the library's global ``REGISTRY``), so several
apps can live in one process (as in the tests) without their series adding up. Each comes with
the library's own process, platform and garbage-collector collectors: memory, CPU seconds,
open file descriptors, start time, Python version and GC counts, under the names dashboards
for Python services expect (``process_resident_memory_bytes``, ``python_gc_objects_collected``
...). Serve it with :func:`exposition`.

Compared with the text the services wrote before ``prometheus_client``: every series keeps
its name and labels; bucket bounds print as Python floats (``le="1.0"`` where it was
``le="1"``, which Prometheus reads as the same number); large counts may print with an
exponent (``1.234567e+06``, still exact); and each ``prometheus_client`` counter and histogram
adds a ``<name>_created`` gauge (the series' creation time; set
``PROMETHEUS_DISABLE_CREATED_SERIES=true`` to leave those out).
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)


class Registry(CollectorRegistry):
    """A ``CollectorRegistry`` holding the process, platform and GC collectors."""

    def __init__(self) -> None:
        super().__init__()
        ProcessCollector(registry=self)
        PlatformCollector(registry=self)
        GCCollector(registry=self)


def exposition(registry: CollectorRegistry) -> tuple[bytes, str]:
    """The registry's series in Prometheus text, and the content type to send them with."""
    return generate_latest(registry), CONTENT_TYPE_LATEST
