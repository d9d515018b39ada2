"""The published alert JSON Schema is exactly what the model produces, with the registry's
signals as the ``signal`` enum."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from schemas.alerts import (
    ACCOUNT_AT_RISK,
    ALERT_SCHEMA_PATH,
    ALERT_SCHEMA_VERSION,
    DIMENSIONS,
    AlertEvent,
    alert_json_schema_text,
)
from schemas.codec import loads
from stream.core.signals import registry


def test_checked_in_schema_matches_the_model():
    published = ALERT_SCHEMA_PATH.read_text(encoding="utf-8")
    assert published == alert_json_schema_text(registry.SIGNALS), (
        "schemas/alert.schema.json is stale: run `churnwatch schema --write` and review the diff"
    )


def test_schema_names_every_signal_and_required_explanation_fields():
    schema = loads(ALERT_SCHEMA_PATH.read_bytes())
    assert schema["properties"]["signal"]["enum"] == [*registry.DEFAULT.names, ACCOUNT_AT_RISK]
    assert list(registry.PUBLISHED) == schema["properties"]["signal"]["enum"]
    for name in ("alert_id", "sequence", "kind", "explanation", "evidence", "health", "playbook",
                 "reasons"):  # fmt: skip
        assert name in schema["required"]
    assert schema["additionalProperties"] is False


def test_version_2_adds_reasons_whose_signals_are_the_registered_ones():
    schema = loads(ALERT_SCHEMA_PATH.read_bytes())
    assert ALERT_SCHEMA_VERSION == 3 and schema["properties"]["schema_version"]["const"] == 3
    assert schema["properties"]["reasons"]["minItems"] == 1
    reason = schema["$defs"]["Reason"]
    assert reason["properties"]["signal"]["enum"] == list(registry.DEFAULT.names)
    for name in ("signal", "dimension", "severity", "since", "metric", "value", "baseline",
                 "threshold", "window_days", "explanation"):  # fmt: skip
        assert name in reason["required"]


def test_the_account_episode_name_is_no_registrable_signal():
    spec = registry.SIGNAL_SPECS[0]
    clash = registry.SignalSpec(ACCOUNT_AT_RISK, "usage", spec.policy, spec.detect)
    with pytest.raises(ValueError, match="account-level episode"):
        registry.DEFAULT.with_signals(clash)


def test_every_signal_has_a_detector_and_a_known_dimension():
    assert registry.SIGNALS == registry.DEFAULT.names == tuple(registry.DEFAULT.detectors)
    assert set(registry.DEFAULT.dimension_of.values()) == set(DIMENSIONS)
    assert set(AlertEvent.model_fields["health"].annotation.model_fields) >= set(DIMENSIONS)


def test_signal_order_is_the_evaluation_and_storage_order():
    # Part of the output contract (alerts of one evaluation) and of the state codec (risk
    # bytes): appending is fine, reordering is not.
    assert registry.SIGNALS[:10] == (
        "engagement_drop",
        "time_in_product_drop",
        "danger_zone",
        "footprint_shrink",
        "onboarding_stall",
        "payment_failed",
        "invoice_overdue",
        "downgrade",
        "support_silence",
        "nps_detractor",
    )


def test_a_malformed_signal_name_is_rejected():
    fields = loads(_some_alert_json())
    assert AlertEvent.model_validate(fields).signal == "payment_failed"
    assert [r["signal"] for r in fields["reasons"]] == ["payment_failed"]
    with pytest.raises(ValidationError, match="signal"):
        AlertEvent.model_validate({**fields, "signal": "Payment Failed"})
    with pytest.raises(ValidationError, match="reasons"):
        AlertEvent.model_validate({**fields, "reasons": []})


def _some_alert_json() -> bytes:
    from tests.helpers import Harness, at

    h = Harness(defaults={"payment_failed": {"grace_days": 0}})  # alert on the failure itself
    h.send("subscription_started", ts=at(0), plan="pro", mrr=100.0, seats=5)
    (alert,) = h.send("payment_failed", ts=at(1))
    return alert.model_dump_json().encode()
