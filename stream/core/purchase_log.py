"""An account's recent purchases: orders and usage-billed invoices, in two small arrays.

Transactional and usage-billed customers fade by buying less often and for less (domain
notes, "Billing"), so the purchase signals need the times and amounts of the last few
purchases, not a daily count: an order every three weeks would leave a day ring almost empty.
The arrays hold 64-bit integers (milliseconds, cents), so sums and medians are exact and a
replay reproduces them byte for byte; an account that never buys has no log at all.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right

ORDER_SLOTS = 16
"""Purchases remembered per account: fifteen gaps for the cadence, and a recent window plus
a baseline for the order value."""
OTHER_CURRENCY = -1
"""The amount stored for a purchase in another currency than the account's first one: it
counts for the cadence, never in an average."""


class PurchaseLog:
    __slots__ = ("cents", "currency", "last_id", "times")

    def __init__(self) -> None:
        self.times = array("q")  # ms, ascending
        self.cents = array("q")  # amount in cents, or OTHER_CURRENCY
        self.currency: str | None = None
        self.last_id = ""  # the newest purchase's order or invoice id

    def add(self, ms: int, amount: float, currency: str | None, purchase_id: str) -> bool:
        """Record a purchase in time order (a late one lands in its place); False if it is
        older than everything remembered and the log is full."""
        if currency is not None and self.currency is None:
            self.currency = currency
        cents = (
            OTHER_CURRENCY
            if currency is not None and currency != self.currency
            else round(amount * 100)
        )
        at = bisect_right(self.times, ms)
        if at == 0 and len(self.times) >= ORDER_SLOTS:
            return False
        self.times.insert(at, ms)
        self.cents.insert(at, cents)
        if at == len(self.times) - 1:
            self.last_id = purchase_id
        if len(self.times) > ORDER_SLOTS:
            del self.times[0]
            del self.cents[0]
        return True

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.to_list() == other.to_list()  # type: ignore[attr-defined]

    __hash__ = None  # type: ignore[assignment]

    def to_list(self) -> list:
        return [self.times.tolist(), self.cents.tolist(), self.currency, self.last_id]

    @classmethod
    def from_list(cls, fields: list) -> PurchaseLog:
        log = cls()
        times, cents, log.currency, log.last_id = fields
        log.times = array("q", times)
        log.cents = array("q", cents)
        return log
