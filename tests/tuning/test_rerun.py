"""calibrate from one replay: the calibrated policies' alerts derived from the samples must be
exactly what replaying those policies gives, or calibrate must replay them."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from schemas.actions import AlertAction, encode_action
from stream.core.engine import PartitionedEngine
from stream.core.policy import load_policy
from stream.core.timeutil import DAY_MS
from stream.devtools.simulator import SimConfig, generate, serialize
from stream.offline import danger_rerun, tuning
from stream.offline.backtest import Scoring, Split
from stream.offline.dismissals import load_dismissals
from stream.offline.tuning import LogSpec, calibrate
from stream.run.replay import replay
from stream.sinks.account_rows import iso_ms

RUN_LOG = tuning.run_log


@pytest.fixture(scope="module")
def log(tmp_path_factory) -> Path:
    """400 accounts over 150 days: enough churners for a risk model and learned lines."""
    path = tmp_path_factory.mktemp("rerun") / "events.jsonl"
    with path.open("wb") as out:
        for line in serialize(generate(SimConfig(accounts=400, days=150, seed=13))):
            out.write(line)
    return path


def _calibrate(log: Path, tmp: Path, monkeypatch, rerun: bool, policy: str | None = None):
    """calibrate's report, policy, and how many times it replayed the log."""
    replays = []

    def counted(*args, **kwargs):
        replays.append(args[4])  # the label: calibrate, calibrated rules, held-out check
        return RUN_LOG(*args, **kwargs)

    monkeypatch.setattr(tuning, "run_log", counted)
    spec = LogSpec(str(log), str(tmp / f"rejects-{rerun}"), policy=policy, quiet=True,
                   rerun=rerun)  # fmt: skip
    report, text = calibrate(spec, Scoring(), Split("train", 7, 0.5), min_churners=10)
    return report, text, replays


def test_one_replay_gives_the_report_and_policy_of_three(log, tmp_path, monkeypatch):
    derived, derived_text, once = _calibrate(log, tmp_path, monkeypatch, rerun=True)
    replayed, replayed_text, thrice = _calibrate(log, tmp_path, monkeypatch, rerun=False)
    assert once == ["calibrate"]
    assert thrice == ["calibrate", "calibrated rules", "held-out check"]
    assert derived_text == replayed_text
    assert orjson.dumps(derived) == orjson.dumps(replayed)
    # What makes the comparison worth having: a model was learned and judged on the held-out
    # half, lines were learned, and signals were switched off.
    assert derived["risk_model"]["learned"]
    assert derived["holdout_signals"]["churn_risk"]["after"]["openings"] > 0
    assert any(cell["learned"] for cell in derived["cells"])
    assert derived["holdout_signals"]["danger_zone"]["change"] != {
        key: 0.0 for key in derived["holdout_signals"]["danger_zone"]["change"]
    }
    assert derived["disabled_signals"]


def test_per_signal_episodes_are_derived_exactly_too(log, tmp_path, monkeypatch):
    policy = tmp_path / "per-signal.toml"
    policy.write_text('[alerting]\nepisodes = "signal"\n')
    derived, derived_text, once = _calibrate(log, tmp_path, monkeypatch, True, str(policy))
    replayed, replayed_text, _ = _calibrate(log, tmp_path, monkeypatch, False, str(policy))
    assert once == ["calibrate"]
    assert derived_text == replayed_text
    assert orjson.dumps(derived) == orjson.dumps(replayed)


def test_a_failed_check_replays_the_calibrated_policies(log, tmp_path, monkeypatch):
    monkeypatch.setattr(danger_rerun, "same_as_published", lambda found, marks: False)
    _, text, replays = _calibrate(log, tmp_path, monkeypatch, rerun=True)
    assert replays == ["calibrate", "calibrated rules", "held-out check"]
    _, replayed_text, _ = _calibrate(log, tmp_path, monkeypatch, rerun=False)
    assert text == replayed_text


def test_dismissals_count_as_false_alarms_where_the_log_cannot_judge_yet(log, tmp_path):
    """The team dismissed every account episode the log leaves unsettled (opened within the
    horizon of its end, no cancellation): calibrate takes them as false alarms for the signals
    inside, and says so; without the file the same run reports no dismissals."""

    lines = log.read_bytes().splitlines(keepends=True)
    out: list[bytes] = []
    replay(enumerate(lines, 1), PartitionedEngine(load_policy(None)), out.append, lambda _: None)
    alerts = [orjson.loads(x) for x in out]
    end = max(iso_ms(a["ts"]) for a in alerts)
    cancelled = {orjson.loads(x)["account_id"] for x in lines if b"subscription_cancelled" in x}
    late = [a for a in alerts if a["kind"] == "opened" and a["account_id"] not in cancelled
            and iso_ms(a["episode_start"]) > end - 60 * DAY_MS]  # fmt: skip
    assert len(late) > 5
    text = b"".join(encode_action(AlertAction(
        action_id=f"dismiss-{n:04d}", kind="dismiss", alert_id=a["alert_id"],
        account_id=a["account_id"], signal=a["signal"], severity=a["severity"],
        episode_start=a["episode_start"], at="2026-11-28T10:00:00Z", by="ana",
        reason="not a real risk")) + b"\n" for n, a in enumerate(late))  # fmt: skip
    spec = LogSpec(str(log), str(tmp_path / "rejects"), quiet=True)
    plain, _ = calibrate(spec, Scoring(), Split("train", 7, 0.5), min_churners=10)
    labelled, _ = calibrate(spec, Scoring(), Split("train", 7, 0.5), min_churners=10,
                            dismissals=load_dismissals(text, "dismissals.jsonl"))  # fmt: skip
    assert "dismissals" not in plain
    said = labelled["dismissals"]["signals"]
    assert labelled["dismissals"]["count"] == len(late)
    moved = {s: n for s, n in said.items() if "precision_from_the_log_alone" in n}
    assert moved, said  # some signal's unsettled openings were labelled
    for numbers in moved.values():
        assert numbers["unsettled"] > 0
        assert numbers["precision"] < numbers["precision_from_the_log_alone"]
