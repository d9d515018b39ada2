"""Keeps the Redis read model up to date from the alerts, account-health and alert-actions
topics (and the portfolio from billing).

A plain kafka-python consumer in its own group, not a Faust agent: the read model must never
slow the worker, and a Redis outage must not touch the alert stream. Offsets are committed
only after Redis accepted every record of the batch. While Redis is down the feed holds its
batch and retries with backoff; alerts keep flowing into Kafka; when Redis is back the batch
is written and the feed carries on from where it stopped. If the outage outlasts the consumer's
poll interval, the group takes the partitions back and the feed resumes from the last commit.
Records applied twice change nothing (see :mod:`stream.sinks.readmodel` and
:mod:`stream.sinks.health_model`). A value on the health topic that is not a snapshot of the
published schema is counted (``churnwatch_readmodel_health_invalid_total``) and skipped, as is
a value on the actions topic that is not an action (``churnwatch_readmodel_actions_invalid_total``,
with a log line naming its offset and what is wrong).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

import redis
from kafka import KafkaConsumer, TopicPartition
from kafka.errors import CommitFailedError
from prometheus_client import CollectorRegistry, Counter, Gauge

from schemas.actions import AlertAction, InvalidAction, decode_action
from schemas.events import EventBase, InvalidEvent, decode_event
from stream.kafka.reconnect import consume_until_stopped
from stream.kafka.settings import WorkerSettings
from stream.sinks.alert_records import parse
from stream.sinks.health_model import parse_snapshot
from stream.sinks.readmodel_store import RedisReadModel

log = logging.getLogger("churnwatch.readmodel")


class ReadModelMetrics:
    """The feed's series on ``registry`` (named apart from the worker's, in agents/metrics.py).

    ``prometheus_client`` adds ``_total`` to a counter's name unless it ends so already: the
    names below are the names exposed.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.records = Counter(
            "churnwatch_readmodel_records_total",
            "alert records read from the alerts topic, by signal, severity and kind",
            ("signal", "severity", "kind"), registry=registry,
        )  # fmt: skip
        self.applied = Counter(
            "churnwatch_readmodel_applied_total",
            "records that changed the read model (redeliveries change nothing)",
            registry=registry,
        )
        self.invalid = Counter(
            "churnwatch_readmodel_invalid_total",
            "records on the alerts topic that are not alert records (skipped)",
            registry=registry,
        )
        self.snapshots = Counter(
            "churnwatch_readmodel_health_snapshots_total",
            "account-health snapshots read from the health topic (valid ones)",
            registry=registry,
        )
        self.snapshots_applied = Counter(
            "churnwatch_readmodel_health_applied_total",
            "snapshots that changed the read model (redeliveries change nothing)",
            registry=registry,
        )
        self.snapshots_invalid = Counter(
            "churnwatch_readmodel_health_invalid_total",
            "values on the health topic that are not account-health snapshots (skipped)",
            registry=registry,
        )
        self.actions = Counter(
            "churnwatch_readmodel_actions_total",
            "alert actions read from the alert-actions topic (valid ones)", registry=registry,
        )  # fmt: skip
        self.actions_invalid = Counter(
            "churnwatch_readmodel_actions_invalid_total",
            "values on the alert-actions topic that are not alert actions (skipped)",
            registry=registry,
        )
        self.lag = Gauge(
            "churnwatch_readmodel_lag", "records not yet in the read model, per topic partition",
            ("topic", "partition"), registry=registry,
        )  # fmt: skip
        self.redis_up = Gauge(
            "churnwatch_redis_up", "1 when the last Redis write succeeded", registry=registry
        )
        self.redis_errors = Counter(
            "churnwatch_redis_errors_total", "failed Redis writes (each one retried)",
            registry=registry,
        )  # fmt: skip
        self.redis_up.set(1)  # until a write fails


def _billing_event(value: bytes | None) -> EventBase | None:
    try:
        return decode_event(value or b"")
    except InvalidEvent:
        return None


