"""``POST /alerts/{alert_id}/ack|snooze|dismiss|notes``: a team's actions, through the log.

An action is published to the ``alert-actions`` topic first (acks from every in-sync replica)
and only then applied to Redis, so the topic stays the source of truth: what the API answered
201 for is in the log, and a rebuild of Redis from the topics has it. The read model's feed
applies it again from the topic, which changes nothing (``action_id`` is applied once).

Requests are JSON (the API and ``churnwatch alerts``) or a form post (the account page, which
works without JavaScript and is answered with a redirect back to the account). A client that
may retry sends ``Idempotency-Key`` (a form sends a hidden ``idempotency_key``): the same key
from the same person for the same alert and action is the same action.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import uuid
from datetime import UTC, date, datetime, timedelta
from html import escape
from typing import Protocol
from urllib.parse import quote, urlsplit

import orjson
import redis
from aiohttp import web
from kafka import KafkaProducer
from kafka.errors import KafkaError
from pydantic import ValidationError

from schemas.actions import MAX_NOTE, MAX_REASON, MAX_SNOOZE_DAYS, AlertAction, encode_action
from stream.core.timeutil import from_ms
from stream.kafka.settings import WorkerSettings
from stream.render.html import page
from stream.sinks.readmodel_store import RedisReadModel
from stream.sinks.web_auth import ACTOR, local_path, redirect

log = logging.getLogger("churnwatch.actions")
ROUTES = {"ack": "ack", "snooze": "snooze", "dismiss": "dismiss", "notes": "note"}
"""Path word -> action kind."""
FIELDS = {"ack": set(), "snooze": {"until", "days", "reason"}, "dismiss": {"reason"},
          "note": {"text"}}  # fmt: skip
MAX_KEY = 200


class ActionLog(Protocol):
    async def publish(self, action: AlertAction) -> None: ...


class KafkaActionLog:
    """Publishes actions with kafka-python in a worker thread (the API's loop never blocks)."""

    def __init__(self, settings: WorkerSettings) -> None:
        self.settings = settings
        self.producer: KafkaProducer | None = None
        """Made on the first action, so ``serve`` starts (and reads) while Kafka is down."""

    def _send(self, action: AlertAction) -> None:
        if self.producer is None:
            s = self.settings
            self.producer = KafkaProducer(
                bootstrap_servers=s.bootstrap_servers, acks="all", retries=5, linger_ms=0,
                request_timeout_ms=10_000, max_block_ms=10_000, **s.kafka_python_security(),
            )  # fmt: skip
        future = self.producer.send(self.settings.actions_topic, key=action.account_id.encode(),
                                    value=encode_action(action))  # fmt: skip
        future.get(timeout=15)

    async def publish(self, action: AlertAction) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self._send, action)

    def close(self) -> None:
        if self.producer is not None:
            self.producer.close(timeout=5)


class ActionRefused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def action_id(actor: str, alert_id: str, kind: str, key: str | None) -> str:
    """Random without a key; with one, the same for the same person, alert, kind and key."""
    if key is None:
        return uuid.uuid4().hex
    return hashlib.sha256(f"{actor}\x1f{alert_id}\x1f{kind}\x1f{key}".encode()).hexdigest()[:32]


async def _body(request: web.Request) -> tuple[dict[str, str], bool]:
    """The request's fields and whether it came from a form; refuses what is not flat text."""
    if request.content_type == "application/x-www-form-urlencoded":
        form = await request.post()
        fields: dict[str, str] = {}
        for key in form:
            values = form.getall(key)
            if len(values) > 1 or not isinstance(values[0], str):
                raise ActionRefused(400, f"form field {key!r} must be given once, as text")
            fields[key] = values[0]
        return fields, True
    raw = await request.read()
    if not raw.strip():
        return {}, False
    if request.content_type != "application/json":
        raise ActionRefused(415, "send JSON (Content-Type: application/json) or a form post")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ActionRefused(400, "the body is not valid JSON") from None
    if not isinstance(data, dict) or not all(
        isinstance(v, str) or (type(v) is int and k == "days") for k, v in data.items()
    ):
        raise ActionRefused(400, "the body must be a JSON object of text fields (days: a number)")
    return {k: str(v) for k, v in data.items()}, False


