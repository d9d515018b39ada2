"""A minimal CS-tooling consumer of churnwatch alerts (kafka-python).

    python examples/alerts_consumer.py --bootstrap localhost:9092 --topic alerts

Keeps the current state of every episode: alerts are delivered at least once, so the same
``(alert_id, sequence)`` can arrive again after a worker restart. Keep the highest
``sequence`` per ``alert_id`` and ignore anything not newer. A record with ``kind``
"resolved" (it recovered) or "churned" (the subscription was cancelled) closes the episode.
"""

from __future__ import annotations

import argparse
import json

from kafka import KafkaConsumer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", default="localhost:9092")
    parser.add_argument("--topic", default="alerts")
    parser.add_argument("--group", default="cs-tool")
    parser.add_argument("--max", type=int, help="stop after this many new records")
    args = parser.parse_args()
    consumer = KafkaConsumer(
        args.topic,
        bootstrap_servers=args.bootstrap,
        group_id=args.group,
        auto_offset_reset="earliest",
        consumer_timeout_ms=10_000,
    )
    episodes: dict[str, dict] = {}  # alert_id -> latest record
    seen = 0
    for record in consumer:
        alert = json.loads(record.value)
        current = episodes.get(alert["alert_id"])
        if current is not None and current["sequence"] >= alert["sequence"]:
            continue  # a redelivery: already applied
        episodes[alert["alert_id"]] = alert
        print(
            f"{alert['kind']:>8} {alert['severity']:>8} {alert['account_id']} "
            f"{alert['signal']}: {alert.get('resolution') or alert['explanation']}"
        )
        seen += 1
        if args.max and seen >= args.max:
            break
    open_now = [a for a in episodes.values() if a["kind"] not in ("resolved", "churned")]
    print(f"{len(open_now)} open episodes")
    consumer.close()


if __name__ == "__main__":
    main()
