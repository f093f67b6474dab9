"""``validate``: run every check a model's inputs allow and, inside an MLflow run, log the evidence.

This is the one function an ML engineer calls. It validates the inputs once, asks the model for
probabilities once on the real rows, hands plain arrays and frames to the pure checks, and
leaves MLflow to :mod:`mlflow_hitl.adapter.logging`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from . import checks as _checks
from ._result import CheckResult, ScoredRows, ValidationResult
from ._reuse import Fingerprints, reuse_or_compute
from ._validation import check_frame, check_labels
from .adapter.model import ClassifierHandle, as_classifier, infer_features
from .config import ValidationConfig, resolve_config
from .errors import InputError, ModelError

__all__ = ["CHECK_NAMES", "validate"]

CHECK_NAMES: tuple[str, ...] = ("drift", "calibration", "adversarial", "fairness", "generator")


def _select_checks(requested: Sequence[str] | str | None) -> list[str]:
    if requested is None:
        return list(CHECK_NAMES)
    names = [requested] if isinstance(requested, str) else list(requested)
    unknown = [n for n in names if n not in CHECK_NAMES]
    if unknown:
        raise InputError(
            f"unknown check(s) {', '.join(map(repr, unknown))}; choose from {', '.join(CHECK_NAMES)}"
        )
    if not names:
        raise InputError(f"checks is empty; choose from {', '.join(CHECK_NAMES)} or pass None for all")
    return [n for n in CHECK_NAMES if n in names]


def _sensitive_list(sensitive_features: Sequence[str] | str) -> list[str]:
    names = [sensitive_features] if isinstance(sensitive_features, str) else list(sensitive_features)
    if len(set(names)) != len(names):
        raise InputError(f"sensitive_features repeats a column: {names}")
    return names


def _classes_and_proba(
    handle: ClassifierHandle, X: pd.DataFrame, y_true: np.ndarray
) -> tuple[tuple[Any, ...], np.ndarray | None, np.ndarray]:
    """Class order, probabilities (or ``None``) and predicted labels on ``X``, from one model call."""
    if handle.has_proba:
        proba = np.asarray(handle.predict_proba(X), dtype=float)  # type: ignore[misc]
        classes = tuple(handle.classes or ())
        if proba.ndim != 2 or proba.shape != (len(X), len(classes)):
            raise ModelError(
                f"{handle.description}.predict_proba returned shape {proba.shape}; expected ({len(X)}, {len(classes)})"
            )
        return classes, proba, np.asarray(classes, dtype=object)[proba.argmax(axis=1)]
    y_pred = handle.predict(X)
    classes = tuple(sorted(set(y_true.tolist()) | set(np.asarray(y_pred).tolist()), key=str))
    return classes, None, y_pred


def _unknown_labels(y: np.ndarray, classes: Sequence[Any], input_name: str) -> None:
    unknown = sorted(set(y.tolist()) - set(classes), key=str)
    if unknown:
        raise InputError(
            f"{input_name} has label(s) {unknown[:5]} the model does not know; model classes: {list(classes)[:10]}"
        )


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
    checks : the subset of ``drift``, ``calibration``, ``adversarial``, ``fairness``, ``generator``;
        all by default. A check whose inputs are missing is skipped and ``result.skipped`` says why.
    config : thresholds per check, a :class:`~mlflow_hitl.config.ValidationConfig` or
        ``{"calibration": {"max_ece": 0.1}}``.
    run_id : log to this MLflow run; by default the active run, if any.
    log : set False to compute without logging even inside an active run.
    reuse : drift and the generator check read data only, not the model; when an earlier call in
        this process ran them on identical frames (same content, columns and settings) their
        results are reused, and ``result.details["reused"]`` names them. False always recomputes.

    ``result.details["fingerprints"]`` holds a SHA-256 content digest of each input as validate read
    it (the columns it used, in order; ``None`` for an input not given, or one with an object column
    holding values other than strings); ``docs/quickstart.md`` says how to recompute one.
    """
    selected = _select_checks(checks)
    settings = resolve_config(config)
    sensitive = _sensitive_list(sensitive_features)
    if not isinstance(target, str) or not target:
        raise InputError("target must be the name of the label column in real")
    if target in sensitive:
        raise InputError(f"target {target!r} cannot also be a sensitive feature")

    handle = as_classifier(model)
    real_checked = check_frame(real, "real", columns=[target])  # presence of the target first
    feature_cols, feature_source = infer_features(
        handle, list(real.columns), target=target, explicit=features
    )
    if target in feature_cols:
        raise InputError(f"target {target!r} is listed among the model's features")
    real_checked = check_frame(real, "real", columns=list(dict.fromkeys([*feature_cols, target, *sensitive])))
    y_true = check_labels(real_checked[target], f"real[{target!r}]")
    X_real = real_checked[feature_cols]

    synthetic_checked = None
    if synthetic is not None:
        synthetic_checked = check_frame(
            synthetic, "synthetic", columns=list(dict.fromkeys([*feature_cols, target, *sensitive]))
        )
    production_checked = None
    if production is not None:
        production_checked = check_frame(production, "production", columns=feature_cols)

    classes, proba, y_pred = _classes_and_proba(handle, X_real, y_true)
    _unknown_labels(y_true, classes, f"real[{target!r}]")

    results: dict[str, CheckResult] = {}
    skipped: dict[str, str] = {}
    reused: list[str] = []
    fingerprints = {
        name: Fingerprints(frame)
        for name, frame in (
            ("real", real_checked),
            ("synthetic", synthetic_checked),
            ("production", production_checked),
        )
        if frame is not None
    }

    def data_key(name: str, *inputs: tuple[str, Sequence[str]]) -> tuple[Any, ...] | None:
        """What a data-only check's result depends on: its settings and its inputs' roles and content."""
        if not reuse:
            return None
        prints = [(role, fingerprints[role].of(columns)) for role, columns in inputs]
        if any(digest is None for _, digest in prints):
            return None
        return (name, getattr(settings, name), *prints)

    def run(
        name: str,
        reason_missing: str | None,
        compute: Callable[[], CheckResult],
        key: Callable[[], tuple[Any, ...] | None] = lambda: None,
    ) -> None:
        if name not in selected:
            return
        if reason_missing:
            skipped[name] = reason_missing
            return
        results[name], was_reused = reuse_or_compute(key(), compute)
        if was_reused:
            reused.append(name)

    pairs: dict[str, tuple[pd.DataFrame, pd.DataFrame]] = {}
    pair_inputs: list[tuple[str, Sequence[str]]] = []
    if synthetic_checked is not None:
        pairs["synthetic_vs_real"] = (synthetic_checked[feature_cols], X_real)
        pair_inputs += [("synthetic", feature_cols), ("real", feature_cols)]
    if production_checked is not None:
        pairs["real_vs_production"] = (X_real, production_checked)  # already exactly the features
        pair_inputs += [("real", feature_cols), ("production", feature_cols)]
    run(
        "drift",
        None if pairs else "needs synthetic or production data to compare with real",
        lambda: _checks.drift_check(pairs, config=settings.drift),
        key=lambda: data_key("drift", *pair_inputs),
    )
    no_proba = None if proba is not None else f"{handle.description} gives no class probabilities"
    run(
        "calibration",
        no_proba,
        lambda: _checks.calibration_check(
            y_true,
            proba,
            classes=classes,
            groups=real_checked[sensitive] if sensitive else None,
            config=settings.calibration,
        ),
    )
    run(
        "adversarial",
        no_proba,
        lambda: _checks.adversarial_check(
            handle.predict_proba,
            X_real,
            y_true,
            classes=classes,
            config=settings.adversarial,  # type: ignore[arg-type]
        ),
    )
    run(
        "fairness",
        None if sensitive else "needs sensitive_features",
        lambda: _checks.fairness_check(
            y_true,
            y_pred,
            sensitive_features=real_checked[sensitive],
            synthetic_y=synthetic_checked[target].to_numpy() if synthetic_checked is not None else None,
            synthetic_sensitive=synthetic_checked[sensitive] if synthetic_checked is not None else None,
            config=settings.fairness,
        ),
    )
    generator_cols = list(dict.fromkeys([*feature_cols, target]))
    run(
        "generator",
        None if synthetic_checked is not None else "needs synthetic data",
        lambda: _checks.generator_check(
            synthetic_checked,
            real_checked,
            columns=generator_cols,  # selected there, once
            config=settings.generator,  # type: ignore[index]
        ),
        key=lambda: data_key("generator", ("synthetic", generator_cols), ("real", generator_cols)),
    )

    details = {
        "model": handle.description,
        "features": feature_cols,
        "features_source": feature_source,
        "sensitive_features": sensitive,
        "target": target,
        "classes": list(classes),
        "probabilities": proba is not None,
        "rows": {
            "real": len(real_checked),
            "synthetic": None if synthetic_checked is None else len(synthetic_checked),
            "production": None if production_checked is None else len(production_checked),
        },
        # What the evidence was computed on, for auditors: a content digest of each input as read.
        "fingerprints": {
            role: None if frame is None else fingerprints[role].of(list(frame.columns))
            for role, frame in (
                ("real", real_checked),
                ("synthetic", synthetic_checked),
                ("production", production_checked),
            )
        },
    }
    if reused:
        details["reused"] = reused
    scored = None if proba is None else ScoredRows(rows=real_checked, y_prob=proba, classes=tuple(classes))
    result = ValidationResult(checks=results, skipped=skipped, details=details, scored=scored)
    if log:
        from .adapter.logging import log_validation, resolve_run_id

        target_run = resolve_run_id(run_id)
        if target_run is not None:
            result = log_validation(result, run_id=target_run, model=model)
    return result
