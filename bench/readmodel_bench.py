"""Health snapshots in the read model at scale: ingest rate, memory per account, list latency.

    python bench/readmodel_bench.py [--accounts 100000] [--days 180] [--rounds 5]

Snapshots are synthesized directly (seeded RNG), one per account per day, each a valid
``AccountHealth`` with its own name, owner (one of 200 CSMs), segment, MRR, renewal date and a
health that drifts from day to day. They are written day by day, as the worker publishes them
at each day close, through the store's script in batches of 1,000 (as the feed does). The
baseline, in the same run, is a plain pipelined ``HSET`` of the same payloads (account key,
``day`` and the JSON): what Redis costs without the read model's rules.

Redis runs without persistence for this bench (``appendonly no``, set at start): the test
server's ``appendfsync always`` makes every figure the disk's fsync latency, and 18 million
snapshots would write tens of GB of append-only file. The read model is rebuilt from the
topics (the health topic is compacted, the alerts topic kept), so production may well run it
so too; either way both sides of the ratio run under the same setting.

Memory per account is Redis's ``used_memory`` after the load minus before, divided by the
accounts: the latest snapshot, the 180-day history, the list row and the change log entry.

With the accounts loaded, the API runs in its own process (``bench/api_server.py``) and one
keep-alive client on loopback measures, per endpoint, p50 and p99 over ``--requests``
requests, the median of ``--rounds`` rounds:

* the all-accounts list sorted and filtered, the same query each time (the index's cached
  order and totals: paging through one list) and a different filter each time (a pass over
  every row per request);
* the same list right after 1,000 accounts changed (the index reads just those);
* the account JSON and the account page (trend and timeline over 180 days) of random accounts.

The index's first build (after the API starts, or a restart) is timed on its own. Results are
printed and written to bench/results/readmodel.json.
"""

from __future__ import annotations

import argparse
import http.client
import platform
import random
import statistics
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import quote

import orjson
import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.http_timing import latencies  # noqa: E402
from bench.results_file import write_results  # noqa: E402
from schemas.health import AccountHealth  # noqa: E402
from stream.devtools.brokers import free_port, wait_for_port  # noqa: E402
from stream.devtools.redis_server import RedisServer  # noqa: E402
from stream.sinks.readmodel_store import RedisReadModel  # noqa: E402

FIRST_DAY = date(2026, 1, 1)
SEGMENTS = ("starter", "pro", "enterprise")
PREFIX = "bench"


class Synth:
    """Per account, fixed facts and a health that drifts: one day's snapshots at a time."""

    def __init__(self, accounts: int, seed: int) -> None:
        self.rng = random.Random(seed)
        self.accounts = []
        for i in range(accounts):
            segment = self.rng.choice(SEGMENTS)
            self.accounts.append({
                "account_id": f"acct-{i:06d}", "account_name": f"Company {i:06d}",
                "owner": f"CSM {self.rng.randrange(200):03d}", "segment": segment,
                "plan": segment, "mrr": float(self.rng.randrange(15, 5000)),
                "seats": self.rng.randrange(1, 200),
                "renewal_date": (FIRST_DAY + timedelta(days=self.rng.randrange(200, 565)))
                .isoformat(),
            })  # fmt: skip
        self.overall = [self.rng.randrange(20, 101) for _ in range(accounts)]

    def day(self, n: int) -> list[dict]:
        today = FIRST_DAY + timedelta(days=n)
        ts = f"{today + timedelta(days=1)}T00:00:00Z"
        out = []
        for i, facts in enumerate(self.accounts):
            self.overall[i] = max(0, min(100, self.overall[i] + self.rng.randint(-4, 4)))
            overall = self.overall[i]
            logins = self.rng.randrange(0, 60)
            out.append({
                "schema_version": 1, **facts, "day": today.isoformat(), "ts": ts,
                "status": "active", "stage": "established", "tenure_days": 400 + n,
                "billing_period": "monthly",
                "last_activity": f"{today}T{self.rng.randrange(24):02d}:00:00Z",
                "health": {"overall": overall, "status": _status(overall), "usage": overall,
                           "adoption": min(100, overall + 10), "billing": 100, "support": 100,
                           "sentiment": 100},
                "risk_estimate": round(self.rng.random(), 4) if i % 2 else None,
                "open_signals": ["engagement_drop"] if overall < 50 else [],
                "metrics": {"logins_7d": logins * 5, "logins_28d": logins * 20,
                            "active_users_28d": 12, "active_days_28d": 20,
                            "minutes_28d": logins * 300, "feature_uses_28d": logins * 3,
                            "tickets_28d": 1, "days_since_last_use": 0, "nps_score": None,
                            "unpaid_failed_payment": False},
                "activity": {"logins": logins, "active_users": logins // 3 + 1,
                             "minutes": logins * 15, "feature_uses": logins // 2,
                             "tickets": int(self.rng.random() < 0.03),
                             "nps_score": 7 if self.rng.random() < 0.01 else None,
                             "invoice_paid": today.day == 1, "payments_failed": 0,
                             "invoices_overdue": 0},
            })  # fmt: skip
        return out


def _status(overall: int) -> str:
    return ("healthy" if overall >= 75 else "watch" if overall >= 50
            else "at_risk" if overall > 25 else "critical")  # fmt: skip


def _used(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])


