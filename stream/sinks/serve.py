"""``churnwatch serve``: the read-model feed and the HTTP API in one small process.

The feed runs in a thread (kafka-python and redis-py are blocking clients); the API runs on
aiohttp's loop. Both read the worker's ``CHURNWATCH_*`` settings, so one environment
configures the whole deployment. Stopping the process stops the feed without committing a
batch Redis has not taken.
"""

from __future__ import annotations

import logging
import threading

from aiohttp import web

from stream.core.policy import Policy
from stream.kafka.settings import WorkerSettings
from stream.run.metrics import Registry
from stream.sinks.actions_api import KafkaActionLog
from stream.sinks.api import build_app, run_api
from stream.sinks.auth import Auth, load_tokens
from stream.sinks.readmodel_feed import ReadModelFeed
from stream.sinks.readmodel_store import RedisReadModel

log = logging.getLogger("churnwatch.serve")


def build_service(settings: WorkerSettings, policy: Policy, store: RedisReadModel,
                  auth: Auth | None = None) -> tuple[web.Application, ReadModelFeed]:  # fmt: skip
    """The API over ``store``, its feed started and stopped with it; one registry holds the
    feed's series, the API's and the process collectors, all served at ``GET /metrics``.
    ``auth``: the API's tokens (default: read from the environment, see
    :func:`stream.sinks.auth.load_tokens`)."""
    metrics = Registry()
    feed = ReadModelFeed(settings, store, metrics)
    thread = threading.Thread(target=feed.run, name="readmodel-feed", daemon=True)
    actions = KafkaActionLog(settings)
    auth = auth if auth is not None else Auth(load_tokens())
    app = build_app(store, policy, metrics, feed_alive=thread.is_alive, auth=auth,
                    actions=actions)  # fmt: skip

    async def start_feed(_: web.Application) -> None:
        thread.start()

    async def stop_feed(_: web.Application) -> None:
        feed.stop.set()
        thread.join(timeout=10)
        actions.close()

    app.on_startup.append(start_feed)
    app.on_cleanup.append(stop_feed)
    return app, feed


def run_service(settings: WorkerSettings, policy: Policy) -> None:
    auth = Auth(load_tokens())  # a bad tokens file stops serve before anything starts
    store = RedisReadModel.from_url(settings.redis_url.get_secret_value(), settings.redis_prefix,
                                    reasons=policy.churn_reasons)  # fmt: skip
    app, _ = build_service(settings, policy, store, auth)
    log.info(
        "access: %s",
        f"{len(auth.tokens)} API token(s); reads and writes need one"
        if auth.enabled
        else "no API token configured; reads open, writes refused",
    )
    where = f"http://{settings.api_host}:{settings.api_port}"
    log.info("read model of %s in Redis (prefix %s); API on %s", settings.alerts_topic,
             settings.redis_prefix, where)  # fmt: skip
    # Not web.run_app: it builds a runner of its own, and only the API's runner answers
    # aiohttp's parser errors as JSON (see stream.sinks.api.ApiRunner).
    run_api(app, settings.api_host, settings.api_port)
