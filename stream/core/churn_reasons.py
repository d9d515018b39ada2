"""Why customers left: a taxonomy of cancellation reasons, and managed vs unmanaged churn.

CS leaders split churn into **managed** (preventable: the customer did not see the value, hit
bugs, went to a competitor, lost its champion) and **unmanaged** (the company closed or was
acquired, its budget went, a card kept failing), because only the first is theirs to win back
and the second should not count against them. ``subscription_cancelled.reason`` is whatever
the billing system or the cancellation form sends, so each code comes with the words that
map free text onto it.

The policy's ``[churn_reasons]`` table can replace the taxonomy (``[[churn_reasons.codes]]``
entries with ``code``, ``label``, ``group``, ``managed`` and ``match``). A reason that matches
no code is ``unclassified`` (counted and reported, so a team sees what to add); a cancellation
without any reason is ``not_given``.
"""

from __future__ import annotations

import re
from functools import cached_property

from pydantic import BaseModel, ConfigDict, Field, field_validator

UNCLASSIFIED = "unclassified"
NOT_GIVEN = "not_given"
_CODE = r"^[a-z][a-z0-9_]*$"


def _words(text: str) -> str:
    """Lower case, with runs of spaces, underscores and hyphens as one space: ``card_declined``,
    ``Card-declined`` and ``card declined`` read alike."""
    return re.sub(r"[\s_-]+", " ", text.casefold()).strip()


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ReasonCode(_Strict):
    code: str = Field(pattern=_CODE, max_length=60)
    label: str = Field(min_length=1, max_length=100)
    group: str = Field(pattern=_CODE, max_length=60)
    managed: bool = Field(description="preventable by the vendor (CS, product, support)")
    match: list[str] = Field(
        default_factory=list,
        description="words or phrases that mark a free-text reason as this code "
        "(case-insensitive, whole words; spaces, _ and - alike)",
    )


DEFAULT_CODES: tuple[ReasonCode, ...] = tuple(
    ReasonCode(code=code, label=label, group=group, managed=managed, match=match)
    for code, label, group, managed, match in (
        ("price", "Too expensive", "price", True,
         ["price", "pricing", "too expensive", "expensive", "cost", "costs", "cheaper"]),
        ("value_not_seen", "Did not see the value", "value", True,
         ["value", "not using", "not used", "no use", "roi", "adoption", "never used",
          "no longer needed", "no longer need", "not needed"]),
        ("missing_feature", "Missing a feature", "product_fit", True,
         ["feature", "features", "missing", "integration", "does not support",
          "doesn't support"]),
        ("product_quality", "Product quality or bugs", "product_quality", True,
         ["bug", "bugs", "buggy", "outage", "downtime", "slow", "unreliable", "quality"]),
        ("support_experience", "Support experience", "support", True,
         ["support", "service", "response time", "unresponsive"]),
        ("competitor", "Moved to a competitor", "competition", True,
         ["competitor", "switched", "switching", "moved to", "alternative"]),
        ("champion_left", "Champion left", "relationship", True,
         ["champion", "sponsor", "left the company", "new management", "reorg"]),
        ("moved_in_house", "Built it in-house", "competition", True,
         ["in house", "internal tool", "built our own"]),
        ("company_closed", "Company closed or acquired", "company_change", False,
         ["closed", "closing", "bankrupt", "bankruptcy", "acquired", "acquisition",
          "merger", "out of business", "shut down"]),
        ("budget_cut", "Budget cut", "budget", False,
         ["budget", "cost cutting", "funding", "layoffs", "downsizing"]),
        ("payment_failure", "Payment failure", "payment", False,
         ["payment", "card", "declined", "non payment", "nonpayment", "unpaid", "dunning"]),
    )
)  # fmt: skip


class Classified(_Strict):
    code: str
    label: str
    group: str
    managed: bool | None
    """None for ``unclassified`` and ``not_given``: unknown, counted apart."""


class ChurnReasons(_Strict):
    codes: list[ReasonCode] = Field(default_factory=lambda: list(DEFAULT_CODES))

    @field_validator("codes")
    @classmethod
    def _unique(cls, codes: list[ReasonCode]) -> list[ReasonCode]:
        names = [c.code for c in codes]
        if len(set(names)) != len(names):
            raise ValueError("reason codes must be unique")
        if {UNCLASSIFIED, NOT_GIVEN} & set(names):
            raise ValueError(f"{UNCLASSIFIED!r} and {NOT_GIVEN!r} are reserved codes")
        return codes

    @cached_property
    def _by_code(self) -> dict[str, ReasonCode]:
        return {c.code: c for c in self.codes}

    @cached_property
    def _patterns(self) -> list[tuple[re.Pattern[str], ReasonCode]]:
        return [
            (re.compile(r"(?<!\w)" + re.escape(_words(word)) + r"(?!\w)"), code)
            for code in self.codes
            for word in code.match
        ]

    def classify(self, reason: str | None) -> Classified:
        """A code when the text is one (``"Too expensive"`` or ``price``), else the code of
        the first matching word, in taxonomy order; else unclassified."""
        if reason is None or not reason.strip():
            return Classified(code=NOT_GIVEN, label="No reason given", group=NOT_GIVEN,
                              managed=None)  # fmt: skip
        text = _words(reason)
        found = self._by_code.get(text.replace(" ", "_"))
        if found is None:
            found = next((c for c in self.codes if _words(c.label) == text), None)
        if found is None:
            found = next((c for pattern, c in self._patterns if pattern.search(text)), None)
        if found is None:
            return Classified(code=UNCLASSIFIED, label="Unclassified", group=UNCLASSIFIED,
                              managed=None)  # fmt: skip
        return Classified(code=found.code, label=found.label, group=found.group,
                          managed=found.managed)  # fmt: skip


def cancellation(reason: str | None, reasons: ChurnReasons) -> str:
    """Why an episode ended at a cancellation, in the words an alert's resolution uses."""
    found = reasons.classify(reason)
    if found.code == NOT_GIVEN:
        return "The subscription was cancelled (no reason given)."
    if found.code == UNCLASSIFIED:
        return f"The subscription was cancelled; reason given: {reason!r} (unclassified)."
    kind = "managed" if found.managed else "unmanaged"
    return f"The subscription was cancelled: {found.label} ({kind} churn)."
