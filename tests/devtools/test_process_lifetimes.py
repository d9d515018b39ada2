"""Helper processes die with their launcher, and take their temporary directories with them.

``churnwatch broker``, the demo, the test fixtures and the benchmarks start real processes (an
Apache Kafka JVM, redis-server, workers). A launcher stopped with SIGTERM or SIGHUP (``kill``,
a closed terminal, a CI runner cancelling a job) must stop them and remove their storage; one
killed with SIGKILL cannot run any code, so the kernel must kill them (the parent-death
signal), and the next launcher removes the directory that is left. Each test here starts a
real launcher in a subprocess, with ``TMPDIR`` pointing into the test's own directory, signals
it, and then looks at the process table, the port and the directory.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from stream.devtools.brokers import sweep_abandoned

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's"
)

ROOT = Path(__file__).resolve().parents[2]
Launch = Callable[..., subprocess.Popen]
"""Starts a launcher: a command, or Python code with ``code=``."""


# --- looking at processes from outside ----------------------------------------------------------


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name; None when there is no such pid."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def running(pid: int) -> bool:
    """Alive and not a zombie (a killed orphan may wait unreaped in a container)."""
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` that are running."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None and fields[1] == str(pid) and fields[0] != "Z":
                found.append(int(entry.name))
    return found


def descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        for child in children(todo.pop()):
            out.append(child)
            todo.append(child)
    return out


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    except OSError:
        return []


def listening(port: int) -> bool:
    """Whether some socket listens on 127.0.0.1:port. SO_REUSEADDR lets the bind succeed
    over connections left in TIME_WAIT, so only a listener makes it fail."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
        return False


