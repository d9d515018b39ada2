"""backtest and calibrate end to end on seeded simulated logs with known outcomes."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import orjson
import pytest

from stream.core.policy import load_policy, to_toml
from stream.core.signals import registry
from stream.devtools.simulator import Label, SimConfig, generate, serialize
from stream.offline.backtest import OVERALL, Scoring, Split
from stream.offline.calibrate import gate_signals
from stream.offline.tuning import LogSpec, backtest, calibrate
from stream.run.logio import open_output
from tests.browser import render
from tests.chart_dom import ChartMarks


@pytest.fixture(scope="module")
def sim(tmp_path_factory) -> tuple[Path, Path]:
    """A log with its true labels: 500 accounts over 150 days (about 500k events)."""
    root = tmp_path_factory.mktemp("tuning")
    log, labels_path = root / "events.jsonl.gz", root / "labels.jsonl"
    labels: list[Label] = []
    with open_output(str(log)) as out:
        for line in serialize(generate(SimConfig(accounts=500, days=150, seed=5), labels)):
            out.write(line)
    labels_path.write_bytes(b"".join(orjson.dumps(x.as_dict()) + b"\n" for x in labels))
    return log, labels_path


def _calibrate(log: Path, root: Path) -> tuple[dict, str]:
    spec = LogSpec(str(log), str(root / "rejects.jsonl"), quiet=True)
    return calibrate(spec, Scoring(), Split("train", 11), min_churners=10)


@pytest.fixture(scope="module")
def calibrated(sim, tmp_path_factory):
    root = tmp_path_factory.mktemp("calibrated")
    report, text = _calibrate(sim[0], root)
    (root / "policy.toml").write_text(text)
    return report, root / "policy.toml"


def test_calibrating_again_gives_the_same_report_and_policy(sim, calibrated, tmp_path):
    report, policy_path = calibrated
    again, text = _calibrate(sim[0], tmp_path)
    assert orjson.dumps(again) == orjson.dumps(report)
    assert text == policy_path.read_text()


def test_a_calibrated_policy_read_back_and_written_again_gives_the_same_bytes(calibrated):
    """Its TOML (after the comment header) is what tomllib reads and tomli-w writes back."""
    _, policy_path = calibrated
    text = policy_path.read_text()
    body = "".join(line for line in text.splitlines(keepends=True) if not line.startswith("#"))
    assert to_toml(tomllib.loads(text)) + "\n" == body
    assert load_policy(policy_path).risk_model is not None or "[risk_model]" not in text


def test_labels_from_cancellations_match_the_simulators_truth(sim, tmp_path):
    log, labels_path = sim
    spec = LogSpec(str(log), str(tmp_path / "r.jsonl"), quiet=True)
    from_log = backtest(spec, Scoring(), Split())
    from_file = backtest(
        LogSpec(str(log), str(tmp_path / "r.jsonl"), labels=str(labels_path), quiet=True),
        Scoring(),
        Split(),
    )
    truth = [orjson.loads(line) for line in labels_path.read_bytes().splitlines()]
    churned = sum(1 for row in truth if row["outcome"] == "churned")
    involuntary = sum(1 for row in truth if row["churn_type"] == "involuntary" and row["cancel_ts"])
    assert churned > 20
    assert from_log["population"]["churned"] == churned
    assert from_log["population"]["involuntary"] == involuntary
    # Same labels either way, so the same scores.
    assert from_log["signals"] == from_file["signals"]


def test_account_episodes_count_overall_and_every_signal_is_still_scored(sim, tmp_path):
    log, _ = sim
    per_signal = tmp_path / "per-signal.toml"
    per_signal.write_text('[alerting]\nepisodes = "signal"\n')
    rejects = str(tmp_path / "r.jsonl")
    account = backtest(LogSpec(str(log), rejects, quiet=True), Scoring(), Split())
    signal = backtest(LogSpec(str(log), rejects, policy=str(per_signal), quiet=True), Scoring(),
                      Split())  # fmt: skip
    assert list(account["signals"]) == [OVERALL, *registry.SIGNALS] == list(signal["signals"])
    for name in registry.SIGNALS:
        assert account["signals"][name] == signal["signals"][name], name
    assert sum(account["signals"][name]["openings"] for name in registry.SIGNALS) > 100
    # Overall: the same accounts alerted, in fewer episodes (one per account at risk).
    ours, theirs = account["signals"][OVERALL], signal["signals"][OVERALL]
    assert ours["alerted_accounts"] == theirs["alerted_accounts"]
    assert ours["openings"] < 0.8 * theirs["openings"]
    assert ours["per_100_accounts_per_month"] < theirs["per_100_accounts_per_month"]
    weekly = account["weekly_openings"].values()
    assert {name for week in weekly for name in week} == {"account_at_risk"}
    assert sum(week["account_at_risk"] for week in weekly) == ours["openings"]
    # Calibration's per-signal gate decides the same either way.
    assert gate_signals(account["signals"], 0.6) == gate_signals(signal["signals"], 0.6)


def test_a_policy_calibrated_on_one_half_scores_better_on_the_other(calibrated):
    report, policy_path = calibrated
    before, after = report["holdout"]["base policy"], report["holdout"]["calibrated policy"]
    assert after["f1"] > before["f1"], report["holdout_change"]
    assert report["holdout_change"]["f1"] == pytest.approx(after["f1"] - before["f1"], abs=1e-4)
    learned = [c for c in report["cells"] if c["learned"]]
    assert learned, report["cells"]
    policy = load_policy(policy_path)  # the worker and replay accept it unchanged
    for cell in learned:
        assert policy.thresholds(cell["segment"], cell["stage"]).danger_zone.line == cell["line"]


def test_a_segment_with_too_few_churners_keeps_its_line(sim, tmp_path):
    log, _ = sim
    spec = LogSpec(str(log), str(tmp_path / "r.jsonl"), quiet=True)
    report, text = calibrate(spec, Scoring(), Split(), min_churners=10_000)
    assert report["cells"] and not any(c["learned"] for c in report["cells"])
    for cell in report["cells"]:
        assert cell["line"] == cell["current"]
        assert "fewer than 10000" in cell["note"]
    assert "[segments" not in text  # nothing learned, nothing overridden


def test_same_input_and_seed_give_the_same_report(sim, tmp_path):
    log, _ = sim
    args = [sys.executable, "-m", "stream.cli", "backtest", str(log), "--split", "test",
            "--seed", "3", "-q"]  # fmt: skip
    outputs = []
    for name in ("a.json", "b.json"):
        subprocess.run([*args, "-o", str(tmp_path / name)], check=True, timeout=300)
        outputs.append((tmp_path / name).read_bytes())
    assert outputs[0] == outputs[1]
    assert orjson.loads(outputs[0])["split"].startswith("test half")


def test_bad_lines_are_rejected_like_replay_and_stdin_works(sim, tmp_path):
    log, _ = sim
    import gzip

    lines = gzip.decompress(log.read_bytes()).splitlines(keepends=True)[:20_000]
    lines.insert(5, b"{not json\n")
    done = subprocess.run(
        [sys.executable, "-m", "stream.cli", "backtest", "-", "-o", str(tmp_path / "r.json")],
        input=b"".join(lines), capture_output=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = orjson.loads((tmp_path / "r.json").read_bytes())
    assert report["replay"]["rejected"] == 1
    rejects = (tmp_path / "r.json.rejects.jsonl").read_bytes().splitlines()
    assert orjson.loads(rejects[0])["line"] == 6


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--horizon-days", "0"], "must be at least 1"),
        (["--lead-days", "90"], "lead days < horizon days"),
        (["--labels", "/nonexistent/labels.jsonl"], "labels.jsonl"),
        (["-o", "/nonexistent/dir/report.json"], "directory does not exist"),
    ],
)
def test_bad_options_are_one_line_errors(sim, tmp_path, args, message):
    log, _ = sim
    done = subprocess.run(
        [sys.executable, "-m", "stream.cli", "backtest", str(log), "-q",
         "--rejects", str(tmp_path / "r.jsonl"), *args],
        capture_output=True, timeout=300, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode in (1, 2)
    assert message in done.stderr.decode()
    assert "Traceback" not in done.stderr.decode()


def test_html_reports_render_in_headless_chromium_with_their_plots(sim, calibrated, tmp_path):
    log, _ = sim
    html = tmp_path / "backtest.html"
    subprocess.run(
        [sys.executable, "-m", "stream.cli", "backtest", str(log), "-q",
         "-o", str(tmp_path / "b.json"), "--html", str(html)],
        check=True, timeout=300,
    )  # fmt: skip
    # The charts are matplotlib's SVG, all <path>s: marks are counted by the names the charts
    # give them (bars, curves, lines), not by the <rect>/<polyline>/<line> of hand-drawn SVG.
    plots, shot_bytes = render(html.as_uri(), tmp_path, ChartMarks())
    for plot in ("lead-time", "precision-recall", "volume"):
        assert plots.get(plot, 0) > 3, plots  # bars drawn, not an empty frame
    blank = tmp_path / "blank.html"
    blank.write_text("<!doctype html><title>blank</title>")
    _, blank_bytes = render(blank.as_uri(), tmp_path)
    assert shot_bytes > 5 * blank_bytes

    from stream.offline.report_html import calibration_html

    report, _ = calibrated
    page = tmp_path / "calibration.html"
    page.write_text(calibration_html(report))
    plots, _ = render(page.as_uri(), tmp_path, ChartMarks())
    distributions = [p for p in plots if p and p.startswith("distribution-")]
    assert len(distributions) == sum(1 for c in report["cells"] if c["churn_levels"]
                                     or c["retained_levels"])  # fmt: skip
    assert all(plots[p] >= 4 for p in distributions)  # two curves and two lines each
    model = report["risk_model"]
    assert model["learned"], model
    cohorts = [p for p in plots if p and p.startswith("cohort-")]
    assert sorted(cohorts) == sorted(f"cohort-{w['metric']}" for w in model["weights"][:8])
    assert all(plots[p] >= 10 for p in cohorts)  # ten decile bars each, and the base rate
    text = page.read_text()
    assert "alert every account on its first day" in text and "Churn-risk model" in text


def test_overall_numbers_are_consistent(calibrated):
    report, _ = calibrated
    for name, overall in report["holdout"].items():
        assert overall["churners_detected"] <= overall["churners_eligible"], name
        assert (
            overall["hits"] + overall["false_alarms"] + overall["censored"]
            == overall["alerted_accounts"]
        )
    assert OVERALL == "all_signals"


# --- what a CS lead reads: counts, segments, churn types, account lists, partial months ------


@pytest.fixture(scope="module")
def cli_backtest(sim, tmp_path_factory) -> tuple[dict, Path]:
    """One backtest through the command line with every output: JSON, HTML and the CSVs."""
    log, _ = sim
    root = tmp_path_factory.mktemp("cli-backtest")
    subprocess.run(
        [sys.executable, "-m", "stream.cli", "backtest", str(log), "-q",
         "-o", str(root / "b.json"), "--html", str(root / "b.html"),
         "--accounts-csv", str(root / "acct")],
        check=True, timeout=300,
    )  # fmt: skip
    return orjson.loads((root / "b.json").read_bytes()), root


def test_confusion_counts_add_up_to_the_accounts_and_f1_is_precision_and_recall(cli_backtest):
    report, _ = cli_backtest
    accounts = report["population"]["accounts"]
    assert accounts == 500
    for name, s in report["signals"].items():
        boxes = s["confusion"]
        assert sum(boxes.values()) == accounts, name
        assert boxes["caught"] == s["churners_detected"], name
        assert boxes["caught"] + boxes["missed"] == s["churners_eligible"], name
        # Only accounts that stayed are false alarms, quiet or unsettled.
        stayed = accounts - report["population"]["churned"]
        assert boxes["false_alarms"] + boxes["quiet"] + boxes["unsettled"] == stayed, name
        assert boxes["false_alarms"] <= s["false_alarms"], name
        p, r = s["precision"], s["recall"]
        if p and r:
            assert s["f1"] == pytest.approx(2 * p * r / (p + r), abs=1e-4), name
        else:
            assert s["f1"] is None, name
    overall = report["signals"][OVERALL]["confusion"]
    assert overall["caught"] > 20 and overall["false_alarms"] > 0 and overall["quiet"] > 0


def test_segments_and_churn_types_split_the_overall_figures(cli_backtest):
    report, _ = cli_backtest
    overall, segments = report["signals"][OVERALL], report["segments"]
    assert len(segments) >= 2, segments
    assert sum(s["accounts"] for s in segments.values()) == report["population"]["accounts"]
    assert sum(s["churned"] for s in segments.values()) == report["population"]["churned"]
    for box, count in overall["confusion"].items():
        assert sum(s["confusion"][box] for s in segments.values()) == count, box
    for name, s in segments.items():
        assert sum(s["confusion"].values()) == s["accounts"], name
        caught, missed = s["confusion"]["caught"], s["confusion"]["missed"]
        assert s["recall"] == (round(caught / (caught + missed), 4) if caught + missed else None)
    types = report["churn_types"]
    assert types["involuntary"]["churned"] == report["population"]["involuntary"]
    assert sum(t["churned"] for t in types.values()) == report["population"]["churned"]
    assert sum(t["caught"] for t in types.values()) == overall["confusion"]["caught"]
    assert sum(t["missed"] for t in types.values()) == overall["confusion"]["missed"]
    for t in types.values():
        assert t["caught"] + t["missed"] + t["too_new"] == t["churned"]


def test_account_lists_match_the_counts_and_the_csv_files_match_the_lists(cli_backtest):
    import csv

    report, root = cli_backtest
    boxes, lists = report["signals"][OVERALL]["confusion"], report["accounts"]
    ids = {kind: [row["account_id"] for row in rows] for kind, rows in lists.items()}
    for kind in ("caught", "missed", "false_alarms"):
        assert len(lists[kind]) == boxes[kind], kind
        assert len(set(ids[kind])) == len(ids[kind]), kind
    assert not set(ids["caught"]) & set(ids["missed"])
    assert not (set(ids["caught"]) | set(ids["missed"])) & set(ids["false_alarms"])
    for row in lists["caught"]:
        assert (
            row["cancelled"] and row["first_alert"] and row["churn"] in ("voluntary", "involuntary")
        )
        assert 14 <= row["lead_days"] <= 60, row
        assert row["segment"] in report["segments"] and row["mrr"] > 0
    for row in lists["false_alarms"]:
        assert row["cancelled"] is None and row["first_alert"] and row["lead_days"] is None
    for row in lists["missed"]:
        assert row["cancelled"] and (row["lead_days"] is None or row["lead_days"] < 60)
    for kind, name in (("caught", "caught"), ("missed", "missed"),
                       ("false_alarms", "false-alarms")):  # fmt: skip
        with open(root / f"acct-{name}.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        assert [r["account_id"] for r in rows] == ids[kind], kind
        for written, row in zip(rows, lists[kind], strict=True):
            assert written["segment"] == row["segment"]
            assert written["cancelled"] == (row["cancelled"] or "")
            assert written["lead_days"] == ("" if row["lead_days"] is None
                                            else str(row["lead_days"]))  # fmt: skip
            assert float(written["mrr"]) == row["mrr"]


def test_months_the_log_covers_in_part_are_flagged_and_full_ones_are_not(cli_backtest):
    report, root = cli_backtest
    months = report["portfolio"]
    start, end = report["population"]["log_start"][:10], report["population"]["log_end"][:10]
    assert len(months) >= 5
    first, last = months[0], months[-1]
    assert first["partial"] == (start[8:] != "01") and first["covered_from"] == start
    assert last["covered_to"] == end
    for month in months[1:-1]:
        assert not month["partial"], month
        assert month["covered_from"].endswith("-01")
    html = (root / "b.html").read_text()
    from stream.render.html import month_label

    for month in months:
        label = month_label(month)
        assert f"<td>{label}</td>" in html
        assert ("(partial:" in label) == month["partial"]


def test_month_coverage_names_the_days_a_log_has():
    from datetime import UTC, datetime

    from stream.core.timeutil import to_ms
    from stream.offline.evaluation import month_coverage
    from stream.render.html import month_label

    def ms(text: str) -> int:
        return to_ms(datetime.fromisoformat(text).replace(tzinfo=UTC))

    start, end = ms("2026-01-05T02:00"), ms("2026-06-03T22:58")
    rows = {m: {"month": m, **month_coverage(m, start, end)}
            for m in ("2026-01", "2026-02", "2026-05", "2026-06")}  # fmt: skip
    assert [rows[m]["partial"] for m in rows] == [True, False, False, True]
    assert month_label(rows["2026-01"]) == "2026-01 (partial: from Jan 5)"
    assert month_label(rows["2026-02"]) == "2026-02"
    assert month_label(rows["2026-06"]) == "2026-06 (partial: to Jun 3)"
    inside = {"month": "2026-03", **month_coverage("2026-03", ms("2026-03-02"), ms("2026-03-20"))}
    assert month_label(inside) == "2026-03 (partial: Mar 2 to Mar 20)"
    # The last day counts as covered even when the log ends before midnight.
    full = month_coverage("2026-05", start, ms("2026-05-31T12:00"))
    assert not full["partial"]


def test_backtest_html_shows_the_counts_the_breakdowns_and_capped_account_lists(cli_backtest):
    import re

    report, root = cli_backtest
    html = (root / "b.html").read_text()
    for header in ("<th>caught</th>", "<th>missed</th>", "<th>false alarms</th>", "<th>F1</th>",
                   "Per segment", "Voluntary and involuntary churn"):  # fmt: skip
        assert header in html, header
    for segment in report["segments"]:
        assert f"<td>{segment}</td>" in html
    assert "<script" not in html
    for kind, css in (("caught", "caught"), ("missed", "missed"),
                      ("false_alarms", "false-alarms")):  # fmt: skip
        pattern = (
            rf'<details id="list-{css}"><summary>[^<]*: ([\d,]+) accounts'
            r"(?:, the first (\d+) shown)?</summary>(.*?)</details>"
        )
        found = re.search(pattern, html)
        assert found, kind
        count = len(report["accounts"][kind])
        assert int(found.group(1).replace(",", "")) == count
        shown = found.group(3).count("<tr>") - 1 if count else 0
        assert shown == min(count, 50), kind
        assert (found.group(2) is not None) == (count > 50)
        for row in report["accounts"][kind][:shown]:
            assert f"<td>{row['account_id']}</td>" in found.group(3)


def test_calibration_compares_every_signal_before_and_after_on_the_held_out_half(calibrated):
    report, _ = calibrated
    signals = report["holdout_signals"]
    assert list(signals) == [OVERALL, *registry.SIGNALS]
    for name, s in signals.items():
        for key in ("precision", "recall", "f1", "per_100_accounts_per_month"):
            b, a = s["before"][key], s["after"][key]
            expected = None if a is None or b is None else pytest.approx(a - b, abs=1e-4)
            assert s["change"][key] == expected, (name, key)
    for side, policy in (("before", "base policy"), ("after", "calibrated policy")):
        for key in ("precision", "recall", "f1", "per_100_accounts_per_month", "confusion"):
            assert signals[OVERALL][side][key] == report["holdout"][policy][key]
    assert signals[OVERALL]["change"] == report["holdout_change"]
    held = report["holdout_accounts"]
    boxes = report["holdout"]["calibrated policy"]["confusion"]
    assert sum(boxes.values()) == held["population"]["accounts"]
    for kind in ("caught", "missed", "false_alarms"):
        assert len(held["accounts"][kind]) == boxes[kind]
    assert sum(s["accounts"] for s in held["segments"].values()) == held["population"]["accounts"]
    # The baselines are scored by the same rules: their boxes add up the same way.
    for name, row in report["holdout"].items():
        assert sum(row["confusion"].values()) == held["population"]["accounts"], name

    from stream.offline.report_html import calibration_html

    html = calibration_html(report)
    assert "base policy → calibrated policy" in html and '<table class="deltas">' in html
    moved = [n for n, s in signals.items() if s["before"]["openings"] or s["after"]["openings"]]
    assert html.count('<span class="nw">') >= 7 * len(moved)
    assert 'id="list-caught"' in html and "<th>false alarms</th>" in html


def test_the_backtest_reports_recall_per_churn_reason_group(tmp_path):
    """Churners split by the reason their cancellation gave, classified by the policy's
    taxonomy; every churner in exactly one group, and a policy's own taxonomy is used."""
    log = tmp_path / "random.jsonl"
    with open_output(str(log)) as out:
        for line in serialize(generate(SimConfig(accounts=300, days=120, seed=8,
                                                 scenario="random"))):  # fmt: skip
            out.write(line)
    spec = LogSpec(str(log), str(tmp_path / "rejects.jsonl"), quiet=True, jobs=2, partitions=3)
    report = backtest(spec, Scoring(), Split())
    reasons, types = report["churn_reasons"], report["churn_types"]
    churners = sum(t["churned"] for t in types.values())
    assert churners > 10 and sum(g["churned"] for g in reasons.values()) == churners
    # The random scenario's reasons: budget cuts, company shut down, acquired, project ended.
    assert {"budget", "company_change", "unclassified"} <= set(reasons)
    assert all(g["caught"] + g["missed"] + g["too_new"] == g["churned"] for g in reasons.values())
    own = tmp_path / "policy.toml"
    own.write_text('[[churn_reasons.codes]]\ncode = "ended"\nlabel = "Project ended"\n'
                   'group = "project"\nmanaged = false\nmatch = ["project ended"]\n')  # fmt: skip
    spec = LogSpec(str(log), str(tmp_path / "rejects.jsonl"), quiet=True, policy=str(own))
    mine = backtest(spec, Scoring(), Split())["churn_reasons"]
    assert "project" in mine and "budget" not in mine, "the policy's taxonomy, not the default"
