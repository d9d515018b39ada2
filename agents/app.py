"""The Faust application around the core: settings, topics, the account table.

``build_app`` wires one worker: a ``faust.App`` configured from :class:`WorkerSettings`, the
raw-bytes topics (the shared codec decodes them, not Faust), the changelog-backed ``accounts``
table, and the ingest agent from ``agents/ingest.py``. Imports go one way: this module imports
the agent's, which knows the worker only as :class:`~agents.churn.ChurnApp`.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

import faust

from agents.churn import ChurnApp
from agents.ingest import register
from stream.core.policy import Policy, load_policy
from stream.kafka.settings import WorkerSettings
from stream.run.delivery import DeliveryGate
from stream.run.live import LiveProcessor

TABLE_NAME = "accounts"


def _credentials(settings: WorkerSettings) -> Any:
    context = settings.ssl_context()
    if settings.security_protocol.startswith("SASL"):
        assert settings.sasl_password is not None
        return faust.SASLCredentials(
            username=settings.sasl_username,
            password=settings.sasl_password.get_secret_value(),
            mechanism=settings.sasl_mechanism,
            ssl_context=context,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None


class _NoReadFilter(defaultdict):
    """Faust's per-partition read offsets, except that the input topics never have one."""

    def __init__(self, topics: tuple[str, ...], existing: dict) -> None:
        super().__init__(lambda: None, existing)
        self._topics = frozenset(topics)

    def __getitem__(self, tp: Any) -> Any:
        if tp.topic in self._topics:
            return None
        return super().__getitem__(tp)


def build_app(settings: WorkerSettings, policy: Policy | None = None) -> ChurnApp:
    policy = policy or load_policy(settings.policy)
    app = faust.App(
        settings.app_id,
        broker=settings.broker_url,
        broker_credentials=_credentials(settings),
        store="rocksdb://" if settings.store == "rocksdb" else "memory://",
        datadir=str(settings.data_dir),
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        table_standby_replicas=settings.standby_replicas,
        broker_session_timeout=settings.session_timeout_seconds,
        processing_guarantee=settings.processing_guarantee,
        consumer_auto_offset_reset="earliest",
        # Records held back by the usage/billing merge are never done before their partner
        # arrives; Faust must not wait for them in a rebalance or at shutdown.
        stream_wait_empty=False,
        web_enabled=settings.web_enabled,
        web_port=settings.web_port,
        web_bind="127.0.0.1" if not settings.web_enabled else "0.0.0.0",
        web_tables_enabled=False,  # its /table/ pages would serve account states to anyone
        autodiscover=False,
        producer_acks=-1,
        # Table writes and alerts are sent per record; a few milliseconds of linger turns
        # them into one produce request per batch instead of one per record.
        producer_linger=0.005,
        producer_max_batch_size=512 * 1024,
    )
    raw = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw",
           "value_serializer": "raw"}  # fmt: skip
    # No acks: the agent's checkpointer commits the input offsets (agents/checkpointer.py).
    inputs = app.topic(settings.usage_topic, settings.billing_topic, acks=False, **raw)
    alerts = app.topic(settings.alerts_topic, **raw)
    dead_letters = app.topic(settings.dead_letter_topic, **raw)
    table = app.Table(
        TABLE_NAME,
        default=None,
        key_type=bytes,  # bytes keys and values travel raw: the state codec owns the format
        value_type=bytes,
        partitions=settings.partitions,
    )
    processor = LiveProcessor(
        policy,
        settings.partitions,
        on_wrong_key=settings.on_wrong_key,
        max_future_ms=settings.max_future_seconds * 1000,
    )
    churn = ChurnApp(
        app, settings, policy, inputs, alerts, dead_letters, table, processor, DeliveryGate()
    )
    # Faust drops a fetched record whose offset is below the last one it read, which loses
    # records when a seek races a fetch in flight (its recovery does exactly that). The gate
    # in the agent handles repeats and jumps instead, so for the input topics Faust's filter
    # finds no read offset. Its drain loop binds the mapping when it starts: replace it now.
    # A private attribute, with no public alternative (see agents/__init__.py).
    app.consumer._read_offset = _NoReadFilter(
        (settings.usage_topic, settings.billing_topic), app.consumer._read_offset
    )

    @app.task
    async def _tune() -> None:
        # mode leaves the root logger at DEBUG and filters in the handler, so every library
        # debug call still builds a LogRecord: three per record consumed, ~15% of the worker.
        logging.getLogger().setLevel(settings.log_level.upper())
        # A state flush sends one changelog record per changed account; Faust's default
        # buffer of 100 turns every flush into a wait and a warning.
        app.producer.buffer.max_messages = 10_000

    register(churn)
    return churn
