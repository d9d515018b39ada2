"""Does Faust's exactly-once guarantee survive a kill -9? Count duplicates on the output topic.

    python bench/eos_probe.py [--records 20000] [--rounds 3] [--partitions 3]

churnwatch's worker is at-least-once with idempotent alert ids and refuses
``CHURNWATCH_PROCESSING_GUARANTEE=exactly_once`` (stream/kafka/settings.py), because
faust-streaming's issues #517, #177 and #323 report duplicates and stalls with it. This probe
checks that claim on the project's reference broker (Apache Kafka, KRaft, started by
stream/devtools/brokers.py) with the smallest possible Faust app, bench/eos_passthrough.py, which
forwards each input record unchanged to an output topic.

Three modes, each for R rounds: ``at_least_once``; ``exactly_once``; and
``exactly_once_output_consumed``, exactly_once with a second agent that reads the output
topic. The third exists because Faust (faust-streaming 0.15) sends a record inside a
transaction only when its consumer has metadata for the destination topic, i.e. when the worker
itself consumes that topic; any other destination (churnwatch's alerts topic, this probe's
output) gets Faust's plain producer, and only the input offsets are committed transactionally.

Each round: fresh input and output topics, N records with unique sequence numbers produced with
kafka-python, the passthrough started as a subprocess, its process group killed with SIGKILL
once a share of the output exists (by the output's high watermark; the share is drawn between
0.3 and 0.7 per round from ``--seed``, the same draws for every mode, so that the kill does not
always land right after Faust's count-based commit, every 10,000 records), a new passthrough
started, and a wait until the group has committed every input offset (or a timeout, reported).
The worker is then stopped with SIGTERM (SIGKILL after 30 s) and the output topic is read from
the beginning twice, with ``read_committed`` (what a transactional consumer sees; the read stops
at the last stable offset) and ``read_uncommitted`` (what every other consumer sees). Per round
and as medians: records on the topic, distinct inputs seen, duplicates (records beyond the
first per input, with a few examples and their partition:offset), inputs missing, transaction
markers on the output (0: nothing was written transactionally), the offsets left at the kill,
whether the worker reached the end, and the errors Faust logged ("Has not committed", tracebacks,
fencing).

Results are printed and written to bench/results/exactly_once.json; worker logs stay in the
temporary directory printed at the start.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from importlib.metadata import version
from pathlib import Path
from typing import Any

import orjson
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import KafkaError

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.results_file import write_results  # noqa: E402
from stream.devtools.brokers import KAFKA_VERSION, ApacheKafka  # noqa: E402

LIBRARIES = ("faust-streaming", "aiokafka", "kafka-python")
PASSTHROUGH = ROOT / "bench" / "eos_passthrough.py"
# name -> (EOS_GUARANTEE, EOS_CONSUME_OUTPUT): the third is exactly_once with an agent that
# also reads the output topic, the one case where Faust sends the output in its transactions.
MODES = {
    "at_least_once": ("at_least_once", "0"),
    "exactly_once": ("exactly_once", "0"),
    "exactly_once_output_consumed": ("exactly_once", "1"),
}
# Worker log lines worth counting: Faust's stalled-commit warning, crashes, fencing.
PATTERNS = {
    "has_not_committed": re.compile(r"Has not committed"),
    "traceback": re.compile(r"Traceback \(most recent call last\)"),
    "error_lines": re.compile(r"\b(ERROR|CRITICAL)\b"),
    "fenced": re.compile(r"[Ff]enced"),
    "crashed": re.compile(r"[Cc]rashed reason"),
}


# --- topics and offsets ---------------------------------------------------------------------


def create_topics(bootstrap: str, names: list[str], partitions: int) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(name, partitions, 1) for name in names])
    finally:
        admin.close()


def produce(bootstrap: str, topic: str, records: int, partitions: int) -> None:
    """Values 0..records-1 (also the keys), spread round-robin over the partitions."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20)
    try:
        for n in range(records):
            data = str(n).encode()
            producer.send(topic, key=data, value=data, partition=n % partitions)
        producer.flush()
    finally:
        producer.close()


def end_offsets(bootstrap: str, topic: str, partitions: int, isolation: str) -> dict[int, int]:
    """High watermarks (``read_uncommitted``) or last stable offsets (``read_committed``)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, isolation_level=isolation)
    try:
        ends = consumer.end_offsets([TopicPartition(topic, p) for p in range(partitions)])
        return {tp.partition: offset for tp, offset in ends.items()}
    finally:
        consumer.close()


def committed(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    """The group's committed offsets on the input topic ({} before the first commit)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        offsets = admin.list_group_offsets(group).get(group, {})
    except KafkaError:
        return {}
    finally:
        admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic}


