"""Every signal, declared once: name, dimension, policy class, detector, and what wakes it.

A signal lives in its family module (:mod:`~stream.core.signals.usage`, ``adoption``,
``billing``, ``voice``, ``quality``, ``purchases``: the detector and its policy class side by
side) plus one :class:`SignalSpec` line in :data:`SIGNAL_SPECS`. Everything else is derived
from this table:

* the evaluation order: alerts from one evaluation are emitted in table order, in the live
  worker and in replay alike (part of the output contract);
* ``SIGNALS``: the same order is the layout of ``AccountState.risk`` (one byte per signal),
  which the state codec stores, so new signals go at the end;
* ``Thresholds`` in :mod:`stream.core.policy` (one field per spec, typed by its policy class);
* the published alert schema: ``schemas.alerts.alert_json_schema_text(SIGNALS)`` lists this
  table's names as the ``signal`` enum (the contract layer sits below the core, so it is
  handed the names rather than importing them), followed by the contract's own
  ``account_at_risk``, the per-account roll-up of these signals, which is therefore no name a
  signal may take (:data:`PUBLISHED` is the whole list, for the read side's filters);
* the dimension an alert and the health score put a signal in;
* which signals an event judges at once (:attr:`SignalSpec.woken_by`), so the effect handlers
  in :mod:`stream.core.effects` only change state and never name a signal.

Import graph (no cycles): this module imports the family modules; they import only
:mod:`~stream.core.signals.base`, ``ring``, ``timeutil`` and pydantic at runtime, and name
``AccountState``, ``Policy``, ``Thresholds`` and ``Stage`` under ``TYPE_CHECKING`` only. So the
state (:mod:`stream.core.state`), the policy (:mod:`stream.core.policy`), health and the engine
all import this module, and none of them is imported back. The contract layer
(:mod:`schemas`) imports nothing from the core: it receives the names where it needs them
(this module imports only its reserved roll-up name from it).

Tests that need an extra signal build ``DEFAULT.with_signals(spec)`` and run under
:func:`installed`; production code only ever sees :data:`DEFAULT`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from schemas.alerts import ACCOUNT_AT_RISK
from stream.core.signals import adoption, billing, purchases, quality, risk, usage, voice
from stream.core.signals.base import Detector, SignalPolicy


@dataclass(frozen=True, slots=True)
class SignalSpec:
    name: str
    dimension: str
    """One of the alert contract's dimensions (``schemas.alerts.DIMENSIONS``)."""
    policy: type[SignalPolicy]
    """Its thresholds; the policy file's ``[defaults.<name>]`` table."""
    detect: Detector
    woken_by: tuple[str, ...] = ()
    """Event types that judge this signal on the event itself (billing, surveys), besides the
    day close that judges every signal."""
    excludes: tuple[str, ...] = ()
    """Signals never open together with this one: while any of them is open, this one does not
    open (and the other way round; the registry makes the relation symmetric). The engine
    enforces it, so each detector keeps judging only its own measure."""


class Registry:
    """An ordered set of signals and the lookups the engine, state and alerts need from it."""

    __slots__ = (
        "detectors",
        "dimension_of",
        "excluded_by",
        "index",
        "names",
        "on_day_close",
        "specs",
        "woken_by",
    )

    def __init__(self, specs: tuple[SignalSpec, ...]) -> None:
        names = tuple(spec.name for spec in specs)
        if len(set(names)) != len(names):
            raise ValueError(f"signal names must be unique: {names}")
        if ACCOUNT_AT_RISK in names:
            raise ValueError(f"{ACCOUNT_AT_RISK!r} is the account-level episode, not a signal name")
        self.specs = specs
        self.names = names
        self.index = {name: i for i, name in enumerate(names)}
        self.dimension_of = {spec.name: spec.dimension for spec in specs}
        self.detectors: dict[str, Detector] = {spec.name: spec.detect for spec in specs}
        self.on_day_close: tuple[tuple[str, Detector], ...] = tuple(self.detectors.items())
        """Every detector runs when a day closes: windows move, and billing or NPS episodes age."""
        woken: dict[str, list[tuple[str, Detector]]] = {}
        for spec in specs:
            for event_type in spec.woken_by:
                woken.setdefault(event_type, []).append((spec.name, spec.detect))
        self.woken_by = {event_type: tuple(found) for event_type, found in woken.items()}
        """Event type -> the (name, detector) pairs it judges at once, in evaluation order."""
        excluded: dict[str, set[str]] = {}
        for spec in specs:
            for other in spec.excludes:
                if other in self.index:
                    excluded.setdefault(spec.name, set()).add(other)
                    excluded.setdefault(other, set()).add(spec.name)
        self.excluded_by = {name: tuple(sorted(found)) for name, found in excluded.items()}
        """Signal -> the signals whose open episode keeps it from opening (symmetric)."""

    def with_signals(self, *specs: SignalSpec) -> Registry:
        """This registry plus ``specs``, evaluated (and stored) after the existing signals."""
        return Registry((*self.specs, *specs))

    def __repr__(self) -> str:
        return f"Registry({', '.join(self.names)})"


