"""``validate`` over Spark DataFrames: inputs checked and the model scored on the executors, then each check
run the way its entry in :data:`RUNNERS` says.

How each check runs on Spark (every result says so per metric in ``details["computed"]``):

- ``fairness``: exact. Rows per (sensitive values, true label, predicted label) cell are counted on
  the executors and audited by the pandas path's own :func:`~mlflow_hitl.checks.fairness_from_counts`;
  the bootstrap draws those counts, so the same seed gives the same intervals.
- ``calibration``: exact for every metric but adaptive ECE (equal-width bin sums, Brier and log-loss
  totals summed on the executors, judged by :func:`~mlflow_hitl.checks.calibration_from_stats`);
  adaptive ECE bins at ``percentile_approx`` quantiles, a sketch with a stated bound.
- ``drift``: over every row (:func:`~mlflow_hitl.spark._drift.drift_check_spark`): each column's score
  exact, or for a numeric column with a large reference from quantile sketches with a bound; the drift
  calls, counts and shares exact unless a sketched score sits within its bound of the threshold, then
  labelled with the interval the exact figure lies in (a share whose verdict that could flip is listed
  in ``near_threshold``). evidently's page, when rendered, reads a seeded sample.
- ``generator``: the exact-copy metrics over every row, exact (row hashes grouped on the executors,
  :func:`~mlflow_hitl.spark._privacy.exact_copy_counts_spark`), and ``details["sizes"]``' row counts
  Spark's; fidelity, the classifier two-sample test and the distances to closest records on the
  seeded sample below, labelled so.
- ``adversarial``: a seeded sample of at most ``sample_rows`` rows of each
  input (``DataFrame.sample`` with a fixed seed, then ``limit``), collected and run through the
  pandas path; each metric is labelled a sample, with its size.

A runner takes the prepared :class:`SparkInputs`, the check's name and its settings, and returns the
check's :class:`~mlflow_hitl.CheckResult` with :func:`annotated` ``computed`` labels; putting an
engine for another check in :data:`RUNNERS` is all it takes to swap one in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase
from typing import Any

import numpy as np
import pandas as pd

from .._progress import Progress
from .._result import CheckResult, SparkScoredRows, ValidationResult
from .._validate import (
    ROLES,
    Classifier,
    feature_columns,
    prepare_inputs,
    refuse_unrunnable,
    select_checks,
    sensitive_and_target,
    unknown_labels,
)
from ..checks import (
    CopyCounts,
    calibration_from_stats,
    fairness_from_counts,
    generator_check,
    unique_key_parts,
)
from ..checks.registry import CHECKS, ValidationInputs
from ..config import ValidationConfig, resolve_config
from ..errors import InputError, ModelError
from . import SAMPLE_ROWS, is_spark_frame, require_pyspark
from ._calibration import ACCURACY, adaptive_ece_bound, calibration_stats
from ._drift import drift_check_spark, render_drift_pages_spark
from ._fairness import fairness_counts, refuse_many_groups
from ._inputs import Checked, as_spark, checked, column, on_executors, require_columns
from ._privacy import exact_copy_counts_spark
from ._scoring import PRED, PROBA, scored

__all__ = [
    "RUNNERS",
    "SAMPLE_SEED",
    "SparkInputs",
    "annotated",
    "exact",
    "sample",
    "sketch",
    "validate_spark",
]

# The seed of every sample the sampled checks read: the same data gives the same sample.
SAMPLE_SEED = 0
# A model without probabilities: its classes are the labels seen, which must be few.
_MAX_LABELS = 10_000


def exact() -> dict[str, Any]:
    """A metric computed over every row, exactly (up to the order floating-point sums are added in)."""
    return {"how": "exact"}


def sketch(bound: float, method: str, interval: tuple[float, float] | None = None) -> dict[str, Any]:
    """A metric from a mergeable sketch: within ``bound`` of the exact value, or, when the error is one-sided
    (a count of verdicts that could each go either way), inside ``interval`` (``low``, ``high``)."""
    how = {"how": "sketch", "bound": float(bound), "method": method}
    if interval is not None:
        how.update(low=float(interval[0]), high=float(interval[1]))
    return how


def sample(rows: Mapping[str, int], of: Mapping[str, int]) -> dict[str, Any]:
    """A metric computed on a seeded sample: ``rows`` read of each input, out of ``of``."""
    return {"how": "sample", "rows": dict(rows), "of": dict(of)}


def _near_threshold(result: CheckResult, computed: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Metrics whose stated bound reaches across a threshold they are judged by: their verdict could differ."""
    spec = CHECKS.get(result.name)
    if spec is None:
        return []
    # gate_max fails a value above its threshold, gate_min one below it: where the exact value may lie
    # on either side of that line.
    bounds = [(p, s, True) for p, s in spec.gate_max.items()] + [
        (p, s, False) for p, s in spec.gate_min.items()
    ]
    near = []
    for metric, how in computed.items():
        bound = how.get("bound")
        if not bound or metric not in result.metrics:
            continue
        value = result.metrics[metric]
        low, high = how.get("low", value - bound), how.get("high", value + bound)
        for pattern, setting, fails_above in bounds:
            threshold = result.thresholds.get(setting)
            if threshold is None or not fnmatchcase(metric, pattern):
                continue
            t = float(threshold)
            if (low <= t < high) if fails_above else (low < t <= high):
                near.append(
                    {
                        "metric": metric,
                        "value": value,
                        "threshold": setting,
                        "bound": bound,
                    }
                )
    return near


