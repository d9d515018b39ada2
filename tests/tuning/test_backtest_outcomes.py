"""The backtest's alert outcomes: the same numbers as folding what replay publishes, in one
process or several, and a section of the HTML report."""

from __future__ import annotations

import orjson
import pytest

from schemas.events import BILLING_TYPES, decode_event
from stream.core.engine import PartitionedEngine
from stream.core.policy import load_policy
from stream.core.portfolio import Portfolio
from stream.devtools.simulator import SimConfig, generate, serialize
from stream.offline.backtest import Scoring, Split, outcome_totals
from stream.offline.report_html import backtest_html
from stream.offline.tuning import LogSpec, backtest
from stream.run.replay import replay


@pytest.fixture(scope="module")
def log(tmp_path_factory):
    path = tmp_path_factory.mktemp("outcomes") / "log.jsonl"
    path.write_bytes(b"".join(serialize(generate(SimConfig(accounts=250, days=150, seed=5)))))
    return path


def _outcomes(rows: list[dict]) -> dict[str, dict]:
    return {row["month"]: row["alert_outcomes"] for row in rows}


def test_the_backtest_outcomes_are_replays_records_folded_in_one_job_or_two(log, tmp_path):
    lines = log.read_bytes().splitlines(keepends=True)
    published: list[bytes] = []
    replay(enumerate(lines, 1), PartitionedEngine(load_policy(None), 3), published.append,
           lambda _: None)  # fmt: skip
    reference = Portfolio()
    for line in lines:
        event = decode_event(line)
        if event.type in BILLING_TYPES:
            reference.observe(event)
    for record in published:
        reference.alert(orjson.loads(record))
    expected = _outcomes(reference.report())
    reports = [backtest(LogSpec(str(log), str(tmp_path / "r.jsonl"), quiet=True, partitions=3,
                                jobs=jobs), Scoring(), Split()) for jobs in (1, 2)]  # fmt: skip
    for report in reports:
        got = _outcomes(report["portfolio"])
        assert got == {month: expected[month] for month in got}
        assert sum(o["alerted"] for o in got.values()) == len(
            {orjson.loads(r)["alert_id"] for r in published}
        )
    totals = outcome_totals(reports[0]["portfolio"])
    assert totals["saved"] and totals["churned"] and totals["pending"]
    assert totals["save_rate"] == round(totals["saved"] / (totals["saved"] + totals["churned"]), 4)
    html = backtest_html(reports[0])
    assert '<table class="outcomes" id="alert-outcomes">' in html
    assert "<td>whole log</td>" in html and "Did not see the value" in html


def test_no_alert_outcomes_no_section():
    month = {"month": "2026-01", "accounts_at_start": 1, "lost": 0, "voluntary": 0,
             "involuntary": 0, "logo_churn": 0.0, "mrr_at_start": 1.0, "mrr_lost": 0.0,
             "revenue_churn": 0.0, "new_accounts": 1}  # fmt: skip
    assert outcome_totals([month]) is None
    saved = {"alerted": 3, "saved": 1, "renewed": 1, "churned": 1, "pending": 0,
             "churned_by_reason": {"price": 1}}  # fmt: skip
    later = {**saved, "churned_by_reason": {"budget": 1}}
    totals = outcome_totals([{**month, "alert_outcomes": saved},
                             {**month, "month": "2026-02", "alert_outcomes": later}])  # fmt: skip
    assert totals == {"alerted": 6, "saved": 2, "renewed": 2, "churned": 2, "pending": 0,
                      "churned_by_reason": {"budget": 1, "price": 1}, "save_rate": 0.5}  # fmt: skip
