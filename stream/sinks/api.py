"""The HTTP API and web page over the Redis read model (aiohttp, which Faust already brings).

Every API answer is JSON, errors included: a bad id or query parameter is a 400 naming it, an
unknown account a 404, Redis unreachable a 503; an unexpected failure is a 500 with a JSON
body, never an HTML traceback. That holds for the errors aiohttp answers itself before any
route runs (an over-long request line or header, a malformed header): served through
:func:`start_api` they get the same JSON body and a one-line log. The pages (``/`` and
``/view/accounts/{id}``) are read in a browser, so their errors are small HTML pages with the
same status instead. ``/openapi.json`` describes the API (the fuzz test reads it).
"""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import logging
import re
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace

import orjson
import redis
from aiohttp import web
from aiohttp.http_exceptions import BadHttpMethod, LineTooLong
from prometheus_client import CollectorRegistry, Counter, Histogram

from schemas.actions import MAX_NOTE, MAX_REASON, MAX_SNOOZE_DAYS
from schemas.alerts import SEVERITY_RANK
from stream.core.policy import Policy
from stream.core.portfolio import reason_group_labels
from stream.core.signals.registry import PUBLISHED
from stream.core.timeutil import from_ms
from stream.run.metrics import exposition
from stream.sinks.account_rows import ACCOUNT_SORTS, SORTS, ListQuery
from stream.sinks.action_forms import Controls
from stream.sinks.actions_api import ActionLog, add_action_routes
from stream.sinks.auth import Auth
from stream.sinks.readmodel_store import RedisReadModel
from stream.sinks.web_auth import ACTOR, CSRF, add_auth_routes, auth_middleware
from stream.sinks.web_page import account_page, accounts_page, at_risk_page, error_page

log = logging.getLogger("churnwatch.api")
MAX_ID = 200
_SEGMENT = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")
LIMIT_MAX = 1000
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class BadRequest(Exception):
    pass


