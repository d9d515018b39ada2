"""``--jobs``: replay, backtest and calibrate in several processes give the bytes of one.

The log is simulated with junk and duplicate lines, plus hand-made lines that exercise each
path of the cheap routing: a line only full validation can place (NaN in an ignored field,
which orjson refuses), an escaped key, a JSON array, an oversized line and an event stamped
after ``--now``. Every output is compared byte for byte across 1, 2 and 3 jobs.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import pytest

from schemas.codec import loads
from stream.core.partitioning import partition_for
from stream.offline.backtest import Scoring, Split
from stream.offline.tuning import LogSpec, backtest, calibrate
from stream.run.jobs import JobError, run_jobs
from stream.run.logio import LogError
from stream.run.parallel import PolicySource, run_parallel
from stream.run.routing import account_of, assign, route_line
from tests.run import job_targets

CLI = [sys.executable, "-m", "stream.cli"]
ENV = {k: v for k, v in os.environ.items() if not k.startswith("CHURNWATCH_")}
NOW = "2027-01-01T00:00:00Z"
JOBS = (1, 2, 3)


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, env=ENV, cwd=cwd, timeout=600,
                          check=False)  # fmt: skip


EXTRA = [
    # orjson refuses NaN, so no job can route it cheaply: every job validates it
    b'{"event_id":"x-nan","account_id":"acct-00007","ts":"2026-01-20T10:00:00Z",'
    b'"type":"login","note":NaN}\n',
    b'{"event_id":"x-esc","account\\u005fid":"acct-00011","ts":"2026-01-21T10:00:00Z",'
    b'"type":"login"}\n',
    b'[{"event_id":"x-arr","account_id":"acct-00003","ts":"2026-01-22T10:00:00Z"}]\n',
    b'{"event_id":"x-big","account_id":"acct-00004","pad":"' + b"x" * 70_000 + b'"}\n',
    b'{"event_id":"x-future","account_id":"acct-00005","ts":"2030-01-01T00:00:00Z",'
    b'"type":"login"}\n',
    b'{"event_id":"x-bad","account_id":"acct-00006","ts":"2026-01-23T10:00:00Z",'
    b'"type":"nps_response","score":99}\n',
]


@pytest.fixture(scope="module")
def log(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("jobs")
    raw = root / "raw.jsonl"
    done = _cli("simulate", "--accounts", "150", "--days", "100", "--seed", "4",
                "--junk", "0.005", "--duplicates", "0.01", "--jitter-seconds", "60",
                "-o", str(raw))  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = raw.read_bytes().splitlines(keepends=True)
    for n, extra in enumerate(EXTRA):  # spread over the log
        lines.insert(len(lines) * (n + 1) // (len(EXTRA) + 1), extra)
    path = root / "log.jsonl"
    path.write_bytes(b"".join(lines))
    return path


def _replay(log: Path, out: Path, jobs: int, *more: str) -> dict[str, bytes]:
    out.mkdir()
    done = _cli("replay", str(log), "-o", str(out / "alerts.jsonl"),
                "--health-out", str(out / "health.jsonl"),
                "--rejects", str(out / "rejects.jsonl"), "--summary", str(out / "summary.json"),
                "--jobs", str(jobs), "--now", NOW, "-q", *more)  # fmt: skip
    assert done.returncode in (0, 3), done.stderr
    files = {p.name: p.read_bytes() for p in sorted(out.iterdir())}
    return files | {"status": bytes([done.returncode])}


def test_replay_gives_the_same_bytes_for_any_number_of_jobs(log, tmp_path):
    runs = {jobs: _replay(log, tmp_path / f"j{jobs}", jobs) for jobs in JOBS}
    assert runs[2] == runs[1] and runs[3] == runs[1]
    one = runs[1]
    assert one["alerts.jsonl"].count(b"\n") > 30
    assert one["health.jsonl"].count(b"\n") > 1000
    rejects = [loads(line) for line in one["rejects.jsonl"].splitlines()]
    reasons = " ".join(r["reason"] for r in rejects)
    assert "past the latest time allowed" in reasons and "exceeds the" in reasons
    assert len(rejects) == len({r["line"] for r in rejects}), "each bad line reported once"
    summary = loads(one["summary.json"])
    assert summary["complete"] is True and summary["rejected"] == len(rejects)


def test_a_damaged_log_is_reported_the_same_way_in_jobs(log, tmp_path):
    whole = gzip.compress(log.read_bytes(), mtime=0)
    damaged = tmp_path / "cut.jsonl.gz"
    damaged.write_bytes(whole[: len(whole) * 2 // 3])
    runs = {jobs: _replay(damaged, tmp_path / f"j{jobs}", jobs) for jobs in (1, 2)}
    assert runs[2] == runs[1]
    assert runs[1]["status"] == bytes([3])
    assert loads(runs[1]["summary.json"])["complete"] is False


def test_partitions_one_leaves_nothing_to_split(log, tmp_path):
    one = _replay(log, tmp_path / "a", 1, "--partitions", "1")
    two = _replay(log, tmp_path / "b", 2, "--partitions", "1")
    assert one == two


def test_backtest_and_calibrate_give_the_same_bytes_for_any_number_of_jobs(log, tmp_path):
    reports, policies, calibrations = [], [], []
    for jobs in JOBS:
        spec = LogSpec(str(log), str(tmp_path / f"bt-{jobs}.rejects"), partitions=6, quiet=True,
                       jobs=jobs)  # fmt: skip
        reports.append(backtest(spec, Scoring(), Split()))
        cal = LogSpec(str(log), str(tmp_path / f"cal-{jobs}.rejects"), partitions=6, quiet=True,
                      jobs=jobs)  # fmt: skip
        report, policy = calibrate(cal, Scoring(), Split("train", 7, 0.5), min_churners=5)
        calibrations.append(report)
        policies.append(policy)
    assert reports[1] == reports[0] and reports[2] == reports[0]
    assert reports[0]["population"]["accounts"] > 100
    assert policies[1] == policies[0] and policies[2] == policies[0]
    assert calibrations[1] == calibrations[0] and calibrations[2] == calibrations[0]
    assert "line" in policies[0]  # a danger-zone line was learned, not only copied
    rejects = [(tmp_path / f"bt-{jobs}.rejects").read_bytes() for jobs in JOBS]
    assert rejects[0] and rejects[1] == rejects[0] and rejects[2] == rejects[0]


def test_backtest_cli_report_is_identical_in_jobs(log, tmp_path):
    outputs = []
    for jobs in (1, 3):
        out = tmp_path / f"bt{jobs}.json"
        done = _cli("backtest", str(log), "-o", str(out), "--jobs", str(jobs), "--now", NOW, "-q")
        assert done.returncode == 0, done.stderr
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]


def test_routing_agrees_with_validation_or_abstains():
    assert account_of(b'{"account_id":"a-1","ts":1}') == "a-1"
    assert account_of(b'{"account\\u005fid":"a-1"}') == "a-1"
    assert account_of(b'{"account_id":7}') is None
    assert account_of(b'{"account_id":"a","x":NaN}') is None
    assert account_of(b"[1]") is None and account_of(b"\x00\xff") is None
    assert route_line(b'{"account_id":"acct-7"}', 6) == partition_for("acct-7", 6)


def test_jobs_share_partitions_evenly_and_never_outnumber_them():
    assert assign(6, 2) == [frozenset({0, 2, 4}), frozenset({1, 3, 5})]
    assert assign(6, 4) == [frozenset({0, 4}), frozenset({1, 5}), frozenset({2}), frozenset({3})]
    assert assign(2, 8) == [frozenset({0}), frozenset({1})]
    assert assign(1, 3) == [frozenset({0})]


def test_run_jobs_returns_results_in_task_order():
    seen = []
    assert run_jobs(job_targets.double, [3, 1, 2], lambda n, _: seen.append(n)) == [6, 2, 4]
    assert seen and max(seen) <= 3


def test_a_failing_job_is_an_error_that_names_it():
    with pytest.raises(JobError, match=r"job 2 of 3 failed: KeyError: 'no such thing'"):
        run_jobs(job_targets.boom_on_two, [1, 2, 3])


def test_a_job_that_dies_is_an_error_not_a_hang():
    with pytest.raises(JobError, match=r"job 2 of 2 stopped without a result \(exit 7\)"):
        run_jobs(job_targets.exit_on_two, [1, 2])


def test_an_error_about_the_input_is_passed_on_as_it_is():
    with pytest.raises(LogError, match="the compressed data ends early"):
        run_jobs(job_targets.bad_log_on_two, [1, 2])


@pytest.mark.parametrize("value", ["0", "-2", "two"])
def test_bad_jobs_is_a_one_line_usage_error(value):
    done = _cli("replay", "-", "--jobs", value)
    assert done.returncode == 2
    err = done.stderr.decode()
    assert "--jobs" in err and ("must be at least 1" in err or "whole number" in err)
    assert "Traceback" not in err
    assert len([line for line in err.splitlines() if "error" in line]) == 1


def test_progress_reaches_the_last_line_and_no_work_files_are_left(log, tmp_path):
    seen: list[int] = []
    run = run_parallel(str(log), PolicySource(None), 6, 2, lambda n, _: seen.append(n))
    workdir = run.workdir
    with run:
        alerts: list[bytes] = []
        assert run.write("alerts", alerts.append) == run.report.alerts > 0
    assert seen[-1] == run.report.lines == len(log.read_bytes().splitlines())
    assert not workdir.exists()
