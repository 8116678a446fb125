"""Correlation parameters are validated: the error names the field."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from triage.models.parameters import CorrelationParameters


def test_defaults_are_valid_and_frozen() -> None:
    p = CorrelationParameters()
    assert 0 <= p.threshold <= 1 and p.window > 0
    with pytest.raises(ValidationError):
        p.threshold = 0.9  # type: ignore[misc]


@pytest.mark.parametrize("field", ["threshold", "family_threshold", "onset_margin", "weight_text", "weight_topology",
                                   "weight_time", "weight_labels", "weight_family", "hop_decay",
                                   "centroid_radius"])
@pytest.mark.parametrize("value", [-0.01, 1.01])
def test_fractions_outside_0_1_are_rejected(field: str, value: float) -> None:
    with pytest.raises(ValidationError) as err:
        CorrelationParameters(**{field: value})
    assert err.value.errors()[0]["loc"] == (field,)


@pytest.mark.parametrize("field", ["window", "max_incident_age", "lone_window", "reopen_window",
                                   "propagation_window", "onset_window", "dedup_window", "auto_pause", "group_wait",
                                   "group_interval", "repeat_interval", "time_decay", "resolve_timeout"])
def test_negative_windows_are_rejected(field: str) -> None:
    with pytest.raises(ValidationError) as err:
        CorrelationParameters(**{field: -1})
    assert err.value.errors()[0]["loc"] == (field,)


def test_unknown_keys_are_rejected_by_name() -> None:
    with pytest.raises(ValidationError) as err:
        CorrelationParameters(treshold=0.5)  # type: ignore[call-arg]
    assert err.value.errors()[0]["loc"] == ("treshold",) and err.value.errors()[0]["type"] == "extra_forbidden"


def test_cross_field_rules() -> None:
    with pytest.raises(ValidationError, match="max_incident_age must be at least window"):
        CorrelationParameters(window=600, max_incident_age=300)
    with pytest.raises(ValidationError, match="weight"):
        CorrelationParameters(weight_text=0, weight_topology=0, weight_time=0, weight_labels=0)


def test_round_trip_through_json() -> None:
    p = CorrelationParameters(threshold=0.6, weight_labels=0.1)
    assert CorrelationParameters.model_validate_json(p.model_dump_json()) == p
