"""The backtest and calibrate reports' charts: matplotlib's SVG inlined in one page that reads at
a desktop's and a phone's width, with titles on every axis, no text cut off, the same bytes for
the same report, and no charting import for commands that write no HTML."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import warnings
from pathlib import Path

import orjson
import pytest

from stream.offline.backtest import OVERALL
from stream.offline.report_html import backtest_html, calibration_html
from tests.chart_dom import ChartMarks, measure

ROOT = Path(__file__).resolve().parents[2]
WIDTHS = (1300, 390)
SLACK = 0.5  # CSS px: sub-pixel rounding of text boxes
SIGNALS = ("engagement_drop", "time_in_product_drop", "danger_zone", "footprint_shrink",
           "onboarding_stall", "payment_failed", "invoice_overdue", "downgrade",
           "support_silence", "nps_detractor", "churn_risk")  # fmt: skip


def _signal(rng: random.Random, openings: int, precision: float | None) -> dict:
    eligible = 174
    detected = rng.randint(0, eligible)
    return {
        "openings": openings, "per_100_accounts_per_month": round(openings / 24, 3),
        "precision": precision, "recall": round(detected / eligible, 4),
        "churners_detected": detected, "churners_eligible": eligible,
        "lead_days": {"p25": 9.62, "median": 20.5, "p75": 38.04}, "recovered_accounts": 3,
        "lead_days_histogram": [rng.randint(0, 40) for _ in range(9)], "f1": 0.5,
        "confusion": {"caught": detected, "missed": eligible - detected, "false_alarms": 40,
                      "quiet": 600 - eligible - 40, "unsettled": 0, "too_new": 0},
    }  # fmt: skip


def _breakdowns(rng: random.Random) -> dict:
    """Segments, churn types and account lists shaped like the real report's, one list longer
    than the page shows."""
    boxes = {"caught": 30, "missed": 12, "false_alarms": 20, "quiet": 130, "unsettled": 8,
             "too_new": 0}  # fmt: skip
    segment = {"accounts": 200, "churned": 42, "mrr": 12345.0, "precision": 0.6, "recall": 0.71,
               "f1": 0.65, "confusion": boxes, "per_100_accounts_per_month": 17.2,
               "lead_days_median": 30.5}  # fmt: skip
    row = {"account_id": "acct-00001", "segment": "enterprise", "mrr": 4200.0,
           "first_alert": "2026-02-01", "cancelled": "2026-03-02", "churn": "involuntary",
           "lead_days": 29.0, "alerts": 2}  # fmt: skip
    lists = {kind: [{**row, "account_id": f"acct-{kind}-{i:05d}"} for i in range(n)]
             for kind, n in (("caught", 60), ("missed", 3), ("false_alarms", 0))}  # fmt: skip
    churn = {"churned": 42, "caught": 30, "missed": 12, "too_new": 0, "recall": 0.71,
             "lead_days_median": None}  # fmt: skip
    return {
        "segments": {name: segment for name in ("enterprise", "pro", "starter")},
        "churn_types": {"voluntary": churn, "involuntary": churn},
        "accounts": lists,
    }


def backtest_report(seed: int = 1, weeks: int = 52) -> dict:
    """A backtest report shaped like the real one, with the hard cases in it: every signal's
    long name, a precision that is not defined (no alert), a year of weeks."""
    rng = random.Random(seed)
    signals = {OVERALL: _signal(rng, 415, 0.5806)}
    for name in SIGNALS:
        signals[name] = _signal(rng, rng.randint(1, 200), round(rng.random(), 4))
    signals["churn_risk"]["precision"] = None
    start = 738_000  # an ordinal day that is a Monday
    from datetime import date

    weekly = {
        date.fromordinal(start + 7 * i).isoformat(): {"account_at_risk": rng.randint(0, 140)}
        for i in range(weeks)
    }
    month = {"month": "2026-01", "accounts_at_start": 421, "lost": 0, "voluntary": 0,
             "involuntary": 0, "logo_churn": 0.0, "mrr_at_start": 72600.0, "mrr_lost": 0.0,
             "revenue_churn": 0.0, "new_accounts": 42}  # fmt: skip
    return {
        "log": "log.jsonl.gz", "policy": "built-in", "split": "all accounts",
        "scoring": {"horizon_days": 60, "lead_days": 14},
        "population": {"accounts": 600, "churned": 174, "involuntary": 6,
                       "account_months": 2401.5, "log_start": "2026-01-05T02:00:00+00:00",
                       "log_end": "2026-06-03T22:58:10+00:00"},
        "signals": signals, "weekly_openings": weekly,
        "portfolio": [{**month, "partial": True, "covered_from": "2026-01-05",
                       "covered_to": "2026-01-31"}],
        **_breakdowns(rng),
    }  # fmt: skip


def calibration_report(seed: int = 1) -> dict:
    """A calibrate report shaped like the real one: cohorts of long metric names with negative,
    small and large decile edges, a cell with no churner, one with nothing, equal lines."""
    rng = random.Random(seed)
    words = {
        "minutes_per_week": ("minutes in the product per week", 10.0, 8000.0),
        "logins_trend": ("logins, last 14 days against the 28 before (log ratio)", -2.0, 1.5),
        "seats": ("licensed seats", 1.0, 250.0),
        "failures_30d": ("a failed payment not yet paid", 0.0, 1.0),
    }
    cohorts = {}
    for metric, (text, low, high) in words.items():
        edges = sorted(rng.uniform(low, high) for _ in range(10))
        cohorts[metric] = {
            "words": text, "danger_line": round(edges[1], 4),
            "deciles": [{"upper": round(e, 4), "churn_rate": round(rng.uniform(0.02, 0.9), 4),
                         "rows": 4668} for e in edges],
        }  # fmt: skip
    weights = [{"metric": m, "weight": rng.uniform(-5, 5), "words": w[0]} for m, w in words.items()]
    cells = []
    for segment, stage, churned, retained, line, current in (
        ("enterprise", "established", 0, 1, 0.6, 0.6),
        ("pro", "established", 23, 81, 1.8371, 0.6),
        ("starter", "onboarding", 17, 27, 0.4, 1.6472),
        ("starter", "established", 0, 0, 0.6, 0.6),
    ):
        cells.append({
            "segment": segment, "stage": stage, "line": line, "current": current,
            "churners": churned, "precision": 0.79, "recall": None, "note": "kept",
            "churn_levels": [round(rng.uniform(0, 2), 4) for _ in range(churned)],
            "retained_levels": [round(rng.expovariate(0.5), 4) for _ in range(retained)],
        })  # fmt: skip
    row = {"per_100_accounts_per_month": 17.2, "precision": 0.55, "recall": 0.85, "f1": 0.67,
           "churners_detected": 77, "churners_eligible": 90, "openings": 40,
           "confusion": {"caught": 77, "missed": 13, "false_alarms": 50, "quiet": 150,
                         "unsettled": 10, "too_new": 0}}  # fmt: skip
    after = {**row, "precision": None, "f1": None, "openings": 0}
    change = {"precision": None, "recall": 0.0, "f1": None, "per_100_accounts_per_month": -1.5}
    return {
        "log": "log.jsonl.gz", "split": "train half", "objective": "best recall",
        "alert_budget_per_100_account_months": 5.0, "verdict": "recommended.",
        "holdout": {"base policy": row, "calibrated policy": row},
        "holdout_signals": {OVERALL: {"before": row, "after": row, "change": change},
                            "engagement_drop": {"before": row, "after": after, "change": change}},
        "holdout_accounts": _breakdowns(rng),
        "disabled_signals": {"downgrade": "precision 0% < 60%"},
        "risk_model": {
            "learned": True, "threshold": 0.999, "written": True, "weights": weights,
            "segments": {"pro": {"note": "shared weights"}}, "train": {"base_rate": 0.1973},
            "cohorts": cohorts,
        },
        "cells": cells,
    }  # fmt: skip


def empty_backtest_report() -> dict:
    """Nothing to draw: no week with an opening, no churner, no precision defined."""
    report = backtest_report()
    overall = {**report["signals"][OVERALL], "precision": None, "recall": None,
               "lead_days_histogram": [0] * 9}  # fmt: skip
    return {**report, "signals": {OVERALL: overall}, "weekly_openings": {}}


PAGES = {"backtest": lambda: backtest_html(backtest_report()),
         "backtest-empty": lambda: backtest_html(empty_backtest_report()),
         "calibration": lambda: calibration_html(calibration_report())}  # fmt: skip


@pytest.fixture(scope="module")
def pages() -> dict[str, str]:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "singular limits" or font warnings either
        return {name: make() for name, make in PAGES.items()}


def _charts_expected(name: str) -> set[str]:
    if name.startswith("backtest"):
        return {"lead-time", "precision-recall", "volume"}
    report = calibration_report()
    cohorts = {f"cohort-{w['metric']}" for w in report["risk_model"]["weights"][:8]}
    cells = {f"distribution-{i}" for i, c in enumerate(report["cells"])
             if c["churn_levels"] or c["retained_levels"]}  # fmt: skip
    return cohorts | cells


def _inside(inner: dict, outer: dict) -> bool:
    return (inner["left"] >= outer["left"] - SLACK and inner["right"] <= outer["right"] + SLACK
            and inner["top"] >= outer["top"] - SLACK
            and inner["bottom"] <= outer["bottom"] + SLACK)  # fmt: skip


def _overlap(a: dict, b: dict) -> bool:
    width = min(a["right"], b["right"]) - max(a["left"], b["left"])
    height = min(a["bottom"], b["bottom"]) - max(a["top"], b["top"])
    return width > 1 and height > 1


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", sorted(PAGES))
def test_every_chart_has_axis_titles_and_no_text_outside_it(pages, name, width, tmp_path):
    measured = measure(pages[name], width, tmp_path)
    charts = {c["id"]: c for c in measured["charts"]}
    assert set(charts) == _charts_expected(name)
    for chart_id, chart in charts.items():
        assert chart["title"] and chart["x_title"] and chart["y_title"], chart_id
        box = chart["box"]
        # The chart fits the page's width: it scales instead of running off a phone's screen.
        assert box["left"] >= 0 and box["right"] <= measured["viewport"] + SLACK, (chart_id, box)
        texts = [t for t in chart["texts"] if t["text"].strip()]
        assert len(texts) >= 5, chart_id  # titles and ticks at least, not an empty frame
        for text in texts:
            tb = text["box"]
            assert tb["right"] > tb["left"] and tb["bottom"] > tb["top"], (chart_id, text)
            assert _inside(tb, box), f"{chart_id} at {width}px: {text['text']!r} cut off"
        flat = [t for t in texts if not t["rotated"]]
        for i, a in enumerate(flat):
            for b in flat[i + 1 :]:
                assert not _overlap(a["box"], b["box"]), (chart_id, a["text"], b["text"])


def test_charts_carry_their_marks_and_the_page_stays_self_contained(pages):
    for name, page in pages.items():
        parser = ChartMarks()
        parser.feed(page)
        for chart in _charts_expected(name):
            if name != "backtest-empty":
                assert parser.plots.get(chart, 0) >= 4, (chart, parser.plots)
        assert page.count("<svg") == len(_charts_expected(name))
        # One document: no XML prolog or DOCTYPE inside it, nothing fetched, nothing run.
        assert "<?xml" not in page and "<!DOCTYPE svg" not in page
        assert "<script" not in page and 'src="' not in page
        assert 'href="http' not in page and "url(http" not in page
        # Every chart scales with the page and keeps its proportions.
        assert page.count("width:100%;max-width:560px;height:auto") == page.count("<svg")
        assert page.count('viewBox="0 0 ') == page.count("<svg")


def test_ids_are_unique_across_the_charts_of_a_page(pages):
    import re

    for page in pages.values():
        ids = re.findall(r'\bid="([^"]+)"', page)
        assert len(ids) == len(set(ids))
        for ref in re.findall(r'(?:href="#|url\(#)([^")]+)', page):
            assert ref in ids


def test_chart_values_and_legends_are_in_the_page(pages):
    backtest, calibration = pages["backtest"], pages["calibration"]
    report = backtest_report()
    assert "precision" in backtest and "recall" in backtest
    histogram = report["signals"][OVERALL]["lead_days_histogram"]
    assert f"7–13 churners: {histogram[1]:g}" in backtest  # a bar's tooltip
    assert "churn_risk precision: –" in backtest  # not defined, not drawn as zero
    cells = calibration_report()["cells"]
    for cell in cells:
        if cell["churn_levels"] or cell["retained_levels"]:
            assert f"(n={len(cell['churn_levels'])})" in calibration
            assert f"(n={len(cell['retained_levels'])})" in calibration
    assert "base rate 19.7%" in calibration
    assert "no openings" in pages["backtest-empty"]  # an empty week axis says so


def test_the_same_report_gives_the_same_bytes_in_any_process(pages, tmp_path):
    assert backtest_html(backtest_report()) == pages["backtest"]
    assert calibration_html(calibration_report()) == pages["calibration"]
    code = (
        "import sys; from tests.offline.test_report_charts import PAGES; "
        "sys.stdout.write(PAGES[sys.argv[1]]())"
    )
    for name, page in pages.items():
        for hash_seed in ("1", "2"):
            env = {**os.environ, "PYTHONHASHSEED": hash_seed, "MPLCONFIGDIR": str(tmp_path)}
            done = subprocess.run([sys.executable, "-c", code, name], capture_output=True,
                                  check=True, cwd=ROOT, env=env, timeout=120)  # fmt: skip
            assert done.stdout.decode() == page, (name, hash_seed)


def test_the_charting_library_is_imported_only_to_draw_a_chart():
    code = (
        "import sys, stream.cli, stream.offline.report_html; "
        "print(any(m.split('.')[0] == 'matplotlib' for m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True,
                          cwd=ROOT, timeout=120)  # fmt: skip
    assert done.stdout.decode().strip() == "False"


def test_a_report_from_json_round_trip_draws_the_same_charts(pages):
    """The CLI writes the JSON and the HTML from one dict; the HTML drawn again from the JSON
    file later has the same charts."""
    again = orjson.loads(orjson.dumps(calibration_report()))
    assert calibration_html(again) == pages["calibration"]


def test_tables_and_lists_a_cs_lead_reads_are_in_the_page(pages):
    backtest, calibration = pages["backtest"], pages["calibration"]
    for page in (backtest, calibration):
        assert "60 accounts, the first 50 shown" in page  # capped, with the full count
        assert page.count("<td>acct-caught-") == 50
        assert "3 accounts</summary>" in page and "0 accounts</summary><p>None.</p>" in page
        assert "<th>caught</th>" in page and "<th>false alarms</th>" in page
    assert "<td>2026-01 (partial: from Jan 5)</td>" in backtest
    # A signal switched off: before → after with no figure after, and no change made up.
    assert '<span class="nw">55.0% → –</span><br><span class="note">–</span>' in calibration
    assert '<span class="note">-1.50</span>' in calibration
    assert '<span class="note">no change</span>' in calibration
