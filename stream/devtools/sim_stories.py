"""Simulator stories for the quality and purchase signals (issue 16), outside the old scenarios.

Two scenarios of their own, so the logs of ``decline``, ``level``, ``random`` and ``mixed``
stay byte for byte what golden tests and benchmarks pin:

* ``quality``: subscription accounts whose help desk sends ticket categories, bug links,
  statuses and resolution times. Healthy accounts file ordinary tickets (an occasional bug,
  fixed within days); ``bug_hit_churn`` accounts hit a bug that engineering does not fix in
  time and leave, while ``bug_hit_fixed`` ones (a trap) see it fixed within days and stay;
  ``surge_then_leave`` accounts flood support for a week or two, then fade and cancel;
  ``slow_support_churn`` accounts wait days for every answer and leave; ``random_churn``
  leave at a renewal whatever happens (the floor).
* ``transactional``: buyers with no subscription: each order comes with the buyer's sign-in
  and browsing session in the shop, and nothing else.
  ``steady_buyer`` and the traps ``lumpy_buyer`` (irregular gaps) and ``paused_buyer`` (one
  long pause, then back) stay; ``fading_buyer`` orders ever less often, then stops;
  ``shrinking_basket`` buys ever less each time, then stops. A buyer that stops has lapsed
  :data:`LAPSE_DAYS` after its last order: that is its churn date in the labels (there is no
  cancellation event for a customer without a contract).

Everything is drawn from the account's own seeded generator, in a fixed order.
"""

from __future__ import annotations

import math
import random
from typing import TYPE_CHECKING

from stream.core.timeutil import DAY_MS

if TYPE_CHECKING:
    from stream.devtools.simulator import SimConfig, _Account, _Writer

QUALITY_MIX: dict[str, float] = {
    "healthy": 0.60,
    "bug_hit_fixed": 0.09,
    "bug_hit_churn": 0.09,
    "surge_then_leave": 0.08,
    "slow_support_churn": 0.07,
    "random_churn": 0.07,
}
TRANSACTIONAL_MIX: dict[str, float] = {
    "steady_buyer": 0.55,
    "lumpy_buyer": 0.12,
    "paused_buyer": 0.08,
    "fading_buyer": 0.14,
    "shrinking_basket": 0.11,
}
LAPSE_DAYS = 45
"""A transactional buyer with no order for this long after its last one has churned."""
_CATEGORIES = ("question", "question", "question", "bug", "billing", "feature_request", "other")
_HOUR = 3_600_000


QUALITY_RETAINED = frozenset({"healthy", "bug_hit_fixed"})
TRANSACTIONAL_RETAINED = frozenset({"steady_buyer", "lumpy_buyer", "paused_buyer"})


def _kind(rng: random.Random, cfg: SimConfig, mix: dict[str, float], retained: frozenset) -> str:
    """The account's archetype: from ``mix`` as it stands by default (about 6% of accounts a
    month leave, enough churners to score each signal on), or, with ``monthly_churn`` given,
    a churning archetype for the share of accounts that makes about that monthly rate."""
    if cfg.monthly_churn is None:
        return pick(rng, mix)
    share = min(0.9, cfg.monthly_churn * cfg.days / 30 * 1.25)  # some leave after the log ends
    churns = rng.random() < share
    return pick(rng, {k: w for k, w in mix.items() if (k in retained) != churns})


def pick(rng: random.Random, mix: dict[str, float]) -> str:
    """A key of ``mix`` drawn with its weight (the simulator's one weighted draw)."""
    x = rng.random() * sum(mix.values())
    for name, weight in mix.items():
        x -= weight
        if x < 0:
            return name
    return next(reversed(mix))


