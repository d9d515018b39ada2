"""The Faust application around the core: settings, topics, the account table.

``build_app`` wires one worker: a ``faust.App`` configured from :class:`WorkerSettings`, the
raw-bytes topics (the shared codec decodes them, not Faust), the changelog-backed ``accounts``
table, and the ingest agent from ``agents/ingest.py``. Imports go one way: this module imports
the agent's, which knows the worker only as :class:`~agents.churn.ChurnApp`.

It also quiets two log records the libraries write at ERROR and WARNING for things that are
expected and need no action (:class:`CoordinatorElectionFilter`,
:class:`OwnTimerOverlapFilter`), so that an ERROR in a worker's log always means something.
"""

from __future__ import annotations

import gc
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import faust
from aiokafka.errors import GroupCoordinatorNotAvailableError

from agents.churn import ChurnApp
from agents.ingest import register
from stream.core.policy import Policy, load_policy
from stream.kafka.settings import WorkerSettings
from stream.run.delivery import DeliveryGate
from stream.run.live import LiveProcessor

TABLE_NAME = "accounts"
START_GRACE_SECONDS = 60.0
"""How long after start-up a missing group coordinator is expected (see below)."""


def _downgrade(record: logging.LogRecord) -> None:
    """Make ``record`` a DEBUG record: handlers at INFO and above then drop it.

    A logger's filters run after its level check and before its handlers', and each handler
    compares the record's level with its own, so the record still reaches a debug log.
    """
    record.levelno = logging.DEBUG
    record.levelname = logging.getLevelName(logging.DEBUG)