class ReadModelFeed:
    def __init__(self, settings: WorkerSettings, store: RedisReadModel,
                 registry: CollectorRegistry, group: str | None = None) -> None:  # fmt: skip
        self.settings = settings
        self.store = store
        self.metrics = ReadModelMetrics(registry)
        self.redis_up = True  # until a write fails
        self.group = group or f"{settings.app_id}-readmodel"
        self.stop = threading.Event()

    def _consumer(self) -> KafkaConsumer:
        return KafkaConsumer(
            self.settings.alerts_topic,
            self.settings.billing_topic,
            self.settings.health_topic,
            self.settings.actions_topic,
            bootstrap_servers=self.settings.bootstrap_servers,
            group_id=self.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=1000,
            **self.settings.kafka_python_security(),
        )

    def run(self) -> None:
        """Until :attr:`stop` is set. Kafka errors are retried; nothing here raises."""
        consume_until_stopped(self.stop, self._consumer, self._loop, log, "read-model feed")

    def _loop(self, consumer: KafkaConsumer) -> None:
        next_lag = 0.0
        while not self.stop.is_set():
            batches = consumer.poll(timeout_ms=500)
            alerts, billing, health, actions = [], [], [], []
            for tp, records in batches.items():
                for record in records:
                    if tp.topic == self.settings.actions_topic:
                        action = self._action(record)
                        if action is not None:
                            actions.append(action)
                        continue
                    if tp.topic == self.settings.health_topic:
                        if record.value is None:
                            continue  # a tombstone on the compacted topic: nothing to apply
                        snapshot = parse_snapshot(record.value)
                        if snapshot is None:
                            self.metrics.snapshots_invalid.inc()
                        else:
                            health.append(snapshot)
                        continue
                    if tp.topic == self.settings.billing_topic:
                        event = _billing_event(record.value)
                        if event is not None:
                            billing.append((tp.partition, record.offset, event))
                        continue  # the worker dead-letters what is not a valid event
                    alert = parse(record.value)
                    if alert is None:
                        self.metrics.invalid.inc()
                        continue
                    alerts.append(alert)
            if (alerts or billing or health or actions) and not self._write(
                    alerts, billing, health, actions):  # fmt: skip
                return  # stopping while Redis was down: nothing committed, nothing lost
            if batches:
                try:
                    consumer.commit()
                except CommitFailedError:
                    log.info("partitions moved during the batch; the new owner re-applies it")
            if time.monotonic() >= next_lag:
                self._lag(consumer)
                next_lag = time.monotonic() + 5.0

    def _action(self, record) -> AlertAction | None:
        try:
            return decode_action(record.value or b"")
        except InvalidAction as exc:
            self.metrics.actions_invalid.inc()
            log.warning("skipped %s:%d:%d: not an alert action (%s)", record.topic,
                        record.partition, record.offset, exc)  # fmt: skip
            return None

    def _write(self, alerts: list[dict], billing: list, health: Sequence[dict] = (),
               actions: Sequence[AlertAction] = ()) -> bool:  # fmt: skip
        delay = 0.2
        while not self.stop.is_set():
            try:
                applied = self.store.apply(alerts)
                self.store.portfolio.apply(billing)
                self.store.portfolio.apply_alerts(alerts)  # what became of alerted accounts
                snapshots_applied = self.store.apply_health(health)
                self.store.apply_actions(actions)
            except redis.RedisError as exc:
                if self.redis_up:
                    log.warning("Redis write failed (%s); holding %d records and retrying",
                                exc, len(alerts) + len(billing) + len(health))  # fmt: skip
                self.redis_up = False
                self.metrics.redis_up.set(0)
                self.metrics.redis_errors.inc()
                self.stop.wait(delay)
                delay = min(delay * 2, 5.0)
                continue
            if not self.redis_up:
                log.warning("Redis is back; the read model is catching up")
            self.redis_up = True
            self.metrics.redis_up.set(1)
            self.metrics.applied.inc(applied)
            self.metrics.snapshots.inc(len(health))
            self.metrics.snapshots_applied.inc(snapshots_applied)
            self.metrics.actions.inc(len(actions))
            for alert in alerts:
                self.metrics.records.labels(alert["signal"], alert["severity"], alert["kind"]).inc()
            return True
        return False

    def _lag(self, consumer: KafkaConsumer) -> None:
        assigned: list[TopicPartition] = list(consumer.assignment())
        if not assigned:
            return
        ends = consumer.end_offsets(assigned)
        for tp in assigned:
            lag = max(ends.get(tp, 0) - consumer.position(tp), 0)
            self.metrics.lag.labels(tp.topic, str(tp.partition)).set(lag)