def _load(url: str, synth: Synth, days: int) -> dict:
    """Every day through the store; the same payloads by plain HSET on the days ``timed``."""
    client = redis.Redis.from_url(url)
    client.config_set("appendonly", "no")
    store = RedisReadModel.from_url(url, prefix=PREFIX)
    before = _used(client)
    store_s, plain_s, store_n, plain_n = 0.0, 0.0, 0, 0
    hset_days = set(range(0, days, max(days // 6, 1)))  # about six days spread over the run
    first = synth.day(0)
    AccountHealth.model_validate(first[0])  # the synthesized payloads follow the contract
    for n in range(days):
        snapshots = first if n == 0 else synth.day(n)
        started = time.perf_counter()
        for i in range(0, len(snapshots), 1000):
            store.apply_health(snapshots[i : i + 1000])
        store_s += time.perf_counter() - started
        store_n += len(snapshots)
        if n in hset_days:
            started = time.perf_counter()
            for i in range(0, len(snapshots), 1000):
                pipe = client.pipeline(transaction=False)
                for snap in snapshots[i : i + 1000]:
                    pipe.hset(f"plain:{snap['account_id']}", mapping={
                        "day": snap["day"], "snap": orjson.dumps(snap)})  # fmt: skip
                pipe.execute()
            plain_s += time.perf_counter() - started
            plain_n += len(snapshots)
            for i in range(0, len(synth.accounts), 5000):
                client.delete(*[f"plain:{a['account_id']}" for a in synth.accounts[i : i + 5000]])
        if n % 10 == 9 or n == days - 1:
            print(f"day {n + 1}/{days}: store {store_n / store_s:,.0f} snapshots/s", flush=True)
    after = _used(client)
    rates = {"read_model": round(store_n / store_s), "plain_hset": round(plain_n / plain_s)}
    return {
        "snapshots_written": store_n,
        "snapshots_per_second": rates,
        "share_of_plain_hset": round(rates["read_model"] / rates["plain_hset"], 3),
        "used_memory_mb": round((after - before) / 2**20, 1),
        "bytes_per_account": round((after - before) / len(synth.accounts)),
        "history_bytes_per_account": client.strlen(f"{PREFIX}:hist:acct-000000"),
    }


def _api(url: str, synth: Synth, days: int, requests: int, rounds: int, rng) -> dict:
    port = free_port()
    api = subprocess.Popen([sys.executable, str(ROOT / "bench" / "api_server.py"), url, PREFIX,
                            str(port)])  # fmt: skip
    store = RedisReadModel.from_url(url, prefix=PREFIX)
    try:
        wait_for_port(port, 60, api)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        started = time.perf_counter()
        latencies(conn, ["/accounts?limit=1"])
        cold = (time.perf_counter() - started) * 1000
        n = len(synth.accounts)
        owners = [f"CSM {rng.randrange(200):03d}" for _ in range(requests)]
        sorts = ("revenue_at_risk", "mrr", "health", "renewal", "last_activity")
        same = "/accounts?sort=health&segment=pro&limit=50"
        ids = [synth.accounts[rng.randrange(n)]["account_id"] for _ in range(requests)]
        varied = [f"/accounts?sort={sorts[i % 5]}&segment={SEGMENTS[i % 3]}&owner={quote(o)}"
                  f"&limit=50" for i, o in enumerate(owners)]  # fmt: skip
        rows: dict[str, list[dict]] = {}
        for _ in range(rounds):
            for name, paths in (
                ("/accounts sorted+filtered, same query (cached order)", [same] * requests),
                ("/accounts sorted+filtered, new filter each request", varied),
                ("/accounts/{id}", [f"/accounts/{i}" for i in ids]),
                ("/view/accounts/{id} (page, 180-day charts)",
                 [f"/view/accounts/{i}" for i in ids]),
                ("/view/accounts (page, 50 rows)", ["/view/accounts?sort=health"] * requests),
            ):  # fmt: skip
                rows.setdefault(name, []).append(latencies(conn, paths))
        # After writes: 1,000 accounts get a new snapshot, then one list request reads them.
        after_writes = []
        for r in range(rounds):
            changed = synth.day(days + r)[:1000]
            store.apply_health(changed)
            after_writes.append(latencies(conn, [same])["p50_ms"])
        conn.close()
    finally:
        api.terminate()
        api.wait(10)
    summary = {name: {key: round(statistics.median(r[key] for r in runs), 2)
                      for key in ("p50_ms", "p99_ms")} for name, runs in rows.items()}  # fmt: skip
    summary["/accounts right after 1,000 accounts changed"] = {
        "median_ms": round(statistics.median(after_writes), 2)}  # fmt: skip
    return {"index_first_build_ms": round(cold, 1), "latency_median_of_rounds": summary}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args()
    synth = Synth(args.accounts, args.seed)
    started = time.perf_counter()
    with RedisServer() as server:
        load = _load(server.url, synth, args.days)
        print(orjson.dumps(load).decode(), flush=True)
        api = _api(server.url, synth, args.days, args.requests, args.rounds,
                   random.Random(args.seed))  # fmt: skip
    result = {
        "command": "python bench/readmodel_bench.py " + " ".join(sys.argv[1:]),
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, python "
        f"{platform.python_version()}",
        "accounts": args.accounts,
        "days": args.days,
        **load,
        **api,
        "requests_per_endpoint_per_round": args.requests,
        "rounds": args.rounds,
        "wall_seconds": round(time.perf_counter() - started),
    }
    print(orjson.dumps(api).decode())
    print(f"written to {write_results('readmodel', result)}")


if __name__ == "__main__":
    main()
