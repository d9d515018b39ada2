"""``churnwatch notify``: new and escalated alerts to webhooks, and a daily digest per owner.

Two loops share the outbox (:mod:`stream.sinks.outbox`):

* the **intake** reads the alerts topic in its own consumer group, decides per record what
  happened (opened, escalated, updated, resolved: :func:`~stream.sinks.notify_config.event_of`)
  and which routes want it, and queues the notifications in one SQLite transaction per batch;
  only then are the batch's Kafka offsets committed. A crash before the commit reads the batch
  again, and the outbox's keys make that a no-op;
* the **delivery** sends what is due, oldest first, and retries failures with exponential
  backoff (by default 1 s, doubling up to 5 min). A notification leaves the outbox's pending
  state only when its webhook said 2xx, or as ``expired`` after ``give_up_after_hours``.

So a webhook outage delays notifications and loses none, and a restart re-sends at most those
that were in flight at the kill, with the same body and ``Idempotency-Key``.

The digest follows the alerts' event time, like everything else: when the first record of a
new day arrives, each owner with open episodes gets one digest of the day before (key
``digest:<owner>:<day>``). Records that arrive after that (a slow partition) show in the next
day's digest as open.
"""

from __future__ import annotations

import http.client
import logging
import threading
import time
from urllib.parse import urlsplit

from kafka import KafkaConsumer
from kafka.errors import CommitFailedError
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from stream.kafka.reconnect import consume_until_stopped
from stream.kafka.settings import WorkerSettings
from stream.sinks.alert_records import parse
from stream.sinks.notify_config import Hook, NotifyConfig, event_of
from stream.sinks.notify_format import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    digest_body,
    digest_key,
    json_body,
    notification_key,
    sign,
    slack_body,
)
from stream.sinks.outbox import Outbox, Pending, backoff

log = logging.getLogger("churnwatch.notify")
DIGEST = "digest"
"""The outbox's hook name for digests (the config refuses it as a route's name)."""


class NotifyMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.queued = Counter("churnwatch_notify_queued_total",
                              "notifications queued, per route (digest: the daily digests)",
                              ("route",), registry=registry)  # fmt: skip
        self.sent = Counter("churnwatch_notify_sent_total", "notifications a webhook took (2xx)",
                            ("route",), registry=registry)  # fmt: skip
        self.failures = Counter("churnwatch_notify_failures_total",
                                "failed attempts (each is retried with backoff)", ("route",),
                                registry=registry)  # fmt: skip
        self.expired = Counter("churnwatch_notify_expired_total",
                               "notifications given up after give_up_after_hours", ("route",),
                               registry=registry)  # fmt: skip
        self.invalid = Counter("churnwatch_notify_invalid_total",
                               "records on the alerts topic that are not alert records",
                               registry=registry)  # fmt: skip
        self.pending = Gauge("churnwatch_notify_pending", "notifications waiting to be sent",
                             registry=registry)  # fmt: skip
        self.latency = Histogram(
            "churnwatch_notify_delivery_seconds",
            "from reading the alert record to its webhook's 2xx",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
            registry=registry,
        )


class _Connections:
    """Keep-alive HTTP connections per (scheme, host, port): one TLS handshake, not one per
    notification."""

    def __init__(self) -> None:
        self._open: dict[tuple[str, str, int], http.client.HTTPConnection] = {}

    def post(self, hook: Hook, body: bytes, headers: dict[str, str]) -> int:
        parts = urlsplit(hook.url)
        secure = parts.scheme == "https"
        port = parts.port or (443 if secure else 80)
        where = (parts.scheme, parts.hostname or "", port)
        conn = self._open.get(where)
        if conn is None:
            kind = http.client.HTTPSConnection if secure else http.client.HTTPConnection
            conn = self._open[where] = kind(where[1], port, timeout=hook.timeout_seconds)
        conn.timeout = hook.timeout_seconds
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        try:
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            if response.will_close:
                self.drop(where)
            return response.status
        except (OSError, http.client.HTTPException):
            self.drop(where)
            raise

    def drop(self, where: tuple[str, str, int]) -> None:
        conn = self._open.pop(where, None)
        if conn is not None:
            conn.close()

    def close(self) -> None:
        for where in list(self._open):
            self.drop(where)


