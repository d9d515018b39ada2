"""Read-model write throughput and API latency with 100k accounts in a real Redis.

    python bench/api_bench.py [--accounts 100000] [--requests 3000] [--rounds 3]

Alert records are cloned from a replayed simulated log onto ``--accounts`` account ids (with
varied health, segments and MRR), then written with the read model's script in batches of
1,000, as the feed does. The baseline, in the same rounds, is a plain pipelined ``HSET`` of the
same payloads: what Redis costs without the read model's rules. With the accounts loaded, the
API runs in its own process (``bench/api_server.py``) and one keep-alive client on loopback
sends ``--requests`` requests per endpoint; ``/healthz`` (a ping) is the baseline. Results are
printed and written to bench/results/api.json.
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
from pathlib import Path

import orjson
import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.http_timing import latencies  # noqa: E402
from bench.results_file import write_results  # noqa: E402
from stream.core.engine import PartitionedEngine  # noqa: E402
from stream.core.policy import load_policy  # noqa: E402
from stream.devtools.brokers import free_port, wait_for_port  # noqa: E402
from stream.devtools.redis_server import RedisServer  # noqa: E402
from stream.devtools.simulator import SimConfig, generate, serialize  # noqa: E402
from stream.run.replay import replay  # noqa: E402
from stream.sinks.readmodel_store import RedisReadModel  # noqa: E402


def _templates() -> list[dict]:
    lines = list(serialize(generate(SimConfig(accounts=200, days=90, seed=5))))
    out: list[bytes] = []
    replay(enumerate(lines, 1), PartitionedEngine(load_policy(None)), out.append, lambda _: None)
    return [orjson.loads(line) for line in out if b'"opened"' in line]


def _alerts(accounts: int, templates: list[dict], rng: random.Random) -> list[dict]:
    alerts = []
    for i in range(accounts):
        base = rng.choice(templates)
        health = {**base["health"], "overall": rng.randrange(5, 100)}
        account = {**base["account"], "segment": rng.choice(("starter", "pro", "enterprise")),
                   "mrr": float(rng.randrange(15, 5000))}  # fmt: skip
        alerts.append({**base, "account_id": f"acct-{i:06d}", "alert_id": f"al_{i:024x}",
                       "health": health, "account": account})  # fmt: skip
    return alerts


def _write_rates(url: str, alerts: list[dict], rounds: int) -> dict:
    rates: dict[str, list[float]] = {"read_model": [], "plain_hset": []}
    client = redis.Redis.from_url(url)
    for n in range(rounds):
        prefix = f"bench{n}"
        store = RedisReadModel.from_url(url, prefix=prefix)
        started = time.perf_counter()
        for i in range(0, len(alerts), 1000):
            store.apply(alerts[i : i + 1000])
        rates["read_model"].append(len(alerts) / (time.perf_counter() - started))
        started = time.perf_counter()
        for i in range(0, len(alerts), 1000):
            pipe = client.pipeline(transaction=False)
            for alert in alerts[i : i + 1000]:
                pipe.hset(f"plain{n}:acct:{alert['account_id']}", "snapshot", orjson.dumps(alert))
            pipe.execute()
        rates["plain_hset"].append(len(alerts) / (time.perf_counter() - started))
        print(f"round {n + 1}: read model {rates['read_model'][-1]:,.0f} alerts/s, plain HSET "
              f"{rates['plain_hset'][-1]:,.0f}/s", flush=True)  # fmt: skip
        if n < rounds - 1:
            client.flushdb()
    return {k: round(statistics.median(v)) for k, v in rates.items()}


def _latencies(port: int, paths: list[str]) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        found = latencies(conn, paths)
    finally:
        conn.close()
    return {**found, "p50_ms": round(found["p50_ms"], 2), "p99_ms": round(found["p99_ms"], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rng = random.Random(11)
    alerts = _alerts(args.accounts, _templates(), rng)
    with RedisServer() as server:
        writes = _write_rates(server.url, alerts, args.rounds)
        port = free_port()
        api = subprocess.Popen([sys.executable, str(ROOT / "bench" / "api_server.py"), server.url,
                                f"bench{args.rounds - 1}", str(port)])  # fmt: skip
        try:
            wait_for_port(port, 30, api)
            ids = [f"acct-{rng.randrange(args.accounts):06d}" for _ in range(args.requests)]
            segments = [rng.choice(("starter", "pro", "enterprise")) for _ in range(args.requests)]
            _latencies(port, ["/healthz"] * 200)  # warm up
            latency = {}
            for _ in range(args.rounds):
                for name, paths in (
                    ("/healthz", ["/healthz"] * args.requests),
                    ("/accounts/{id}", [f"/accounts/{i}" for i in ids]),
                    ("/accounts/at-risk?limit=20", ["/accounts/at-risk?limit=20"] * args.requests),
                    ("/accounts/at-risk?limit=20&segment=…",
                     [f"/accounts/at-risk?limit=20&segment={s}" for s in segments]),
                ):  # fmt: skip
                    latency.setdefault(name, []).append(_latencies(port, paths))
            summary = {
                name: {key: statistics.median(r[key] for r in runs) for key in ("p50_ms", "p99_ms")}
                for name, runs in latency.items()
            }
        finally:
            api.terminate()
            api.wait(10)
    result = {
        "command": "python bench/api_bench.py " + " ".join(sys.argv[1:]),
        "machine": f"{platform.machine()}, python {platform.python_version()}",
        "accounts_in_redis": args.accounts,
        "write_alerts_per_second": writes,
        "write_share_of_plain_hset": round(writes["read_model"] / writes["plain_hset"], 3),
        "latency_median_of_rounds": summary,
        "requests_per_endpoint_per_round": args.requests,
    }
    print(orjson.dumps({k: result[k] for k in ("write_alerts_per_second",
                                               "latency_median_of_rounds")}).decode())  # fmt: skip
    print(f"written to {write_results('api', result)}")


if __name__ == "__main__":
    main()