def read_topic(
    bootstrap: str, topic: str, partitions: int, isolation: str, idle_s: float = 5.0,
    timeout_s: float = 180.0,
) -> tuple[list[tuple[bytes, int, int]], str]:  # fmt: skip
    """Every (value, partition, offset) on the topic as a consumer with this isolation level
    sees it, and why the
    read stopped: ``end`` (every position reached the end offset, which for read_committed is
    the last stable offset), ``idle`` (polls returned nothing for ``idle_s``) or ``timeout``."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, isolation_level=isolation, enable_auto_commit=False,
        auto_offset_reset="earliest",
    )  # fmt: skip
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)  # the LSO with read_committed
        values: list[tuple[bytes, int, int]] = []
        started = last_record = time.monotonic()
        while True:
            if all(consumer.position(tp) >= ends[tp] for tp in tps):
                return values, "end"
            now = time.monotonic()
            if now - last_record > idle_s:
                return values, "idle"
            if now - started > timeout_s:
                return values, "timeout"
            for batch in consumer.poll(timeout_ms=500).values():
                values.extend((r.value, r.partition, r.offset) for r in batch)
                last_record = time.monotonic()
    finally:
        consumer.close()


def tally(read: list[tuple[bytes, int, int]], records: int) -> dict[str, Any]:
    counts = Counter(value for value, _, _ in read)
    expected = {str(n).encode() for n in range(records)}
    seen = expected & counts.keys()
    repeated = sorted((v for v in seen if counts[v] > 1), key=int)[:5]
    return {
        "records": len(read),
        "distinct_inputs": len(seen),
        "duplicates": sum(counts[v] - 1 for v in seen),
        "missing": records - len(seen),
        "unexpected": sum(c for v, c in counts.items() if v not in expected),
        # A few repeated inputs and where each copy sits ("partition:offset").
        "duplicate_examples": {
            v.decode(): [f"{p}:{o}" for value, p, o in read if value == v] for v in repeated
        },
    }


# --- the worker -----------------------------------------------------------------------------


class Passthrough:
    """bench/eos_passthrough.py as a subprocess in its own process group, logging to a file."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, str(PASSTHROUGH)], env=env, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(30)

    def stop(self, timeout: float = 30.0) -> str:
        """SIGTERM, then SIGKILL if it does not stop in time; says which it took."""
        if not self.alive():
            return f"had exited ({self.process.returncode})"
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
            return "stopped"
        except subprocess.TimeoutExpired:
            self.kill()
            return f"killed after {timeout:.0f} s without stopping"


def log_findings(logs: list[Path]) -> dict[str, Any]:
    text = "\n".join(path.read_text(errors="replace") for path in logs if path.exists())
    found: dict[str, Any] = {name: len(rx.findall(text)) for name, rx in PATTERNS.items()}
    lines = [line.strip() for line in text.splitlines()
             if any(rx.search(line) for rx in PATTERNS.values())]  # fmt: skip
    # Distinct messages, numbers and ids stripped so repeats collapse; the first few only.
    distinct: dict[str, str] = {}
    for line in lines:
        shape = re.sub(r"\d+|0x[0-9a-f]+", "#", line)[-160:]
        distinct.setdefault(shape, line[:300])
    found["examples"] = list(distinct.values())[:8]
    return found


# --- one round ------------------------------------------------------------------------------


def one_round(
    bootstrap: str, work: Path, mode: str, records: int, partitions: int,
    session_timeout: int, finish_timeout: float, kill_at: float,
) -> dict[str, Any]:  # fmt: skip
    guarantee, consume_output = MODES[mode]
    tag = f"{mode[:3]}{consume_output}-{uuid.uuid4().hex[:8]}"
    source, sink, group = f"eos-in-{tag}", f"eos-out-{tag}", f"eos-{tag}"
    create_topics(bootstrap, [source, sink], partitions)
    produce(bootstrap, source, records, partitions)
    env = {
        **os.environ,
        "EOS_BOOTSTRAP": bootstrap,
        "EOS_APP_ID": group,
        "EOS_INPUT": source,
        "EOS_OUTPUT": sink,
        "EOS_GUARANTEE": guarantee,
        "EOS_CONSUME_OUTPUT": consume_output,
        "EOS_PARTITIONS": str(partitions),
        "EOS_SESSION_TIMEOUT": str(session_timeout),
        "EOS_DATADIR": str(work / tag),
    }
    logs = [work / f"{tag}-first.log", work / f"{tag}-restarted.log"]
    result: dict[str, Any] = {"group": group, "kill_at_output_share": round(kill_at, 3)}

    first = Passthrough(env, logs[0])
    started = time.monotonic()
    threshold = kill_at * records
    while sum(end_offsets(bootstrap, sink, partitions, "read_uncommitted").values()) < threshold:
        if not first.alive() or time.monotonic() - started > finish_timeout:
            result["first_worker"] = "exited" if not first.alive() else "too slow"
            break
        time.sleep(0.1)
    first.kill()
    # Per partition, right after the kill: what the dead worker left behind.
    high = end_offsets(bootstrap, sink, partitions, "read_uncommitted")
    stable = end_offsets(bootstrap, sink, partitions, "read_committed")
    done = committed(bootstrap, group, source)
    result["at_kill"] = {
        "seconds_after_start": round(time.monotonic() - started, 1),
        "output_high_watermarks": [high[p] for p in range(partitions)],
        "output_last_stable_offsets": [stable[p] for p in range(partitions)],
        "input_committed_offsets": [done.get(p) for p in range(partitions)],
    }

    second = Passthrough(env, logs[1])
    restarted = time.monotonic()
    ends = end_offsets(bootstrap, source, partitions, "read_uncommitted")
    reached_end = False
    while time.monotonic() - restarted < finish_timeout:
        done = committed(bootstrap, group, source)
        if all(done.get(p, -1) >= end for p, end in ends.items()):
            reached_end = True
            break
        if not second.alive():
            break
        time.sleep(0.5)
    done = committed(bootstrap, group, source)
    result["reached_end"] = reached_end
    result["seconds_to_end_after_restart"] = (
        round(time.monotonic() - restarted, 1) if reached_end else None
    )
    result["input_committed"] = sum(min(done.get(p, 0), end) for p, end in ends.items())
    result["restarted_worker"] = second.stop()

    for isolation in ("read_committed", "read_uncommitted"):
        values, stopped = read_topic(bootstrap, sink, partitions, isolation)
        result[isolation] = {**tally(values, records), "read_stopped_at": stopped}
    result["output_high_watermark"] = high = sum(
        end_offsets(bootstrap, sink, partitions, "read_uncommitted").values()
    )
    # Offsets that hold no record are transaction markers: 0 means nothing was transactional.
    result["output_transaction_markers"] = high - result["read_uncommitted"]["records"]
    result["output_last_stable_offset"] = sum(
        end_offsets(bootstrap, sink, partitions, "read_committed").values()
    )
    result["worker_log"] = log_findings(logs)
    result["logs"] = [str(path) for path in logs]
    return result


