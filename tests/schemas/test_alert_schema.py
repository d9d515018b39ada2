"""The published alert JSON Schema is exactly what the model produces."""

from __future__ import annotations

from schemas.alerts import ALERT_SCHEMA_PATH, SIGNALS, AlertEvent, alert_json_schema_text
from schemas.codec import loads
from stream.core.signals.registry import DETECTORS, DIMENSION_OF


def test_checked_in_schema_matches_the_model():
    published = ALERT_SCHEMA_PATH.read_text(encoding="utf-8")
    assert published == alert_json_schema_text(), (
        "schemas/alert.schema.json is stale: run `churnwatch schema --write` and review the diff"
    )


def test_schema_names_every_signal_and_required_explanation_fields():
    schema = loads(ALERT_SCHEMA_PATH.read_bytes())
    assert set(schema["properties"]["signal"]["enum"]) == set(SIGNALS)
    for name in ("alert_id", "sequence", "kind", "explanation", "evidence", "health", "playbook"):
        assert name in schema["required"]
    assert schema["additionalProperties"] is False


def test_every_signal_has_a_detector_and_a_dimension():
    assert set(DETECTORS) == set(SIGNALS) == set(DIMENSION_OF)
    assert set(AlertEvent.model_fields["dimension"].annotation.__args__) == set(
        DIMENSION_OF.values()
    )
