"""The quality and transactional scenarios: seeded, with their archetypes and true outcomes."""

from __future__ import annotations

from collections import Counter

from schemas.codec import dumps
from stream.devtools.sim_stories import LAPSE_DAYS, QUALITY_MIX, TRANSACTIONAL_MIX
from stream.devtools.simulator import Label, SimConfig, generate
from tests.helpers import model


def _log(scenario: str, seed: int = 3) -> tuple[list[dict], list[Label]]:
    labels: list[Label] = []
    events = list(generate(SimConfig(accounts=300, days=150, seed=seed, scenario=scenario), labels))
    return events, labels


def test_quality_accounts_file_whole_ticket_lives_and_bug_hit_accounts_leave_unless_fixed():
    events, labels = _log("quality")
    assert [dumps(e) for e in events] == [dumps(e) for e in _log("quality")[0]], "seeded"
    kinds = Counter(label.archetype for label in labels)
    assert set(kinds) == set(QUALITY_MIX)
    for raw in events[:5000]:
        model(raw)  # every event is valid under the event schema
    types = Counter(e["type"] for e in events)
    assert types["issue_linked"] and types["issue_resolved"]
    solved = [e for e in events if e.get("status") == "solved"]
    assert solved and all(e["resolution_s"] >= 0 and e["ticket_id"] for e in solved)
    outcome = {a: Counter(lb.outcome for lb in labels if lb.archetype == a) for a in kinds}
    assert outcome["bug_hit_fixed"]["churned"] == 0
    assert outcome["bug_hit_churn"]["churned"] > outcome["bug_hit_churn"]["retained"]
    assert outcome["surge_then_leave"]["churned"] > 0
    fixed = {lb.account_id for lb in labels if lb.archetype == "bug_hit_fixed"}
    hit = {e["account_id"] for e in events if e.get("linked_issue", "").startswith("ENG-1")}
    fixes = {e["account_id"] for e in events if e["type"] == "issue_resolved"}
    assert fixed & hit and fixed & hit <= fixes, "a bug-hit account that stays sees its fix"


def test_transactional_buyers_have_no_subscription_and_fading_ones_lapse():
    events, labels = _log("transactional")
    assert set(Counter(label.archetype for label in labels)) == set(TRANSACTIONAL_MIX)
    types = Counter(e["type"] for e in events)
    assert types["order_placed"] and not any(t.startswith("subscription") for t in types)
    churned = [lb for lb in labels if lb.outcome == "churned"]
    assert churned and {lb.archetype for lb in churned} <= {"fading_buyer", "shrinking_basket"}
    last_order = {}
    for e in events:
        if e["type"] == "order_placed":
            last_order[e["account_id"]] = e["ts"][:10]
    from datetime import date

    for lb in churned:
        lapse = date.fromisoformat(lb.cancel_ts[:10]) - date.fromisoformat(
            last_order[lb.account_id]
        )
        assert lapse.days == LAPSE_DAYS


def test_the_older_scenarios_are_untouched_by_the_stories():
    for scenario in ("level", "mixed"):
        events, labels = _log(scenario, seed=5)
        assert not {"issue_linked", "order_placed"} & {e["type"] for e in events}
        assert all(lb.mechanism in ("decline", "level", "random") for lb in labels)
        assert all("status" not in e for e in events if e["type"] == "support_ticket")
