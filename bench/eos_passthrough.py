"""A minimal Faust worker for bench/eos_probe.py: forward every input record to an output topic.

    EOS_BOOTSTRAP=127.0.0.1:9092 EOS_APP_ID=eos-x EOS_INPUT=in-x EOS_OUTPUT=out-x \\
    EOS_GUARANTEE=exactly_once python bench/eos_passthrough.py

It exists to see what Faust's ``processing_guarantee="exactly_once"`` does across a kill -9 and
restart, without churnwatch's own machinery in the way (the churnwatch worker refuses
exactly_once; see stream/kafka/settings.py). Each input value is a unique sequence number; the agent
sends it unchanged, with the input's key, to the same partition of the output topic, so every
duplicate or gap on the output names the input it came from. Nothing else is configured beyond
what the probe needs: a short session timeout, so the restarted worker does not wait 30 s for
its dead predecessor, and Faust's own defaults for everything else (a commit every 2.8 s and
every 10,000 records).

Settings (environment): ``EOS_BOOTSTRAP``, ``EOS_APP_ID``, ``EOS_INPUT``, ``EOS_OUTPUT``,
``EOS_GUARANTEE`` (``at_least_once`` or ``exactly_once``), ``EOS_PARTITIONS`` (3),
``EOS_SESSION_TIMEOUT`` (seconds, 10), ``EOS_DATADIR`` (Faust's data directory),
``EOS_LOG_LEVEL`` (info), ``EOS_CONSUME_OUTPUT`` (``1`` adds an agent that reads the output
topic, which makes Faust send the forwarded records inside its transactions; see the probe).
"""

from __future__ import annotations

import os
import tempfile

import faust


def main() -> None:
    guarantee = os.environ.get("EOS_GUARANTEE", "at_least_once")
    if guarantee not in ("at_least_once", "exactly_once"):
        raise SystemExit(f"EOS_GUARANTEE must be at_least_once or exactly_once, not {guarantee}")
    session_timeout = float(os.environ.get("EOS_SESSION_TIMEOUT", "10"))
    app = faust.App(
        os.environ["EOS_APP_ID"],
        broker=f"kafka://{os.environ['EOS_BOOTSTRAP']}",
        store="memory://",
        datadir=os.environ.get("EOS_DATADIR") or tempfile.mkdtemp(prefix="eos-passthrough-"),
        topic_partitions=int(os.environ.get("EOS_PARTITIONS", "3")),
        processing_guarantee=guarantee,
        broker_session_timeout=session_timeout,
        broker_heartbeat_interval=min(3.0, session_timeout / 3),
        consumer_auto_offset_reset="earliest",
        web_enabled=False,
        autodiscover=False,
    )
    raw = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw",
           "value_serializer": "raw"}  # fmt: skip
    source = app.topic(os.environ["EOS_INPUT"], **raw)
    sink = app.topic(os.environ["EOS_OUTPUT"], **raw)

    @app.agent(source, concurrency=1)
    async def forward(stream: faust.StreamT) -> None:
        async for event in stream.events():
            message = event.message
            value = event.value or f"{message.partition}:{message.offset}".encode()
            await sink.send(key=event.key, value=value, partition=message.partition)

    if os.environ.get("EOS_CONSUME_OUTPUT") == "1":
        # Faust sends inside a transaction only to topics its consumer has metadata for and
        # its assignor has grouped, i.e. topics the worker itself consumes; an agent on the
        # output topic makes that so.
        @app.agent(sink, concurrency=1)
        async def drain(stream: faust.StreamT) -> None:
            async for _ in stream:
                pass

    level = os.environ.get("EOS_LOG_LEVEL", "info")
    faust.Worker(app, loglevel=level, quiet=True).execute_from_commandline()


if __name__ == "__main__":
    main()
