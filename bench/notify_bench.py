"""Notifications per second, and the latency notifying adds after an alert, on real Kafka.

    python bench/notify_bench.py [--alerts 3000] [--rounds 3] [--rate 50]

A local webhook (stream/devtools/webhook_receiver.py, answering 200) receives JSON
notifications (signed, as a route with a secret sends them) from ``churnwatch notify``.

1. Throughput: ``--alerts`` opened-alert records wait in the alerts topic; a notifier started
   with ``--from-beginning`` drains them. The rate is notifications accepted per second from
   the first to the last one; median of ``--rounds``, each a fresh consumer group and outbox.
2. Added latency: alerts are produced at ``--rate`` per second into a topic that stamps each
   record with the broker's append time (LogAppendTime); latency is the webhook's receive time
   minus the alert record's append time. p50, p90 and p99 over every alert of every round, and
   the worst round's p99.

Results are printed and written to bench/results/notify.json.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.results_file import write_results  # noqa: E402
from stream.devtools.brokers import KAFKA_VERSION, ApacheKafka  # noqa: E402
from stream.devtools.deployment import Deployment  # noqa: E402
from stream.devtools.webhook_receiver import WebhookReceiver  # noqa: E402

SECRET_ENV = "CW_BENCH_SECRET"


def _alert(n: int) -> dict:
    return {"alert_id": f"al-bench-{n:07d}", "sequence": 0, "kind": "opened",
            "account_id": f"acct-{n:07d}", "ts": "2026-03-02T00:00:00Z",
            "signal": "account_at_risk", "severity": "high", "explanation": "Logins fell 60%",
            "reasons": [{"signal": "engagement_drop", "explanation": "Logins fell 60%"}],
            "health": {"overall": 30}, "playbook": "Call the champion.",
            "account": {"name": f"Bench {n}", "owner": "Priya Shah", "segment": "pro",
                        "mrr": 300.0}}  # fmt: skip


def _deployment(bootstrap: str, work: Path, append_time: bool) -> Deployment:
    dep = Deployment(bootstrap, work, partitions=3, prefix="nt", **{SECRET_ENV: "bench"})
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    config = {"message.timestamp.type": "LogAppendTime"} if append_time else {}
    admin.create_topics([NewTopic(dep.topics["alerts"], 3, 1, topic_configs=config)])
    admin.close()
    return dep


def _notifier(dep: Deployment, work: Path, url: str, tag: str) -> None:
    config = work / f"notify-{tag}.toml"
    config.write_text(f'[[route]]\nname = "all"\nurl = "{url}"\nformat = "json"\n'
                      f'secret_env = "{SECRET_ENV}"\n')  # fmt: skip
    dep.start_worker([sys.executable, "-m", "stream.cli", "notify", "--config", str(config),
                      "--outbox", str(work / f"outbox-{tag}.db"), "--from-beginning"])  # fmt: skip


def throughput(bootstrap: str, work: Path, alerts: int, round_: int) -> float:
    dep = _deployment(bootstrap, work, append_time=False)
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20)
    for n in range(alerts):
        producer.send(dep.topics["alerts"], key=f"acct-{n:07d}".encode(),
                      value=orjson.dumps(_alert(n)))  # fmt: skip
    producer.flush()
    producer.close()
    with WebhookReceiver() as hook:
        _notifier(dep, work, hook.url, f"tp{round_}")
        dep.wait_for(lambda: len(hook.accepted) >= alerts, 600, "every notification")
        dep.stop_all()
        times = sorted(a.at for a in hook.accepted)
    return (len(times) - 1) / (times[-1] - times[0])


def latency(bootstrap: str, work: Path, alerts: int, rate: int, round_: int) -> list[float]:
    dep = _deployment(bootstrap, work, append_time=True)
    with WebhookReceiver() as hook:
        _notifier(dep, work, hook.url, f"lat{round_}")
        time.sleep(6)  # joined the group before the first alert
        producer = KafkaProducer(bootstrap_servers=bootstrap)
        start = time.monotonic()
        for n in range(alerts):
            delay = start + n / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            producer.send(dep.topics["alerts"], key=f"acct-{n:07d}".encode(),
                          value=orjson.dumps(_alert(n)))  # fmt: skip
            producer.flush()
        producer.close()
        dep.wait_for(lambda: len(hook.accepted) >= alerts, 300, "every notification")
        dep.stop_all()
        received = {a.key: a.at for a in hook.accepted}
    appended = {}
    for record in dep.read("alerts"):
        appended[f"all:{orjson.loads(record.value)['alert_id']}:0"] = record.timestamp / 1000
    return sorted((received[key] - appended[key]) * 1000 for key in appended)


def _pick(values: list[float], q: float) -> float:
    return round(values[min(len(values) - 1, int(q * len(values)))], 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--alerts", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=int, default=50, help="alerts/s in the latency runs")
    parser.add_argument("--latency-alerts", type=int, default=500)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="churnwatch-notify-bench-"))
    rates, runs = [], []
    with ApacheKafka(heap="1g") as broker:
        for n in range(args.rounds):
            rates.append(throughput(broker.bootstrap, work, args.alerts, n))
            print(f"round {n + 1}: {rates[-1]:,.0f} notifications/s", flush=True)
            runs.append(latency(broker.bootstrap, work, args.latency_alerts, args.rate, n))
            print(f"round {n + 1}: latency p50 {_pick(runs[-1], 0.5)} ms, "
                  f"p99 {_pick(runs[-1], 0.99)} ms", flush=True)  # fmt: skip
    every = sorted(x for run in runs for x in run)
    result = {
        "command": "python bench/notify_bench.py " + " ".join(sys.argv[1:]),
        "machine": f"{platform.machine()}, python {platform.python_version()}",
        "broker": f"Apache Kafka {KAFKA_VERSION} (KRaft, local)",
        "webhook": "local HTTP server, 200 to every request; JSON bodies signed with HMAC",
        "throughput": {"alerts": args.alerts,
                       "notifications_per_s_median": round(statistics.median(rates)),
                       "all": [round(r) for r in rates]},
        "latency_ms": {"alerts_per_round": args.latency_alerts, "rate": args.rate,
                       "p50": _pick(every, 0.5), "p90": _pick(every, 0.9),
                       "p99": _pick(every, 0.99),
                       "worst_round_p99": max(_pick(run, 0.99) for run in runs)},
    }  # fmt: skip
    print(orjson.dumps(result).decode())
    print(f"written to {write_results('notify', result)}")


if __name__ == "__main__":
    main()
