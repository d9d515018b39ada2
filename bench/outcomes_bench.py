"""What the alert outcomes cost the read model: feed writes and the ``GET /portfolio`` report.

    python bench/outcomes_bench.py [--accounts 50000] [--rounds 5]

Synthetic accounts in a real Redis: each starts a subscription and renews monthly for six
months; a third are alerted (one to three episodes, most resolved) and a tenth cancel. The
billing events go through ``RedisPortfolio.apply`` in batches of 1,000, as the feed writes
them, and the alert records through ``apply_alerts``. Per round:

* **writes**: the portfolio's billing write with the outcomes' part (``apply``) against the
  outcomes' part alone (``RedisOutcomes.apply_billing``) on a fresh prefix, so the added
  share is the second over the first;
* **report**: ``RedisPortfolio.report()`` (months plus outcomes, what ``GET /portfolio`` and
  the page read) in a new process's first call (**cold**: every episode judged) and in the
  next (**warm**: nothing written since, the kept report), against the month counters alone
  (``monthly(months())``, the report before the outcomes), timed back to back.

Medians of the rounds are printed and written to bench/results/outcomes.json.
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

from bench.results_file import write_results  # noqa: E402
from schemas.events import decode_event  # noqa: E402
from stream.core.portfolio import monthly  # noqa: E402
from stream.devtools.redis_server import RedisServer  # noqa: E402
from stream.sinks.portfolio_store import RedisPortfolio  # noqa: E402

T0 = datetime(2026, 1, 1, tzinfo=UTC)
REASONS = ("too expensive", "budget cut", "switched to a competitor", None, "no idea")


def _iso(day: float) -> str:
    return (T0 + timedelta(days=day)).isoformat().replace("+00:00", "Z")


def _event(kind: str, account: str, day: float, n: int, **fields) -> bytes:
    import orjson

    body = {"event_id": f"e-{account}-{n}", "account_id": account, "ts": _iso(day),
            "type": kind, **fields}  # fmt: skip
    return orjson.dumps(body)


def build(accounts: int, rng: random.Random) -> tuple[list, list[dict]]:
    billing, alerts = [], []
    for i in range(accounts):
        account, start = f"acct-{i:06d}", rng.uniform(0, 25)
        lines = [_event("subscription_started", account, start, 0, plan="pro", mrr=100.0)]
        cancel = rng.uniform(40, 170) if rng.random() < 0.1 else None
        for month in range(1, 7):
            day = start + 30 * month
            if cancel is not None and day > cancel:
                break
            lines.append(_event("subscription_renewed", account, day, month, plan="pro",
                                mrr=100.0))  # fmt: skip
        if cancel is not None:
            reason = rng.choice(REASONS)
            lines.append(_event("subscription_cancelled", account, cancel, 99,
                                **({"reason": reason} if reason else {})))  # fmt: skip
        billing += [decode_event(line) for line in lines]
        if rng.random() < 1 / 3:
            at = start + rng.uniform(10, 60)
            for k in range(rng.randint(1, 3)):
                begin = at + 40 * k
                alert_id = f"al_{i:06d}_{k}"
                alerts.append({"alert_id": alert_id, "account_id": account, "kind": "opened",
                               "ts": _iso(begin), "episode_start": _iso(begin)})  # fmt: skip
                if rng.random() < 0.8:
                    alerts.append({"alert_id": alert_id, "account_id": account,
                                   "kind": "resolved", "ts": _iso(begin + rng.uniform(3, 30)),
                                   "episode_start": _iso(begin)})  # fmt: skip
    events = sorted(billing, key=lambda e: e.ts)
    return [(0, offset, e) for offset, e in enumerate(events)], alerts


def _batches(items: list, size: int = 1000):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    records, alerts = build(args.accounts, random.Random(7))
    events = [e for _, _, e in records]
    with RedisServer() as server:
        client = redis.Redis.from_url(server.url)
        full, outcomes_only, cold, warm, months_only = [], [], [], [], []
        for round_ in range(args.rounds):
            folio = RedisPortfolio(client, f"b{round_}")
            started = time.perf_counter()
            for batch in _batches(records):
                folio.apply(batch)
            full.append(time.perf_counter() - started)
            for batch in _batches(alerts):
                folio.apply_alerts(batch)
            alone = RedisPortfolio(client, f"o{round_}").outcomes
            started = time.perf_counter()
            for batch in _batches(events):
                alone.apply_billing(batch)
            outcomes_only.append(time.perf_counter() - started)
            for _ in range(3):
                fresh = RedisPortfolio(client, f"b{round_}")  # a new process: nothing kept
                started = time.perf_counter()
                rows = fresh.report()
                cold.append(time.perf_counter() - started)
                started = time.perf_counter()
                fresh.report()
                warm.append(time.perf_counter() - started)
                started = time.perf_counter()
                monthly(folio.months())
                months_only.append(time.perf_counter() - started)
            client.flushdb()
    episodes = sum(r["alert_outcomes"]["alerted"] for r in rows)
    result = {
        "date": datetime.now(UTC).date().isoformat(), "host": platform.node(),
        "accounts": args.accounts, "billing_events": len(records), "alert_records": len(alerts),
        "episodes": episodes, "rounds": args.rounds,
        "billing_write_events_per_s": round(len(records) / statistics.median(full)),
        "outcomes_share_of_billing_write": round(
            statistics.median(outcomes_only) / statistics.median(full), 3),
        "report_cold_ms_p50": round(statistics.median(cold) * 1000, 1),
        "report_warm_ms_p50": round(statistics.median(warm) * 1000, 1),
        "months_only_report_ms_p50": round(statistics.median(months_only) * 1000, 1),
    }  # fmt: skip
    for key, value in result.items():
        print(f"{key}: {value}")
    print(f"results written to {write_results('outcomes', result)}")


if __name__ == "__main__":
    main()
