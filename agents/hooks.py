"""Faust's lifecycle, wired to the checkpointer: timers, shutdown, rebalances and /metrics.

Everything here is a public Faust API (``app.timer``, ``app.on_before_shutdown``,
``app.on_partitions_revoked``, ``app.page``); the protocol itself is in
:class:`~agents.checkpointer.Checkpointer`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from agents.checkpointer import Checkpointer
from agents.churn import ChurnApp
from agents.metrics import WorkerMetrics

log = logging.getLogger("churnwatch.ingest")
FLUSH_INTERVAL = 0.05
RELEASE_INTERVAL = 0.05
COMMIT_INTERVAL = 1.0


def install(
    churn: ChurnApp,
    checkpointer: Checkpointer,
    metrics: WorkerMetrics,
    release: Callable[[], Awaitable[None]],
) -> None:
    app, processor, gate = churn.app, churn.processor, churn.gate
    sources = set(churn.topics)

    @app.timer(RELEASE_INTERVAL)
    async def _release_timer() -> None:
        await release()

    @app.timer(FLUSH_INTERVAL)
    async def _flush_timer() -> None:
        await checkpointer.flush_if_idle()  # a cheap check until a flush is due

    @app.timer(COMMIT_INTERVAL)
    async def _commit_timer() -> None:
        await checkpointer.commit()

    @app.on_before_shutdown.connect
    async def _final_commit(sender: object, **kwargs: object) -> None:
        await checkpointer.close()
        log.info("stopping; counts: %s", {**processor.stats(), **gate.counts})

    @app.on_partitions_revoked.connect
    async def _revoked(sender: object, revoked: set, **kwargs: object) -> None:
        await checkpointer.settle()  # a flush under way writes its states while they are ours
        for tp in revoked:
            if tp.topic in sources:
                processor.revoke(tp.partition)  # its unflushed records are never committed
                gate.revoke(tp.partition)
                checkpointer.revoke(tp.partition)

    @app.page("/metrics")
    async def metrics_page(view, request):
        body, content_type = metrics.render()
        # As a header: aiohttp refuses a content_type argument that names a charset.
        return view.bytes(body, headers={"Content-Type": content_type})
