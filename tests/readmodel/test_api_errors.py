"""Errors outside the handlers: aiohttp's own 400s, and the pages during a Redis outage.

aiohttp's parser refuses an over-long request line or a malformed header before any route or
middleware runs; it answered ``text/plain`` and logged a traceback per request. Through
``start_api`` the answer is the API's JSON error and the log one line. When Redis is down the
JSON endpoints answer a JSON 503 and the pages an HTML 503 that says to retry.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Iterator

import orjson
import pytest
from aiohttp import ClientSession

from stream.core.policy import load_policy
from stream.devtools.redis_server import RedisServer
from stream.run.metrics import Registry
from stream.sinks.api import build_app, start_api
from stream.sinks.readmodel_store import RedisReadModel


class Served:
    """The API served by ``start_api`` on a free port, on a loop of its own."""

    def __init__(self, store: RedisReadModel) -> None:
        self.loop = asyncio.new_event_loop()
        app = build_app(store, load_policy(None), Registry())
        self.runner = self.loop.run_until_complete(start_api(app, "127.0.0.1", 0))
        self.port = self.runner.addresses[0][1]

    def raw(self, request: bytes) -> tuple[int, dict[str, str], bytes]:
        """Send ``request`` as bytes on a fresh connection; the status, headers and body."""

        async def go() -> bytes:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            writer.write(request)
            await writer.drain()
            answer = await asyncio.wait_for(reader.read(), 10)
            writer.close()
            return answer

        head, _, body = self.loop.run_until_complete(go()).partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return int(status_line.split()[1]), headers, body

    def get(self, path: str) -> tuple[int, str, str]:
        async def go() -> tuple[int, str, str]:
            url = f"http://127.0.0.1:{self.port}{path}"
            async with ClientSession() as session, session.get(url) as response:
                return response.status, response.content_type, await response.text()

        return self.loop.run_until_complete(go())

    def close(self) -> None:
        self.loop.run_until_complete(self.runner.cleanup())
        self.loop.close()


@pytest.fixture
def served(store) -> Iterator[Served]:
    api = Served(store)
    yield api
    api.close()


_TAIL = b" HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.mark.parametrize(
    "request_bytes",
    [
        pytest.param(b"GET /accounts/" + b"a" * 9000 + _TAIL, id="path"),
        pytest.param(b"GET /alerts/open?" + b"limit=1&" * 2000 + _TAIL, id="query"),
        pytest.param(b"GET / HTTP/1.1\r\nX-Big: " + b"v" * 9000 + b"\r\n\r\n", id="header-value"),
        pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", id="bad-header"),
        pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\nX-Ctl: a\x01b\r\n\r\n", id="control-char"),
    ],
)
def test_aiohttps_own_400s_are_the_apis_json_and_one_log_line(served, caplog, request_bytes):
    caplog.set_level(logging.DEBUG)
    status, headers, body = served.raw(request_bytes)
    assert 400 <= status < 500
    assert headers["content-type"].startswith("application/json")
    error = orjson.loads(body)
    assert error["status"] == status
    assert error["error"].startswith("malformed request: ")
    assert len(error["error"]) < 200, "the client's bytes are not echoed back"
    ours = [r for r in caplog.records if r.name == "churnwatch.api"]
    assert len(ours) == 1 and ours[0].levelno == logging.INFO and ours[0].exc_info is None
    assert f"HTTP {status} to 127.0.0.1: malformed request" in ours[0].getMessage()
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.WARNING]


def test_tls_bytes_on_the_plain_port_are_json_and_logged_at_debug(served, caplog):
    caplog.set_level(logging.DEBUG)
    status, headers, body = served.raw(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n")
    assert status == 400 and headers["content-type"].startswith("application/json")
    assert orjson.loads(body)["error"].startswith("malformed request: ")
    ours = [r for r in caplog.records if r.name == "churnwatch.api"]
    assert [r.levelno for r in ours] == [logging.DEBUG]


def test_handled_errors_are_unchanged_through_start_api(served):
    status, kind, text = served.get("/accounts/at-risk?limit=0")
    assert (status, kind) == (400, "application/json") and "limit" in orjson.loads(text)["error"]
    status, kind, text = served.get("/accounts/at-risk?limit=3")
    assert (status, kind) == (200, "application/json")


def test_an_unknown_account_page_is_an_html_404(served):
    status, kind, text = served.get("/view/accounts/no-such-account")
    assert (status, kind) == (404, "text/html")
    assert "no alert on record for account &#x27;no-such-account&#x27;" in text
    assert text.startswith("<!doctype html>")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("how", ["stopped", "closed-port"])
def test_during_a_redis_outage_pages_are_html_503_and_the_api_json_503(redis_server, how):
    if how == "stopped":
        server = RedisServer()
        server.start()
        url = server.url
    else:
        server, url = None, f"redis://127.0.0.1:{_closed_port()}/0"
    store = RedisReadModel.from_url(url, prefix=f"t-outage-{how}", timeout=2.0)
    api = Served(store)
    try:
        if server is not None:
            assert api.get("/")[0] == 200  # up: the page renders (no account at risk)
            server.stop()
        for page in ("/", "/?segment=pro", "/view/accounts/acct-1"):
            status, kind, text = api.get(page)
            assert (status, kind) == (503, "text/html"), page
            assert "<title>Read model unavailable</title>" in text
            assert "cannot be reached" in text and "retry" in text
            assert "{" not in text.partition("</style>")[2], "no JSON in the page"
        for endpoint in ("/accounts/at-risk", "/accounts/acct-1", "/alerts/open", "/portfolio"):
            status, kind, text = api.get(endpoint)
            assert (status, kind) == (503, "application/json"), endpoint
            assert orjson.loads(text) == {
                "error": "the read model's Redis is unavailable; try again shortly",
                "status": 503,
            }
        status, kind, _ = api.get("/healthz")
        assert (status, kind) == (503, "application/json")
    finally:
        api.close()
        if server is not None:
            server.close()