class QualityStory:
    """Tickets with their whole life (opened, linked, solved) and, for churners, the trouble
    that drives them away."""

    only = False  # the account also subscribes and uses the product

    def __init__(self, a: _Account, cfg: SimConfig, index: int) -> None:
        rng = a.rng
        self.index = index
        self.serial = 0
        self.kind = _kind(rng, cfg, QUALITY_MIX, QUALITY_RETAINED)
        first = a.joined_day + 20  # trouble comes once the account is there
        self.start = rng.randrange(first, max(first + 1, cfg.days - 75))
        self.fix_day: int | None = None
        self.bug_tickets = 0
        self.slow_from: int | None = None
        self.surge_until = -1
        a.archetype = self.kind
        a.label.archetype = self.kind
        a.label.mechanism = "quality"
        s = self.start
        if self.kind in ("bug_hit_churn", "bug_hit_fixed"):
            self.bug_tickets = (
                rng.randrange(2, 5) if self.kind == "bug_hit_churn" else 1 + (rng.random() < 0.5)
            )
            if self.kind == "bug_hit_fixed":
                self.fix_day = s + rng.randrange(8, 16)  # after its bug tickets, in time
            else:
                self.fix_day = s + rng.randrange(60, 90)  # too late: they have left by then
                self._leave(a, cfg, s + 14, rng.randrange(40, 70), "product quality")
        elif self.kind == "surge_then_leave":
            self.surge_until = s + rng.randrange(7, 12)
            self._leave(a, cfg, self.surge_until, rng.randrange(30, 60), "support experience")
        elif self.kind == "slow_support_churn":
            self.slow_from = s
            self._leave(a, cfg, s + 20, rng.randrange(45, 75), "poor support")
        elif self.kind == "random_churn":
            day = rng.randrange(30, cfg.days)
            a.cancel_day = day
            a.cancel_reason = "budget cuts"

    def _leave(self, a: _Account, cfg: SimConfig, decline_from: int, after: int, why: str) -> None:
        a.decline = (decline_from, max(20, after - 10))
        a.label.decline_day = decline_from
        cancel = self.start + after
        a.cancel_day = cancel if cancel < cfg.days else None
        a.cancel_reason = why

    def _ticket(
        self,
        a: _Account,
        w: _Writer,
        day: int,
        ms: int,
        *,
        category: str,
        priority: str,
        hours: float | None,
        issue: str | None = None,
        link_later: bool = False,
    ) -> None:
        """A ticket opened at ``ms``; solved ``hours`` later (never, if None)."""
        self.serial += 1
        ticket = f"T-{self.index}-{self.serial}"
        w.add(
            a, day, ms, "support_ticket", ticket_id=ticket, priority=priority, category=category,
            status="opened", linked_issue=None if link_later else issue,
        )  # fmt: skip
        if issue is not None and link_later:
            w.add(a, day + 1, ms + DAY_MS, "issue_linked", ticket_id=ticket, linked_issue=issue)
        if hours is None:
            return
        solved = ms + int(hours * _HOUR)
        first_response = min(hours, a.rng.uniform(0.2, 4.0)) * 3600
        w.add(
            a, solved // DAY_MS - (ms // DAY_MS - day), solved, "support_ticket",
            ticket_id=ticket, status="solved", category=category,
            first_response_s=round(first_response, 1), resolution_s=round(hours * 3600, 1),
        )  # fmt: skip

    def day(self, a: _Account, w: _Writer, day: int, day_ms: int) -> None:
        rng = a.rng
        at = day_ms + rng.randrange(8 * _HOUR, 18 * _HOUR)
        s = self.start
        issue = f"ENG-{1000 + self.index}"
        if self.bug_tickets and s <= day < s + 7 and rng.random() < self.bug_tickets / 7 * 1.5:
            self.bug_tickets -= 1
            fixed_in = None if self.fix_day is None else (self.fix_day - day) * 24 + 6
            self._ticket(
                a, w, day, at, category="bug", priority=rng.choice(("high", "urgent")),
                hours=fixed_in if self.kind == "bug_hit_fixed" else None, issue=issue,
                link_later=rng.random() < 0.4,
            )  # fmt: skip
        if self.fix_day == day and self.kind == "bug_hit_fixed":
            w.add(a, day, day_ms + 5 * _HOUR, "issue_resolved", linked_issue=issue)
        if s <= day <= self.surge_until:
            for _ in range(rng.randrange(1, 4)):
                self._ticket(
                    a, w, day, day_ms + rng.randrange(8 * _HOUR, 18 * _HOUR),
                    category=rng.choice(("question", "bug", "outage")),
                    priority=rng.choice(("normal", "high", "urgent", "urgent")),
                    hours=rng.lognormvariate(math.log(20), 0.6),
                )  # fmt: skip
            return
        if a.decline is not None and day >= a.decline[0] and self.kind == "surge_then_leave":
            return  # after the storm, they stop asking
        slow = self.slow_from is not None and day >= self.slow_from
        rate = a.ticket_rate * (2.0 if slow else 1.0)
        if rng.random() >= rate:
            return
        category = rng.choice(_CATEGORIES)
        hours = rng.lognormvariate(math.log(8), 0.9)
        if slow:
            hours = rng.uniform(100, 260)
        linked = None
        if category == "bug" and rng.random() < 0.5:
            linked = f"ENG-{5000 + rng.randrange(200)}"
            hours = rng.uniform(48, 12 * 24)  # solved when the small bug is fixed
        self._ticket(
            a, w, day, at, category=category,
            priority=rng.choice(("low", "normal", "normal", "high")), hours=hours, issue=linked,
        )  # fmt: skip