def eventually(condition: Callable[[], bool], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def scratch(tmp: Path, kind: str) -> list[Path]:
    return sorted(tmp.glob(f"churnwatch-{kind}-*"))


# --- launchers ----------------------------------------------------------------------------------


@pytest.fixture
def tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The launchers' temporary directory, and this process's, so sweeps look there too."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


@pytest.fixture
def launch(tmp: Path) -> Iterator[Launch]:
    """Start a launcher (a command, or Python code) with TMPDIR set to the test's directory."""
    started: list[subprocess.Popen] = []

    def start(
        *args: str, code: str | None = None, stdout: int = subprocess.PIPE
    ) -> subprocess.Popen:
        argv = [sys.executable, "-c", textwrap.dedent(code)] if code else list(args)
        process = subprocess.Popen(
            argv, cwd=ROOT, env={**os.environ, "TMPDIR": str(tmp), "PYTHONUNBUFFERED": "1"},
            stdout=stdout, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        started.append(process)
        return process

    yield start
    for process in started:  # a failed assertion must not leave the launcher running
        if process.poll() is None:
            process.kill()
        process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def read_line(process: subprocess.Popen, pattern: str, timeout: float = 300.0) -> re.Match:
    """Read the launcher's stdout until a line matches; fail with its stderr otherwise."""
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        if match := re.search(pattern, line):
            return match
    process.kill()
    _, err = process.communicate()
    raise AssertionError(f"no line matching {pattern!r}; stdout {seen}; stderr:\n{err[-3000:]}")


def start_broker_command(launch: Launch) -> tuple[subprocess.Popen, int, int, Path]:
    """``churnwatch broker --kind kafka``: the launcher, its JVM's pid, port and directory."""
    launcher = launch(sys.executable, "-m", "stream.cli", "broker", "--kind", "kafka")
    port = int(read_line(launcher, r"KAFKA_BOOTSTRAP_SERVERS=127\.0\.0\.1:(\d+)").group(1))
    jvms = [pid for pid in children(launcher.pid) if "kafka.Kafka" in cmdline(pid)]
    assert len(jvms) == 1, [cmdline(pid) for pid in children(launcher.pid)]
    option = next(a for a in cmdline(jvms[0]) if a.startswith("-Dkafka.logs.dir="))
    workdir = Path(option.split("=", 1)[1])
    assert running(jvms[0]) and listening(port) and (workdir / "data").is_dir()
    return launcher, jvms[0], port, workdir


# --- churnwatch broker --------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_the_broker_command_stops_kafka_and_removes_its_storage_on_a_signal(launch, signum):
    launcher, jvm, port, workdir = start_broker_command(launch)
    launcher.send_signal(signum)
    # 0 when the signal lands in the command's wait loop; 130 ("interrupted") when it lands
    # between the printed line and that loop, where the broker is stopped at exit instead.
    assert launcher.wait(60) in (0, 130), launcher.stderr.read() if launcher.stderr else ""
    # Stopped by the launcher itself (it waits for the JVM), not left to the death signal.
    assert not running(jvm)
    assert not listening(port)
    assert not workdir.exists()


@pytest.mark.slow
def test_kafka_dies_with_a_broker_command_killed_by_sigkill(launch, tmp):
    launcher, jvm, port, workdir = start_broker_command(launch)
    launcher.kill()
    launcher.wait(10)
    assert eventually(lambda: not running(jvm)), f"the JVM {jvm} outlived its launcher"
    assert eventually(lambda: not listening(port))
    # Nobody was left to remove the storage; the next launcher of a broker removes it.
    assert workdir.exists()
    assert sweep_abandoned("kafka") == [workdir]
    assert not workdir.exists()


# --- redis-server -------------------------------------------------------------------------------

REDIS = """
    from stream.devtools.brokers import interrupt_on_termination
    from stream.devtools.redis_server import RedisServer
    import time
    interrupt_on_termination()
    server = RedisServer()
    server.start()
    print(server.process.pid, server.port, server.workdir, flush=True)
"""


def test_redis_stops_and_its_directory_goes_when_its_launcher_is_terminated(launch):
    launcher = launch(code=REDIS + "    with server:\n        time.sleep(600)\n")
    pid, port, workdir = read_line(launcher, r"(\d+) (\d+) (\S+)").groups()
    assert running(int(pid)) and listening(int(port))
    launcher.terminate()
    launcher.wait(30)
    assert not running(int(pid))
    assert not listening(int(port))
    assert not Path(workdir).exists()


def test_redis_dies_with_a_launcher_killed_by_sigkill(launch, tmp):
    launcher = launch(code=REDIS + "    time.sleep(600)\n")
    pid, port, workdir = read_line(launcher, r"(\d+) (\d+) (\S+)").groups()
    launcher.kill()
    launcher.wait(10)
    assert eventually(lambda: not running(int(pid))), "redis-server outlived its launcher"
    assert eventually(lambda: not listening(int(port)))
    assert sweep_abandoned("redis") == [Path(workdir)]


def test_a_redis_only_stopped_leaves_no_directory_when_its_launcher_exits(launch):
    """The outage tests stop() Redis to start it again; the directory still goes at exit."""
    launcher = launch(code=REDIS + "    server.stop()\n")
    _, _, workdir = read_line(launcher, r"(\d+) (\d+) (\S+)").groups()
    assert launcher.wait(30) == 0
    assert not Path(workdir).exists()


# --- workers of a deployment, and the demo ------------------------------------------------------


def test_a_deployment_s_workers_die_with_a_launcher_killed_by_sigkill(launch, tmp):
    """A test run or demo that dies must not leave workers retrying a broker that is gone."""
    launcher = launch(code=f"""
        import sys, time
        from pathlib import Path
        from stream.devtools.deployment import Deployment
        dep = Deployment("127.0.0.1:1", Path({str(tmp)!r}))
        worker = dep.start_worker([sys.executable, "-c", "import time; time.sleep(600)"])
        print(worker.pid, flush=True)
        time.sleep(600)
    """)  # fmt: skip
    worker = int(read_line(launcher, r"(\d+)").group(1))
    assert running(worker)
    launcher.kill()
    launcher.wait(10)
    assert eventually(lambda: not running(worker)), "the worker outlived its launcher"


DEMO = ("-m", "stream.cli", "demo", "--accounts", "40", "--days", "60", "--seconds", "60")


def start_demo(launch: Launch) -> tuple[subprocess.Popen, list[int]]:
    """A demo that has started its broker and worker and is feeding: its helper processes."""
    launcher = launch(sys.executable, *DEMO, stdout=subprocess.DEVNULL)  # alerts: unread
    assert launcher.stderr is not None
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        line = launcher.stderr.readline()
        assert line, f"the demo ended early (status {launcher.wait()})"
        if "alerts as the worker publishes them" in line:
            break
    helpers = descendants(launcher.pid)
    assert any("kafka.Kafka" in cmdline(pid) for pid in helpers), helpers
    assert any("worker" in cmdline(pid) for pid in helpers), helpers
    return launcher, helpers


@pytest.mark.slow
def test_a_terminated_demo_stops_everything_and_leaves_no_files(launch, tmp):
    launcher, helpers = start_demo(launch)
    assert scratch(tmp, "demo") and scratch(tmp, "kafka")
    launcher.terminate()
    _, err = launcher.communicate(timeout=120)
    assert "demo: interrupted" in err
    assert launcher.returncode == 1
    assert [pid for pid in helpers if running(pid)] == []
    assert scratch(tmp, "demo") == [] and scratch(tmp, "kafka") == []


@pytest.mark.slow
def test_a_demo_killed_by_sigkill_leaves_no_process_and_the_next_one_no_files(launch, tmp):
    launcher, helpers = start_demo(launch)
    launcher.kill()
    launcher.wait(10)
    assert eventually(lambda: [pid for pid in helpers if running(pid)] == [])
    left = scratch(tmp, "demo") + scratch(tmp, "kafka")
    assert len(left) == 2
    assert sweep_abandoned("demo") + sweep_abandoned("kafka") == left
