"""A local webhook endpoint that misbehaves on purpose, for the notifier's tests and benchmark.

It answers each POST, chosen by a seeded generator, with a 500, a dropped connection, a wait
longer than the client's timeout, or a 200, and keeps every request it answered with 200
(its idempotency key, body, signature header and arrival time). Tests then check that every
notification arrived and how often a key came twice.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Faults:
    error_rate: float = 0.0  # HTTP 500
    drop_rate: float = 0.0  # close the connection without an answer
    slow_rate: float = 0.0  # answer after ``slow_seconds`` (past the client's timeout)
    slow_seconds: float = 2.0
    seed: int = 1


@dataclass
class Accepted:
    key: str
    body: bytes
    signature: str | None
    at: float


@dataclass
class WebhookReceiver:
    faults: Faults = field(default_factory=Faults)
    accepted: list[Accepted] = field(default_factory=list)
    refused: int = 0
    healthy: threading.Event = field(default_factory=threading.Event)
    """Set: answer 200 to everything (the outage is over)."""

    def __post_init__(self) -> None:
        self._rng = random.Random(self.faults.seed)
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # quiet
                return

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                fate = receiver._fate()
                if fate == "drop":
                    self.close_connection = True
                    self.connection.close()
                    return
                if fate == "slow":
                    time.sleep(receiver.faults.slow_seconds)
                status = 500 if fate == "error" else 200
                if status == 200:
                    with receiver._lock:
                        receiver.accepted.append(Accepted(
                            self.headers.get("Idempotency-Key", ""), body,
                            self.headers.get("X-Churnwatch-Signature"), time.time()))  # fmt: skip
                else:
                    with receiver._lock:
                        receiver.refused += 1
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _fate(self) -> str:
        if self.healthy.is_set():
            return "ok"
        with self._lock:
            roll = self._rng.random()
        f = self.faults
        if roll < f.error_rate:
            return "error"
        if roll < f.error_rate + f.drop_rate:
            return "drop"
        if roll < f.error_rate + f.drop_rate + f.slow_rate:
            return "slow"
        return "ok"

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/hook"

    def keys(self) -> list[str]:
        with self._lock:
            return [a.key for a in self.accepted]

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