class BuyerStory:
    """Orders (and the shop visit each takes): a transactional customer, no subscription."""

    only = True

    def __init__(self, a: _Account, cfg: SimConfig, index: int) -> None:
        rng = a.rng
        self.kind = _kind(rng, cfg, TRANSACTIONAL_MIX, TRANSACTIONAL_RETAINED)
        a.archetype = self.kind
        a.label.archetype = self.kind
        a.label.mechanism = "transactional"
        self.index = index
        self.days = cfg.days
        self.gap = math.exp(rng.uniform(math.log(3), math.log(18)))
        self.value = rng.lognormvariate(math.log(120), 0.7)
        self.sigma = 0.8 if self.kind == "lumpy_buyer" else 0.3
        self.currency = rng.choice(("EUR", "EUR", "USD", "GBP"))
        self.next_day = a.joined_day + rng.randrange(0, max(1, int(self.gap)))
        self.serial = 0
        first = a.joined_day + 40  # a history to fade from
        self.start = rng.randrange(first, max(first + 1, cfg.days - 50))
        self.length = rng.randrange(30, 60)
        self.pause = (
            (self.start, self.start + int(self.gap * rng.uniform(2.5, 3.5)))
            if self.kind == "paused_buyer"
            else None
        )
        self.last_order: int | None = None
        if self.kind in ("fading_buyer", "shrinking_basket"):
            a.label.decline_day = self.start

    def _stopped(self, day: int) -> bool:
        return self.kind in ("fading_buyer", "shrinking_basket") and day >= self.start + self.length

    def day(self, a: _Account, w: _Writer, day: int, day_ms: int) -> None:
        rng = a.rng
        if self._stopped(day):
            if self.last_order is None:
                return  # never bought: nothing to lapse from
            lapse = self.last_order + LAPSE_DAYS
            if lapse < self.days and a.label.outcome != "churned":
                a.label.outcome = "churned"
                a.label.cancel_ts = w.iso(w.start_ms + lapse * DAY_MS)
                a.label.churn_type = "voluntary"
            return
        if day < self.next_day:
            return
        if self.pause is not None and self.pause[0] <= day < self.pause[1]:
            self.next_day = self.pause[1]
            return
        into = max(0, day - self.start) / self.length if day >= self.start else 0.0
        value = self.value * rng.lognormvariate(0.0, 0.25)
        gap = self.gap * rng.lognormvariate(0.0, self.sigma)
        if self.kind == "fading_buyer":
            gap *= 1 + 3 * into
        elif self.kind == "shrinking_basket":
            value *= max(0.25, 1 - 0.75 * into)
        self.serial += 1
        first = self.serial == 1
        items = max(1, round(value / rng.uniform(15, 40)))
        at = day_ms + rng.randrange(7 * _HOUR, 22 * _HOUR)
        buyer = a.users[rng.randrange(min(len(a.users), 3))]
        # The buyer signs in to the shop to order: the product use of a transactional account.
        w.usage(a, day, at - 20 * 60_000, "login", buyer, "", None)
        browse = round(rng.uniform(5, 20) * 60, 1)
        w.usage(
            a, day, at - 20 * 60_000 + int(browse * 1000), "session", buyer, "duration_s", browse
        )
        w.add(
            a, day, at, "order_placed",
            order_id=f"O-{self.index}-{self.serial}", amount=round(value, 2),
            currency=self.currency, items=items, segment=a.plan if first else None,
        )  # fmt: skip
        self.last_order = day
        self.next_day = day + max(1, round(gap))
