"""The Redis read model against the in-memory reference fold, on a real redis-server."""

from __future__ import annotations

import random

import pytest
import redis

from stream.devtools.redis_server import RedisServer
from stream.sinks.readmodel import EPISODE_LOG, by_severity, fold
from stream.sinks.readmodel_store import RedisReadModel


def _state(store: RedisReadModel) -> dict:
    """Everything the API can read, for whole-model comparisons."""
    accounts = {}
    for key in store.r.scan_iter(match=f"{store.p}:acct:*"):
        name = key.decode()
        if name.endswith((":open", ":log")):
            continue
        account = name.removeprefix(f"{store.p}:acct:")
        accounts[account] = store.account(account)
    return {
        "accounts": accounts,
        "risk": store.r.zrange(f"{store.p}:risk", 0, -1, withscores=True),
        "open": sorted(a["alert_id"] for a in store.open_alerts(10**6)),
        "portfolio": store.mrr_at_risk(),
    }


def _expected(alerts: list[dict]) -> dict:
    model = fold(alerts)
    accounts = {}
    for account in model.accounts:
        episodes = by_severity(model.open_alerts.get(account, {}).values())
        accounts[account] = {**model.row(account, None), "open_alerts": episodes,
                             "snapshot": None, "history": [],
                             "episodes": model.episodes[account], "actions": {}}  # fmt: skip
    risk = sorted(((a.encode(), float(r)) for a, r in model.risk.items()),
                  key=lambda x: (x[1], x[0]))  # fmt: skip
    open_ids = sorted(a for e in model.open_alerts.values() for a in e)
    return {"accounts": accounts, "risk": risk, "open": open_ids, "portfolio": model.mrr_at_risk()}


def _batches(alerts: list[dict], size: int) -> list[list[dict]]:
    return [alerts[i : i + size] for i in range(0, len(alerts), size)]


def test_read_model_equals_the_cores_view_after_a_simulated_log(store, replayed):
    _, alerts = replayed
    for batch in _batches(alerts, 97):
        store.apply(batch)
    assert _state(store) == _expected(alerts)
    assert store.mrr_at_risk()["mrr_at_risk"] > 0


def test_redelivered_and_replayed_records_change_nothing(store, replayed):
    _, alerts = replayed
    rng = random.Random(4)
    batches = _batches(alerts, 50)
    applied = 0
    for i, batch in enumerate(batches):
        applied += store.apply(batch)
        if i and rng.random() < 0.3:  # a crash before the commit: an earlier batch comes again
            assert store.apply(batches[rng.randrange(i)]) == 0
    assert applied == len({(a["alert_id"], a["sequence"]) for a in alerts})
    before = _state(store)
    assert store.apply(alerts) == 0  # a whole replay of the topic
    assert _state(store) == before == _expected(alerts)


def test_the_episode_log_keeps_every_applied_record_newest_first_and_is_capped(store, replayed):
    _, alerts = replayed
    store.apply(alerts)
    model = fold(alerts)
    busiest = max(model.episodes, key=lambda a: len(model.episodes[a]))
    log = store.account(busiest)["episodes"]
    mine = [a for a in alerts if a["account_id"] == busiest]
    assert len(log) == min(len(mine), EPISODE_LOG) > 1
    assert log == mine[::-1][:EPISODE_LOG]  # newest first: the reverse of the applied order
    kinds = {a["kind"] for a in log}
    assert "opened" in kinds and kinds & {"resolved", "churned"}, "ends are logged too"
    # More records than the cap: only the newest EPISODE_LOG stay.
    account = mine[0]["account_id"]
    extra = [{**mine[0], "alert_id": f"al_cap_{i}", "sequence": 0} for i in range(EPISODE_LOG + 5)]
    store.apply(extra)
    log = store.account(account)["episodes"]
    assert len(log) == EPISODE_LOG and log[0]["alert_id"] == f"al_cap_{EPISODE_LOG + 4}"
    assert store.r.llen(f"{store.p}:acct:{account}:log") == EPISODE_LOG


def test_a_late_old_record_does_not_roll_the_account_back(store, replayed):
    _, alerts = replayed
    account = alerts[-1]["account_id"]
    mine = [a for a in alerts if a["account_id"] == account]
    store.apply(mine)
    latest = store.account(account)
    stale = {**mine[0], "alert_id": "al_other", "sequence": 0,
             "health": {**mine[0]["health"], "overall": 1}}  # fmt: skip
    store.apply([stale])
    after = store.account(account)
    assert after["health"] == latest["health"] and after["last_alert_ts"] == latest["last_alert_ts"]


def test_at_risk_ranks_by_revenue_at_risk_and_filters_by_segment(store, replayed):
    _, alerts = replayed
    store.apply(alerts)
    model = fold(alerts)
    ranked = store.at_risk(1000)
    keys = [(-v["revenue_at_risk"], v["account_id"]) for v in ranked]
    assert keys == sorted(keys)
    assert {v["account_id"] for v in ranked} == {a for a, o in model.open_alerts.items() if o}
    segment = ranked[0]["segment"]
    only = store.at_risk(1000, segment)
    assert only and all(v["segment"] == segment for v in only)
    assert len(store.at_risk(3)) == 3


def test_password_and_bad_urls(redis_server, replayed):
    with pytest.raises(ValueError, match="redis://, rediss:// or unix://"):
        RedisReadModel.from_url("http://localhost:6379")
    wrong = redis_server.url.replace(redis_server.password, "wrong")
    with pytest.raises(redis.RedisError):
        RedisReadModel.from_url(wrong).apply(replayed[1][:1])
    assert not RedisReadModel.from_url(wrong).ping()
    assert RedisReadModel.from_url(redis_server.url).ping()


def _billing(log) -> list:
    from schemas.events import BILLING_TYPES, decode_event

    events = [decode_event(line) for line in log.read_bytes().splitlines()]
    billing = [e for e in events if e.type in BILLING_TYPES]
    return [(0, offset, event) for offset, event in enumerate(billing)]


def test_portfolio_in_redis_equals_the_backtests_and_redelivery_counts_once(store, replayed):
    from stream.core.portfolio import Portfolio

    log, _ = replayed
    records = _billing(log)
    reference = Portfolio()
    for _, _, event in records:
        reference.observe(event)
    half = len(records) // 2
    assert store.portfolio.apply(records[:half]) > 0
    assert store.portfolio.apply(records[:half]) == 0  # a batch delivered again changes nothing
    store.portfolio.apply(records[half - 100 :])  # overlapping redelivery, then the rest
    assert store.portfolio.report() == reference.report()
    months = reference.report()
    assert sum(m["lost"] for m in months) > 10 and any(m["involuntary"] for m in months)
    assert all(m["logo_churn"] is None or 0 <= m["logo_churn"] <= 1 for m in months)


def test_tls_with_a_password(replayed):
    with RedisServer(tls=True) as server:
        assert server.url.startswith("rediss://")
        store = RedisReadModel.from_url(server.url, prefix="tls")
        store.apply(replayed[1][:50])
        assert store.account(replayed[1][0]["account_id"]) is not None
        plain = server.url.replace("rediss://", "redis://").split("?")[0]
        assert not RedisReadModel.from_url(plain, timeout=2).ping()  # TLS only