def annotated(result: CheckResult, computed: Mapping[str, Mapping[str, Any]]) -> CheckResult:
    """``result`` saying how each metric was computed (``details["computed"]``) and which sit within
    their bound of a threshold (``details["near_threshold"]``, a verdict the bound could overturn)."""
    return replace(
        result,
        details={
            **result.details,
            "computed": {name: dict(how) for name, how in computed.items()},
            "near_threshold": _near_threshold(result, computed),
        },
    )


@dataclass
class SparkInputs:
    """Everything :func:`validate_spark` prepared once, for the runners to share.

    ``inputs``: each given input, checked (columns selected, rows counted). ``scored``: the real rows'
    target, sensitive columns and the model's :data:`~mlflow_hitl.spark._scoring.PRED` (and
    ``PROBA``), persisted on the executors while the checks run. ``sampled`` is made on first use.
    """

    model: Classifier
    inputs: Mapping[str, Checked]
    scored: Any
    target: str
    features: list[str]
    sensitive: list[str]
    classes: tuple[Any, ...]
    sample_rows: int
    render: bool = False
    _sampled: tuple[ValidationInputs, dict[str, int]] | None = field(default=None, repr=False)

    def frame(self, role: str) -> Any:
        checked_input = self.inputs.get(role)
        return None if checked_input is None else checked_input.frame

    @property
    def rows(self) -> dict[str, int]:
        return {role: checked_input.rows for role, checked_input in self.inputs.items()}

    def sampled(self) -> tuple[ValidationInputs, dict[str, int]]:
        """The pandas path's prepared inputs on a seeded sample of at most ``sample_rows`` rows of each input."""
        if self._sampled is None:
            frames = {
                role: _sample(checked_input, self.sample_rows) for role, checked_input in self.inputs.items()
            }
            prepared, _ = prepare_inputs(
                self.model,
                real=frames["real"],
                target=self.target,
                synthetic=frames.get("synthetic"),
                production=frames.get("production"),
                sensitive=self.sensitive,
                features=self.features,
                holdout=frames.get("holdout"),
                source=frames.get("source"),
            )
            self._sampled = prepared, {role: len(frame) for role, frame in frames.items()}
        return self._sampled


def _sample(checked_input: Checked, rows: int) -> pd.DataFrame:
    """At most ``rows`` rows, seeded: all of them when there are no more; collected as pandas."""
    frame = checked_input.frame
    if checked_input.rows > rows:
        # Bernoulli sampling: ask for a few standard deviations more than needed, then cut at ``rows``.
        fraction = min(1.0, (rows + 5 * rows**0.5 + 10) / checked_input.rows)
        frame = frame.sample(fraction=fraction, seed=SAMPLE_SEED).limit(rows)
    return on_executors(frame.toPandas)


