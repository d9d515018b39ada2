"""Notifications: routes, bodies and signatures, the outbox, and delivery to a faulty webhook."""

from __future__ import annotations

import time

import orjson
import pytest

from stream.devtools.webhook_receiver import Faults, WebhookReceiver
from stream.kafka.settings import WorkerSettings
from stream.run.metrics import Registry
from stream.sinks.notifier import Notifier, _Connections
from stream.sinks.notify_config import NotifyConfigError, event_of, load_notify_config
from stream.sinks.notify_format import sign, slack_body, verify
from stream.sinks.outbox import Outbox, backoff


def _alert(account: str = "acct-1", kind: str = "opened", sequence: int = 0,
           severity: str = "high", day: str = "2026-03-02", owner: str | None = "Priya Shah",
           segment: str = "pro", mrr: float = 300.0) -> dict:  # fmt: skip
    return {"alert_id": f"al-{account}", "sequence": sequence, "kind": kind,
            "account_id": account, "ts": f"{day}T00:00:00Z", "signal": "account_at_risk",
            "severity": severity, "explanation": "Logins fell 60% to 4/week",
            "resolution": "recovered" if kind == "resolved" else None,
            "reasons": [{"signal": "engagement_drop", "explanation": "Logins fell 60% to 4/week"}],
            "health": {"overall": 30}, "playbook": "Call the champion.",
            "account": {"name": f"{account.title()} Ltd", "owner": owner, "segment": segment,
                        "mrr": mrr}}  # fmt: skip


def _config(tmp_path, text: str, **env) -> object:
    path = tmp_path / "notify.toml"
    path.write_text(text)
    return load_notify_config(path)


ROUTES = """
give_up_after_hours = 1
retry_base_seconds = 0.01
retry_max_seconds = 0.05

[[route]]
name = "enterprise"
url = "{url}"
format = "slack"
segment = ["enterprise"]

[[route]]
name = "priya"
url = "{url}"
format = "json"
owner = ["Priya Shah"]
secret_env = "CW_TEST_SECRET"
timeout_seconds = 0.5

[digest]
url = "{url}"
format = "json"
"""


@pytest.fixture
def secret(monkeypatch) -> bytes:
    monkeypatch.setenv("CW_TEST_SECRET", "s3cret")
    return b"s3cret"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[route]]\nname = "a"\nurl = "ftp://x"\n', "route.0.url"),
        ('[[route]]\nname = "a"\nurl = "http://x"\ncolour = 1\n', "route.0.colour"),
        ('[[route]]\nname = "a"\nurl = "http://x"\n[[route]]\nname = "a"\nurl = "http://y"\n',
         "unique"),
        ('[[route]]\nname = "digest"\nurl = "http://x"\n', "another"),
        ('[[route]]\nname = "a"\nurl = "http://x"\nsecret_env = "CW_NOT_SET_ANYWHERE"\n',
         "CW_NOT_SET_ANYWHERE is not set"),
        ("give_up_after_hours = 1\n", "nothing to send"),
        ("[[route]\n", "not valid TOML"),
    ],
)  # fmt: skip
def test_a_bad_config_is_one_clear_error(tmp_path, text, message):
    with pytest.raises(NotifyConfigError, match=message):
        _config(tmp_path, text)


def test_routes_filter_by_owner_segment_severity_and_what_happened(tmp_path, secret):
    config = _config(tmp_path, ROUTES.format(url="http://127.0.0.1:9/hook"))
    enterprise, priya = config.route
    big = _alert(segment="enterprise", owner="Tom Becker")
    assert enterprise.wants(big, "opened") and not priya.wants(big, "opened")
    mine = _alert()
    assert priya.wants(mine, "escalated") and not priya.wants(mine, "updated")
    assert not priya.wants(mine, "resolved"), "new and escalated only, by default"
    assert priya.wants(_alert(owner="priya SHAH"), "opened")  # owners match ignoring case
    assert not priya.wants(_alert(owner=None), "opened")


def test_an_update_is_an_escalation_only_when_the_severity_rose():
    assert event_of(_alert(kind="updated", severity="critical"), previous_rank=3) == "escalated"
    assert event_of(_alert(kind="updated", severity="high"), previous_rank=3) == "updated"
    assert event_of(_alert(kind="updated", severity="high"), previous_rank=None) == "updated"
    assert event_of(_alert(), previous_rank=None) == "opened"


def test_signatures_verify_and_refuse_tampering_and_old_timestamps():
    body = b'{"a":1}'
    header = sign(b"k", 1_700_000_000, body)
    assert verify(b"k", header, body, now=1_700_000_100)
    assert not verify(b"k", header, b'{"a":2}', now=1_700_000_100)
    assert not verify(b"other", header, body, now=1_700_000_100)
    assert not verify(b"k", header, body, now=1_700_001_000), "older than five minutes"
    assert not verify(b"k", "garbage", body, now=1_700_000_000)


def test_the_slack_message_says_who_how_bad_how_much_and_what_to_do():
    message = orjson.loads(slack_body(_alert(), "opened"))
    assert message["text"] == (
        "New high churn risk: Acct-1 Ltd (acct-1), owner Priya Shah, $300 MRR"
    )
    detail = message["blocks"][0]["text"]["text"]
    assert "Logins fell 60%" in detail and "Next step: Call the champion." in detail


