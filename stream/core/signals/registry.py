"""One detector per leading indicator in the domain notes, in a fixed evaluation order.

The order is part of the output contract: alerts produced by one evaluation are emitted in
this order, in the live worker and in replay alike.
"""

from __future__ import annotations

from stream.core.signals.adoption import footprint_shrink, onboarding_stall
from stream.core.signals.base import Detector
from stream.core.signals.billing import downgrade, invoice_overdue, payment_failed
from stream.core.signals.usage import danger_zone, engagement_drop, time_in_product_drop
from stream.core.signals.voice import nps_detractor, support_silence

DETECTORS: dict[str, Detector] = {
    "engagement_drop": engagement_drop,
    "time_in_product_drop": time_in_product_drop,
    "danger_zone": danger_zone,
    "footprint_shrink": footprint_shrink,
    "onboarding_stall": onboarding_stall,
    "payment_failed": payment_failed,
    "invoice_overdue": invoice_overdue,
    "downgrade": downgrade,
    "support_silence": support_silence,
    "nps_detractor": nps_detractor,
}

ON_DAY_CLOSE: tuple[tuple[str, Detector], ...] = tuple(DETECTORS.items())
"""Every detector runs when a day closes: usage windows move, and billing or NPS episodes age."""

DIMENSION_OF: dict[str, str] = {
    "engagement_drop": "usage",
    "time_in_product_drop": "usage",
    "danger_zone": "usage",
    "footprint_shrink": "adoption",
    "onboarding_stall": "adoption",
    "payment_failed": "billing",
    "invoice_overdue": "billing",
    "downgrade": "billing",
    "support_silence": "support",
    "nps_detractor": "sentiment",
}