Runner = Callable[[SparkInputs, str, Any], CheckResult]


def _fairness(data: SparkInputs, name: str, settings: Any) -> CheckResult:
    counts = fairness_counts(
        data.scored,
        target=data.target,
        sensitive=data.sensitive,
        synthetic=data.frame("synthetic"),
    )
    result = fairness_from_counts(counts, config=settings)
    return annotated(result, {metric: exact() for metric in result.metrics})


def _calibration(data: SparkInputs, name: str, settings: Any) -> CheckResult:
    stats = calibration_stats(
        data.scored,
        target=data.target,
        classes=data.classes,
        sensitive=data.sensitive,
        n_bins=settings.n_bins,
    )
    result = calibration_from_stats(stats, classes=data.classes, config=settings)
    computed = {metric: exact() for metric in result.metrics}
    computed["adaptive_ece"] = sketch(
        adaptive_ece_bound(settings.n_bins, stats.n),
        f"equal-mass bins at percentile_approx quantiles (relative rank error 1/{ACCURACY})",
    )
    return annotated(result, computed)


def _drift(data: SparkInputs, name: str, settings: Any) -> CheckResult:
    features = [column(c) for c in data.features]
    real = data.frame("real").select(*features)
    pairs = {}  # the pandas path's pairs (checks/_drift._pairs), as Spark frames
    if data.frame("synthetic") is not None:
        pairs["synthetic_vs_real"] = (data.frame("synthetic").select(*features), real)
    if data.frame("production") is not None:
        pairs["real_vs_production"] = (real, data.frame("production").select(*features))
    result = drift_check_spark(pairs, config=replace(settings, render_report=False))
    if data.render and settings.render_report:
        result = render_drift_pages_spark(result, pairs, settings)
    return annotated(result, _drift_computed(result))


def _drift_computed(result: CheckResult) -> dict[str, dict[str, Any]]:
    """Per metric, as each pair's table says: a column's score exact or sketched (with its bound); its
    drift call, the drifted counts and shares exact unless a sketched verdict near its threshold could
    go either way, then the interval the exact figure lies in."""
    computed: dict[str, dict[str, Any]] = {}
    shares: list[tuple[float, float]] = []
    counts: list[tuple[float, float]] = []
    for key, pair in result.details.items():
        table, method = pair["table"], pair["estimates"]["sketch"]
        for part, row in zip(unique_key_parts(r["column"] for r in table), table, strict=True):
            sketched = row["estimate"] == "sketch"
            computed[f"{key}.{part}.score"] = sketch(row["bound"], method) if sketched else exact()
            computed[f"{key}.{part}.drifted"] = (
                sketch(1.0, method, (0.0, 1.0)) if row["near_threshold"] else exact()
            )
        tested = [r for r in table if r["stattest"] is not None]
        drifted = sum(bool(r["drifted"]) for r in tested)
        may_drop = sum(bool(r["drifted"]) for r in tested if r["near_threshold"])
        may_rise = sum(not r["drifted"] for r in tested if r["near_threshold"])
        count = (drifted - may_drop, drifted + may_rise)
        share = tuple(n / len(tested) for n in count) if tested else (0.0, 0.0)
        counts.append(count)
        shares.append(share)  # type: ignore[arg-type]
        for metric, (low, high) in ((f"{key}.drifted_count", count), (f"{key}.drifted_share", share)):
            computed[metric] = _interval(result.metrics[metric], low, high, method)
    for metric, intervals in (("drifted_count", counts), ("drifted_share", shares)):
        low, high = max(i[0] for i in intervals), max(i[1] for i in intervals)  # the maxima over pairs
        computed[metric] = _interval(result.metrics[metric], low, high, method)
    return computed


def _interval(value: float, low: float, high: float, method: str) -> dict[str, Any]:
    """Exact when nothing could move it; else a sketch's interval (verdicts within their bound of a threshold)."""
    if low == high == value:
        return exact()
    return sketch(max(value - low, high - value), f"verdicts near their threshold; {method}", (low, high))


