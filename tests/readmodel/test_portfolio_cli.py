"""``churnwatch portfolio`` prints what GET /portfolio serves, and ``alerts tail --owner``
keeps one owner's alerts, matching names as the lists' owner filter does."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import orjson

from stream.sinks import terminal
from tests.readmodel.test_portfolio_outcomes import _billing

ROOT = Path(__file__).resolve().parents[2]


def _churnwatch(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CHURNWATCH_")}
    return subprocess.run([sys.executable, "-m", "stream.cli", *args], env={**clean, **env},
                          cwd=ROOT, capture_output=True, timeout=120, check=True)  # fmt: skip


def test_the_portfolio_command_prints_the_apis_figures(store, replayed, redis_server):
    log, alerts = replayed
    store.apply(alerts)
    store.portfolio.apply(_billing(log))
    store.portfolio.apply_alerts(alerts)
    env = {"CHURNWATCH_REDIS_URL": redis_server.url, "CHURNWATCH_REDIS_PREFIX": store.p}
    served = orjson.loads(orjson.dumps(store.portfolio_report()))
    assert orjson.loads(_churnwatch("portfolio", "--json", **env).stdout) == served
    text = _churnwatch("portfolio", "--months", "3", **env).stdout.decode()
    assert text == terminal.portfolio_text(served, 3) + "\n"
    for m in served["months"][-3:]:
        kinds = (m["managed"], m["unmanaged"], m["unknown_reason"])
        assert (f"{m['month']}: lost {m['lost']:,} of {m['accounts_at_start']:,} accounts") in text
        assert (f"cancelled {sum(kinds):,} (joiners too): {kinds[0]:,} managed, {kinds[1]:,} "
                f"unmanaged, {kinds[2]:,} reason unknown") in text  # fmt: skip
        o = m["alert_outcomes"]
        assert (
            f"alerts opened {o['alerted']:,}: saved {o['saved']:,}, renewed "
            f"{o['renewed']:,}, churned {o['churned']:,}, pending {o['pending']:,}"
        ) in text
    assert "Did not see the value" in text and not re.search(r"\b[a-z]+_[a-z_]+\b", text)


def _alert(owner: str | None) -> dict:
    account = {"segment": "pro"} if owner is None else {"segment": "pro", "owner": owner}
    return {"signal": "engagement_drop", "severity": "high", "account": account}


def test_tail_keeps_an_owners_alerts_by_the_whole_name_ignoring_case():
    assert terminal.keep(_alert("Priya Shah"), set(), set(), ["priya SHAH"])
    assert terminal.keep(_alert("Priya Shah"), set(), set(), ["Tom Becker", "Priya Shah"])
    assert not terminal.keep(_alert("Priya Shah"), set(), set(), ["Priya"])  # not a prefix
    assert not terminal.keep(_alert(None), set(), set(), ["Priya Shah"])  # an unowned account
    assert not terminal.keep({"signal": "engagement_drop", "severity": "high"}, set(), set(),
                             ["Priya Shah"])  # a version 1 record names no owner  # fmt: skip
    assert terminal.keep(_alert(None), set(), set()), "no --owner: every alert"
    assert not terminal.keep(_alert("Priya Shah"), set(), {"low"}, ["Priya Shah"])