class CoordinatorElectionFilter(logging.Filter):
    """aiokafka's "Group Coordinator Request failed: GroupCoordinatorNotAvailableError", as
    DEBUG while the worker starts.

    On a clean start the broker may not have a coordinator for the consumer group yet: on a
    new cluster the first lookup makes it create its internal offsets topic, and until the
    group's partition of it has a leader the answer is "not available". aiokafka logs that at
    ERROR on every try and retries; a moment later it logs "Discovered coordinator". Nothing
    needs doing, so until the worker has its partitions (:meth:`started`), for at most
    :data:`START_GRACE_SECONDS`, the record is DEBUG. Afterwards the same record keeps its
    level: a coordinator missing a minute into the start, or going away later, is a broker
    problem someone should look at. Any other record of that logger is left alone.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._clock = clock
        self._until = float("-inf")

    def starting(self, grace: float = START_GRACE_SECONDS) -> None:
        """A worker is starting: the election is expected for the next ``grace`` seconds."""
        self._until = self._clock() + grace

    def started(self) -> None:
        """The worker has joined its group: from now on the record means trouble again."""
        self._until = float("-inf")

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        if (
            record.levelno > logging.DEBUG
            and self._clock() < self._until
            and any(isinstance(arg, GroupCoordinatorNotAvailableError) for arg in args)
        ):
            _downgrade(record)
        return True


OWN_TIMERS = "agents."
"""Faust names a timer by its function's qualified name: churnwatch's start with this."""
_OVERLAP = "Timer %s is overlapping"


class OwnTimerOverlapFilter(logging.Filter):
    """mode's "Timer ... is overlapping" warning, as DEBUG for churnwatch's own timers.

    mode warns when a timer's body, with the time the event loop took to come back to it,
    lasted longer than the timer's interval. churnwatch's timers (``agents/hooks.py``) have
    short intervals (the flush timer's is 50 ms); under load the event loop is busy processing
    records, so a tick finishes late (a flush has a large batch to write, a commit waits
    behind records for the broker's acks). That is harmless: mode runs a timer's ticks
    one after another, never two at once, so the next tick simply starts later and nothing
    is skipped or run twice. Other services' timers keep the warning.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        if (
            record.levelno > logging.DEBUG
            and isinstance(record.msg, str)
            and record.msg.startswith(_OVERLAP)
            and args
            and str(args[0]).startswith(OWN_TIMERS)
        ):
            _downgrade(record)
        return True


COORDINATOR_FILTER = CoordinatorElectionFilter()
TIMER_FILTER = OwnTimerOverlapFilter()
_QUIETED = {
    "aiokafka.consumer.group_coordinator": COORDINATOR_FILTER,
    "mode.timers": TIMER_FILTER,
}
"""The loggers that write those records, and their filter (a logger's own filters see only
its own records, not its children's)."""


def quiet_expected_logs(app: faust.App) -> None:
    """Install the filters (once per process) and open the start-up window for ``app``."""
    for name, log_filter in _QUIETED.items():
        logging.getLogger(name).addFilter(log_filter)  # a filter already there is not doubled
    COORDINATOR_FILTER.starting()

    @app.on_partitions_assigned.connect
    async def _joined(sender: object, assigned: set, **kwargs: object) -> None:
        COORDINATOR_FILTER.started()


def settle_heap() -> None:
    """Move the objects alive now out of the garbage collector's sight (``gc.freeze``).

    After start-up the heap holds Faust, aiokafka, pydantic and the policy, hundreds of
    thousands of objects that live as long as the process. Every full collection walked them
    all: under the live benchmark's load a worker made 4 to 7 of them per run, each a pause of
    up to 400 ms on the shared box (the latency benchmark's alerts waited behind them). Frozen,
    they are skipped, and a full collection took at most 20 ms in the same runs. Objects
    frozen are still freed by reference counting; only a cycle among them would stay.
    """
    gc.collect()
    gc.freeze()


def lean_runtime(app: faust.App, log_level: str) -> None:
    """Process settings for a worker under load; the throughput baseline
    (``bench/trivial_agent.py``) takes the same, so that the benchmark's ratio measures what
    churnwatch adds and not what it turned off."""

    @app.task
    async def _lean() -> None:
        # mode leaves the root logger at DEBUG and filters in the handler, so every library
        # debug call still builds a LogRecord: three per record consumed, ~15% of the worker.
        logging.getLogger().setLevel(log_level.upper())
        # Faust's Monitor sensor keeps per-event timings that nothing here reads (the /metrics
        # page is churnwatch's own): its hooks ran four times per record, ~3% of the worker.
        # The monitor object stays, for the few places Faust calls it directly.
        if app.monitor in set(app.sensors):
            app.sensors.remove(app.monitor)
        settle_heap()


def _credentials(settings: WorkerSettings) -> Any:
    context = settings.ssl_context()
    if settings.security_protocol.startswith("SASL"):
        assert settings.sasl_password is not None
        return faust.SASLCredentials(
            username=settings.sasl_username,
            password=settings.sasl_password.get_secret_value(),
            mechanism=settings.sasl_mechanism,
            ssl_context=context,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None


class _NoReadFilter(defaultdict):
    """Faust's per-partition read offsets, except that the input topics never have one."""

    def __init__(self, topics: tuple[str, ...], existing: dict) -> None:
        super().__init__(lambda: None, existing)
        self._topics = frozenset(topics)

    def __getitem__(self, tp: Any) -> Any:
        if tp.topic in self._topics:
            return None
        return super().__getitem__(tp)


def build_app(settings: WorkerSettings, policy: Policy | None = None) -> ChurnApp:
    policy = policy or load_policy(settings.policy)
    app = faust.App(
        settings.app_id,
        broker=settings.broker_url,
        broker_credentials=_credentials(settings),
        store="rocksdb://" if settings.store == "rocksdb" else "memory://",
        datadir=str(settings.data_dir),
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        table_standby_replicas=settings.standby_replicas,
        broker_session_timeout=settings.session_timeout_seconds,
        processing_guarantee=settings.processing_guarantee,
        consumer_auto_offset_reset="earliest",
        # Records held back by the usage/billing merge are never done before their partner
        # arrives; Faust must not wait for them in a rebalance or at shutdown.
        stream_wait_empty=False,
        web_enabled=settings.web_enabled,
        web_port=settings.web_port,
        web_bind="127.0.0.1" if not settings.web_enabled else "0.0.0.0",
        web_tables_enabled=False,  # its /table/ pages would serve account states to anyone
        autodiscover=False,
        producer_acks=-1,
        # Table writes and alerts are sent per record; a few milliseconds of linger turns
        # them into one produce request per batch instead of one per record.
        producer_linger=0.005,
        producer_max_batch_size=512 * 1024,
    )
    raw = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw",
           "value_serializer": "raw"}  # fmt: skip
    # No acks: the agent's checkpointer commits the input offsets (agents/checkpointer.py).
    inputs = app.topic(settings.usage_topic, settings.billing_topic, acks=False, **raw)
    alerts = app.topic(settings.alerts_topic, **raw)
    dead_letters = app.topic(settings.dead_letter_topic, **raw)
    health = settings.health_topic if settings.health_snapshots else None
    table = app.Table(
        TABLE_NAME,
        default=None,
        key_type=bytes,  # bytes keys and values travel raw: the state codec owns the format
        value_type=bytes,
        partitions=settings.partitions,
    )
    processor = LiveProcessor(
        policy,
        settings.partitions,
        on_wrong_key=settings.on_wrong_key,
        max_future_ms=settings.max_future_seconds * 1000,
        max_idle_ms=settings.max_idle_ms,
        snapshots=settings.health_snapshots,
    )
    churn = ChurnApp(
        app,
        settings,
        policy,
        inputs,
        alerts,
        dead_letters,
        health,
        table,
        processor,
        DeliveryGate(),
    )
    # Faust drops a fetched record whose offset is below the last one it read, which loses
    # records when a seek races a fetch in flight (its recovery does exactly that). The gate
    # in the agent handles repeats and jumps instead, so for the input topics Faust's filter
    # finds no read offset. Its drain loop binds the mapping when it starts: replace it now.
    # A private attribute, with no public alternative (see agents/__init__.py).
    app.consumer._read_offset = _NoReadFilter(
        (settings.usage_topic, settings.billing_topic), app.consumer._read_offset
    )

    lean_runtime(app, settings.log_level)

    @app.task
    async def _tune() -> None:
        # A state flush sends one changelog record per changed account; Faust's default
        # buffer of 100 turns every flush into a wait and a warning.
        app.producer.buffer.max_messages = 10_000

    register(churn)
    quiet_expected_logs(app)
    return churn
