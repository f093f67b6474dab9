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
from collections.abc import Mapping, Sequence
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
    synthetic : the synthetic training set; enables generator validation, synthetic-vs-real drift
        and bias amplification.
    production : unlabelled real-world rows; enables real-vs-production drift.
    sensitive_features : columns of ``real`` (and ``synthetic``) to audit fairness by; they need not
        be model inputs.
    features : the model's input columns; inferred when omitted (signature, ``feature_names_in_``,
        else every column but the target). ``result.details["features_source"]`` says which.
    checks : a subset of the registered checks (``drift``, ``calibration``, ``adversarial``,
        ``fairness``, ``generator``); all by default. A check whose inputs are missing is skipped and
        ``result.skipped`` says why.
    config : thresholds per check, a :class:`~mlflow_hitl.config.ValidationConfig` or
        ``{"calibration": {"max_ece": 0.1}}``.
    run_id : log to this MLflow run; by default the active run, if any.
    log : set False to compute without logging even inside an active run. Without a run to log to,
        nothing is rendered for the run: the drift check's evidently pages are made only when logged.
    reuse : drift and the generator check read data only, not the model; when an earlier call in
        this process ran them on identical frames (same content, columns and settings) their
        results are reused, and ``result.details["reused"]`` names them. False always recomputes.
    holdout : real rows the generator never saw (features and target): the generator check's privacy
        baseline. Without it (and without ``source``) real rows are compared with each other.
    source : the rows the generator learned from (features and target): the generator check then
        asks whether they reappear in the synthetic set more often than unseen rows (``holdout``, else
        ``real``), and reports how many synthetic rows copy them (a count, never the rows).
    strict_checks : True makes a check named in ``checks`` whose inputs are missing an
        :class:`~mlflow_hitl.errors.InputError` (before any check runs) instead of a skip; the CLI's
        ``--checks`` works this way.
    progress : ``progress(done, total)`` after each check (the CLI draws its bar with it).
    log_all_metrics : by default each check logs its handful of headline metrics as MLflow metrics
        (``hitl.calibration.ece``, ``hitl.drift.drifted_share`` ...) and keeps every metric in
        ``hitl/<check>/result.json``; True logs every metric as an MLflow metric too (counts and
        yes/no flags never are).
    registered_model_name : the registered model this model is (or will be) a version of: the logged report and
        the run's description then show its gate policy's bounds on each check, met or not, and which
        policy version they came from, beside the check's own thresholds (a
        ``models:/<name>/<version>`` model URI names its registered model by itself). The name is
        kept in the evidence (``details["registered_model_name"]``), so a check added to the run later
        (a generator audit's, through ``log_check``) shows the same gate. A name the registry does
        not know yet gets the default policy's bounds (the CLI warns, in case it is a typo).

    ``result.details["fingerprints"]`` holds a SHA-256 content digest of each input as validate read
    it (the columns it used, in order; ``None`` for an input not given, or one with an object column
    holding values other than strings); ``docs/quickstart.md`` says how to recompute one.

    Spark inputs (``pip install 'mlflow-hitl[spark]'``): any of ``real``, ``synthetic``,
    ``production``, ``holdout`` and ``source`` may be a ``pyspark.sql.DataFrame``; a pandas input
    given next to one is checked as usual, then made a Spark DataFrame with its session. The model
    is scored on the executors and nothing proportional to the rows reaches the driver. Fairness is
    computed exactly from per-cell counts and calibration from binned sums over every row (adaptive
    ECE from ``percentile_approx`` quantiles, within a stated bound); drift over every row (exact
    counts and categorical tests, numeric distances from quantile sketches within a stated bound);
    the generator check's exact copies over every row (row hashes); adversarial and the rest of the
    generator check on a seeded sample of at most ``spark_sample_rows`` rows of each input. Each
    check's ``details["computed"]`` says per metric how it was computed (``exact``; ``sketch`` with
    its ``bound``; ``sample`` with its ``rows``), and ``details["near_threshold"]`` lists metrics
    whose bound reaches across a threshold. Bad input is refused with the pandas path's errors.
    ``details["fingerprints"]`` holds an order-independent digest computed on the executors (a
    different hash from the pandas one); ``reuse`` does not apply. ``result.scored`` keeps the real
    frame and the model, not the rows, for ``queue_from_validation`` to score and rank on the executors.
    """
    target_run = resolve_run_id(run_id) if log else None
    if any(is_spark_frame(frame) for frame in (real, synthetic, production, holdout, source)):
        from ..spark import validate_spark  # loads pyspark: only a caller holding a Spark frame pays

        engine = functools.partial(validate_spark, sample_rows=spark_sample_rows)
    else:
        engine = functools.partial(validate_classifier, reuse=reuse)
    result = engine(
        as_classifier(model),
        real=real,
        target=target,
        synthetic=synthetic,
        production=production,
        sensitive_features=sensitive_features,
        features=features,
        checks=checks,
        config=config,
        render=target_run is not None,
        holdout=holdout,
        source=source,
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