def _sampled(data: SparkInputs, name: str, settings: Any) -> CheckResult:
    inputs, rows = data.sampled()
    spec = CHECKS[name]
    result = spec.run(inputs, settings)
    if data.render and spec.render is not None:
        result = spec.render(result, inputs, settings)
    how = sample(rows, data.rows)
    return annotated(result, {metric: how for metric in result.metrics})


# The generator's metrics read from the exact-copy counts alone (every row, on Spark).
_EXACT_COPY_METRICS = frozenset(
    {
        "exact_copy_share",
        "real_duplicate_share",
        "exact_copy_excess",
        "exact_copy_p_value",
        "tested_exact_copy_share",
        "holdout_exact_copy_share",
        "exact_copy_min_detectable_excess",
        "source_exact_copy_share",
        "source_copied_rows",
    }
)


def _generator(data: SparkInputs, name: str, settings: Any) -> CheckResult:
    """Exact copies counted over every row by row hashes on the executors; the rest (fidelity, the
    classifier test, distances to closest records) on the seeded sample, after the check has
    validated it (the counting checks no row counts or column kinds of its own)."""
    inputs, rows = data.sampled()
    columns = list(dict.fromkeys([*data.features, data.target]))

    def counts() -> CopyCounts:
        return on_executors(
            lambda: exact_copy_counts_spark(
                data.frame("synthetic"),
                data.frame("real"),
                columns=columns,
                source=data.frame("source"),
                holdout=data.frame("holdout"),
            )
        )

    result = generator_check(
        inputs.synthetic,
        inputs.real,
        columns=columns,
        config=settings,
        holdout=inputs.holdout,
        source=inputs.source,
        copy_counts=counts,
    )
    how = sample(rows, data.rows)
    return annotated(
        result, {metric: exact() if metric in _EXACT_COPY_METRICS else how for metric in result.metrics}
    )


# Check name -> how it runs on Spark.
RUNNERS: Mapping[str, Runner] = {
    "drift": _drift,
    "calibration": _calibration,
    "adversarial": _sampled,
    "fairness": _fairness,
    "generator": _generator,
}


def _python(value: Any) -> Any:
    """A numpy scalar as the plain Python value Spark's literals take."""
    return value.item() if isinstance(value, np.generic) else value


def _classes(model: Classifier, frame: Any, target: str, rows: int) -> tuple[Any, ...]:
    """The class order, checked as the pandas path checks it (probability width, labels the model does not know)."""
    from pyspark.sql import functions as F

    if model.predict_proba is None:
        labels = frame.select(column(target).alias("_v")).union(frame.select(F.col(PRED).alias("_v")))
        values = [r[0] for r in on_executors(labels.distinct().limit(_MAX_LABELS + 1).collect)]
        if len(values) > _MAX_LABELS:
            raise InputError(
                f"real[{target!r}] and the predictions hold more than {_MAX_LABELS:,} labels; is it a label?"
            )
        return tuple(sorted(values, key=str))
    classes = tuple(model.classes or ())
    known = [_python(c) for c in classes]
    outside = ~column(target).isin(known) if known else F.lit(True)
    widths = on_executors(
        lambda: frame.agg(F.min(F.size(PROBA)), F.max(F.size(PROBA)), F.sum(outside.cast("long"))).first()
    )
    if widths[0] != len(classes) or widths[1] != len(classes):
        width = widths[1] if widths[1] != len(classes) else widths[0]
        raise ModelError(
            f"{model.description}.predict_proba returned shape ({rows}, {width}); expected ({rows}, {len(classes)})"
        )
    if widths[2]:
        found = frame.where(outside).select(column(target)).distinct().limit(1000)
        unknown_labels(
            np.asarray([r[0] for r in on_executors(found.collect)], dtype=object),
            classes,
            f"real[{target!r}]",
        )
    return classes


