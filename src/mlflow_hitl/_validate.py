"""The core of ``validate``: prepare the inputs once, then run each registered check they allow.

The model arrives already resolved (:class:`Classifier`: the adapter turns a fitted estimator, a
pyfunc model or a model URI into one), and nothing here logs: :mod:`mlflow_hitl.adapter.validation`
does both around :func:`validate_classifier`. What each check needs, why it is skipped, how it runs
and whether its result can be reused is declared by the check itself (:mod:`mlflow_hitl.checks.registry`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import pandas as pd

from ._progress import Progress
from ._result import CheckResult, ScoredRows, ValidationResult
from ._reuse import Fingerprints, reuse_or_compute
from ._validation import check_frame, check_labels
from .checks.registry import CHECK_NAMES, CHECKS, CheckSpec, ValidationInputs
from .config import ValidationConfig, resolve_config
from .errors import InputError, ModelError

__all__ = [
    "CHECK_NAMES",
    "ROLES",
    "Classifier",
    "feature_columns",
    "prepare_inputs",
    "refuse_unrunnable",
    "select_checks",
    "sensitive_and_target",
    "unknown_labels",
    "validate_classifier",
]

# holdout and source: real rows the generator never saw, and the rows it learned from (generator check).
ROLES = ("real", "synthetic", "production", "holdout", "source")


class Classifier(Protocol):
    """What ``validate`` needs from a model, whatever it was handed over as."""

    @property
    def predict(self) -> Callable[[pd.DataFrame], np.ndarray]: ...
    @property
    def predict_proba(self) -> Callable[[pd.DataFrame], np.ndarray] | None: ...
    @property
    def classes(self) -> tuple[Any, ...] | None: ...
    @property
    def feature_names(self) -> tuple[str, ...] | None: ...
    @property
    def feature_source(self) -> str | None: ...
    @property
    def description(self) -> str: ...


def select_checks(requested: Sequence[str] | str | None) -> list[str]:
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


def sensitive_and_target(sensitive_features: Sequence[str] | str, target: Any) -> list[str]:
    """The sensitive columns as a list; the target must be a column name that is not one of them."""
    names = [sensitive_features] if isinstance(sensitive_features, str) else list(sensitive_features)
    if len(set(names)) != len(names):
        raise InputError(f"sensitive_features repeats a column: {names}")
    if not isinstance(target, str) or not target:
        raise InputError("target must be the name of the label column in real")
    if target in names:
        raise InputError(f"target {target!r} cannot also be a sensitive feature")
    return names


def feature_columns(
    model: Classifier, columns: Sequence[Any], target: str, explicit: Sequence[str] | None
) -> tuple[list[str], str]:
    """The model's feature columns and where that list came from, given real's ``columns``.

    Order of precedence: the caller's explicit list, the model's signature or
    ``feature_names_in_``, else every column but the target.
    """
    if explicit is not None:
        features, source = list(explicit), "argument"
    elif model.feature_names is not None:
        features, source = list(model.feature_names), model.feature_source or "model"
    else:
        features, source = [c for c in columns if c != target], "all columns but the target"
    if target in features:
        raise InputError(f"target {target!r} is listed among the model's features")
    return features, source


def _classes_and_proba(
    model: Classifier, X: pd.DataFrame, y_true: np.ndarray
) -> tuple[tuple[Any, ...], np.ndarray | None, np.ndarray]:
    """Class order, probabilities (or ``None``) and predicted labels on ``X``, from one model call."""
    if model.predict_proba is not None:
        proba = np.asarray(model.predict_proba(X), dtype=float)
        classes = tuple(model.classes or ())
        if proba.ndim != 2 or proba.shape != (len(X), len(classes)):
            raise ModelError(
                f"{model.description}.predict_proba returned shape {proba.shape}; expected ({len(X)}, {len(classes)})"
            )
        return classes, proba, np.asarray(classes, dtype=object)[proba.argmax(axis=1)]
    y_pred = model.predict(X)
    classes = tuple(sorted(set(y_true.tolist()) | set(np.asarray(y_pred).tolist()), key=str))
    return classes, None, y_pred


def unknown_labels(y: np.ndarray, classes: Sequence[Any], input_name: str) -> None:
    """Refuse labels in ``y`` (the rows' labels, or just their distinct values) that are not ``classes``."""
    unknown = sorted(set(y.tolist()) - set(classes), key=str)
    if unknown:
        raise InputError(
            f"{input_name} has label(s) {unknown[:5]} the model does not know; model classes: {list(classes)[:10]}"
        )


def prepare_inputs(
    model: Classifier,
    *,
    real: pd.DataFrame,
    target: str,
    synthetic: pd.DataFrame | None,
    production: pd.DataFrame | None,
    sensitive: list[str],
    features: Sequence[str] | None,
    holdout: pd.DataFrame | None = None,
    source: pd.DataFrame | None = None,
) -> tuple[ValidationInputs, str]:
    """Every input checked once, and the model asked once on the real rows; plus the features' source."""
    check_frame(real, "real", columns=[target])  # presence of the target first
    feature_cols, feature_source = feature_columns(model, list(real.columns), target, features)
    read = list(dict.fromkeys([*feature_cols, target, *sensitive]))
    real_checked = check_frame(real, "real", columns=read)
    y_true = check_labels(real_checked[target], f"real[{target!r}]")
    synthetic_checked = None if synthetic is None else check_frame(synthetic, "synthetic", columns=read)
    production_checked = (
        None if production is None else check_frame(production, "production", columns=feature_cols)
    )
    generator_cols = list(dict.fromkeys([*feature_cols, target]))
    holdout_checked, source_checked = (
        None if frame is None else check_frame(frame, name, columns=generator_cols)
        for frame, name in ((holdout, "holdout"), (source, "source"))
    )
    X_real = real_checked[feature_cols]
    classes, proba, y_pred = _classes_and_proba(model, X_real, y_true)
    unknown_labels(y_true, classes, f"real[{target!r}]")
    inputs = ValidationInputs(
        real=real_checked,
        X_real=X_real,
        synthetic=synthetic_checked,
        production=production_checked,
        target=target,
        features=feature_cols,
        sensitive=sensitive,
        y_true=y_true,
        y_pred=y_pred,
        classes=classes,
        proba=proba,
        predict_proba=model.predict_proba,
        model=model.description,
        holdout=holdout_checked,
        source=source_checked,
    )
    return inputs, feature_source


def refuse_unrunnable(selected: Sequence[str], inputs: ValidationInputs) -> None:
    """An InputError naming each requested check that cannot run on these inputs, and why."""
    reasons = {name: reason for name in selected if (reason := CHECKS[name].missing(inputs))}
    if reasons:
        raise InputError(
            "; ".join(f"check {name!r} was asked for but cannot run: {why}" for name, why in reasons.items())
        )


def _reuse_key(
    spec: CheckSpec, inputs: ValidationInputs, section: Any, prints: Mapping[str, Fingerprints]
) -> tuple[Any, ...] | None:
    """What a data-only check's result depends on: its settings and its inputs' roles and content."""
    if spec.data_read is None:
        return None
    read = [(role, prints[role].of(columns)) for role, columns in spec.data_read(inputs)]
    if any(digest is None for _, digest in read):
        return None
    return (spec.name, section, *read)


def _details(
    model: Classifier, inputs: ValidationInputs, feature_source: str, prints: Mapping[str, Fingerprints]
) -> dict[str, Any]:
    frames = {role: inputs.frame(role) for role in ROLES}
    return {
        "model": model.description,
        "features": inputs.features,
        "features_source": feature_source,
        "sensitive_features": inputs.sensitive,
        "target": inputs.target,
        "classes": list(inputs.classes),
        "probabilities": inputs.proba is not None,
        "rows": {role: None if frame is None else len(frame) for role, frame in frames.items()},
        # What the evidence was computed on, for auditors: a content digest of each input as read.
        "fingerprints": {
            role: None if frame is None else prints[role].of(list(frame.columns))
            for role, frame in frames.items()
        },
    }


def _run_checks(
    selected: Sequence[str],
    inputs: ValidationInputs,
    settings: ValidationConfig,
    prints: Mapping[str, Fingerprints],
    *,
    reuse: bool,
    render: bool,
    progress: Progress | None,
) -> tuple[dict[str, CheckResult], dict[str, str], list[str]]:
    """Each selected check's result, or why it was skipped; and the names of the results reused."""
    results: dict[str, CheckResult] = {}
    skipped: dict[str, str] = {}
    reused: list[str] = []
    for done, name in enumerate(selected):
        if progress is not None:
            progress(done, len(selected))
        spec, section = CHECKS[name], getattr(settings, name)
        reason = spec.missing(inputs)
        if reason:
            skipped[name] = reason
            continue
        key = _reuse_key(spec, inputs, section, prints) if reuse else None
        results[name], was_reused = reuse_or_compute(key, functools.partial(spec.run, inputs, section))
        if was_reused:
            reused.append(name)
        if render and spec.render is not None:
            results[name] = spec.render(results[name], inputs, section)
    if progress is not None:
        progress(len(selected), len(selected))
    return results, skipped, reused


def validate_classifier(
    model: Classifier,
    *,
    real: pd.DataFrame,
    target: str,
    synthetic: pd.DataFrame | None = None,
    production: pd.DataFrame | None = None,
    sensitive_features: Sequence[str] | str = (),
    features: Sequence[str] | None = None,
    checks: Sequence[str] | str | None = None,
    config: ValidationConfig | Mapping[str, Any] | None = None,
    reuse: bool = True,
    render: bool = False,
    holdout: pd.DataFrame | None = None,
    source: pd.DataFrame | None = None,
    strict_checks: bool = False,
    progress: Progress | None = None,
) -> ValidationResult:
    """Run every selected check the inputs allow on a resolved model (``mlflow_hitl.validate`` documents
    the arguments). ``render``: also render the evidence that is made only to be logged (evidently's pages).
    ``strict_checks``: a check named in ``checks`` whose inputs are missing is an :class:`InputError`
    before any check runs, instead of a skip (asking for fairness without sensitive features is a
    mistake in the request, not a lack of evidence). ``progress(done, total)`` is told after each check.

    The inputs are pandas DataFrames; :func:`mlflow_hitl.spark.validate_spark` is the same for Spark.
    """
    selected = select_checks(checks)
    settings = resolve_config(config)
    sensitive = sensitive_and_target(sensitive_features, target)
    inputs, feature_source = prepare_inputs(
        model,
        real=real,
        target=target,
        synthetic=synthetic,
        production=production,
        sensitive=sensitive,
        features=features,
        holdout=holdout,
        source=source,
    )
    if strict_checks and checks is not None:
        refuse_unrunnable(selected, inputs)
    prints = {role: Fingerprints(frame) for role in ROLES if (frame := inputs.frame(role)) is not None}
    results, skipped, reused = _run_checks(
        selected, inputs, settings, prints, reuse=reuse, render=render, progress=progress
    )
    details = _details(model, inputs, feature_source, prints)
    if reused:
        details["reused"] = reused
    scored = (
        None
        if inputs.proba is None
        else ScoredRows(rows=inputs.real, y_prob=inputs.proba, classes=inputs.classes)
    )
    return ValidationResult(checks=results, skipped=skipped, details=details, scored=scored)