def _text(fields: dict[str, str], key: str, most: int) -> str:
    value = fields.get(key, "").strip()
    if not value:
        raise ActionRefused(400, f"{key} is required")
    if len(value) > most or not all(c.isprintable() or c in "\n\t" for c in value):
        raise ActionRefused(400, f"{key} must be 1 to {most} printable characters")
    return value


def _until(fields: dict[str, str], now_ms: int) -> date:
    """The snooze's day: ``until`` (a date) or ``days`` after the read model's day."""
    today = from_ms(now_ms).date()
    if ("until" in fields) == ("days" in fields):
        raise ActionRefused(400, "a snooze needs until (YYYY-MM-DD) or days (1 to "
                                 f"{MAX_SNOOZE_DAYS}), not both")  # fmt: skip
    if "days" in fields:
        text = fields["days"].strip()
        if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_SNOOZE_DAYS:
            raise ActionRefused(400, f"days must be a whole number from 1 to {MAX_SNOOZE_DAYS}")
        return today + timedelta(days=int(text))
    text = fields["until"].strip()
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise ActionRefused(400, f"until must be a date as YYYY-MM-DD, got {text[:40]!r}") from None
    if not today < day <= today + timedelta(days=MAX_SNOOZE_DAYS):
        raise ActionRefused(400, f"until must be after {today} (the read model's latest day) "
                                 f"and at most {MAX_SNOOZE_DAYS} days later")  # fmt: skip
    return day


def _alert_now(store: RedisReadModel, alert_id: str, kind: str) -> tuple[str, dict]:
    """(account, the alert's latest record); notes may name an episode that has ended."""
    account, record = store.alert(alert_id)
    if account is None:
        raise ActionRefused(404, f"no alert {alert_id!r} in the read model")
    if record is None:
        if kind != "note":
            raise ActionRefused(409, f"alert {alert_id} is no longer open (it resolved or the "
                                     "account churned); only a note can be added")  # fmt: skip
        view = store.account(account) or {}
        record = next((e for e in view.get("episodes") or [] if e["alert_id"] == alert_id), None)
        if record is None:
            raise ActionRefused(409, f"alert {alert_id} ended too long ago to add a note")
    return account, record


def build_action(store: RedisReadModel, alert_id: str, kind: str, fields: dict[str, str],
                 actor: str, key: str | None, now: datetime) -> AlertAction:  # fmt: skip
    """The action a request asks for, checked against the read model; refuses with the field
    that is wrong."""
    extra = set(fields) - FIELDS[kind]
    if extra:
        raise ActionRefused(400, f"unknown field(s) {sorted(extra)} for {kind} "
                                 f"(allowed: {sorted(FIELDS[kind])})")  # fmt: skip
    account, record = _alert_now(store, alert_id, kind)
    values: dict = {}
    if kind == "snooze":
        values["until"] = _until(fields, store.now_ms() or int(now.timestamp() * 1000))
    if kind in ("snooze", "dismiss"):
        values["reason"] = _text(fields, "reason", MAX_REASON)
    if kind == "note":
        values["text"] = _text(fields, "text", MAX_NOTE)
    try:
        return AlertAction(action_id=action_id(actor, alert_id, kind, key), kind=kind,
                           alert_id=alert_id, account_id=account, signal=record["signal"],
                           severity=record["severity"], episode_start=record["episode_start"],
                           at=now, by=actor, **values)  # fmt: skip
    except ValidationError as exc:  # the checks above make this a bug, still a clear 400
        raise ActionRefused(400, f"not a valid action: {exc.errors()[0]['msg']}") from None