def _outline(data: SparkInputs, model: Classifier) -> ValidationInputs:
    """Which inputs there are, in the shape the checks' ``missing`` reads (the frames are Spark's)."""
    k = len(data.classes)
    return ValidationInputs(
        real=data.frame("real"),
        X_real=data.frame("real"),
        synthetic=data.frame("synthetic"),
        production=data.frame("production"),
        target=data.target,
        features=data.features,
        sensitive=data.sensitive,
        y_true=np.empty(0),
        y_pred=np.empty(0),
        classes=data.classes,
        proba=None if model.predict_proba is None else np.empty((0, k)),
        predict_proba=model.predict_proba,
        model=model.description,
        holdout=data.frame("holdout"),
        source=data.frame("source"),
    )


def _checked_inputs(
    model: Classifier,
    frames: Mapping[str, Any],
    target: str,
    sensitive: list[str],
    features: Sequence[str] | None,
) -> tuple[dict[str, Checked], list[str], str]:
    """Each given input checked, in the pandas path's order and words; the features and where they came from."""
    real = frames["real"]
    require_columns(real, "real", [target])  # presence of the target first
    feature_cols, feature_source = feature_columns(model, list(real.columns), target, features)
    read = list(dict.fromkeys([*feature_cols, target, *sensitive]))
    generator_cols = list(dict.fromkeys([*feature_cols, target]))
    columns = {
        "real": read,
        "synthetic": read,
        "production": feature_cols,
        "holdout": generator_cols,
        "source": generator_cols,
    }
    inputs = {
        role: checked(frames[role], role, columns[role], labels=target if role == "real" else None)
        for role in ROLES
        if frames.get(role) is not None
    }
    return inputs, feature_cols, feature_source


def validate_spark(
    model: Classifier,
    *,
    real: Any,
    target: str,
    synthetic: Any | None = None,
    production: Any | None = None,
    sensitive_features: Sequence[str] | str = (),
    features: Sequence[str] | None = None,
    checks: Sequence[str] | str | None = None,
    config: ValidationConfig | Mapping[str, Any] | None = None,
    render: bool = False,
    holdout: Any | None = None,
    source: Any | None = None,
    strict_checks: bool = False,
    progress: Progress | None = None,
    sample_rows: int = SAMPLE_ROWS,
) -> ValidationResult:
    """:func:`mlflow_hitl._validate.validate_classifier` for Spark DataFrames (same arguments; ``validate`` calls it).

    A pandas input next to a Spark one is checked as the pandas path checks it, then made a Spark
    DataFrame with the Spark input's session. The model is scored on the executors; each check runs
    as :data:`RUNNERS` says: fairness exactly from per-cell counts; calibration from binned sums over
    every row (adaptive ECE from ``percentile_approx`` quantiles, within a stated bound); drift over
    every row (exact counts and categorical tests, numeric distances from quantile sketches within a
    stated bound); the generator check's exact copies over every row (row hashes); adversarial and the
    rest of the generator check on a seeded sample of at most ``sample_rows`` rows per input. Each
    check's ``details["computed"]`` says per metric whether it is exact, from a sketch (with its
    bound) or from a sample (with its size), and ``details["near_threshold"]`` lists the metrics whose
    bound reaches across a threshold. ``details["fingerprints"]``
    holds an order-independent digest per input, computed on the executors (see
    :func:`~mlflow_hitl.spark._inputs.checked`). Results are never reused between calls.
    ``result.scored`` is a :class:`~mlflow_hitl._result.SparkScoredRows` (the checked real frame and
    the model; no rows on the driver) for ``queue_from_validation``, ``None`` without probabilities.
    A sensitive column with more than ``max_groups`` groups is refused before the model is scored, not after.
    """
    require_pyspark()
    if isinstance(sample_rows, bool) or not isinstance(sample_rows, int) or sample_rows < 1:
        raise InputError(f"spark_sample_rows must be a whole number of at least 1, got {sample_rows!r}")
    selected = select_checks(checks)
    settings = resolve_config(config)
    sensitive = sensitive_and_target(sensitive_features, target)
    frames = _all_spark(real=real, synthetic=synthetic, production=production, holdout=holdout, source=source)
    inputs, feature_cols, feature_source = _checked_inputs(model, frames, target, sensitive, features)
    if "fairness" in selected and sensitive:
        audited = [inputs[role].frame for role in ("real", "synthetic") if role in inputs]
        refuse_many_groups(audited, sensitive, settings.fairness.max_groups)

    scored_rows = _scored_rows(model, inputs["real"], feature_cols, target, sensitive)
    try:
        classes = _classes(model, scored_rows, target, inputs["real"].rows)
        data = SparkInputs(
            model=model,
            inputs=inputs,
            scored=scored_rows,
            target=target,
            features=feature_cols,
            sensitive=sensitive,
            classes=classes,
            sample_rows=sample_rows,
            render=render,
        )
        outline = _outline(data, model)
        if strict_checks and checks is not None:
            refuse_unrunnable(selected, outline)
        results, skipped = _run_checks(selected, data, outline, settings, progress)
    finally:
        scored_rows.unpersist()
    details = {
        **_run_details(data, model),
        "features_source": feature_source,
        "rows": {role: None if role not in inputs else inputs[role].rows for role in ROLES},
        "fingerprints": {role: None if role not in inputs else inputs[role].fingerprint for role in ROLES},
    }
    scored = _for_queues(model, inputs["real"], feature_cols, classes)
    return ValidationResult(checks=results, skipped=skipped, details=details, scored=scored)


