"""``mlflow_hitl.validate``: resolve the model, run the checks, and log the evidence to an MLflow run.

The checks run in the core (:func:`mlflow_hitl._validate.validate_classifier`, or
:func:`mlflow_hitl.spark.validate_spark` when an input is a Spark DataFrame) on a model this
adapter has already resolved (:func:`~mlflow_hitl.adapter.model.as_classifier`); MLflow is reached
only here and in :mod:`~mlflow_hitl.adapter.logging`. Evidence made only to be read in the run
(evidently's HTML pages) is rendered only when there is a run to log it to.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from .._progress import Progress
from .._result import ValidationResult
from .._validate import validate_classifier
from ..config import ValidationConfig
from ..errors import InputError, ModelError
from ..spark import SAMPLE_ROWS, is_spark_frame
from .logging import log_validation, resolve_run_id, run_id_for_model_uri
from .model import as_classifier

__all__ = ["validate", "validate_model_uri"]


def validate(
    model: Any,
    *,
    real: pd.DataFrame,
    target: str,
    synthetic: pd.DataFrame | None = None,
    production: pd.DataFrame | None = None,
    sensitive_features: Sequence[str] | str = (),
    features: Sequence[str] | None = None,
    checks: Sequence[str] | str | None = None,
    config: ValidationConfig | Mapping[str, Any] | None = None,
    run_id: str | None = None,
    log: bool = True,
    reuse: bool = True,
    holdout: pd.DataFrame | None = None,
    source: pd.DataFrame | None = None,
    strict_checks: bool = False,
    progress: Progress | None = None,
    log_all_metrics: bool = False,
    spark_sample_rows: int = SAMPLE_ROWS,
    registered_model_name: str | None = None,
) -> ValidationResult:
    """Check a classifier trained on synthetic data against real rows; log the evidence to MLflow.

    Parameters
    ----------
    model : a fitted scikit-learn classifier, a loaded pyfunc model, or a model URI.
    real : labelled real-world rows: the model's features, ``target`` and the sensitive columns.
    target : the label column, in ``real`` (and in ``synthetic`` when given).
    synthetic : the synthetic training set: enables the generator check, its drift and bias amplification.
    production : unlabelled real-world rows: enables real-vs-production drift.
    sensitive_features : columns of ``real`` (and ``synthetic``) to audit fairness by, model inputs or not.
    features : the model's input columns; inferred when omitted (signature, ``feature_names_in_``, else all
        but the target), and ``result.details["features_source"]`` says which.
    checks : some of ``drift``, ``calibration``, ``adversarial``, ``fairness``, ``generator`` (default: all);
        a check whose inputs are missing is skipped, and ``result.skipped`` says why.
    config : thresholds per check, a ``ValidationConfig`` or a dict: ``{"calibration": {"max_ece": 0.1}}``.
    run_id, log : the MLflow run to log to (default: the active run, if any); ``log=False`` logs nothing
        and renders no evidently pages.
    reuse : drift and the generator check reuse an earlier call's results on identical frames and settings
        (``result.details["reused"]`` names them); False always recomputes.
    holdout, source : real rows the generator never saw (the privacy baseline; else real rows against each
        other), and the rows it learned from (copies of them are tested and counted, never shown).
    strict_checks : a check named in ``checks`` whose inputs are missing raises ``InputError`` up front.
    progress : ``progress(done, total)`` after each check (the CLI draws its bar with it).
    log_all_metrics : log every metric to MLflow, not only each check's headline ones; all of them are in
        ``hitl/<check>/result.json`` either way.
    registered_model_name : the registered model this is (or will be) a version of; the report shows its gate
        policy's bounds (a ``models:/`` URI names it itself; an unknown name gets the default policy).

    ``result.details["fingerprints"]``: a SHA-256 digest of each input as read (see ``docs/quickstart.md``).
    Any input may be a ``pyspark.sql.DataFrame``: the model is then scored on the executors, nothing
    proportional to the rows reaches the driver (:func:`mlflow_hitl.spark.validate_spark`, ``docs/spark.md``).
    """
    target_run = resolve_run_id(run_id) if log else None
    frames = dict(real=real, synthetic=synthetic, production=production, holdout=holdout, source=source)
    result = _engine(frames.values(), reuse, spark_sample_rows)(
        as_classifier(model),
        target=target,
        **frames,
        sensitive_features=sensitive_features,
        features=features,
        checks=checks,
        config=config,
        render=target_run is not None,
        strict_checks=strict_checks,
        progress=progress,
    )
    if isinstance(model, str):  # for the report's header and summary.json: what was judged
        result = dataclasses.replace(result, details={**result.details, "model_uri": model})
    if target_run is None:
        return result
    return log_validation(
        result,
        run_id=target_run,
        model=model,
        all_metrics=log_all_metrics,
        registered_model_name=registered_model_name,
    )


def _engine(frames: Iterable[Any], reuse: bool, spark_sample_rows: int) -> Callable[..., ValidationResult]:
    """The Spark path when any input is a Spark DataFrame (pyspark loads only then), else the pandas one."""
    if any(is_spark_frame(frame) for frame in frames):
        from ..spark import validate_spark

        return functools.partial(validate_spark, sample_rows=spark_sample_rows)
    return functools.partial(validate_classifier, reuse=reuse)


def validate_model_uri(model_uri: str, *, run_id: str | None, log: bool, **options: Any) -> ValidationResult:
    """What ``mlflow-hitl validate`` does: validate the model at ``model_uri`` and log where its evidence belongs.

    The evidence goes to ``run_id`` if given, else to the run that produced the model, else to a new
    run named ``hitl-validate``; with ``log=False`` nowhere.
    """
    if not log:
        return validate(model_uri, log=False, **options)
    target_run = resolve_run_id(run_id or run_id_for_model_uri(model_uri))
    if target_run is not None:
        return validate(model_uri, run_id=target_run, **options)
    import mlflow

    run = mlflow.start_run(run_name="hitl-validate")
    try:
        result = validate(model_uri, run_id=run.info.run_id, **options)
    except (InputError, ModelError):
        # Refused before any evidence was logged: the run made for it would be an empty FAILED run.
        mlflow.end_run("KILLED")
        mlflow.MlflowClient().delete_run(run.info.run_id)
        raise
    except BaseException:
        mlflow.end_run("FAILED")
        raise
    mlflow.end_run()
    return result