def _json(data: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def _error(status: int, message: str) -> web.Response:
    return _json({"error": message, "status": status}, status)


def _page_error(status: int, message: str, path: str) -> web.Response:
    """An error on a page route, as a page: a browser shows it instead of a JSON document."""
    return web.Response(text=error_page(status, message, path), status=status,
                        content_type="text/html")  # fmt: skip


def _query(request: web.Request, allowed: set[str]) -> dict[str, str]:
    for key in request.query:
        if key not in allowed:
            raise BadRequest(f"unknown query parameter {key!r} (allowed: {sorted(allowed)})")
    out = {}
    for key in allowed:
        values = request.query.getall(key, [])
        if len(values) > 1:
            raise BadRequest(f"query parameter {key!r} given more than once")
        if values:
            out[key] = values[0]
    return out


def _limit(query: dict[str, str], default: int = 20) -> int:
    text = query.get("limit")
    if text is None:
        return default
    # isdigit alone admits "¹" and other Unicode digits that int() then refuses (a 500)
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= LIMIT_MAX:
        raise BadRequest(f"limit must be a whole number from 1 to {LIMIT_MAX}, got {text!r}")
    return int(text)


def _account_id(request: web.Request) -> str:
    account = request.match_info["account_id"]
    if not 1 <= len(account) <= MAX_ID or not account.isprintable():
        raise BadRequest(f"account id must be 1 to {MAX_ID} printable characters")
    return account


def _segment(query: dict[str, str]) -> str | None:
    segment = query.get("segment")
    if segment is not None and not _SEGMENT.match(segment):
        raise BadRequest("segment must be 1 to 100 letters, digits or _.:-")
    return segment


def _choice(query: dict[str, str], key: str, allowed) -> str | None:
    value = query.get(key)
    if value is not None and value not in allowed:
        raise BadRequest(f"{key} must be one of {', '.join(allowed)}, got {value!r}")
    return value


RISK_PARAMS = frozenset({"limit", "segment", "owner", "signal", "severity", "q", "status",
                         "sort", "cursor", "snoozed"})  # fmt: skip
STATUSES = ("active", "cancelled", "any")
SNOOZED = ("hide", "include", "only")
"""The at-risk list's accounts whose open alerts are all snoozed or dismissed (hidden by
default); the all-accounts list shows every account whatever its alerts."""
"""The parameters of both lists (at-risk and all accounts); only their sorts differ."""
RISK_SORTS = tuple(SORTS)
MAX_CURSOR = 400


def _text(query: dict[str, str], key: str) -> str | None:
    value = query.get(key)
    if value is not None and (not 1 <= len(value) <= MAX_ID or not value.isprintable()):
        raise BadRequest(f"{key} must be 1 to {MAX_ID} printable characters")
    return value


def _q(query: dict[str, str]) -> str | None:
    return _text(query, "q")


def encode_cursor(sort: str, after: tuple[float, str]) -> str:
    """An opaque cursor: the sort and the last row's sort key, base64url JSON."""
    return base64.urlsafe_b64encode(orjson.dumps([sort, *after])).decode().rstrip("=")


def _cursor(query: dict[str, str], sort: str, sorts=RISK_SORTS) -> tuple[float, str] | None:
    text = query.get("cursor")
    if text is None:
        return None
    bad = BadRequest("cursor is not one this list gave (ask again without it)")
    if len(text) > MAX_CURSOR or not re.fullmatch(r"[A-Za-z0-9_-]+", text):
        raise bad
    try:
        value = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (ValueError, orjson.JSONDecodeError) as exc:
        raise bad from exc
    if not (isinstance(value, list) and len(value) == 3 and value[0] in sorts
            and type(value[1]) in (int, float) and isinstance(value[2], str)):  # fmt: skip
        raise bad
    if value[0] != sort:
        raise BadRequest(f"cursor belongs to sort={value[0]}, not sort={sort}")
    return float(value[1]), value[2]


def risk_query(query: dict[str, str], default_limit: int = 20,
               sorts: tuple[str, ...] = RISK_SORTS) -> ListQuery:  # fmt: skip
    """A list's parameters, checked: a bad one is a 400 that names it."""
    sort = _choice(query, "sort", sorts) or "revenue_at_risk"
    status = _choice(query, "status", STATUSES)
    return ListQuery(
        limit=_limit(query, default_limit), segment=_segment(query), owner=_text(query, "owner"),
        signal=_choice(query, "signal", PUBLISHED),
        severity=_choice(query, "severity", tuple(SEVERITY_RANK)), q=_q(query), sort=sort,
        status=None if status == "any" else status, after=_cursor(query, sort, sorts),
        snoozed=_choice(query, "snoozed", SNOOZED) or "hide",
    )  # fmt: skip


def accounts_query(query: dict[str, str], default_limit: int = 20) -> ListQuery:
    """The all-accounts list's parameters (its sorts: :data:`ACCOUNT_SORTS`)."""
    return risk_query(query, default_limit, ACCOUNT_SORTS)


def _risk_csv(rows: list[dict], columns: tuple[str, ...] | None = None) -> str:
    """The rows as CSV with a header. A text cell that a spreadsheet would run as a formula
    (starting with = + - @ or a tab) is prefixed with ' ; numbers are written as they are."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    columns = columns or CSV_COLUMNS
    writer.writerow(columns)
    for row in rows:
        cells = []
        for column in columns:
            value = row["health"]["overall"] if column == "health" else row.get(column)
            if isinstance(value, list):
                value = " ".join(value)
            if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
                value = "'" + value
            cells.append("" if value is None else value)
        writer.writerow(cells)
    return out.getvalue()


CSV_COLUMNS = ("account_id", "account_name", "owner", "segment", "stage", "plan", "mrr",
               "health", "risk", "revenue_at_risk", "severity", "open_alert_count", "signals",
               "renewal_date", "last_activity", "last_alert_ts", "acknowledged_alert_count",
               "snoozed_until")  # fmt: skip
ACCOUNT_CSV_COLUMNS = ("account_id", "account_name", "owner", "segment", "stage", "plan",
                       "status", "mrr", "health", "risk", "revenue_at_risk", "risk_estimate",
                       "severity", "open_alert_count", "signals", "renewal_date",
                       "last_activity", "snapshot_day", "last_alert_ts")  # fmt: skip


def danger_per_day(policy: Policy, view: dict) -> float | None:
    """The danger-zone line in daily logins for this account (the chart's red line)."""
    seats = view.get("seats")
    if not seats:
        return None
    line = policy.thresholds(view["segment"], view["stage"]).danger_zone.line
    return round(line * seats / 7, 3)


def build_app(store: RedisReadModel, policy: Policy, metrics: CollectorRegistry,
              feed_alive: Callable[[], bool] = lambda: True, auth: Auth | None = None,
              actions: ActionLog | None = None) -> web.Application:  # fmt: skip
    """The API and pages; their request counts and latencies go on ``metrics``, which
    ``GET /metrics`` serves (with whatever else is registered on it, such as the feed's).

    ``auth`` holds the configured tokens (none: reads open, writes refused; see
    :mod:`stream.sinks.auth`); ``actions`` publishes the team's actions on alerts (None: the
    action routes answer 503)."""
    auth = auth or Auth()
    requests = Counter("churnwatch_http_requests_total", "API requests by route, status",
                       ("route", "status"), registry=metrics)  # fmt: skip
    latency = Histogram("churnwatch_http_request_seconds", "API latency by route", ("route",),
                        buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
                        registry=metrics)  # fmt: skip

    @web.middleware
    async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        route = request.match_info.route.resource
        name = route.canonical if route is not None else "unmatched"
        failed: tuple[int, str] | None = None
        try:
            response = await handler(request)
        except BadRequest as exc:
            failed = 400, str(exc)
        except web.HTTPException as exc:
            failed = exc.status, exc.reason
        except redis.RedisError:
            failed = 503, "the read model's Redis is unavailable; try again shortly"
        except Exception as exc:  # a bug: still JSON (or a page), and counted
            failed = 500, f"internal error: {type(exc).__name__}"
        if failed is not None:
            if request.match_info.route.name in _PAGES:
                response = _page_error(*failed, request.path_qs)
            else:
                response = _error(*failed)
        requests.labels(name, str(response.status)).inc()
        latency.labels(name).observe(time.perf_counter() - started)
        return response

    def with_line(view: dict) -> dict:
        view["danger_line_logins_per_day"] = danger_per_day(policy, view)
        return view

    def account_of(request: web.Request) -> dict:
        """The account the path names, with its danger line, for the JSON and the page."""
        _query(request, set())
        account_id = _account_id(request)
        view = store.account(account_id)
        if view is None:
            raise web.HTTPNotFound(
                reason=f"no alert on record for account {account_id!r}, nor a health snapshot"
            )
        return with_line(view)

    async def account(request: web.Request) -> web.Response:
        return _json(account_of(request))

    def risk_page(query: ListQuery, every: bool = False):
        found = store.accounts_list(query) if every else store.risk_list(query)
        cursor = encode_cursor(query.sort, found.after) if found.after is not None else None
        return found, cursor

    async def at_risk(request: web.Request) -> web.Response:
        found, cursor = risk_page(risk_query(_query(request, set(RISK_PARAMS))))
        return _json({"accounts": found.rows, "next_cursor": cursor, "totals": found.totals})

    def csv_response(found, cursor: str | None, name: str, columns) -> web.Response:
        headers = {"Content-Disposition": f'attachment; filename="{name}"'}
        if cursor is not None:
            headers["X-Next-Cursor"] = cursor
        return web.Response(text=_risk_csv(found.rows, columns), content_type="text/csv",
                            charset="utf-8", headers=headers)  # fmt: skip

    async def at_risk_csv(request: web.Request) -> web.Response:
        query = _query(request, set(RISK_PARAMS))
        found, cursor = risk_page(risk_query(query, LIMIT_MAX))
        return csv_response(found, cursor, "accounts-at-risk.csv", CSV_COLUMNS)

    async def accounts(request: web.Request) -> web.Response:
        found, cursor = risk_page(accounts_query(_query(request, set(RISK_PARAMS))), every=True)
        return _json({"accounts": found.rows, "next_cursor": cursor, "totals": found.totals})

    async def accounts_csv(request: web.Request) -> web.Response:
        query = _query(request, set(RISK_PARAMS))
        found, cursor = risk_page(accounts_query(query, LIMIT_MAX), every=True)
        return csv_response(found, cursor, "accounts.csv", ACCOUNT_CSV_COLUMNS)

    async def open_alerts(request: web.Request) -> web.Response:
        query = _query(request, {"limit", "signal", "severity"})
        signal = _choice(query, "signal", PUBLISHED)
        severity = _choice(query, "severity", tuple(SEVERITY_RANK))
        return _json({"alerts": store.open_alerts(_limit(query, 100), signal, severity)})

    async def portfolio(request: web.Request) -> web.Response:
        _query(request, set())
        return _json(store.portfolio_report())

    async def healthz(request: web.Request) -> web.Response:
        _query(request, set())
        ok, alive = store.ping(), feed_alive()
        body = {"status": "ok" if ok and alive else "degraded", "redis": ok, "feed": alive}
        return _json(body, 200 if ok and alive else 503)

    async def prometheus(request: web.Request) -> web.Response:
        body, content_type = exposition(metrics)
        # As a header: aiohttp refuses a content_type argument that names a charset.
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def openapi(request: web.Request) -> web.Response:
        return _json(OPENAPI)

    async def page(request: web.Request) -> web.Response:
        # The form sends its empty fields (an unset filter) as "": absent, for the page.
        query = {k: v for k, v in _query(request, set(RISK_PARAMS)).items() if v}
        risk = risk_query(query, 50)
        found, cursor = risk_page(risk)
        details = [with_line({**v, **(store.account(v["account_id"], detail=False) or {})})
                   for v in found.rows]  # fmt: skip
        report = {**found.summary, "months": store.portfolio.report(),
                  "reason_labels": reason_group_labels(store.portfolio.reasons)}  # fmt: skip
        aside = 0
        if risk.snoozed == "hide":
            hidden = replace(risk, snoozed="only", limit=1, after=None)
            aside = store.risk_list(hidden).totals["accounts"]
        html = at_risk_page(details, report, query, cursor, aside, store.index.owners())
        return web.Response(text=html, content_type="text/html")

    async def account_view(request: web.Request) -> web.Response:
        view = account_of(request)
        now = store.now_ms()
        today = from_ms(now).date().isoformat() if now else None
        controls = Controls(enabled=auth.enabled, actor=request[ACTOR], csrf=request[CSRF],
                            today=today, path=request.path)  # fmt: skip
        return web.Response(text=account_page(view, controls), content_type="text/html")

    async def accounts_view(request: web.Request) -> web.Response:
        query = {k: v for k, v in _query(request, set(RISK_PARAMS)).items() if v}
        query.setdefault("status", "active")  # the page opens on the live customers
        found, cursor = risk_page(accounts_query(query, 50), every=True)
        html = accounts_page(found.rows, found.totals, query, cursor)
        return web.Response(text=html, content_type="text/html")

    app = web.Application(middlewares=[errors, auth_middleware(auth, _PAGES)])
    add_auth_routes(app, auth)
    add_action_routes(app, store, actions)
    app.router.add_get("/accounts", accounts)
    app.router.add_get("/accounts.csv", accounts_csv)
    app.router.add_get("/accounts/at-risk", at_risk)
    app.router.add_get("/accounts/at-risk.csv", at_risk_csv)
    app.router.add_get("/accounts/{account_id}", account)
    app.router.add_get("/alerts/open", open_alerts)
    app.router.add_get("/portfolio", portfolio)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", prometheus)
    app.router.add_get("/openapi.json", openapi)
    app.router.add_get("/", page, name="page")
    app.router.add_get("/view/accounts", accounts_view, name="accounts-page")
    app.router.add_get("/view/accounts/{account_id}", account_view, name="account-page")
    return app


_PAGES = frozenset({"page", "accounts-page", "account-page"})
"""Routes a browser reads: their errors are pages too (see :func:`_page_error`)."""


class _JsonErrorProtocol(web.RequestHandler):
    """aiohttp's connection handler, answering the errors aiohttp raises itself as the API does.

    aiohttp's HTTP parser refuses an over-long request line or header, or a malformed header,
    before any route or middleware runs, and answers from ``handle_error``: a ``text/plain``
    body echoing the client's bytes, and an ERROR with a traceback in the log for every such
    request, which anyone can send. There is no public hook for that answer, so this subclass
    overrides ``handle_error`` alone: the API's JSON error shape, the same status, and one log
    line (INFO for a client's mistake, ERROR for a server failure; like aiohttp, DEBUG for
    non-HTTP bytes such as TLS on the plain port, which every public port receives).
    """

    __slots__ = ()

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if isinstance(exc, LineTooLong):
            reason = "the request line or a header is too long"
        elif status >= 500:
            reason = "internal error" + (f": {type(exc).__name__}" if exc is not None else "")
        else:  # the parser's message echoes the client's bytes over lines; keep its first
            first = (message or "").strip().splitlines()[:1] or ["bad request"]
            reason = first[0].rstrip(":")[:120]
        if status < 500:
            reason = f"malformed request: {reason}"
        quiet = isinstance(exc, BadHttpMethod) and self._request_count == 1
        level = logging.DEBUG if quiet else logging.INFO if status < 500 else logging.ERROR
        log.log(level, "HTTP %d to %s: %s", status, request.remote, reason)
        if request.writer.output_size > 0:  # a response is half sent: none can follow it
            raise ConnectionError("response already started; cannot send the error")
        response = _error(status, reason)
        response.force_close()
        return response


class _JsonErrorServer(web.Server):
    """aiohttp's server, making each connection's handler a :class:`_JsonErrorProtocol`."""

    def __call__(self) -> web.RequestHandler:
        handler = super().__call__()
        # Same slots, one overridden method: the class swap keeps every constructor argument
        # aiohttp passes (and its fallbacks) without copying its private state.
        handler.__class__ = _JsonErrorProtocol
        return handler


class ApiRunner(web.AppRunner):
    """An ``AppRunner`` whose connections answer aiohttp's own errors as JSON.

    ``_make_server`` is where ``AppRunner`` builds the server once the application has
    started; its server becomes a :class:`_JsonErrorServer`, everything else is unchanged.
    """

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = _JsonErrorServer
        return server


async def start_api(app: web.Application, host: str, port: int) -> ApiRunner:
    """Start serving ``app`` on ``host:port``; the caller ends it with ``runner.cleanup()``."""
    runner = ApiRunner(app, keepalive_timeout=75.0)  # web.run_app's: idle clients are let go
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:  # the port is taken, say: stop what the app's start-up started
        await runner.cleanup()
        raise
    return runner


def run_api(app: web.Application, host: str, port: int) -> None:
    """Serve ``app`` until SIGINT or SIGTERM, then run its cleanup (``web.run_app``'s job,
    which cannot take a runner of ours)."""

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        runner = await start_api(app, host, port)
        try:
            await stop.wait()
        finally:
            await runner.cleanup()

    asyncio.run(serve())


def _param(name: str, schema: dict, where: str = "query", required: bool = False) -> dict:
    return {"name": name, "in": where, "required": required, "schema": schema}


_LIMIT = _param("limit", {"type": "integer", "minimum": 1, "maximum": LIMIT_MAX})
_CSV_OK = {"description": "OK", "content": {"text/csv": {"schema": {"type": "string"}}}}
_LIST_PARAMS = [
    _LIMIT,
    _param("segment", {"type": "string", "pattern": _SEGMENT.pattern}),
    _param("owner", {"type": "string", "minLength": 1, "maxLength": MAX_ID}),
    _param("signal", {"type": "string", "enum": list(PUBLISHED)}),
    _param("severity", {"type": "string", "enum": list(SEVERITY_RANK)}),
    _param("q", {"type": "string", "minLength": 1, "maxLength": MAX_ID}),
    _param("status", {"type": "string", "enum": list(STATUSES)}),
    _param("cursor", {"type": "string", "maxLength": MAX_CURSOR}),
]
_RISK_PARAMS = [
    *_LIST_PARAMS,
    _param("sort", {"type": "string", "enum": list(SORTS)}),
    _param("snoozed", {"type": "string", "enum": list(SNOOZED)}),
]
_ACCOUNT_PARAMS = [*_LIST_PARAMS, _param("sort", {"type": "string", "enum": list(ACCOUNT_SORTS)})]
_JSON_OK = {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}}
_ERRORS = {str(code): {"description": text} for code, text in
           ((400, "bad id or query parameter"), (404, "unknown account"),
            (503, "Redis unavailable"))}  # fmt: skip
_TEXT = {"type": "string", "minLength": 1}
_ACTIONS = (
    ("ack", "Acknowledge an open alert", {"type": "object", "additionalProperties": False}),
    (
        "snooze",
        "Snooze an open alert until a day (until, or days after the read model's day; event "
        "time), with a reason",
        {
            "type": "object",
            "required": ["reason"],
            "additionalProperties": False,
            "properties": {
                "until": {"type": "string", "format": "date"},
                "days": {"type": "integer", "minimum": 1, "maximum": MAX_SNOOZE_DAYS},
                "reason": {**_TEXT, "maxLength": MAX_REASON},
            },
        },
    ),
    (
        "dismiss",
        "Dismiss an open alert as a false alarm, with a reason",
        {
            "type": "object",
            "required": ["reason"],
            "additionalProperties": False,
            "properties": {"reason": {**_TEXT, "maxLength": MAX_REASON}},
        },
    ),
    (
        "notes",
        "Add a note to an alert (open, or ended and still in the account's log)",
        {
            "type": "object",
            "required": ["text"],
            "additionalProperties": False,
            "properties": {"text": {**_TEXT, "maxLength": MAX_NOTE}},
        },
    ),
)
_ACTION_ERRORS = {
    str(code): {"description": text}
    for code, text in (
        (400, "a missing or bad field"),
        (401, "no token"),
        (403, "a wrong token, writes turned off, or a cross-site form"),
        (404, "unknown alert"),
        (409, "the alert is no longer open"),
        (415, "not JSON nor a form"),
        (503, "Kafka or Redis unavailable"),
    )
}
OPENAPI = {
    "openapi": "3.0.3",
    "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    "info": {"title": "churnwatch read-model API", "version": "1"},
    "paths": {
        "/accounts": {"get": {
            "summary": "Every account (alerted or not) from its latest health snapshot, by "
                       "revenue at risk unless sort= says otherwise; totals over every "
                       "filtered account; next_cursor when more follow",
            "parameters": _ACCOUNT_PARAMS,
            "responses": {"200": _JSON_OK, **_ERRORS}}},
        "/accounts.csv": {"get": {
            "summary": "The same list as CSV with a header row (every row up to limit, "
                       "default 1000; X-Next-Cursor header when more follow)",
            "parameters": _ACCOUNT_PARAMS,
            "responses": {"200": _CSV_OK, **_ERRORS}}},
        "/accounts/{account_id}": {"get": {
            "summary": "An account now: latest snapshot, health, context, open alerts (most "
                       "severe first) with their explanations, daily history, episode log",
            "parameters": [_param("account_id", {"type": "string", "minLength": 1,
                                                 "maxLength": MAX_ID}, "path", True)],
            "responses": {"200": _JSON_OK, **_ERRORS}}},
        "/accounts/at-risk": {"get": {
            "summary": "Accounts with an open alert, by revenue at risk (risk/100 x MRR, risk "
                       "= 100 - overall health) unless sort= says otherwise; next_cursor when "
                       "more follow",
            "parameters": _RISK_PARAMS,
            "responses": {"200": _JSON_OK, **_ERRORS}}},
        "/accounts/at-risk.csv": {"get": {
            "summary": "The same list as CSV with a header row (every row up to limit, "
                       "default 1000; X-Next-Cursor header when more follow)",
            "parameters": _RISK_PARAMS,
            "responses": {"200": _CSV_OK, **_ERRORS}}},
        "/alerts/open": {"get": {
            "summary": "Open alert episodes, newest first; signal= keeps those about that "
                       "signal (their own, or one of an account episode's reasons)",
            "parameters": [_LIMIT, _param("signal", {"type": "string", "enum": list(PUBLISHED)}),
                           _param("severity", {"type": "string",
                                               "enum": list(SEVERITY_RANK)})],
            "responses": {"200": _JSON_OK, **_ERRORS}}},
        **{f"/alerts/{{alert_id}}/{verb}": {"post": {
            "summary": summary,
            "description": "Published to the alert-actions topic, then applied to the read "
                           "model. Bearer token required (or a signed-in page's session and "
                           "its CSRF token). Idempotency-Key makes a retry the same action.",
            "parameters": [_param("alert_id", {"type": "string", "minLength": 1,
                                               "maxLength": MAX_ID}, "path", True),
                           _param("Idempotency-Key", {"type": "string", "maxLength": 200},
                                  "header")],
            "requestBody": {"content": {"application/json": {"schema": body}}},
            "security": [{"bearer": []}],
            "responses": {"201": _JSON_OK, "200": {"description": "already recorded"},
                          **_ACTION_ERRORS}}}
          for verb, summary, body in _ACTIONS},
        "/portfolio": {"get": {"summary": "MRR at risk by severity; per month (months): logo "
                                          "and revenue churn, cancellations by reason group "
                                          "and managed or unmanaged, and alert_outcomes (the "
                                          "episodes opened: saved, renewed, churned, pending)",
                               "responses": {"200": _JSON_OK, **_ERRORS}}},
        "/healthz": {"get": {"summary": "Redis and the feed are up",
                             "responses": {"200": _JSON_OK, "503": _ERRORS["503"]}}},
    },
}  # fmt: skip
