"""Topic provisioning: make sure the topics exist, co-partitioned, before the worker starts.

Topics churnwatch creates keep records for ``CHURNWATCH_RETENTION_MS`` (default: forever).
Records carry their events' own times, and a log replayed from last year would otherwise be
deleted by time-based retention as soon as it is written.

Faust will not pick up a source topic created after it started, and usage and billing must
have the same partition count for one account's records to meet in one place; both are
checked here with a clear message instead of a worker that silently consumes nothing. The
alerts topic is held to the same count: the worker is configured for CHURNWATCH_PARTITIONS
partitions of every topic it uses (and creates them so), so one made by hand with another
count is a deployment mistake, caught here rather than found later. The account-health topic
is created compacted, with the same partition count (its key is the account, like the rest).
"""

from __future__ import annotations

import contextlib
import time

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from stream.kafka.settings import WorkerSettings


class TopicError(RuntimeError):
    pass


def ensure_topics(settings: WorkerSettings, timeout_s: float = 30.0) -> dict[str, int]:
    """Create missing topics (when allowed) and verify partition counts; returns them."""
    wanted = {
        settings.usage_topic: settings.partitions,
        settings.billing_topic: settings.partitions,
        settings.alerts_topic: settings.partitions,
        settings.dead_letter_topic: 1,
        settings.health_topic: settings.partitions,
        settings.actions_topic: settings.partitions,
    }
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=settings.bootstrap_servers,
            client_id=f"{settings.app_id}-admin",
            request_timeout_ms=int(timeout_s * 1000),
            **settings.kafka_python_security(),
        )
    except KafkaError as exc:
        raise TopicError(f"cannot reach Kafka at {settings.broker}: {exc}") from None
    try:
        existing = _partition_counts(admin, list(wanted))
        missing = [name for name in wanted if name not in existing]
        if missing and not settings.create_topics:
            raise TopicError(
                f"topics missing: {', '.join(missing)} (create them, or set "
                "CHURNWATCH_CREATE_TOPICS=true)"
            )
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # another worker won the race
                admin.create_topics(
                    [
                        NewTopic(
                            name,
                            wanted[name],
                            settings.replication_factor,
                            topic_configs=_configs(settings, name),
                        )
                        for name in missing
                    ],
                    timeout_ms=int(timeout_s * 1000),
                )
            existing = _created(admin, list(wanted), timeout_s)
    except KafkaError as exc:
        raise TopicError(f"topic set-up on {settings.broker} failed: {exc}") from None
    finally:
        admin.close()
    usage, billing = existing.get(settings.usage_topic), existing.get(settings.billing_topic)
    if usage != billing:
        raise TopicError(
            f"{settings.usage_topic} has {usage} partitions and {settings.billing_topic} has "
            f"{billing}: they must be co-partitioned (equal counts)"
        )
    if usage != settings.partitions:
        raise TopicError(
            f"{settings.usage_topic} has {usage} partitions but CHURNWATCH_PARTITIONS is "
            f"{settings.partitions}; set it to {usage}"
        )
    alerts = existing.get(settings.alerts_topic)
    if alerts != settings.partitions:
        found = "does not exist" if alerts is None else f"has {alerts} partitions"
        raise TopicError(
            f"{settings.alerts_topic} {found} but {settings.usage_topic} and "
            f"{settings.billing_topic} have {usage} (CHURNWATCH_PARTITIONS); the alerts topic "
            f"must have as many: recreate it with {usage} partitions, or set "
            "CHURNWATCH_ALERTS_TOPIC to one that has them"
        )
    return existing


def _configs(settings: WorkerSettings, name: str) -> dict[str, str]:
    """Health snapshots are compacted: the topic keeps each account's latest one (and so
    stays as large as the account base, not its history); the others keep by time."""
    if name == settings.health_topic:
        return {"cleanup.policy": "compact"}
    return {"retention.ms": str(settings.retention_ms)}


def _created(admin: KafkaAdminClient, names: list[str], timeout_s: float) -> dict[str, int]:
    """Partition counts once every new topic shows in the metadata (creation is asynchronous:
    right after it, a topic can still be described without partitions)."""
    deadline = time.monotonic() + timeout_s
    while True:
        counts = _partition_counts(admin, names)
        if len(counts) == len(names) or time.monotonic() > deadline:
            return counts
        time.sleep(0.1)


def _partition_counts(admin: KafkaAdminClient, names: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for meta in admin.describe_topics(names):
        if meta.get("error_code", 0) == 0 and meta.get("partitions"):
            counts[meta.get("name") or meta.get("topic")] = len(meta["partitions"])
    return counts
