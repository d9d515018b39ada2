"""Where notifications go: webhook routes and the daily digest, from a TOML file.

A CS team wants an alert where its people already are (a Slack channel per team, a ticketing
system's inbound webhook), and only the alerts that concern them: the enterprise team's
channel gets enterprise accounts, a CSM gets their own book. So a route is a webhook plus
filters (owner, segment, severity, what happened), and an alert goes to every route whose
filters it passes. Example::

    [[route]]
    name = "enterprise"
    url = "https://hooks.slack.com/services/T000/B000/XXXX"
    format = "slack"
    segment = ["enterprise"]
    severity = ["high", "critical"]

    [[route]]
    name = "crm"
    url = "https://crm.example.com/hooks/churnwatch"
    format = "json"
    secret_env = "CHURNWATCH_CRM_SECRET"   # signs each body (HMAC-SHA256)

    [digest]
    url = "https://hooks.slack.com/services/T000/B000/YYYY"
    format = "slack"

Secrets are never written in the file: a JSON route names the environment variable that holds
its signing key, and a Slack URL (which is itself a secret) is never logged in full.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from schemas.alerts import SEVERITY_RANK

Event = Literal["opened", "escalated", "updated", "resolved", "churned"]
"""What happened to an episode: ``escalated`` is an update that raised the severity."""
DEFAULT_EVENTS: tuple[Event, ...] = ("opened", "escalated")


class NotifyConfigError(ValueError):
    """A notification config that cannot be used; the message names the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Hook(_Strict):
    url: str = Field(min_length=1, max_length=2000)
    format: Literal["slack", "json"] = "json"
    secret_env: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="environment variable holding the HMAC key that signs JSON bodies",
    )
    timeout_seconds: float = Field(default=10.0, gt=0, le=120)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        return value

    def secret(self) -> bytes | None:
        """The signing key, read from the environment when needed (never stored here)."""
        if self.secret_env is None:
            return None
        value = os.environ.get(self.secret_env)
        if not value:
            raise NotifyConfigError(f"{self.secret_env} is not set (the route's secret_env)")
        return value.encode()

    def shown(self) -> str:
        """The URL as logs may show it: scheme and host only (the path of a Slack or CRM
        webhook is its credential)."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.hostname}{':' + str(parts.port) if parts.port else ''}/…"


class Route(Hook):
    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")
    owner: list[str] = Field(default_factory=list, description="only these CSMs' accounts")
    segment: list[str] = Field(default_factory=list)
    severity: list[Literal["low", "medium", "high", "critical"]] = Field(default_factory=list)
    events: list[Event] = Field(default_factory=lambda: list(DEFAULT_EVENTS))

    def wants(self, alert: dict, event: str) -> bool:
        """Owners match ignoring case, as the lists' ``owner=`` and ``alerts tail --owner``."""
        account = alert.get("account") or {}
        owner = (account.get("owner") or "").casefold()
        return (
            event in self.events
            and (not self.owner or owner in {o.casefold() for o in self.owner})
            and (not self.segment or account.get("segment") in self.segment)
            and (not self.severity or alert.get("severity") in self.severity)
        )


class Digest(Hook):
    """Once a day (in the alerts' event time), per owner: what opened, escalated and is open."""

    owner: list[str] = Field(default_factory=list, description="only these owners' digests")


class NotifyConfig(_Strict):
    route: list[Route] = Field(default_factory=list)
    digest: Digest | None = None
    give_up_after_hours: float = Field(
        default=24.0,
        gt=0,
        le=24 * 30,
        description="a notification still undelivered after this long is marked expired",
    )
    retry_base_seconds: float = Field(
        default=1.0, ge=0.001, le=60, description="the first retry's delay; each next doubles"
    )
    retry_max_seconds: float = Field(
        default=300.0, ge=0.001, le=3600, description="the longest delay between two tries"
    )

    @field_validator("route")
    @classmethod
    def _unique(cls, routes: list[Route]) -> list[Route]:
        names = [r.name for r in routes]
        if len(set(names)) != len(names):
            raise ValueError("route names must be unique")
        if "digest" in names:
            raise ValueError("'digest' is the daily digest's name; give the route another")
        return routes


def load_notify_config(path: str | Path) -> NotifyConfig:
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise NotifyConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise NotifyConfigError(f"{path}: not valid TOML: {exc}") from None
    try:
        config = NotifyConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise NotifyConfigError(f"{path}: {where}: {first['msg']}") from None
    if not config.route and config.digest is None:
        raise NotifyConfigError(f"{path}: no [[route]] and no [digest]: nothing to send")
    for hook in [*config.route, *([config.digest] if config.digest else [])]:
        hook.secret()  # a missing secret stops start-up, not the first delivery
    return config


def event_of(alert: dict, previous_rank: int | None) -> str:
    """What a record means for notifications: ``escalated`` when an update raised the
    episode's severity above the last one seen (``previous_rank``)."""
    kind = alert["kind"]
    if (
        kind == "updated"
        and previous_rank is not None
        and SEVERITY_RANK.get(alert["severity"], 0) > previous_rank
    ):
        return "escalated"
    return kind
