"""A risk model learned before the quality and purchase metrics still loads and scores alike."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from stream.core.features import LEGACY_BASE_COUNT, QUALITY_PURCHASE_FEATURES, feature_names
from stream.core.signals.risk import RiskModel, probability


def _legacy(tracked: tuple[str, ...]) -> dict:
    names = feature_names(tracked)
    added = len(QUALITY_PURCHASE_FEATURES)
    legacy = names[:LEGACY_BASE_COUNT] + names[LEGACY_BASE_COUNT + added :]
    n = len(legacy)
    weights = {
        "coefficients": [0.1 * (i % 5 - 2) for i in range(n)],
        "means": [0.5] * n,
        "scales": [1.5] * n,
        "intercept": -2.0,
        "retained_deciles": [[float(d) for d in range(9)] for _ in range(n)],
    }
    return {"features": legacy, "tracked_features": list(tracked), **weights,
            "segments": {"pro": dict(weights)}}  # fmt: skip


@pytest.mark.parametrize("tracked", [(), ("reports",)])
def test_a_legacy_model_gets_zero_weight_on_the_new_metrics(tracked):
    raw = _legacy(tracked)
    model = RiskModel.model_validate(raw)
    assert model.features == feature_names(tracked)
    new = slice(LEGACY_BASE_COUNT, LEGACY_BASE_COUNT + len(QUALITY_PURCHASE_FEATURES))
    assert model.coefficients[new] == [0.0] * len(QUALITY_PURCHASE_FEATURES)
    assert model.segments["pro"].scales[new] == [1.0] * len(QUALITY_PURCHASE_FEATURES)
    old_values = [float(i % 7) for i in range(len(raw["features"]))]
    values = old_values[:LEGACY_BASE_COUNT] + [9.0] * 7 + old_values[LEGACY_BASE_COUNT:]
    legacy_model = RiskModel.model_construct(**{**raw, "segments": {}})
    assert probability(model, values) == pytest.approx(probability(legacy_model, old_values))


def test_a_misaligned_model_is_still_refused():
    raw = _legacy(())
    raw["features"] = raw["features"][:-1]
    with pytest.raises(ValidationError, match="features must be exactly"):
        RiskModel.model_validate(raw)