def summarise(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "rounds_reaching_end": sum(r["reached_end"] for r in rounds),
        "rounds": len(rounds),
    }
    finished = [r["seconds_to_end_after_restart"] for r in rounds if r["reached_end"]]
    summary["seconds_to_end_after_restart_median"] = (
        statistics.median(finished) if finished else None
    )
    for isolation in ("read_committed", "read_uncommitted"):
        summary[isolation] = {
            key: statistics.median(r[isolation][key] for r in rounds)
            for key in ("records", "distinct_inputs", "duplicates", "missing")
        }
        summary[isolation]["duplicates_all"] = [r[isolation]["duplicates"] for r in rounds]
        summary[isolation]["missing_all"] = [r[isolation]["missing"] for r in rounds]
    summary["output_transaction_markers_all"] = [r["output_transaction_markers"] for r in rounds]
    summary["has_not_committed_lines_all"] = [r["worker_log"]["has_not_committed"] for r in rounds]
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--session-timeout", type=int, default=10)
    parser.add_argument(
        "--finish-timeout",
        type=float,
        default=180.0,
        help="seconds the restarted worker gets to commit every input offset",
    )
    parser.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES))
    parser.add_argument("--seed", type=int, default=1, help="for the kill points")
    args = parser.parse_args()  # fmt: skip
    work = Path(tempfile.mkdtemp(prefix="churnwatch-eos-"))
    print(f"worker logs in {work}", flush=True)
    draw = random.Random(args.seed)
    kill_points = [draw.uniform(0.3, 0.7) for _ in range(args.rounds)]
    rounds: dict[str, list[dict[str, Any]]] = {mode: [] for mode in args.modes}
    with ApacheKafka() as broker:
        for mode in args.modes:
            for n in range(args.rounds):
                outcome = one_round(
                    broker.bootstrap, work, mode, args.records, args.partitions,
                    args.session_timeout, args.finish_timeout, kill_points[n],
                )  # fmt: skip
                rounds[mode].append(outcome)
                rc, ru = outcome["read_committed"], outcome["read_uncommitted"]
                print(
                    f"{mode} round {n + 1}: killed at {kill_points[n]:.0%}, "
                    f"reached end {outcome['reached_end']}, "
                    f"read_committed {rc['records']} records / {rc['duplicates']} duplicates / "
                    f"{rc['missing']} missing ({rc['read_stopped_at']}), read_uncommitted "
                    f"{ru['records']} / {ru['duplicates']} / {ru['missing']}, "
                    f"'Has not committed' x{outcome['worker_log']['has_not_committed']}",
                    flush=True,
                )
    result = {
        "command": "python bench/eos_probe.py " + " ".join(sys.argv[1:]),
        "machine": f"{platform.machine()}, python {platform.python_version()}",
        "broker": f"Apache Kafka {KAFKA_VERSION} (KRaft, local)",
        "libraries": {name: version(name) for name in LIBRARIES},
        "records": args.records,
        "partitions": args.partitions,
        "session_timeout_s": args.session_timeout,
        "summary": {g: summarise(r) for g, r in rounds.items()},
        "rounds": rounds,
    }
    print(orjson.dumps(result["summary"], option=orjson.OPT_INDENT_2).decode())
    print(f"written to {write_results('exactly_once', result)}")


if __name__ == "__main__":
    main()
