"""Pure checks: pandas and numpy in, one :class:`~mlflow_hitl.CheckResult` out.

Nothing here imports MLflow, touches files or opens a database. Every check validates its
inputs at the door (naming the input that is wrong), computes its metrics, judges them against
the thresholds of its config section, and returns the same immutable result type.

- :func:`drift_check` and :func:`drift_table`: per-column drift, evidently's tests, our engine.
- :func:`calibration_check` and :func:`calibration_metrics`: ECE, adaptive ECE, MCE, Brier, log loss, OE;
  :func:`calibration_from_stats` the same verdict from their sums (:class:`CalibrationStats`).
- :func:`adversarial_check`: controlled perturbations of real rows and how confidence follows accuracy.
- :func:`fairness_check`: per-group metrics (fairlearn), disparities with bootstrap intervals, bias amplification;
  :func:`fairness_from_counts` the same audit from rows counted per cell (:class:`FairnessCounts`).
- :func:`generator_check`: realism (fidelity, classifier two-sample test) and privacy (copies of real rows).
- :func:`generator_audit_check`: how well *people* tell the generator's rows from real ones, per group
  (from a generator-audit review queue; logged by ``mlflow-hitl generator-audit results``).

The formulas under those checks are exported too, for the Spark path (:mod:`mlflow_hitl.spark`): it
computes the same statistics over a Spark DataFrame (counts, quantile sketches, row-hash joins) and
calls these functions on them, so both engines share one definition of every metric.

:mod:`mlflow_hitl.checks.registry` lists them with what each declares (settings, inputs, key metrics,
default gate bounds). The functions are loaded on first use, so importing this package (or the
registry, which the gate reads on every promotion) does not load each check's own module.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._adversarial import adversarial_check
    from ._calibration import (
        CalibrationGroupStats,
        CalibrationStats,
        calibration_check,
        calibration_from_stats,
        calibration_metrics,
        uniform_edges,
    )
    from ._drift import (
        ColumnVerdict,
        PairTable,
        check_same_columns,
        checked_drift_columns,
        drift_check,
        drift_result_of,
        drift_table,
        drift_verdict_table,
        validated_drift_pairs,
        with_drift_report_pages,
    )
    from ._drift_stats import (
        QuantileSketch,
        SketchScore,
        column_kind,
        counts_test,
        drift_threshold,
        ks_p_value,
        mixed_kinds_error,
        numeric_plan,
        unsupported_type_error,
        wasserstein_from_quantiles,
    )
    from ._ecdf import cdf_gap
    from ._fairness import TOO_MANY_GROUPS, FairnessCounts, fairness_check, fairness_from_counts
    from ._generator import generator_check
    from ._generator_audit import generator_audit_check
    from ._keys import unique_key_parts
    from ._privacy import CopyCounts, PoolCounts

# Public name -> the module that defines it.
_HOMES = {
    "ColumnVerdict": "._drift",
    "check_same_columns": "._drift",
    "checked_drift_columns": "._drift",
    "PairTable": "._drift",
    "drift_result_of": "._drift",
    "drift_verdict_table": "._drift",
    "validated_drift_pairs": "._drift",
    "with_drift_report_pages": "._drift",
    "drift_threshold": "._drift_stats",
    "QuantileSketch": "._drift_stats",
    "SketchScore": "._drift_stats",
    "column_kind": "._drift_stats",
    "counts_test": "._drift_stats",
    "ks_p_value": "._drift_stats",
    "mixed_kinds_error": "._drift_stats",
    "numeric_plan": "._drift_stats",
    "unsupported_type_error": "._drift_stats",
    "wasserstein_from_quantiles": "._drift_stats",
    "cdf_gap": "._ecdf",
    "CopyCounts": "._privacy",
    "PoolCounts": "._privacy",
    "adversarial_check": "._adversarial",
    "CalibrationGroupStats": "._calibration",
    "CalibrationStats": "._calibration",
    "calibration_check": "._calibration",
    "calibration_from_stats": "._calibration",
    "uniform_edges": "._calibration",
    "calibration_metrics": "._calibration",
    "drift_check": "._drift",
    "drift_table": "._drift",
    "TOO_MANY_GROUPS": "._fairness",
    "FairnessCounts": "._fairness",
    "fairness_check": "._fairness",
    "fairness_from_counts": "._fairness",
    "generator_audit_check": "._generator_audit",
    "generator_check": "._generator",
    "unique_key_parts": "._keys",
}

__all__ = [
    "TOO_MANY_GROUPS",
    "CalibrationGroupStats",
    "CalibrationStats",
    "FairnessCounts",
    "adversarial_check",
    "calibration_check",
    "calibration_from_stats",
    "calibration_metrics",
    "cdf_gap",
    "check_same_columns",
    "checked_drift_columns",
    "column_kind",
    "ColumnVerdict",
    "CopyCounts",
    "counts_test",
    "drift_check",
    "drift_result_of",
    "drift_table",
    "drift_threshold",
    "drift_verdict_table",
    "fairness_check",
    "fairness_from_counts",
    "generator_audit_check",
    "generator_check",
    "uniform_edges",
    "unique_key_parts",
    "ks_p_value",
    "mixed_kinds_error",
    "numeric_plan",
    "PairTable",
    "PoolCounts",
    "QuantileSketch",
    "SketchScore",
    "unsupported_type_error",
    "validated_drift_pairs",
    "wasserstein_from_quantiles",
    "with_drift_report_pages",
]


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
