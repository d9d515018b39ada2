"""A churnwatch deployment on a real broker, for tests, benchmarks and the demo.

Each :class:`Deployment` gets its own topics and consumer group on a shared broker, runs
``churnwatch`` commands and workers as subprocesses (so a test can ``kill -9`` one), and reads
topics back with kafka-python the way CS tooling would. The subprocesses are tied to the process
that runs the deployment (:func:`~stream.devtools.brokers.tied_to_launcher`): a test run or demo
that dies leaves no worker behind, retrying a broker that has gone with it.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from stream.devtools.brokers import free_port, tied_to_launcher

_RESTORED = re.compile(r"^\[(\S+ \S+)\].*partition (\d+): \d+ accounts restored", re.M)


class Deployment:
    """One isolated churnwatch deployment on a shared broker: its own topics and group."""

    def __init__(
        self, bootstrap: str, workdir: Path, partitions: int = 3, prefix: str = "", **extra: str
    ) -> None:
        tag = prefix + uuid.uuid4().hex[:8]
        self.bootstrap = bootstrap
        self.workdir = workdir
        self.partitions = partitions
        self.topics = {
            "usage": f"usage-{tag}",
            "billing": f"billing-{tag}",
            "alerts": f"alerts-{tag}",
            "dead_letter": f"dead-{tag}",
            "health": f"health-{tag}",
            "actions": f"actions-{tag}",
        }
        self.app_id = f"cw-{tag}"
        self.env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "CHURNWATCH_APP_ID": self.app_id,
            "CHURNWATCH_USAGE_TOPIC": self.topics["usage"],
            "CHURNWATCH_BILLING_TOPIC": self.topics["billing"],
            "CHURNWATCH_ALERTS_TOPIC": self.topics["alerts"],
            "CHURNWATCH_DEAD_LETTER_TOPIC": self.topics["dead_letter"],
            "CHURNWATCH_HEALTH_TOPIC": self.topics["health"],
            "CHURNWATCH_ACTIONS_TOPIC": self.topics["actions"],
            "CHURNWATCH_PARTITIONS": str(partitions),
            "CHURNWATCH_STORE": "memory",
            "CHURNWATCH_DATA_DIR": str(workdir / "data"),
            "CHURNWATCH_LOG_LEVEL": "warning",
            "CHURNWATCH_SESSION_TIMEOUT_SECONDS": "10",
            **extra,
        }
        self.workers: list[subprocess.Popen] = []

    def cli(self, *args: str, check: bool = True, stdin: bytes | None = None):
        done = subprocess.run(
            [sys.executable, "-m", "stream.cli", *args], env=self.env, input=stdin,
            capture_output=True, timeout=600, check=False, **tied_to_launcher(),
        )  # fmt: skip
        if check and done.returncode != 0:
            raise AssertionError(f"churnwatch {' '.join(args)} failed:\n{done.stderr.decode()}")
        return done

    def cli_script(self, path: str, *args: str) -> subprocess.CompletedProcess:
        """Run a script of the repository (an example) the way its docs say."""
        root = Path(__file__).resolve().parents[2]
        done = subprocess.run([sys.executable, str(root / path), *args], env=self.env,
                              capture_output=True, timeout=300, check=False,
                              **tied_to_launcher())  # fmt: skip
        if done.returncode != 0:
            raise AssertionError(f"{path} failed:\n{done.stderr.decode()}")
        return done

    def start_worker(self, command: list[str] | None = None, **extra: str) -> subprocess.Popen:
        env = {**self.env, "CHURNWATCH_WEB_PORT": str(free_port()), **extra}
        with (self.workdir / f"worker-{len(self.workers)}.log").open("wb") as log:
            worker = subprocess.Popen(
                command or [sys.executable, "-m", "stream.cli", "worker"], env=env, stdout=log,
                stderr=subprocess.STDOUT, **tied_to_launcher(),
            )  # fmt: skip
        self.workers.append(worker)
        return worker

    def kill(self, worker: subprocess.Popen) -> None:
        worker.send_signal(signal.SIGKILL)
        worker.wait(30)

    def stop_all(self) -> None:
        for worker in self.workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        for worker in self.workers:
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait(10)

    def worker_logs(self) -> str:
        return "\n".join(
            path.read_text(errors="replace")[-4000:] for path in self.workdir.glob("worker-*.log")
        )

    # --- reading back -----------------------------------------------------------------------

    def input_end_offsets(self) -> dict[TopicPartition, int]:
        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap)
        try:
            tps = [
                TopicPartition(self.topics[name], p)
                for name in ("usage", "billing")
                for p in range(self.partitions)
            ]
            return consumer.end_offsets(tps)
        finally:
            consumer.close()

    def committed(self) -> dict[TopicPartition, int]:
        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap)
        try:
            offsets = admin.list_group_offsets(self.app_id).get(self.app_id, {})
        except KafkaError:
            return {}  # the group does not exist yet (no worker has joined)
        finally:
            admin.close()
        return {TopicPartition(tp.topic, tp.partition): meta.offset for tp, meta in offsets.items()}

    def group(self) -> tuple[str, int]:
        """The worker group's state (``Stable`` once a rebalance is over) and member count."""
        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap)
        try:
            info = admin.describe_groups([self.app_id]).get(self.app_id, {})
        except KafkaError:
            return "", 0
        finally:
            admin.close()
        return str(info.get("group_state", "")), len(info.get("members") or [])

    def restorations(self, worker: int) -> list[tuple[datetime, int]]:
        """When a worker took over which partition: its "partition N: ... restored" log lines
        (needs ``CHURNWATCH_LOG_LEVEL=info``)."""
        path = self.workdir / f"worker-{worker}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return [(datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f"), int(partition))
                for stamp, partition in _RESTORED.findall(text)]  # fmt: skip

    def restored_partitions(self, worker: int) -> set[int]:
        return {partition for _, partition in self.restorations(worker)}

    def progress(self) -> float:
        """Share of the input records whose offsets the worker group has committed."""
        done, total = self.consumed()
        return done / total if total else 1.0

    def consumed(self) -> tuple[int, int]:
        """(records whose offsets the group committed, records in the input topics)."""
        ends = self.input_end_offsets()
        committed = self.committed()
        done = sum(min(committed.get(tp, 0), end) for tp, end in ends.items())
        return done, sum(ends.values())

    def measure_rate(self, timeout: float, low: float = 0.1, high: float = 0.9) -> float:
        """Records/s while the group's committed offsets went from ``low`` to ``high`` of the
        input, which leaves start-up and the last commit interval out of the figure."""
        deadline = time.monotonic() + timeout
        first = None
        while time.monotonic() < deadline:
            done, total = self.consumed()
            now = time.monotonic()
            if first is None and done >= low * total:
                first = (now, done)
            if first is not None and done >= high * total:
                return (done - first[1]) / (now - first[0])
            time.sleep(0.25)
        raise AssertionError(f"no rate within {timeout}s:\n{self.worker_logs()}")

    def wait_for(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            for worker in self.workers:
                if worker.poll() not in (None, -signal.SIGKILL, 0):
                    raise AssertionError(f"a worker died:\n{self.worker_logs()}")
            time.sleep(0.5)
        try:
            ends, committed = self.input_end_offsets(), self.committed()
            lag = {
                f"{tp.topic}:{tp.partition}": (committed.get(tp), end) for tp, end in ends.items()
            }
        except Exception as exc:  # the broker itself may be the problem
            lag = {"error": str(exc)}
        raise AssertionError(
            f"timed out waiting for {what}; committed vs end offsets {lag}\n{self.worker_logs()}"
        )

    def read(self, topic_key: str) -> list:
        """Every record of one of the deployment's topics, as CS tooling would read them."""
        topic = self.topics[topic_key]
        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, consumer_timeout_ms=2000,
                                 auto_offset_reset="earliest")  # fmt: skip
        try:
            partitions = consumer.partitions_for_topic(topic) or set()
            tps = [TopicPartition(topic, p) for p in sorted(partitions)]
            consumer.assign(tps)
            consumer.seek_to_beginning(*tps)
            ends = consumer.end_offsets(tps)
            records = []
            while any(consumer.position(tp) < ends[tp] for tp in tps):
                for batch in consumer.poll(timeout_ms=1000).values():
                    records.extend(batch)
            return records
        finally:
            consumer.close()
