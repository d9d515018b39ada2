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