SIGNAL_SPECS: tuple[SignalSpec, ...] = (
    SignalSpec("engagement_drop", "usage", usage.EngagementDropPolicy, usage.engagement_drop),
    SignalSpec(
        "time_in_product_drop", "usage", usage.TimeInProductDropPolicy, usage.time_in_product_drop
    ),
    SignalSpec("danger_zone", "usage", usage.DangerZonePolicy, usage.danger_zone),
    SignalSpec(
        "footprint_shrink", "adoption", adoption.FootprintShrinkPolicy, adoption.footprint_shrink
    ),
    SignalSpec(
        "onboarding_stall", "adoption", adoption.OnboardingStallPolicy, adoption.onboarding_stall
    ),
    SignalSpec(
        "payment_failed", "billing", billing.PaymentFailedPolicy, billing.payment_failed,
        woken_by=("invoice_paid", "payment_failed"),
    ),
    SignalSpec(
        "invoice_overdue", "billing", billing.InvoiceOverduePolicy, billing.invoice_overdue,
        woken_by=("invoice_paid", "invoice_overdue"),
    ),
    SignalSpec(
        "downgrade", "billing", billing.DowngradePolicy, billing.downgrade,
        woken_by=("plan_changed", "seats_changed", "subscription_started", "subscription_renewed"),
    ),
    SignalSpec("support_silence", "support", voice.SupportSilencePolicy, voice.support_silence),
    SignalSpec(
        "nps_detractor", "sentiment", voice.NpsDetractorPolicy, voice.nps_detractor,
        woken_by=("nps_response",),
    ),
    SignalSpec("churn_risk", "usage", risk.ChurnRiskPolicy, risk.churn_risk),
    # Issue 16: the remaining early signals, after the original eleven (risk byte layout).
    SignalSpec(
        "support_surge", "support", quality.SupportSurgePolicy, quality.support_surge,
        excludes=("support_silence",),
    ),
    SignalSpec(
        "bug_exposure", "support", quality.BugExposurePolicy, quality.bug_exposure,
        woken_by=("support_ticket", "issue_linked", "issue_resolved"),
    ),
    SignalSpec(
        "slow_support", "support", quality.SlowSupportPolicy, quality.slow_support,
        woken_by=("support_ticket",),
    ),
    SignalSpec(
        "purchase_cadence", "billing", purchases.PurchaseCadencePolicy, purchases.purchase_cadence,
        woken_by=("order_placed", "invoice_paid"),
    ),
    SignalSpec(
        "order_value_decline", "billing", purchases.OrderValueDeclinePolicy,
        purchases.order_value_decline, woken_by=("order_placed", "invoice_paid"),
    ),
)  # fmt: skip

INVOLUNTARY_SIGNALS: frozenset[str] = frozenset({"payment_failed", "invoice_overdue", "downgrade"})
"""The billing signals that foretell involuntary churn (the card failed, the invoice went
unpaid), which calibration scores against involuntary cancellations only. The purchase
signals share their dimension but foretell customers who chose to buy elsewhere: all churn."""

DEFAULT = Registry(SIGNAL_SPECS)
"""The signals churnwatch ships; the published alert schema lists exactly these."""

SIGNALS: tuple[str, ...] = DEFAULT.names
"""The shipped signals in evaluation order (also the layout of ``AccountState.risk``)."""

PUBLISHED: tuple[str, ...] = (*SIGNALS, ACCOUNT_AT_RISK)
"""Every ``signal`` an alert record can carry: the shipped signals, then the account-level
episode (``schemas.alerts.ACCOUNT_AT_RISK``) that rolls them up. Filters on the read side
(``alerts tail --signal``, ``/alerts/open?signal=``) offer these."""

active: Registry = DEFAULT
"""The registry the engine, the account state, health and alert validation use right now.

Read as ``registry.active`` at the point of use (never imported by value), so that
:func:`installed` can swap it for a test.
"""


@contextmanager
def installed(registry: Registry) -> Iterator[Registry]:
    """Make ``registry`` the active one for the duration of a block (tests only).

    Build policies, engines and account states inside the block: each is tied to the signal
    set it was made for (thresholds, risk layout).
    """
    global active
    previous = active
    active = registry
    try:
        yield registry
    finally:
        active = previous
