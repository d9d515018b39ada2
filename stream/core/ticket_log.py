"""What an account's help desk told us beyond the daily ticket count, in a few fixed slots.

The daily ``tickets`` ring counts new tickets for the silence and surge detectors. Product
quality needs more than a count: which tickets are open and linked to an engineering issue
(bug exposure) and how long recent tickets took to solve (slow support). Both are short lists
with a hard cap, created only for accounts whose help desk sends that detail, so an account
of a version 2 producer carries nothing extra.
"""

from __future__ import annotations

from array import array

BUG_SLOTS = 6
"""Open bug-linked tickets remembered per account. Exposure alerts from two open tickets, so
six keep every case a CS manager acts on; when full, the newest link is not remembered (the
oldest ones are what ages past the policy's limit)."""
SOLVED_SLOTS = 6
"""Recent resolution times kept per account: the median of up to six is what slow support
judges."""
FIXED_SLOTS = 2
"""Recent fixes kept to explain why an exposure resolved."""
HOT_SLOTS = 16
"""Days of recent high and urgent tickets kept per account, for the urgent part of a surge."""

NO_HOT_DAYS = array("H")
"""Shared and never written: most accounts never open an urgent ticket."""


class TicketLog:
    """Open bug-linked tickets, recent resolutions and the fixes that ended exposures."""

    __slots__ = ("bugs", "fixed", "solved")

    def __init__(self) -> None:
        self.bugs: list[tuple[str, str, int]] = []
        """(ticket id, issue key, ms the ticket was opened or linked), oldest first."""
        self.solved: list[tuple[int, int, str]] = []
        """(ms solved, resolution seconds, ticket id), oldest first."""
        self.fixed: list[tuple[int, str, int]] = []
        """(ms fixed, issue key, how many open tickets it closed), oldest first."""

    def link(self, ticket: str, issue: str, ms: int) -> bool:
        """Remember that ``ticket`` waits on ``issue``; False if nothing changed."""
        for i, (known, old_issue, since) in enumerate(self.bugs):
            if known == ticket:
                if old_issue == issue:
                    return False
                self.bugs[i] = (ticket, issue, since)  # relinked: still open since then
                return True
        if len(self.bugs) >= BUG_SLOTS:
            return False
        self.bugs.append((ticket, issue, ms))
        return True

    def close_ticket(self, ticket: str) -> bool:
        before = len(self.bugs)
        self.bugs = [bug for bug in self.bugs if bug[0] != ticket]
        return len(self.bugs) != before

    def fix_issue(self, issue: str, ms: int) -> int:
        """Forget every open ticket waiting on ``issue``; how many there were."""
        before = len(self.bugs)
        self.bugs = [bug for bug in self.bugs if bug[1] != issue]
        closed = before - len(self.bugs)
        if closed:
            self.fixed = [*self.fixed, (ms, issue, closed)][-FIXED_SLOTS:]
        return closed

    def add_solved(self, ms: int, seconds: float, ticket: str) -> None:
        self.solved = [*self.solved, (ms, int(seconds), ticket)][-SOLVED_SLOTS:]

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.to_list() == other.to_list()  # type: ignore[attr-defined]

    __hash__ = None  # type: ignore[assignment]

    def to_list(self) -> list:
        """The codec's form: plain lists, in a fixed order."""
        return [
            [list(b) for b in self.bugs],
            [list(s) for s in self.solved],
            [list(f) for f in self.fixed],
        ]

    @classmethod
    def from_list(cls, fields: list) -> TicketLog:
        log = cls()
        bugs, solved, fixed = fields
        log.bugs = [tuple(b) for b in bugs]  # type: ignore[misc]
        log.solved = [tuple(s) for s in solved]  # type: ignore[misc]
        log.fixed = [tuple(f) for f in fixed]  # type: ignore[misc]
        return log


def push_hot_day(days: array, day: int) -> array:
    """``days`` with ``day`` appended (a new array the first time), keeping the newest
    :data:`HOT_SLOTS`."""
    if days is NO_HOT_DAYS:
        days = array("H")
    days.append(day)
    if len(days) > HOT_SLOTS:
        del days[0]
    return days
