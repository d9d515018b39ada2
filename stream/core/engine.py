"""The per-partition engine: event-time clock, account state, day closes and alerts.

One :class:`PartitionEngine` owns the accounts of one Kafka partition (or of one simulated
partition in replay). Its clock is the newest event time seen on the partition; the
*watermark* trails it by the policy's allowed lateness.

When is an account judged on day D? Exactly once, at the first of:

* the account's own first event on a later day arrives (the close runs before that event is
  applied), or
* the watermark passes the end of D (every account of the partition is swept), which is how an
  account that has gone silent is still caught.

Either way the close sees precisely the account's events that preceded its first event of a
later day. So as long as no event arrives more than the allowed lateness behind the clock,
each account's alerts depend only on its own events and their order, not on how they are
interleaved with other accounts' events, which is what makes the live worker (one clock per
partition) and replay agree. Events later than that are counted and dropped; events that are
late but inside the allowance land in their day's bucket.

What is published follows the policy's ``[alerting] episodes``: each evaluation's signal
transitions become one record each (``"signal"``), or are folded into the account's one
episode (``"account"``, the default; :mod:`stream.core.account_episodes`), at most one record
per evaluation.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, MutableMapping

from schemas.alerts import AlertEvent
from schemas.events import EventBase
from stream.core import account_episodes, effects, episodes, feature_counts
from stream.core.alert_builder import build_account_alert, build_alert
from stream.core.churn_reasons import cancellation
from stream.core.health_snapshot import snapshot_bytes
from stream.core.partitioning import partition_for
from stream.core.policy import Policy, Stage
from stream.core.ring import RING_DAYS
from stream.core.signals import registry
from stream.core.signals.base import CLEAR, FIRING, Ctx, Detector, Finding
from stream.core.state import AccountState
from stream.core.timeutil import DAY_MS, to_ms

_NO_ALERTS: list[AlertEvent] = []  # shared empty result; callers only read it
EVICT_AFTER_DAYS = RING_DAYS
"""A cancelled account with no events for this long is forgotten (bounded state)."""

__all__ = ["EVICT_AFTER_DAYS", "PartitionEngine", "PartitionedEngine", "partition_for"]


class PartitionEngine:
    def __init__(
        self,
        policy: Policy,
        accounts: MutableMapping[str, AccountState] | None = None,
        clock_ms: int = 0,
        track_changes: bool = False,
        snapshots: bool = False,
    ) -> None:
        signals = registry.active
        if policy.registry is not signals:
            raise ValueError(
                f"the policy has thresholds for {policy.registry}, the engine judges {signals}"
            )
        self.policy = policy
        self._signals = signals
        self._woken_by = signals.woken_by
        self._excluded_by = signals.excluded_by
        self.accounts: MutableMapping[str, AccountState] = accounts if accounts is not None else {}
        self.clock_ms = clock_ms
        self._lateness = policy.lateness_ms
        self._per_account = policy.alerting.per_account
        self._transitions = 0  # signal episode transitions so far (a sweep asks if it moved)
        # A restored engine sweeps at its first event: a crash may have cut a sweep short,
        # and closing a day twice is a no-op for the accounts that already closed it.
        self._next_sweep_ms = 0
        self.track_changes = track_changes
        self.swept: set[str] = set()  # accounts a sweep alerted on (when tracking changes)
        self.evicted: list[str] = []  # accounts forgotten (when tracking changes)
        self._stats: Counter[str] = Counter()
        self.applied = 0  # a plain attribute: counted on every event
        model = policy.risk_model
        tracked = tuple(model.tracked_features) if model is not None else ()
        self._feature_slot = {name: i for i, name in enumerate(tracked)}
        self._feature_slots = feature_counts.slots_for(tracked)
        self.day_probe: Callable[[AccountState, Ctx], object] | None = None
        """Called after each account-day is judged: calibration samples the metrics here."""
        self.health_out: list[tuple[str, bytes]] | None = [] if snapshots else None
        """With ``snapshots``: (account id, health snapshot) for each day close and each
        cancellation, in the order made; the caller takes them after each call."""

    @property
    def stats(self) -> Counter[str]:
        self._stats["applied"] = self.applied
        return self._stats

    def too_late(self, ts_ms: int) -> str | None:
        """Why an event stamped ``ts_ms`` can no longer be applied, or ``None`` if it can.

        The worker and replay ask before :meth:`process`, so that such an event is
        dead-lettered (replay: rejected) with this reason instead of only counted.
        """
        floor = self.clock_ms - self._lateness
        if ts_ms >= floor:
            return None
        self._stats["too_late"] += 1
        behind = (self.clock_ms - ts_ms) // 1000
        return (
            f"too late: {behind:,} s behind its partition's event time, "
            f"{self._lateness // 1000:,} s allowed"
        )

    # --- input ----------------------------------------------------------------------------

    def process(
        self, event: EventBase, offset: int | None = None, source: int = 0, ms: int | None = None
    ) -> list[AlertEvent]:
        """Apply one validated event; return the alerts it (or the clock it moved) produced.

        ``offset`` and ``source`` (0 usage, 1 billing) are the record's place in its Kafka
        partition: an account remembers the newest offset it applied per source, in the same
        table value as the effects, so a record redelivered after a crash is recognised
        however many records the restart replays. This is the per-event hot path of both the
        worker and replay, hence the inlining. ``ms`` is ``to_ms(event.ts)`` when the caller
        has it already (replay needs it to merge), as converting the datetime costs.
        """
        if ms is None:
            ms = to_ms(event.ts)
        alerts: list[AlertEvent] = _NO_ALERTS
        if ms > self.clock_ms:
            self.clock_ms = ms
            if ms >= self._next_sweep_ms:
                alerts = self._sweep()
        elif ms < self.clock_ms - self._lateness:
            self._stats["too_late"] += 1
            return alerts
        handler = effects.HANDLERS.get(event.type)
        if handler is None:
            self._stats["unknown_type"] += 1
            return alerts
        day = ms // DAY_MS
        acct = self.accounts.get(event.account_id)
        if acct is None:
            acct = self.accounts[event.account_id] = AccountState(event.account_id, day)
        if offset is not None:
            if offset <= acct.applied[source]:
                self._stats["redelivered"] += 1
                return alerts
            acct.applied[source] = offset
        if acct.seen_before(event.event_id):
            self._stats["duplicate"] += 1
            return alerts
        self.applied += 1
        if day > acct.closed_day + 1:
            closed = self._close_through(acct, day - 1)
            if closed:
                alerts = alerts + closed
        if day > acct.head_day:
            acct.advance_to(day)
        if (
            event.segment is not None
            or event.plan is not None
            or event.account_name is not None
            or event.owner is not None
        ):
            effects.apply_attributes(acct, event)
        outcome = handler(acct, event, ms, day)
        if self._feature_slots and event.type == "feature_used":
            slot = self._feature_slot.get(event.feature, self._feature_slots - 1)  # type: ignore[attr-defined]
            feature_counts.add(acct, slot, self._feature_slots, day)
        if outcome == effects.APPLIED:
            woken = self._woken_by.get(event.type)
            if woken and not acct.cancelled:
                ctx = self._context(acct, ms, day)
                alerts = alerts + self._evaluate(acct, woken, ctx, "event")
        elif outcome == effects.CANCELLED:
            if self.health_out is not None:
                self._snapshot_cancelled(acct, day)
            why = cancellation(event.reason, self.policy.churn_reasons)  # type: ignore[attr-defined]
            alerts = alerts + self._churned(acct, ms, day, why)
        return alerts

    # --- the clock ------------------------------------------------------------------------

    def _sweep(self) -> list[AlertEvent]:
        through = (self.clock_ms - self._lateness) // DAY_MS - 1
        self._next_sweep_ms = (through + 2) * DAY_MS + self._lateness
        alerts: list[AlertEvent] = []
        for account_id in list(self.accounts):
            acct = self.accounts[account_id]
            if acct.closed_day < through:
                before = self._transitions
                closed = self._close_through(acct, through)
                if acct.cancelled and through - acct.head_day > EVICT_AFTER_DAYS:
                    del self.accounts[account_id]
                    self._stats["evicted"] += 1
                    if self.track_changes:
                        self.evicted.append(account_id)
                elif self._transitions != before:
                    alerts += closed
                    if self.track_changes:
                        # Only a close that changed an episode must reach the table: any
                        # other close is a pure function of the stored state and is redone
                        # identically after a restart, so writing it would only cost. (With
                        # account episodes a signal episode can change with nothing published.)
                        self.swept.add(account_id)
        return alerts

    def pending_sweep(self) -> bool:
        return self.clock_ms >= self._next_sweep_ms

    # --- evaluation -----------------------------------------------------------------------

    def _close_through(self, acct: AccountState, last: int) -> list[AlertEvent]:
        """Judge the account on each day after its last closed one, through ``last``.

        These days hold none of its events (a close runs before the first event of a later
        day), so after :data:`RING_DAYS` of them its history windows are empty, and the days
        after that differ only in the calendar. A jump of the clock (a log with a gap, a
        backfill starting years later) judges those first days and then ``last`` itself,
        which keeps its cost per account bounded however far the clock moves.
        """
        if acct.cancelled:
            acct.closed_day = max(acct.closed_day, last)
            return []
        if last - acct.closed_day > RING_DAYS + 1:
            alerts = self._close_through(acct, acct.closed_day + RING_DAYS)
            acct.closed_day = last - 1
            return alerts + self._close_through(acct, last)
        alerts: list[AlertEvent] = []
        for day in range(acct.closed_day + 1, last + 1):
            acct.closed_day = day
            acct.advance_to(day)
            self._stats["day_closes"] += 1
            ctx = self._context(acct, (day + 1) * DAY_MS, day)
            found = self._evaluate(acct, self._signals.on_day_close, ctx, "day_close")
            if found:
                alerts += found
            if self.health_out is not None:
                self.health_out.append((acct.account_id, snapshot_bytes(acct, ctx)))
            if self.day_probe is not None:
                self.day_probe(acct, ctx)
        return alerts

    def _snapshot_cancelled(self, acct: AccountState, day: int) -> None:
        """The account's last snapshot, dated like a day close: the cancellation's day, or the
        day after the last closed one when the cancellation arrived (late) for a closed day, so
        it always follows the account's earlier snapshots. Health is as it stood before the
        cancellation ends the episodes, which says what was firing when the customer left."""
        last = max(day, acct.closed_day + 1)
        ctx = self._context(acct, (last + 1) * DAY_MS, last)
        self.health_out.append((acct.account_id, snapshot_bytes(acct, ctx, cancelled=True)))  # type: ignore[union-attr]

    def take_snapshots(self) -> list[tuple[str, bytes]]:
        """The snapshots made since the last call (empty without ``snapshots``)."""
        made = self.health_out
        if not made:
            return []
        self.health_out = []
        return made

    def _context(self, acct: AccountState, at_ms: int, day: int) -> Ctx:
        tenure = acct.tenure_days(at_ms)
        onboarding = tenure is not None and tenure < self.policy.lifecycle.onboarding_days
        stage: Stage = "onboarding" if onboarding else "established"
        th = self.policy.thresholds(acct.segment_name(), stage)
        return Ctx(day, at_ms, th, tenure, stage, self.policy)

    def _evaluate(
        self,
        acct: AccountState,
        detectors: tuple[tuple[str, Detector], ...],
        ctx: Ctx,
        trigger: str,
    ) -> list[AlertEvent]:
        """Run ``detectors`` (name, detector pairs in registry order) and step their episodes."""
        transitions = []
        excluded_by = self._excluded_by
        for signal, detect in detectors:
            finding = detect(acct, ctx, signal)
            if finding is None:
                continue
            if (
                finding.status == FIRING
                and signal in excluded_by
                and not acct.is_open(signal)
                and any(acct.is_open(other) for other in excluded_by[signal])
            ):
                self._stats["held_by_exclusion"] += 1
                continue  # an excluding signal is open (SignalSpec.excludes)
            outcome = episodes.step(acct, finding, ctx.at_ms, ctx)
            if outcome is None:
                continue
            if outcome == "suppressed":
                self._stats["suppressed_by_cooldown"] += 1
                continue
            transitions.append(outcome)
        return self._emit(acct, transitions, ctx, trigger)

    def _churned(self, acct: AccountState, at_ms: int, day: int, why: str) -> list[AlertEvent]:
        """End every open episode: the customer left. Published as ``churned``, not
        ``resolved``, so no consumer reads a lost customer as a recovery (the episodes close as
        any resolution does, and the records are relabelled)."""
        ctx = self._context(acct, at_ms, day)
        transitions = []
        for signal in self._signals.names:
            done = episodes.close(acct, signal, Finding(signal, CLEAR, explanation=why))
            if done is not None:
                transitions.append(done)
        acct.risk[:] = bytes(len(acct.risk))
        churned = []
        for alert in self._emit(acct, transitions, ctx, "event", why):
            text = "Churned: " + alert.explanation.removeprefix("Resolved: ")
            churned.append(alert.model_copy(update={"kind": "churned", "explanation": text}))
        return churned

    def _emit(
        self, acct: AccountState, transitions: list, ctx: Ctx, trigger: str, why: str | None = None
    ) -> list[AlertEvent]:
        if not transitions:
            return []
        self._transitions += len(transitions)
        if self._per_account:
            rolled = account_episodes.advance(acct, transitions, ctx.at_ms, self._signals, why)
            if rolled is None:
                return []
            alerts = [build_account_alert(acct, rolled, ctx, trigger)]
        else:
            alerts = [build_alert(acct, t, ctx, trigger) for t in transitions]
        for alert in alerts:
            self._stats[f"alerts_{alert.kind}"] += 1  # a churned record counts as resolved here
        return alerts


class PartitionedEngine:
    """Partition engines behind Kafka's default partitioner: replay as the worker sees it."""

    def __init__(self, policy: Policy, partitions: int = 1, snapshots: bool = False) -> None:
        if partitions < 1:
            raise ValueError("partitions must be at least 1")
        self.policy = policy
        self.partitions = [PartitionEngine(policy, snapshots=snapshots) for _ in range(partitions)]
        if partitions == 1:
            self.process = self.partitions[0].process  # type: ignore[method-assign]

    def process(self, event: EventBase) -> list[AlertEvent]:
        index = partition_for(event.account_id, len(self.partitions))
        return self.partitions[index].process(event)

    def set_day_probe(self, probe: Callable[[AccountState, Ctx], object] | None) -> None:
        for engine in self.partitions:
            engine.day_probe = probe

    def accounts(self) -> Iterator[AccountState]:
        for engine in self.partitions:
            yield from engine.accounts.values()

    @property
    def stats(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for engine in self.partitions:
            total.update(engine.stats)
        return total
