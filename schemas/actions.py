"""Alert actions: what a CS team does with an alert, as events on the ``alert-actions`` topic.

Someone acknowledges an alert, snoozes it until a date, dismisses it as a false alarm, or adds
a note. Each of those is one :class:`AlertAction` record, keyed by the alert's account, on a
topic of its own: the log stays the source of truth, so the read model can be rebuilt from the
topics and a replay of the actions gives the same state. ``action_id`` makes a record's effect
idempotent (the read model applies an id once, however often it is delivered), and a client
that retries a request with the same ``Idempotency-Key`` gets the same ``action_id``.

``at`` is when the person acted (the API's clock: an action is an event of its own, and this
is its event time). ``until`` is a day: a snooze ends at the start of that day (UTC) in the
read model's **event time**, the time of the newest alert or health snapshot it has seen, so
a replay of the same topics hides and shows the same alerts. ``severity`` is the alert's
severity when the action was taken: an escalation past it ends a snooze or a dismissal.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

ACTION_SCHEMA_VERSION = 1
KINDS = ("ack", "snooze", "dismiss", "note")
MAX_REASON = 500
MAX_NOTE = 2000
MAX_SNOOZE_DAYS = 365

_Id = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[\x21-\x7e]+$")]


class AlertAction(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = ACTION_SCHEMA_VERSION
    action_id: Annotated[str, Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
    kind: Literal["ack", "snooze", "dismiss", "note"]
    alert_id: _Id
    account_id: _Id
    signal: _Id
    """The alert's signal when the action was taken (a dismissal is a label about it)."""
    severity: Literal["low", "medium", "high", "critical"]
    episode_start: datetime
    """When the alert's episode opened: with account and signal, it names the alert in a
    backtest of the same log (calibrate matches dismissals to the openings it replays)."""
    at: datetime
    by: Annotated[str, Field(min_length=1, max_length=64)]
    """The name of the token that took it (never the token)."""
    until: date | None = None
    reason: Annotated[str, Field(max_length=MAX_REASON)] | None = None
    text: Annotated[str, Field(max_length=MAX_NOTE)] | None = None

    @model_validator(mode="after")
    def _fields_of_kind(self) -> AlertAction:
        """Each kind carries exactly what it needs, so a consumer never guesses."""
        needs = {"ack": (), "snooze": ("until", "reason"), "dismiss": ("reason",),
                 "note": ("text",)}[self.kind]  # fmt: skip
        for name in ("until", "reason", "text"):
            value = getattr(self, name)
            if name in needs and (value is None or (isinstance(value, str) and not value.strip())):
                raise ValueError(f"a {self.kind} needs {name}")
            if name not in needs and value is not None:
                raise ValueError(f"a {self.kind} takes no {name}")
        if self.at.tzinfo is None:
            raise ValueError("at must carry a time zone (UTC)")
        return self


class InvalidAction(ValueError):
    """A record on the actions topic that is not an action; the message says what is wrong."""


def encode_action(action: AlertAction) -> bytes:
    return orjson.dumps(action.model_dump(mode="json", exclude_none=True))


def decode_action(raw: bytes) -> AlertAction:
    try:
        return AlertAction.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "record"
        raise InvalidAction(f"{where}: {first['msg']}") from None
