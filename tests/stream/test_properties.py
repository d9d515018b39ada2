"""Properties that must hold for any input, checked with hypothesis."""

from __future__ import annotations

import io
from collections import defaultdict
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.codec import dump_model, dumps
from stream.core.engine import PartitionedEngine
from stream.core.policy import parse_policy
from stream.run.replay import replay
from tests.helpers import T0, event, model

LATENESS_S = 300
POLICY = parse_policy({"stream": {"allowed_lateness_seconds": LATENESS_S}})

_KINDS = st.sampled_from(
    ["login"] * 6
    + ["session"] * 3
    + [
        "feature_used",
        "support_ticket",
        "nps_response",
        "payment_failed",
        "invoice_paid",
        "invoice_overdue",
        "plan_changed",
        "seats_changed",
        "subscription_renewed",
        "user_activated",
        "subscription_cancelled",
    ]
)


@st.composite
def _account_stream(draw, account: str) -> list[dict]:
    """One account's events in event-time order over up to ~100 days."""
    n = draw(st.integers(min_value=1, max_value=60))
    minutes = sorted(draw(st.lists(st.integers(0, 100 * 24 * 60), min_size=n, max_size=n)))
    events = [
        event(
            "subscription_renewed",
            account,
            T0,
            plan="pro",
            mrr=500.0,
            seats=5,
            started_at="2025-01-01T00:00:00Z",
        )
    ]
    for m in minutes:
        kind = draw(_KINDS)
        ts = T0 + timedelta(minutes=m + 1)
        fields: dict = {"user_id": f"{account}-u{draw(st.integers(0, 6))}"}
        if kind == "session":
            fields["duration_s"] = float(draw(st.integers(0, 7200)))
        elif kind == "feature_used":
            fields["feature"] = "reports"
        elif kind == "nps_response":
            fields["score"] = draw(st.integers(0, 10))
        elif kind == "invoice_overdue":
            fields["days_late"] = draw(st.integers(0, 60))
        elif kind == "plan_changed":
            fields.update(
                previous_plan="pro",
                new_plan=draw(st.sampled_from(["pro", "starter"])),
                previous_mrr=500.0,
                new_mrr=float(draw(st.integers(100, 900))),
            )
        elif kind == "seats_changed":
            fields.update(previous_seats=5, new_seats=draw(st.integers(1, 9)))
        elif kind == "subscription_renewed":
            fields.update(plan="pro", mrr=500.0, seats=5)
        events.append(event(kind, account, ts, **fields))
    # A little dense daily usage so the usage detectors have something to judge.
    busy_until = draw(st.integers(0, 80))
    for day in range(busy_until):
        events.append(
            event(
                "login", account, T0 + timedelta(days=day, hours=9), user_id=f"{account}-u{day % 5}"
            )
        )
    events.sort(key=lambda e: e["ts"])
    return events


def _alerts_by_account(events: list[dict]) -> dict[str, list[bytes]]:
    engine = PartitionedEngine(POLICY)
    out: dict[str, list[bytes]] = defaultdict(list)
    for raw in events:
        for alert in engine.process(model(raw)):
            out[alert.account_id].append(dump_model(alert))
    return dict(out)


def _by_time(streams: list[list[dict]]) -> list[dict]:
    merged = [(e["ts"], i, j, e) for i, s in enumerate(streams) for j, e in enumerate(s)]
    return [e for *_, e in sorted(merged, key=lambda item: item[:3])]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), accounts=st.integers(2, 4))
def test_interleaving_other_accounts_does_not_change_any_accounts_alerts(data, accounts):
    streams = [data.draw(_account_stream(f"acct-{i}")) for i in range(accounts)]
    canonical = _alerts_by_account(_by_time(streams))

    # Any delivery order that keeps each account's own order and never delivers an event
    # more than the allowed lateness behind the newest one seen.
    # Arrival time = event time + a delay up to the allowance, made strictly increasing within
    # an account so only different accounts' events can change places.
    keyed = []
    for i, stream in enumerate(streams):
        floor = None
        for e in stream:
            delay = data.draw(st.integers(0, LATENESS_S * 1000))
            key = model(e).ts + timedelta(milliseconds=delay)
            floor = key if floor is None or key > floor else floor + timedelta(microseconds=1)
            keyed.append((floor, data.draw(st.integers(0, 3)), i, e))
    shuffled = [e for *_, e in sorted(keyed, key=lambda item: item[:3])]

    assert _alerts_by_account(shuffled) == canonical


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_replay_is_deterministic(data):
    streams = [data.draw(_account_stream(f"acct-{i}")) for i in range(3)]
    lines = [(n + 1, dumps(e)) for n, e in enumerate(_by_time(streams))]

    def run() -> bytes:
        out = io.BytesIO()
        replay(lines, PartitionedEngine(POLICY, partitions=2), out.write, lambda _: None)
        return out.getvalue()

    assert run() == run()


_INT64 = st.integers(-(2**63), 2**63 - 1)
_JUNK = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=200).map(str.encode),
    st.dictionaries(
        st.sampled_from(["type", "event_id", "account_id", "ts", "score", "x"]),
        st.one_of(
            st.none(),
            _INT64,
            st.text(max_size=20),
            st.floats(),
            st.booleans(),
            st.lists(_INT64, max_size=3),
        ),
        max_size=6,
    ).map(dumps),
    st.sampled_from([b"{", b"[]", b"null", b'{"type": "login"}']),
    st.integers(65_000, 70_000).map(lambda n: b"x" * n),  # around the event size limit
)


@settings(max_examples=150, deadline=None)
@given(junk=st.lists(_JUNK, max_size=20), valid=st.integers(0, 30))
def test_junk_lines_never_crash_replay_and_every_line_is_accounted_for(junk, valid):
    good = [
        dumps(event("login", f"acct-{k % 3}", T0 + timedelta(minutes=k), user_id="u"))
        for k in range(valid)
    ]
    mixed = [line.replace(b"\n", b" ") for line in junk] + good
    lines = list(enumerate(mixed, start=1))
    rejects: list[bytes] = []
    report = replay(lines, PartitionedEngine(POLICY), lambda _: None, rejects.append)
    blank = sum(1 for line in mixed if not line.strip())
    assert report.events + report.rejected + blank == len(mixed)
    assert report.events >= valid
    assert len(rejects) == report.rejected
