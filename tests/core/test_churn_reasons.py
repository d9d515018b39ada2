"""Cancellation reasons mapped to a taxonomy: codes, labels, words, and what is left over."""

from __future__ import annotations

import pytest

from stream.core.churn_reasons import DEFAULT_CODES, ChurnReasons, ReasonCode
from stream.core.policy import PolicyError, parse_policy

TAXONOMY = ChurnReasons()


@pytest.mark.parametrize(
    ("reason", "code", "managed"),
    [
        ("price", "price", True),
        ("Too expensive", "price", True),
        ("VALUE_NOT_SEEN", "value_not_seen", True),
        ("no longer needed", "value_not_seen", True),
        ("missing features", "missing_feature", True),
        ("Does not support SSO", "missing_feature", True),
        ("switched to a competitor", "competitor", True),
        ("we built our own internal-tool", "moved_in_house", True),
        ("company shut down", "company_closed", False),
        ("acquired", "company_closed", False),
        ("budget cuts", "budget_cut", False),
        ("card_declined", "payment_failure", False),
        ("payment_failed", "payment_failure", False),
        ("project ended", "unclassified", None),
        ("Kostenexplosion", "unclassified", None),
        ("", "not_given", None),
        (None, "not_given", None),
    ],
)
def test_reasons_map_to_codes_by_code_label_or_words(reason, code, managed):
    found = TAXONOMY.classify(reason)
    assert (found.code, found.managed) == (code, managed)


def test_the_default_taxonomy_covers_the_usual_groups():
    groups = {c.group for c in DEFAULT_CODES}
    assert {"price", "value", "product_fit", "product_quality", "support", "competition",
            "company_change", "budget", "relationship", "payment"} <= groups  # fmt: skip
    assert {c.code for c in DEFAULT_CODES if not c.managed} == {
        "company_closed", "budget_cut", "payment_failure"}  # fmt: skip


def test_a_policy_can_replace_the_taxonomy_and_bad_entries_are_refused():
    policy = parse_policy({"churn_reasons": {"codes": [
        {"code": "too_complex", "label": "Too complex", "group": "usability", "managed": True,
         "match": ["complicated", "hard to use"]}]}})  # fmt: skip
    assert policy.churn_reasons.classify("It was hard-to-use").code == "too_complex"
    assert policy.churn_reasons.classify("price").code == "unclassified"
    for bad in ({"codes": [{"code": "Bad Code", "label": "x", "group": "g", "managed": True}]},
                {"codes": [{"code": "unclassified", "label": "x", "group": "g",
                            "managed": True}]}):  # fmt: skip
        with pytest.raises(PolicyError, match="churn_reasons"):
            parse_policy({"churn_reasons": bad})
    assert ReasonCode(code="a", label="A", group="g", managed=False).match == []


def test_the_portfolio_counts_cancellations_by_reason_group_and_managed_or_not():
    from stream.core.portfolio import Portfolio
    from tests.helpers import at, event, model

    portfolio = Portfolio()
    for n, reason in enumerate(["too expensive", "budget cuts", "project ended", None]):
        account = f"acct-{n}"
        started = at(-100).isoformat().replace("+00:00", "Z")
        portfolio.observe(model(event("subscription_renewed", account, at(0), plan="pro",
                                      mrr=100.0, seats=2, started_at=started)))  # fmt: skip
        fields = {} if reason is None else {"reason": reason}
        portfolio.observe(model(event("subscription_cancelled", account, at(20), **fields)))
    january = next(row for row in portfolio.report() if row["lost"])
    assert january["by_reason"] == {"budget": 1, "not_given": 1, "price": 1, "unclassified": 1}
    assert (january["managed"], january["unmanaged"], january["unknown_reason"]) == (1, 1, 2)