class Notifier:
    def __init__(self, settings: WorkerSettings, config: NotifyConfig, outbox_path: str,
                 registry: CollectorRegistry, group: str | None = None,
                 from_beginning: bool = False) -> None:  # fmt: skip
        self.settings = settings
        self.config = config
        self.outbox_path = outbox_path
        self.metrics = NotifyMetrics(registry)
        self.group = group or f"{settings.app_id}-notify"
        self.from_beginning = from_beginning
        self.stop = threading.Event()
        self.hooks: dict[str, Hook] = {route.name: route for route in config.route}
        if config.digest is not None:
            self.hooks[DIGEST] = config.digest
        self.give_up_after = config.give_up_after_hours * 3600

    # --- intake ---------------------------------------------------------------------------

    def run(self) -> None:
        """Until :attr:`stop` is set: the delivery loop in a thread, the intake here."""
        # The intake's connection first: it switches a new file to WAL and creates the tables,
        # which takes the database's write lock; the delivery thread's connection opening at the
        # same moment could find it locked ("database is locked") and die.
        outbox = Outbox(self.outbox_path)
        sender = threading.Thread(target=self.deliver_forever, name="notify-delivery",
                                  daemon=True)  # fmt: skip
        sender.start()
        try:
            consume_until_stopped(self.stop, self._consumer,
                                  lambda consumer: self._consume(consumer, outbox), log,
                                  "notifier")  # fmt: skip
        finally:
            outbox.close()
            sender.join(timeout=30)

    def _consumer(self) -> KafkaConsumer:
        return KafkaConsumer(
            self.settings.alerts_topic,
            bootstrap_servers=self.settings.bootstrap_servers,
            group_id=self.group,
            enable_auto_commit=False,
            # A new notifier starts with what happens from now on, not every alert ever sent.
            auto_offset_reset="earliest" if self.from_beginning else "latest",
            max_poll_records=500,
            **self.settings.kafka_python_security(),
        )

    def _consume(self, consumer: KafkaConsumer, outbox: Outbox) -> None:
        while not self.stop.is_set():
            batches = consumer.poll(timeout_ms=500)
            if not batches:
                continue
            received = time.time()
            outbox.begin()
            try:
                for records in batches.values():
                    for record in records:
                        alert = parse(record.value)
                        if alert is None:
                            self.metrics.invalid.inc()
                            continue
                        self.take(outbox, alert, received)
            except BaseException:
                outbox.rollback()
                raise
            outbox.commit()
            try:
                consumer.commit()
            except CommitFailedError:
                log.info("partitions moved during the batch; the new owner reads it again")

    def take(self, outbox: Outbox, alert: dict, received: float) -> int:
        """Queue what one alert record asks for (inside the caller's transaction); returns how
        many notifications were queued."""
        queued = self._digest_if_new_day(outbox, alert["ts"][:10], received)
        new, previous = outbox.observe(alert)
        if not new:
            return queued
        event = event_of(alert, previous)
        for route in self.config.route:
            if not route.wants(alert, event):
                continue
            key = notification_key(route.name, alert)
            body = slack_body(alert, event) if route.format == "slack" else \
                json_body(alert, event, key)  # fmt: skip
            if outbox.enqueue(key, route.name, body, received):
                self.metrics.queued.labels(route.name).inc()
                queued += 1
        return queued

    def _digest_if_new_day(self, outbox: Outbox, day: str, received: float) -> int:
        digest = self.config.digest
        if digest is None:
            return 0
        last = outbox.get_meta("digest_day")
        if last is not None and day <= last:
            return 0
        outbox.set_meta("digest_day", day)
        if last is None:
            return 0  # the first day seen: nothing before it to sum up
        queued = 0
        for owner, rows in sorted(outbox.open_by_owner(digest.owner).items()):
            key = digest_key(owner, last)
            if outbox.enqueue(key, DIGEST, digest_body(digest.format, owner, last, rows, key),
                              received):  # fmt: skip
                self.metrics.queued.labels(DIGEST).inc()
                queued += 1
        return queued

    # --- delivery -------------------------------------------------------------------------

    def deliver_forever(self) -> None:
        outbox = Outbox(self.outbox_path)
        connections = _Connections()
        try:
            while not self.stop.is_set():
                sent = self.deliver_due(outbox, connections)
                if not sent:
                    self.stop.wait(0.05)
        finally:
            connections.close()
            outbox.close()

    def deliver_due(self, outbox: Outbox, connections: _Connections) -> int:
        """Try every due notification once; returns how many were attempted."""
        due = outbox.due(time.time())
        for item in due:
            if self.stop.is_set():
                break
            self._attempt(outbox, connections, item)
        self.metrics.pending.set(outbox.pending())
        return len(due)

    def _attempt(self, outbox: Outbox, connections: _Connections, item: Pending) -> None:
        hook = self.hooks.get(item.hook)
        now = time.time()
        if hook is None:
            outbox.failed(item, "no such route in the config any more", now, 0.0)
            self.metrics.expired.labels(item.hook).inc()
            log.warning("notification %s expired: its route %r is no longer configured",
                        item.key, item.hook)  # fmt: skip
            return
        headers = {"Content-Type": "application/json", IDEMPOTENCY_HEADER: item.key,
                   "User-Agent": "churnwatch-notify"}  # fmt: skip
        secret = hook.secret()
        if secret is not None:
            headers[SIGNATURE_HEADER] = sign(secret, int(now), item.body)
        try:
            status = connections.post(hook, item.body, headers)
            error = None if 200 <= status < 300 else f"HTTP {status}"
        except (OSError, http.client.HTTPException) as exc:
            error = f"{type(exc).__name__}: {exc}"
        done = time.time()
        if error is None:
            outbox.delivered(item.key, done)
            self.metrics.sent.labels(item.hook).inc()
            self.metrics.latency.observe(max(0.0, done - item.received))
            return
        self.metrics.failures.labels(item.hook).inc()
        retry_in = backoff(item.attempts + 1, self.config.retry_base_seconds,
                           self.config.retry_max_seconds)  # fmt: skip
        if outbox.failed(item, error, done, self.give_up_after, retry_in):
            self.metrics.expired.labels(item.hook).inc()
            log.error("notification %s to %s expired after %d attempts: %s", item.key,
                      hook.shown(), item.attempts + 1, error)  # fmt: skip
        elif item.attempts == 0:
            log.warning("webhook %s failed (%s); retrying with backoff", hook.shown(), error)
