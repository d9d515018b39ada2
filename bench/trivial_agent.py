"""The live throughput baseline: a Faust agent that only decodes each record and counts it.

Same broker, same topics, same worker settings as churnwatch's own worker (raw topics, one
agent over both input topics, concurrency 1) and the same process settings
(:func:`agents.app.lean_runtime`: log level, frozen start-up heap, no Monitor sensor), so the
ratio of the two isolates what the churnwatch agent adds on top of Faust's per-record
machinery.
"""

from __future__ import annotations

import faust
import orjson

from agents.app import lean_runtime
from stream.kafka.settings import load_settings


def main() -> None:
    settings = load_settings()
    app = faust.App(
        settings.app_id,
        broker=settings.broker_url,
        store="memory://",
        datadir=str(settings.data_dir),
        topic_partitions=settings.partitions,
        consumer_auto_offset_reset="earliest",
        web_enabled=False,
        web_port=settings.web_port,
        autodiscover=False,
    )
    raw = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw",
           "value_serializer": "raw"}  # fmt: skip
    inputs = app.topic(settings.usage_topic, settings.billing_topic, **raw)
    seen = {"records": 0}

    @app.agent(inputs, concurrency=1)
    async def count(stream):
        async for value in stream:
            orjson.loads(value)
            seen["records"] += 1

    lean_runtime(app, "warning")  # the worker's own process settings (log level, GC, sensors)

    faust.Worker(app, loglevel="warning", quiet=True).execute_from_commandline()


if __name__ == "__main__":
    main()
