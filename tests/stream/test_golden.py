"""A seeded simulated log gives the expected alerts, and decliners are caught in time.

The golden files pin the exact alert stream of a small seeded log (one line per alert plus a
digest of the full payloads), so any change of behaviour shows up as a readable diff: one file
for the default (one episode per account), one for per-signal episodes. After an intended
change, regenerate them with ``UPDATE_GOLDEN=1 pytest tests/stream/test_golden.py`` and review
the diff like code.

The per-signal file is the alert stream of schema version 1, digest included: its payloads are
digested without ``reasons`` (and the account fields of version 3) and as version 1, so the
file shows what per-signal episodes publish beyond version 1: since version 3 only the
episodes a cancellation ends changed (``churned`` instead of ``resolved``, with the
cancellation's reason), which its diff showed line by line.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path

import pytest

from schemas.alerts import ACCOUNT_AT_RISK, AlertEvent
from schemas.codec import dump_model, dumps
from stream.core.engine import PartitionedEngine
from stream.core.policy import load_policy, parse_policy
from stream.devtools.simulator import DECLINING, Label, Noise, SimConfig, generate, serialize
from stream.run.replay import replay

GOLDEN = Path(__file__).parents[1] / "golden"
GOLDEN_ACCOUNT = GOLDEN / "replay_seed11_300x150_account.txt"
GOLDEN_SIGNAL = GOLDEN / "replay_seed11_300x150.txt"
CONFIG = SimConfig(accounts=300, days=150, seed=11)
USAGE = {"engagement_drop", "time_in_product_drop", "danger_zone", "footprint_shrink"}


DROP_FLOOR = 3.0
"""engagement_drop's built-in volume floor, logins/week: below it only silence can speak."""


def _replay(policy) -> tuple[list[AlertEvent], list[Label]]:
    labels: list[Label] = []
    lines = serialize(
        generate(CONFIG, labels), Noise(jitter_seconds=120, duplicate_rate=0.01, seed=CONFIG.seed)
    )
    out: list[bytes] = []
    replay(enumerate(lines, 1), PartitionedEngine(policy), out.append, _refuse)
    return [AlertEvent.model_validate_json(raw) for raw in out], labels


@pytest.fixture(scope="module")
def run() -> tuple[list[AlertEvent], list[Label]]:
    """The default policy: one episode per account."""
    return _replay(load_policy(None))


@pytest.fixture(scope="module")
def signal_run() -> tuple[list[AlertEvent], list[Label]]:
    return _replay(parse_policy({"alerting": {"episodes": "signal"}}))


def _refuse(record: bytes) -> None:
    raise AssertionError(f"the simulated log has no bad lines: {record!r}")


def _as_version_1(alert: AlertEvent) -> bytes:
    fields = alert.model_dump(mode="python")
    del fields["reasons"]
    for added in ("name", "owner", "renewal_date"):  # the account context of version 3
        del fields["account"][added]
    return dumps({**fields, "schema_version": 1})


def _render(alerts: list, payload=dump_model) -> str:
    digest = hashlib.sha256(b"".join(payload(a) + b"\n" for a in alerts)).hexdigest()
    rows = [
        f"{a.ts.isoformat()} {a.account_id} {a.signal} {a.kind} {a.severity} {a.alert_id}"
        for a in alerts
    ]
    return (
        f"# {len(alerts)} alerts, sha256 of the JSONL payloads: {digest}\n" + "\n".join(rows) + "\n"
    )


def _check(rendered: str, golden: Path) -> None:
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(rendered)
    expected = golden.read_text()
    assert rendered.splitlines()[1:] == expected.splitlines()[1:], "the alert stream changed"
    assert rendered.splitlines()[0] == expected.splitlines()[0], "alert payloads changed"


def test_seeded_log_gives_the_golden_alerts(run):
    _check(_render(run[0]), GOLDEN_ACCOUNT)


def test_per_signal_episodes_publish_what_schema_version_1_did(signal_run):
    _check(_render(signal_run[0], _as_version_1), GOLDEN_SIGNAL)