def test_the_outbox_queues_a_key_once_and_ignores_an_older_record(tmp_path):
    outbox = Outbox(tmp_path / "o.db")
    assert outbox.enqueue("r:al-1:0", "r", b"{}", 1.0)
    assert not outbox.enqueue("r:al-1:0", "r", b"{}", 2.0)
    assert outbox.observe(_alert(sequence=1)) == (True, None)
    assert outbox.observe(_alert(sequence=1)) == (False, 3), "a redelivery is not new"
    assert outbox.observe(_alert(sequence=2, kind="updated", severity="critical")) == (True, 3)
    assert outbox.counts() == {"pending": 1}
    assert [backoff(n, 1.0, 300.0) for n in (1, 2, 3, 10)] == [1.0, 2.0, 4.0, 300.0]


def _notifier(tmp_path, config) -> Notifier:
    return Notifier(WorkerSettings(), config, str(tmp_path / "outbox.db"), Registry())


def test_intake_queues_per_route_skips_redeliveries_and_sends_a_digest_per_owner_per_day(
    tmp_path, secret
):
    config = _config(tmp_path, ROUTES.format(url="http://127.0.0.1:9/hook"))
    notifier = _notifier(tmp_path, config)
    outbox = Outbox(notifier.outbox_path)
    first = _alert(segment="enterprise")  # both routes: enterprise, and Priya's book
    assert notifier.take(outbox, first, 1.0) == 2
    assert notifier.take(outbox, first, 2.0) == 0, "the same record again"
    assert notifier.take(outbox, _alert(kind="updated", sequence=1, severity="high"), 3.0) == 0
    escalated = _alert(
        kind="updated", sequence=2, severity="critical", day="2026-03-03", segment="enterprise"
    )
    # A new day: one digest for Priya of 2026-03-02, then the escalation to both routes.
    assert notifier.take(outbox, escalated, 4.0) == 3
    keys = [row.key for row in outbox.due(time.time())]
    assert keys == ["enterprise:al-acct-1:0", "priya:al-acct-1:0", "digest:Priya Shah:2026-03-02",
                    "enterprise:al-acct-1:2", "priya:al-acct-1:2"]  # fmt: skip
    digest = orjson.loads(outbox.due(time.time())[2].body)
    assert digest["owner"] == "Priya Shah" and len(digest["open"]) == 1


def test_delivery_retries_through_errors_drops_and_timeouts_until_every_one_arrives(
    tmp_path, secret
):
    faults = Faults(error_rate=0.3, drop_rate=0.15, slow_rate=0.1, slow_seconds=1.0, seed=4)
    with WebhookReceiver(faults) as hook:
        config = _config(tmp_path, ROUTES.format(url=hook.url))
        notifier = _notifier(tmp_path, config)
        outbox = Outbox(notifier.outbox_path)
        outbox.begin()
        for n in range(40):
            notifier.take(outbox, _alert(account=f"acct-{n}"), time.time())
        outbox.commit()
        connections = _Connections()
        deadline = time.monotonic() + 120
        while outbox.counts().get("pending") and time.monotonic() < deadline:
            notifier.deliver_due(outbox, connections)
            time.sleep(0.01)
        connections.close()
        assert outbox.counts() == {"delivered": 40}
        assert sorted(set(hook.keys())) == sorted(f"priya:al-acct-{n}:0" for n in range(40))
        assert hook.refused > 0, "the faults really happened"
        # A timed-out request may still have been taken: then its key came twice, same body.
        bodies: dict[str, bytes] = {}
        for accepted in hook.accepted:
            assert bodies.setdefault(accepted.key, accepted.body) == accepted.body
            assert accepted.signature and verify(secret, accepted.signature, accepted.body,
                                                 int(time.time()))  # fmt: skip


def test_a_webhook_down_longer_than_the_limit_expires_its_notifications_and_counts_them(
    tmp_path, secret
):
    with WebhookReceiver(Faults(error_rate=1.0)) as hook:
        text = ROUTES.format(url=hook.url).replace("give_up_after_hours = 1",
                                                   "give_up_after_hours = 0.0001")  # fmt: skip
        notifier = _notifier(tmp_path, _config(tmp_path, text))
        outbox = Outbox(notifier.outbox_path)
        notifier.take(outbox, _alert(), time.time())
        connections = _Connections()
        deadline = time.monotonic() + 30
        while outbox.counts().get("pending") and time.monotonic() < deadline:
            notifier.deliver_due(outbox, connections)
            time.sleep(0.02)
        connections.close()
        assert outbox.counts() == {"expired": 1}
        assert hook.refused >= 2, "it was retried before it expired"
        assert notifier.metrics.expired.labels("priya")._value.get() == 1


def test_a_notification_whose_route_was_removed_expires_with_the_reason(tmp_path, secret):
    config = _config(tmp_path, ROUTES.format(url="http://127.0.0.1:9/hook"))
    notifier = _notifier(tmp_path, config)
    outbox = Outbox(notifier.outbox_path)
    outbox.enqueue("gone:al-1:0", "gone", b"{}", time.time())
    notifier.deliver_due(outbox, _Connections())
    assert outbox.counts() == {"expired": 1}
