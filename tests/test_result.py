import json
import math

import numpy as np
import pytest

from mlflow_hitl import CheckResult, Status, ValidationResult
from mlflow_hitl._result import worst_status


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([], Status.PASSED),
        (["passed", "passed"], Status.PASSED),
        (["passed", "insufficient_evidence"], Status.INSUFFICIENT_EVIDENCE),
        (["insufficient_evidence", "needs_review"], Status.NEEDS_REVIEW),
        (["needs_review", "failed", "passed"], Status.FAILED),
    ],
)
def test_worst_status_orders_by_severity(statuses, expected):
    assert worst_status(statuses) is expected


def test_check_result_is_immutable_and_coerces_metrics():
    result = CheckResult(name="x", status="passed", metrics={"a": np.float32(0.5), "b": 2})
    assert result.status is Status.PASSED
    assert result.metrics == {"a": 0.5, "b": 2.0}
    assert all(type(v) is float for v in result.metrics.values())
    with pytest.raises(TypeError):
        result.metrics["a"] = 1.0  # type: ignore[index]
    with pytest.raises(AttributeError):
        result.status = Status.FAILED  # type: ignore[misc]


def test_unknown_status_is_refused():
    with pytest.raises(ValueError, match="'great'"):
        CheckResult(name="x", status="great")


def test_to_json_turns_non_finite_and_numpy_values_into_plain_json():
    result = CheckResult(
        name="x",
        status=Status.FAILED,
        metrics={"nan": math.nan},
        details={"arr": (np.int64(3), np.float64(math.inf)), "nested": {1: Status.PASSED}},
        artifacts={"plot.png": b"\x89PNG"},
    )
    data = json.loads(result.to_json())
    assert data["metrics"] == {"nan": None}
    assert data["details"] == {"arr": [3, None], "nested": {"1": "passed"}}
    assert data["artifacts"] == ["plot.png"]


def test_validation_status_is_worst_check_and_empty_is_not_a_pass():
    assert ValidationResult(checks={}).status is Status.INSUFFICIENT_EVIDENCE
    checks = {
        "a": CheckResult(name="a", status="passed", metrics={"m": 1.0}),
        "b": CheckResult(name="b", status="needs_review", metrics={"m": 2.0}),
    }
    result = ValidationResult(checks=checks, skipped={"c": "needs synthetic data"})
    assert result.status is Status.NEEDS_REVIEW
    assert not result.passed
    assert result.metrics() == {"a.m": 1.0, "b.m": 2.0}
    assert result.to_dict()["skipped"] == {"c": "needs synthetic data"}
    assert "needs_review" in repr(result)
