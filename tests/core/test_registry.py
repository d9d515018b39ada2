"""Adding a signal is one module plus one registry line: this file is that module.

``ticket_storm`` below is a complete signal (policy class, detector, spec). Registering it
makes the engine judge it (on its event and at day closes), the policy file accept and layer
its thresholds, the alert carry its dimension and the health score count it, with no other
module edited.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import Field

from schemas.alerts import AlertEvent
from stream.core import ring
from stream.core.engine import PartitionEngine
from stream.core.policy import Policy, PolicyError, dump_policy_toml, load_policy, parse_policy
from stream.core.signals import registry
from stream.core.signals.base import (
    CLEAR,
    FIRING,
    Ctx,
    Finding,
    SignalPolicy,
    set_risk,
    stand_down,
)
from stream.core.signals.registry import Registry, SignalSpec
from stream.core.state import AccountState
from stream.core.state_codec import decode_state, encode_state
from tests.helpers import Harness, at

# --- the whole signal module ----------------------------------------------------------------


class TicketStormPolicy(SignalPolicy):
    max_tickets: int = Field(default=3, ge=1, description="tickets in one day that make a storm")
    playbook: str = "A ticket storm: call the admin before they call the account manager."


def ticket_storm(acct: AccountState, ctx: Ctx, signal: str) -> Finding | None:
    p: TicketStormPolicy = getattr(ctx.th, signal)
    if not p.enabled:
        return None
    tickets = ring.window_sum(acct.tickets, ctx.day, ctx.day)
    if tickets < p.max_tickets:
        if not stand_down(acct, signal):
            return None
        return Finding(signal, CLEAR, explanation="a calm day")
    set_risk(acct, signal, 80)
    return Finding(
        signal,
        FIRING,
        "high",
        metric="tickets_today",
        value=float(tickets),
        threshold=float(p.max_tickets),
        explanation=f"{tickets} support tickets in one day",
        series="tickets",
    )


TICKET_STORM = SignalSpec(
    "ticket_storm", "support", TicketStormPolicy, ticket_storm, woken_by=("support_ticket",)
)

# --- the registry line, for the tests only ----------------------------------------------------


@pytest.fixture
def storm() -> Iterator[Registry]:
    with registry.installed(registry.DEFAULT.with_signals(TICKET_STORM)) as extended:
        yield extended


def test_its_thresholds_appear_in_the_policy_and_layer_like_any_other(storm):
    policy = parse_policy({"segments": {"pro": {"ticket_storm": {"max_tickets": 5}}}})
    assert isinstance(policy, Policy) and policy.registry is storm
    assert policy.thresholds("default", "established").ticket_storm.max_tickets == 3
    assert policy.thresholds("pro", "onboarding").ticket_storm.max_tickets == 5
    assert "[defaults.ticket_storm]\nenabled = true" in dump_policy_toml(policy)
    with pytest.raises(PolicyError, match=r"ticket_storm\.max_ticket: unknown key \(did you mean"):
        parse_policy({"defaults": {"ticket_storm": {"max_ticket": 1}}})


def test_the_engine_judges_it_on_its_event_and_at_day_closes(storm):
    h = Harness()
    h.send("subscription_started", ts=at(0), plan="pro", mrr=100.0, seats=5)
    h.send("support_ticket", ts=at(1, 9))
    h.send("support_ticket", ts=at(1, 10))
    (opened,) = h.send("support_ticket", ts=at(1, 11))
    assert (opened.signal, opened.kind, opened.trigger) == ("ticket_storm", "opened", "event")
    assert opened.dimension == "support" and opened.severity == "high"
    assert opened.health.support == 20 and opened.health.overall == 20
    assert opened.playbook == TicketStormPolicy().playbook
    assert [p.value for p in opened.evidence.daily][-1] == 3.0
    assert AlertEvent.model_validate_json(opened.model_dump_json()) == opened

    h.tick(at(3, 12))  # the watermark passes the end of day 2: a calm day closes it
    resolved = [a for a in h.alerts if a.signal == "ticket_storm" and a.kind == "resolved"]
    assert [(a.trigger, a.alert_id) for a in resolved] == [("day_close", opened.alert_id)]


def test_its_risk_is_stored_after_the_shipped_signals(storm):
    acct = AccountState("a", 0)
    assert len(acct.risk) == len(registry.SIGNALS) + 1
    acct.set_risk("ticket_storm", 80)
    assert acct.risk[-1] == 80 and decode_state(encode_state(acct)).risk_of("ticket_storm") == 80


def test_an_engine_refuses_a_policy_made_for_other_signals(storm):
    shipped = Policy()
    with pytest.raises(ValueError, match="thresholds for"):
        PartitionEngine(shipped)


def test_leaving_the_block_restores_the_shipped_signals():
    with registry.installed(registry.DEFAULT.with_signals(TICKET_STORM)):
        pass
    assert registry.active is registry.DEFAULT
    assert "ticket_storm" not in type(load_policy(None).defaults).model_fields
    assert len(AccountState("a", 0).risk) == len(registry.SIGNALS)


def test_signal_names_are_unique():
    with pytest.raises(ValueError, match="unique"):
        registry.DEFAULT.with_signals(TICKET_STORM, TICKET_STORM)


def test_the_plumbing_never_names_a_signal():
    """Engine, effects, state, health, episodes and alerts read the registry.

    (``schemas/alerts.py`` still holds a deprecated copy of the names for callers above the
    core; a schema test keeps it equal to the registry's until it is deleted.)
    """
    root = Path(__file__).parents[2]
    plumbing = [
        "stream/core/engine.py",
        "stream/core/effects.py",
        "stream/core/state.py",
        "stream/core/health.py",
        "stream/core/episodes.py",
        "stream/core/account_episodes.py",
        "stream/core/alert_builder.py",
        "stream/core/signals/base.py",
        # Family modules name neither their signals nor their policy fields in Thresholds:
        "stream/core/signals/usage.py",
        "stream/core/signals/adoption.py",
        "stream/core/signals/billing.py",
        "stream/core/signals/voice.py",
        "stream/core/signals/risk.py",
        "schemas/alerts.py",
    ]
    names = "|".join(registry.SIGNALS)
    # Some event types share a signal's name; as handler-table keys ("payment_failed": ...)
    # they name the event, which is fine.
    pattern = re.compile(rf"[\"'.]({names})\b(?![\"']:)")
    for path in plumbing:
        found = pattern.findall((root / path).read_text(encoding="utf-8"))
        assert not found, f"{path} names {found}: declare it in the registry instead"