def _run_details(data: SparkInputs, model: Classifier) -> dict[str, Any]:
    """What the run validated, for ``details``: the model, columns, classes and the engine's sample."""
    return {
        "model": model.description,
        "features": data.features,
        "sensitive_features": data.sensitive,
        "target": data.target,
        "classes": list(data.classes),
        "probabilities": model.predict_proba is not None,
        "engine": {"name": "spark", "sample_rows": data.sample_rows, "sample_seed": SAMPLE_SEED},
    }


def _for_queues(
    model: Classifier, real: Checked, features: list[str], classes: tuple[Any, ...]
) -> SparkScoredRows | None:
    """What ``queue_from_validation`` needs to score the real rows again on the executors: the checked
    frame, not the scored copy (unpersisted once the checks are done), and the model; ``None`` when
    it gives no probabilities to rank by."""
    if model.predict_proba is None:
        return None
    return SparkScoredRows(
        rows=real.frame, predict_proba=model.predict_proba, features=tuple(features), classes=classes
    )


def _all_spark(**given: Any) -> dict[str, Any]:
    """Each given input as a Spark DataFrame: a pandas one beside a Spark one is made one with its session."""
    session = next(frame for frame in given.values() if is_spark_frame(frame)).sparkSession
    return {role: None if frame is None else as_spark(frame, role, session) for role, frame in given.items()}


def _scored_rows(
    model: Classifier, real: Checked, features: list[str], target: str, sensitive: list[str]
) -> Any:
    """The real rows' target, groups and the model's answers, scored on the executors once and kept
    on the executors' disks for every check to read; the caller unpersists them.

    On disk, not in memory: cached blocks hold their share of the heap for the whole validation, and
    drift's quantile-sketch merge needs that heap (unmanaged by Spark, so it cannot evict them). At 50M
    rows with a 512m local heap, the sketches ran out of memory beside the cached rows (bench_spark.py).
    """
    from pyspark import StorageLevel

    with_predictions = scored(
        real.frame,
        features=features,
        label_type=real.frame.schema[target].dataType,
        predict=model.predict,
        predict_proba=model.predict_proba,
        classes=model.classes,
        keep=[target, *sensitive],
    )
    return with_predictions.persist(StorageLevel.DISK_ONLY)


def _run_checks(
    selected: Sequence[str],
    data: SparkInputs,
    outline: ValidationInputs,
    settings: ValidationConfig,
    progress: Progress | None,
) -> tuple[dict[str, CheckResult], dict[str, str]]:
    """Each selected check its inputs allow, as :data:`RUNNERS` runs it; the others with the reason."""
    results: dict[str, CheckResult] = {}
    skipped: dict[str, str] = {}
    for done, name in enumerate(selected):
        if progress is not None:
            progress(done, len(selected))
        reason = CHECKS[name].missing(outline)
        if reason:
            skipped[name] = reason
            continue
        results[name] = RUNNERS[name](data, name, getattr(settings, name))
    if progress is not None:
        progress(len(selected), len(selected))
    return results, skipped
