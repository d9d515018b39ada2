"""``churnwatch produce`` keeps the two topics' append order the log's order: it waits for the
acks of what it sent before it switches topic, so no fetch can show a record without the other
topic's records logged before it (the worker's merge relies on that)."""

from __future__ import annotations

from schemas.codec import dumps
from stream.kafka.produce import produce
from stream.kafka.settings import WorkerSettings
from tests.helpers import at, event


class _Recorder:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def send(self, topic: str, **_: object) -> None:
        self.calls.append(topic)

    def flush(self) -> None:
        self.calls.append("flush")


def test_produce_waits_for_the_acks_whenever_the_topic_changes():
    log = [
        event("login", ts=at(1, 9), user_id="u"),
        event("login", ts=at(1, 10), user_id="u"),
        event("invoice_paid", ts=at(1, 11)),
        event("payment_failed", ts=at(1, 12)),
        event("login", ts=at(1, 13), user_id="u"),
    ]
    recorder = _Recorder()
    settings = WorkerSettings()
    lines = enumerate((dumps(e) for e in log), 1)
    produce(lines, recorder, settings, lambda _: None)  # type: ignore[arg-type]
    usage, billing = settings.usage_topic, settings.billing_topic
    assert recorder.calls == [
        usage, usage, "flush", billing, billing, "flush", usage, "flush"
    ]  # fmt: skip
