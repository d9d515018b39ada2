"""One consumer loop that outlives Kafka outages, for the processes beside the worker.

The read-model feed and the notifier each run a kafka-python consumer in their own group
until told to stop. Kafka going away must not end them: a consumer that cannot be built is
retried every 2 seconds, and one whose loop hits a Kafka error is closed (without committing)
and built again, so it resumes from its group's last commit.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from kafka import KafkaConsumer
from kafka.errors import KafkaError

RETRY_SECONDS = 2.0


def consume_until_stopped(
    stop: threading.Event,
    connect: Callable[[], KafkaConsumer],
    consume: Callable[[KafkaConsumer], None],
    log: logging.Logger,
    who: str,
) -> None:
    """Run ``consume`` on a fresh consumer from ``connect`` until ``stop`` is set; Kafka errors
    are logged (naming ``who``) and retried, never raised."""
    while not stop.is_set():
        try:
            consumer = connect()
        except KafkaError as exc:
            log.warning("cannot reach Kafka (%s); retrying", exc)
            stop.wait(RETRY_SECONDS)
            continue
        try:
            consume(consumer)
        except KafkaError as exc:
            log.warning("Kafka error in the %s (%s); reconnecting", who, exc)
        finally:
            consumer.close(autocommit=False)
