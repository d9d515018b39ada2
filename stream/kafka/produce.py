"""``churnwatch produce``: an event log into the usage and billing topics.

Each valid line is sent as-is, keyed by its ``account_id`` (so Kafka's default partitioner puts
an account's records on one partition of each topic) and stamped with the event's own time as
the record timestamp. Billing types go to the billing topic, everything else to usage. Invalid
lines (judged by :func:`stream.run.validate.validate`, as replay and the worker judge them)
go to a rejects file like replay's, or, with ``send_invalid``, to the usage topic unkeyed
so that the worker's dead-letter handling can be exercised.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from kafka import KafkaProducer

from schemas.events import source_index
from stream.core.timeutil import to_ms
from stream.kafka.settings import WorkerSettings
from stream.run.validate import (
    OVERSIZED_LINE,
    OversizedLine,
    Rejection,
    reject_record,
    validate,
)


@dataclass
class ProduceReport:
    lines: int = 0
    sent: int = 0
    rejected: int = 0
    usage: int = 0
    billing: int = 0


def make_producer(settings: WorkerSettings) -> KafkaProducer:
    return KafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        acks="all",
        linger_ms=5,
        batch_size=256 * 1024,
        max_in_flight_requests_per_connection=1,  # keep per-partition order on retries
        retries=10,
        max_block_ms=30_000,
        **settings.kafka_python_security(),
    )


def produce(
    lines: Iterable[tuple[int, bytes | None]],
    producer: KafkaProducer,
    settings: WorkerSettings,
    write_reject: Callable[[bytes], object],
    rate: float | None = None,
    send_invalid: bool = False,
    on_progress: Callable[[int], None] | None = None,
) -> ProduceReport:
    report = ProduceReport()
    topics = (settings.usage_topic, settings.billing_topic)
    started = time.monotonic()
    last_source = 0
    for number, raw in lines:
        report.lines = number
        if raw is not None and not isinstance(raw, OversizedLine):
            raw = raw.rstrip(b"\r\n")
            if not raw.strip():
                continue
        event = validate(raw, OVERSIZED_LINE)
        if isinstance(event, Rejection):
            report.rejected += 1
            write_reject(reject_record(number, event.reason, raw))
            # Only the start of an oversized line was kept: sending it would test the worker
            # on a different record (cut JSON) than the line that was refused here.
            if send_invalid and raw is not None and not isinstance(raw, OversizedLine):
                producer.send(topics[0], value=raw)
                report.sent += 1
            continue
        source = source_index(event)
        if source != last_source:
            # A produce request appends its partitions one after another, so a fetch answered
            # in between could show this record and not yet the other topic's record sent just
            # before it; the worker would take them out of order. Waiting for the acks when the
            # topic changes keeps the two topics' append order the order of the log.
            producer.flush()
            last_source = source
        producer.send(
            topics[source],
            key=event.account_id.encode(),
            value=raw,
            timestamp_ms=to_ms(event.ts),
        )
        report.sent += 1
        if source:
            report.billing += 1
        else:
            report.usage += 1
        if rate:
            ahead = report.sent / rate - (time.monotonic() - started)
            if ahead > 0.002:
                time.sleep(ahead)
        if on_progress is not None and not number & 0x3FFF:
            on_progress(number)
    producer.flush()
    return report