def test_a_per_signal_record_lists_its_own_signal_as_its_one_reason(signal_run):
    for alert in signal_run[0]:
        (reason,) = alert.reasons
        assert (reason.signal, reason.dimension, reason.severity, reason.since) == (
            alert.signal, alert.dimension, alert.severity, alert.episode_start,
        )  # fmt: skip
        numbers = ("metric", "value", "baseline", "threshold", "window_days")
        assert [getattr(reason, k) for k in numbers] == [getattr(alert, k) for k in numbers]
        said = alert.resolution if alert.kind in ("resolved", "churned") else alert.explanation
        assert reason.explanation == said


def test_account_episodes_roll_up_the_signal_episodes(run, signal_run):
    alerts, signals = run[0], signal_run[0]
    assert {a.signal for a in alerts} == {ACCOUNT_AT_RISK}
    assert {a.account_id for a in alerts} == {a.account_id for a in signals}
    opened = sum(a.kind == "opened" for a in alerts)
    assert opened < 0.8 * sum(a.kind == "opened" for a in signals), "fewer tickets per account"
    # Never two open account episodes for one account; each runs opened, updated..., resolved.
    open_now: dict[str, AlertEvent] = {}
    for alert in alerts:
        previous = open_now.get(alert.account_id)
        if alert.kind == "opened":
            assert previous is None and alert.sequence == 0
        else:
            assert previous is not None and previous.alert_id == alert.alert_id
            assert alert.sequence == previous.sequence + 1
        open_now[alert.account_id] = alert
        if alert.kind in ("resolved", "churned"):
            del open_now[alert.account_id]
    # Each record lists exactly the signal episodes open at that instant in per-signal mode.
    open_signals: dict[str, set[str]] = defaultdict(set)
    by_instant: dict[tuple[str, datetime], set[str]] = {}
    for alert in signals:
        change = open_signals[alert.account_id]
        (change.discard if alert.kind in ("resolved", "churned") else change.add)(alert.signal)
        by_instant[(alert.account_id, alert.ts)] = set(change)
    for alert in alerts:
        listed = {r.signal for r in alert.reasons}
        if alert.kind not in ("resolved", "churned"):
            assert listed == by_instant[(alert.account_id, alert.ts)]


def _clear_decliners(labels: list[Label]) -> list[Label]:
    """Churned decliners whose pace before the decline was at least the drop detector's floor.

    A one-seat account that logged in twice a week before it faded is judged by silence only,
    and its usual gaps are long: the built-in rules wait until a gap is unlikely at its own
    pace, and such accounts are the learned model's to catch (tests/core/test_churn_risk.py).
    """
    logins: Counter[str] = Counter()
    decline = {lb.account_id: lb for lb in labels if lb.archetype in DECLINING}
    for e in generate(CONFIG):
        label = decline.get(e["account_id"])
        if label and e["type"] == "login" and _day(e["ts"]) < (label.decline_day or 0):
            logins[label.account_id] += 1
    return [
        lb
        for lb in decline.values()
        if lb.outcome == "churned"
        and logins[lb.account_id] * 7 / max(1, (lb.decline_day or 0) - lb.joined_day) >= DROP_FLOOR
    ]


def _day(ts: str) -> int:
    return (datetime.fromisoformat(ts) - CONFIG.start).days


def test_every_clearly_declining_churner_is_alerted_before_it_cancels(run):
    alerts, labels = run
    first_alert: dict[str, datetime] = {}
    for alert in alerts:
        if alert.kind == "opened":
            first_alert.setdefault(alert.account_id, alert.ts)
    decliners = _clear_decliners(labels)
    assert len(decliners) >= 20, "the seeded log must contain enough decliners to mean something"
    missed = [
        lb.account_id
        for lb in decliners
        if lb.account_id not in first_alert
        or first_alert[lb.account_id] >= datetime.fromisoformat(lb.cancel_ts)
    ]
    assert missed == []


def test_decliners_are_flagged_by_a_usage_signal_during_their_decline(run):
    alerts, labels = run
    for label in _clear_decliners(labels):
        cancelled = datetime.fromisoformat(label.cancel_ts)
        days = [
            (a.ts - CONFIG.start).days
            for a in alerts
            if a.account_id == label.account_id
            and a.kind in ("opened", "updated")
            and USAGE & {r.signal for r in a.reasons}
            and a.ts < cancelled
        ]
        assert any(day >= label.decline_day for day in days), (
            f"{label.account_id} declined from day {label.decline_day} without a usage alert"
        )