def add_action_routes(app: web.Application, store: RedisReadModel, actions: ActionLog | None,
                      clock=lambda: datetime.now(UTC)) -> None:  # fmt: skip
    """Registers the four POST routes; ``actions`` None (no Kafka) answers them 503."""

    async def act(request: web.Request) -> web.Response:
        kind = ROUTES[request.match_info["verb"]]
        alert_id = request.match_info["alert_id"]
        if not 1 <= len(alert_id) <= 200 or not alert_id.isascii() or not alert_id.isprintable():
            return _refused(ActionRefused(400, "alert id must be 1 to 200 printable characters"))
        form = request.content_type == "application/x-www-form-urlencoded"
        try:
            fields, form = await _body(request)
            key = fields.pop("idempotency_key", None) if form else request.headers.get(
                "Idempotency-Key")  # fmt: skip
            target = fields.pop("next", None) if form else None
            fields.pop("csrf", None)
            if key is not None and not 1 <= len(key) <= MAX_KEY:
                raise ActionRefused(400, f"Idempotency-Key must be 1 to {MAX_KEY} characters")
            if actions is None:
                raise ActionRefused(503, "this server has no Kafka connection for actions")
            action = build_action(store, alert_id, kind, fields, request[ACTOR], key, clock())
            if store.actions.seen(action.action_id):  # a retry of a recorded request
                return _recorded(action, form, target, duplicate=True)
            await actions.publish(action)
        except ActionRefused as exc:
            return _refused(exc, _back(request) if form else None)
        except KafkaError as exc:
            log.warning("could not publish an action to the alert-actions topic: %s",
                        type(exc).__name__)  # fmt: skip
            down = ActionRefused(503, "the alert-actions topic is unavailable; nothing was "
                                      "recorded, try again")  # fmt: skip
            return _refused(down, _back(request) if form else None)
        log.info("%s by %s on alert %s (account %s)", kind, action.by, alert_id,
                 action.account_id)  # fmt: skip
        # The feed may apply it first (applied once either way); if Redis fails here, the
        # action is in the log and the feed applies it when Redis is back.
        with contextlib.suppress(redis.RedisError):
            store.apply_actions([action])
        return _recorded(action, form, target, duplicate=False)

    app.router.add_post("/alerts/{alert_id}/{verb:ack|snooze|dismiss|notes}", act)


def _recorded(action: AlertAction, form: bool, target: str | None,
              duplicate: bool) -> web.Response:  # fmt: skip
    """201 with the action (200 when it was recorded before); a form goes back to its page."""
    if form:  # back to the page the form was on (this site only), at the alert
        page_of = "/view/accounts/" + quote(action.account_id, safe="")
        anchor = quote(action.alert_id, safe="")
        return redirect(f"{local_path(target or page_of)}#alert-{anchor}")
    body = {"action": orjson.loads(encode_action(action)), "duplicate": duplicate}
    return web.Response(body=orjson.dumps(body), status=200 if duplicate else 201,
                        content_type="application/json")  # fmt: skip


def _back(request: web.Request) -> str:
    """Where a refused form post's page links back to: the page it came from, on this site."""
    referer = request.headers.get("Referer") or "/"
    return local_path(urlsplit(referer)._replace(scheme="", netloc="").geturl())


def _refused(exc: ActionRefused, page_of: str | None = None) -> web.Response:
    """JSON for the API; for a form post, a page that says what was wrong and links back."""
    if page_of is not None:
        body = (f'<p>{escape(str(exc))}</p><p><a href="{escape(page_of)}">← back to the page'
                "</a></p>")  # fmt: skip
        return web.Response(text=page("The action was not recorded", body), status=exc.status,
                            content_type="text/html")  # fmt: skip
    return web.Response(body=orjson.dumps({"error": str(exc), "status": exc.status}),
                        status=exc.status, content_type="application/json")  # fmt: skip
