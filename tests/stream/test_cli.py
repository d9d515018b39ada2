"""The ``churnwatch`` command as a person runs it: files, stdin, gzip, bad input, exit codes."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import pytest

from schemas.codec import loads
from stream.cli import main

CLI = [sys.executable, "-m", "stream.cli"]


def _run(*args: str, stdin: bytes | None = None, env: dict | None = None, cwd=None):
    return subprocess.run(
        [*CLI, *args],
        input=stdin,
        capture_output=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def log(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sim") / "log.jsonl.gz"
    done = _run(
        "simulate",
        "--accounts",
        "120",
        "--days",
        "120",
        "--seed",
        "3",
        "--junk",
        "0.002",
        "--duplicates",
        "0.01",
        "--jitter-seconds",
        "60",
        "-o",
        str(path),
        "--labels",
        str(path.with_name("labels.jsonl")),
    )
    assert done.returncode == 0, done.stderr
    return path


def test_simulate_writes_gzip_and_labels(log):
    with gzip.open(log) as fh:
        lines = fh.read().splitlines()
    assert len(lines) > 10_000
    labels = [loads(x) for x in log.with_name("labels.jsonl").read_bytes().splitlines()]
    assert len(labels) == 120
    assert {"account_id", "archetype", "outcome", "cancel_ts"} <= labels[0].keys()


def test_replay_is_byte_identical_across_processes_and_hash_seeds(log, tmp_path):
    outputs, snapshots = [], []
    for seed in ("1", "2"):
        out, health = tmp_path / f"alerts-{seed}.jsonl", tmp_path / f"health-{seed}.jsonl.gz"
        done = _run("replay", str(log), "-o", str(out), "--partitions", "3",
                    "--health-out", str(health), env={"PYTHONHASHSEED": seed})  # fmt: skip
        assert done.returncode == 0, done.stderr
        outputs.append(out.read_bytes())
        snapshots.append(health.read_bytes())
    assert outputs[0] == outputs[1] and snapshots[0] == snapshots[1]
    assert outputs[0].count(b"\n") > 50
    days = [loads(line) for line in gzip.decompress(snapshots[0]).splitlines()]
    assert len({s["account_id"] for s in days}) == 120, "every account, alerted or not"


def test_replay_reads_stdin_and_sends_bad_lines_to_rejects(log, tmp_path):
    raw = gzip.decompress(log.read_bytes())
    broken = b"{not json\n" + raw + b"\x00\xff binary junk\n" + b"\n"
    out = tmp_path / "alerts.jsonl"
    done = _run(
        "replay", "-", "-o", str(out), "--summary", str(tmp_path / "sum.json"), stdin=broken
    )
    assert done.returncode == 0, done.stderr
    rejects = [
        loads(x) for x in (tmp_path / "alerts.jsonl.rejects.jsonl").read_bytes().splitlines()
    ]
    assert rejects[0]["line"] == 1 and rejects[0]["reason"].startswith("not valid JSON")
    assert rejects[-1]["raw"] == "\x00\\xff binary junk", "undecodable bytes are escaped"
    summary = loads((tmp_path / "sum.json").read_bytes())
    total = raw.count(b"\n") + 3
    assert summary["events"] + summary["rejected"] == total - 1  # the blank line is skipped
    assert summary["rejected"] == len(rejects) >= 2
    assert summary["engine"]["duplicate"] > 0
    assert "rejected" in done.stderr.decode()


def test_a_clean_replay_leaves_no_rejects_file_and_removes_a_stale_one(tmp_path):
    log = tmp_path / "clean.jsonl"
    simulate = ["simulate", "--accounts", "20", "--days", "40", "--seed", "5", "-o", str(log)]
    assert main([*simulate, "--junk", "0"]) == 0
    out = tmp_path / "alerts.jsonl"
    stale = tmp_path / "alerts.jsonl.rejects.jsonl"
    stale.write_bytes(b'{"line": 1}\n')
    assert main(["replay", str(log), "-o", str(out), "-q"]) == 0
    assert out.stat().st_size > 0
    assert not stale.exists(), "the rejects of an earlier run must not pass for this run's"


def test_oversized_line_is_rejected_not_buffered(tmp_path):
    log = tmp_path / "big.jsonl"
    log.write_bytes(b'{"pad": "' + b"x" * 200_000 + b'"}\n' + b'{"type": "login"}\n')
    out = tmp_path / "a.jsonl"
    assert main(["replay", str(log), "-o", str(out), "-q"]) == 0
    rejects = (tmp_path / "a.jsonl.rejects.jsonl").read_bytes().splitlines()
    assert [loads(r)["line"] for r in rejects] == [1, 2]
    assert "exceeds the 65536-byte event limit" in loads(rejects[0])["reason"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["replay", "missing.jsonl"], "missing.jsonl: cannot open"),
        (["replay", "-", "--partitions", "0"], "must be at least 1"),
        (["simulate", "--accounts", "many"], "expected a whole number"),
        (["simulate", "--junk", "2"], "must be between 0 and 1"),
        (["policy", "check", "nope.toml"], "cannot read policy file"),
        (["replay", "-", "--health-out", "-"], "both cannot go to stdout"),
        (["replay", "-", "-o", "a.jsonl", "--health-out", "a.jsonl"], "--health-out must differ"),
        (["schema", "--kind", "nope"], "invalid choice"),
    ],
)
def test_bad_flags_and_files_give_one_line_errors(args, message, tmp_path):
    done = _run(*args, cwd=tmp_path)
    assert done.returncode in (1, 2)
    err = done.stderr.decode()
    assert message in err
    assert "Traceback" not in err


def test_bad_policy_stops_replay_before_it_reads_anything(tmp_path):
    policy = tmp_path / "p.toml"
    policy.write_text("[defaults.engagement_drop]\ndrop_mediun = 0.3\n")
    done = _run("replay", "-", "--policy", str(policy), stdin=b"")
    assert done.returncode == 2
    assert "defaults.engagement_drop.drop_mediun: unknown key (did you mean 'drop_medium'?)" in (
        done.stderr.decode()
    )


def test_policy_show_prints_a_file_that_checks(tmp_path, capsys):
    assert main(["policy", "show"]) == 0
    shown = capsys.readouterr().out
    (tmp_path / "p.toml").write_text(shown)
    assert main(["policy", "check", str(tmp_path / "p.toml")]) == 0
    assert "[defaults.engagement_drop]" in shown
