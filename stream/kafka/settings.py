"""Worker configuration from environment variables (prefix ``CHURNWATCH_``).

Every setting has a default that works on a laptop against a local broker; a production
deployment sets the broker address, security and storage. A bad value stops start-up with the
variable's name and the problem. Secrets (the SASL password) are kept in ``SecretStr`` so they
never appear in logs, reprs or error messages.

The broker list may come from ``CHURNWATCH_BROKER`` or from ``KAFKA_BOOTSTRAP_SERVERS`` (the
name Kafka tooling and container images use); when both are set, ``CHURNWATCH_BROKER`` wins,
so a churnwatch-specific setting overrides a shared environment. Either must be
``host:port[,host:port]``: an empty or malformed list is refused at start-up naming the
variable it came from, instead of failing later inside the Kafka client.
"""

from __future__ import annotations

import os
import re
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

PREFIX = "CHURNWATCH_"
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
BROKER_VARIABLE = f"{PREFIX}BROKER"
BOOTSTRAP_VARIABLE = "KAFKA_BOOTSTRAP_SERVERS"
BROKER_FORM = "host:port[,host:port]"
_BROKER_ENTRY = re.compile(
    r"^(?:kafka://)?(?P<host>[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\])(?::(?P<port>[0-9]{1,5}))?$"
)
"""One bootstrap server: a host name, IPv4 or bracketed IPv6 address, and an optional port
(the Kafka clients and Faust default to 9092); ``kafka://`` (Faust's spelling) is accepted."""


def broker_problem(value: str) -> str | None:
    """Why ``value`` is not a bootstrap server list, or ``None`` when it is one.

    Checked here because the clients fail late and obscurely on a bad list: an empty one is an
    ``IndexError`` deep in aiokafka, and ``a:b:c`` an ``int()`` error naming no variable.
    """
    entries = [entry.strip() for entry in value.split(",") if entry.strip()]
    if not entries:
        return f"empty; expected {BROKER_FORM}, e.g. localhost:9092"
    for entry in entries:
        match = _BROKER_ENTRY.match(entry)
        if match is None:
            return f"{entry!r} is not host:port; expected {BROKER_FORM}, e.g. localhost:9092"
        port = match["port"]
        if port is not None and not 1 <= int(port) <= 65_535:
            return f"{entry!r}: the port must be from 1 to 65535; expected {BROKER_FORM}"
    return None


class SettingsError(ValueError):
    """Configuration that cannot start a worker; the message names the variable."""


class WorkerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    broker: str = Field(
        default="localhost:9092",
        description="Kafka bootstrap servers, host:port[,host:port] (the port defaults to 9092). "
        "KAFKA_BOOTSTRAP_SERVERS also works; when both are set, CHURNWATCH_BROKER wins",
    )
    app_id: str = Field(default="churnwatch", min_length=1, description="consumer group / app id")
    usage_topic: str = Field(default="usage", min_length=1)
    billing_topic: str = Field(default="billing", min_length=1)
    alerts_topic: str = Field(default="alerts", min_length=1)
    dead_letter_topic: str = Field(default="churnwatch-dead-letters", min_length=1)
    health_topic: str = Field(
        default="account-health",
        min_length=1,
        description="compacted topic of account-health snapshots, keyed by account_id",
    )
    actions_topic: str = Field(
        default="alert-actions",
        min_length=1,
        description="the team's actions on alerts (acknowledge, snooze, dismiss, note), keyed "
        "by account_id; the read model is rebuilt from it",
    )
    health_snapshots: bool = Field(
        default=True,
        description="publish every account's health snapshot at each day close (the read "
        "model's account list, history and trends come from them)",
    )
    partitions: int = Field(default=6, ge=1, le=10_000, description="of usage, billing and alerts")
    replication_factor: int = Field(default=1, ge=1, le=10)
    create_topics: bool = Field(default=True, description="create missing topics at start-up")
    retention_ms: int = Field(
        default=-1,
        ge=-1,
        description="retention of the topics churnwatch creates; -1 keeps records forever, "
        "which replayed history (old record timestamps) needs",
    )
    store: Literal["rocksdb", "memory"] = "rocksdb"
    data_dir: Path = Path("churnwatch-data")
    policy: Path | None = None
    on_wrong_key: Literal["reroute", "dead-letter"] = Field(
        default="reroute",
        description="records keyed other than by account_id: re-send them keyed right, or "
        "dead-letter them",
    )
    max_future_seconds: int = Field(
        default=86_400,
        ge=0,
        description="records stamped further ahead of the wall clock are dead-lettered, so one "
        "bad clock cannot drag every account's event time forward (0 disables)",
    )
    max_idle_ms: int = Field(
        default=0,
        ge=0,
        le=60_000,
        description="how long a record waits at least for the other input topic of its "
        "partition before it is processed without it, even once that topic is known to be "
        "caught up (Kafka Streams' max.task.idle.ms); raise it only for producers that may "
        "append an earlier event to one topic after a later one to the other",
    )
    standby_replicas: int = Field(default=0, ge=0, le=10)
    session_timeout_seconds: float = Field(
        default=30.0,
        ge=6,
        le=90,
        description="how long the group waits for a silent worker before moving its "
        "partitions (a restart after kill -9 waits this long for its old session)",
    )
    processing_guarantee: Literal["at_least_once", "exactly_once"] = "at_least_once"
    redis_url: SecretStr = Field(
        default=SecretStr("redis://localhost:6379/0"),
        description="the read model's Redis: redis://, rediss:// (TLS) or unix://, with "
        ":password@ when needed (kept secret in logs)",
    )
    redis_prefix: str = Field(default="churnwatch", min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")
    api_host: str = Field(default="127.0.0.1", min_length=1)
    api_port: int = Field(default=8080, ge=0, le=65_535)
    web_port: int = Field(default=6066, ge=0, le=65_535)
    web_enabled: bool = False
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "SCRAM-SHA-512"
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_check_hostname: bool = True

    @field_validator("broker")
    @classmethod
    def _broker_list(cls, value: str) -> str:
        problem = broker_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> WorkerSettings:
        if self.processing_guarantee == "exactly_once":
            raise ValueError(
                f"{PREFIX}PROCESSING_GUARANTEE=exactly_once is not supported yet: the worker "
                "is at-least-once with idempotent alert ids (see README, Delivery)"
            )
        names = [self.usage_topic, self.billing_topic, self.alerts_topic, self.dead_letter_topic,
                 self.health_topic, self.actions_topic]  # fmt: skip
        if len(set(names)) != len(names):
            raise ValueError(
                "usage, billing, alerts, dead-letter, health and actions topics must all differ"
            )
        if self.security_protocol.startswith("SASL") and not (
            self.sasl_username and self.sasl_password
        ):
            raise ValueError(
                f"{PREFIX}SASL_USERNAME and {PREFIX}SASL_PASSWORD are required with "
                f"{self.security_protocol}"
            )
        for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile", "policy"):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                raise ValueError(f"{PREFIX}{name.upper()}: no such file: {path}")
        if not self.redis_url.get_secret_value().startswith(REDIS_SCHEMES):
            raise ValueError(f"{PREFIX}REDIS_URL must start with redis://, rediss:// or unix://")
        if bool(self.ssl_certfile) != bool(self.ssl_keyfile):
            raise ValueError(f"{PREFIX}SSL_CERTFILE and {PREFIX}SSL_KEYFILE go together")
        return self

    @property
    def broker_url(self) -> str:
        """Faust's form: ``kafka://host1:9092;host2:9092``."""
        hosts = [h.strip().removeprefix("kafka://") for h in self.broker.split(",") if h.strip()]
        return ";".join(f"kafka://{h}" for h in hosts)

    @property
    def bootstrap_servers(self) -> list[str]:
        return [h.strip().removeprefix("kafka://") for h in self.broker.split(",") if h.strip()]

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.security_protocol.endswith("SSL"):
            return None
        context = ssl.create_default_context(
            cafile=str(self.ssl_cafile) if self.ssl_cafile else None
        )
        context.check_hostname = self.ssl_check_hostname
        if self.ssl_certfile and self.ssl_keyfile:
            context.load_cert_chain(str(self.ssl_certfile), str(self.ssl_keyfile))
        return context

    def kafka_python_security(self) -> dict:
        """The same security settings for kafka-python clients (admin, producer, tail)."""
        options: dict = {"security_protocol": self.security_protocol}
        if self.security_protocol.startswith("SASL"):
            options["sasl_mechanism"] = self.sasl_mechanism
            options["sasl_plain_username"] = self.sasl_username
            assert self.sasl_password is not None
            options["sasl_plain_password"] = self.sasl_password.get_secret_value()
        context = self.ssl_context()
        if context is not None:
            options["ssl_context"] = context
        return options

    def redacted(self) -> dict:
        """For start-up logs: everything except the secret."""
        shown = self.model_dump(mode="json")
        if shown.get("sasl_password"):
            shown["sasl_password"] = "**********"
        return shown


_BOOLS = {"1": True, "true": True, "yes": True, "on": True,
          "0": False, "false": False, "no": False, "off": False}  # fmt: skip


def load_settings(environ: Mapping[str, str] | None = None) -> WorkerSettings:
    """Read ``CHURNWATCH_*`` variables; unknown ``CHURNWATCH_`` variables are an error too."""
    env = os.environ if environ is None else environ
    values: dict[str, object] = {}
    fields = WorkerSettings.model_fields
    # CHURNWATCH_BROKER (read in the loop below) wins when both are set, as it always has.
    broker_from = BROKER_VARIABLE
    if BOOTSTRAP_VARIABLE in env and BROKER_VARIABLE not in env:
        values["broker"] = env[BOOTSTRAP_VARIABLE]
        broker_from = BOOTSTRAP_VARIABLE
    for name, raw in env.items():
        if not name.startswith(PREFIX) or name in _NOT_SETTINGS:
            continue
        field = name[len(PREFIX) :].lower()
        if field not in fields:
            raise SettingsError(f"{name}: unknown setting")
        if fields[field].annotation is bool:
            if raw.strip().lower() not in _BOOLS:
                raise SettingsError(f"{name}: expected true or false, got {raw!r}")
            values[field] = _BOOLS[raw.strip().lower()]
        else:
            values[field] = raw
    try:
        return WorkerSettings.model_validate(values)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False, include_input=False):
            if not err["loc"]:
                where = "settings"
            elif err["loc"][0] == "broker":
                where = broker_from  # the variable the list came from
            else:
                where = f"{PREFIX}{err['loc'][0]}".upper()
            problems.append(f"{where}: {err['msg'].removeprefix('Value error, ')}")
        raise SettingsError("; ".join(problems)) from None


_NOT_SETTINGS = frozenset({"CHURNWATCH_CACHE", "CHURNWATCH_KAFKA_VERSION", "CHURNWATCH_LOG_FORMAT",
                           "CHURNWATCH_API_TOKEN", "CHURNWATCH_API_TOKENS_FILE",
                           "CHURNWATCH_API_URL"})  # fmt: skip
"""Variables read by other parts (the broker launcher, the log setup, the API's tokens and
the CLI's API address), not worker settings: secrets stay out of the settings' dump."""
