"""Adversarial check: does the model's confidence fall when its inputs get worse?

A model trained only on clean synthetic rows can stay confident on noisy real variants while its
accuracy collapses. This check perturbs real labelled rows in controlled, seeded ways at several
severities, asks the model again (one batch per perturbation, all severities stacked), and
compares how far accuracy and confidence fell. ECE and OE come from the calibration check's
implementation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from .._result import CheckResult, Status
from .._settings import Settings, resolve_section, thresholds_of
from .._validation import (
    check_classes,
    check_consistent_length,
    check_frame,
    check_labels,
    check_probabilities,
    numeric_and_categorical,
)
from ..errors import ConfigError, InputError, ModelError, first_line
from ._calibration import _binned_errors, _encode_labels, _top_label
from ._perturbations import PERTURBATIONS, Features, imputation_values, perturb, skip_reason
from ._plots import new_figure, to_png
from ._spec import CheckSpec, ValidationInputs

__all__ = ["SPEC", "AdversarialConfig", "adversarial_check"]


@dataclass(frozen=True, repr=False)
class AdversarialConfig(Settings):
    """Perturbations of real rows at increasing severity.

    Overconfidence rule: under a perturbation, at its highest severity, if accuracy fell by
    ``accuracy_drop`` and mean confidence by ``confidence_drop``, the model is overconfident
    when ``accuracy_drop - confidence_drop > max_confidence_gap`` (confidence did not follow
    accuracy down), or when OE at any severity exceeds ``max_overconfidence_error``.
    ``confident_threshold`` defines a confident prediction for ``confident_error_rate``.

    Defaults: ``perturbations`` all four (``gaussian_noise``, ``missingness``, ``category_swap``,
    ``quantization``); ``severities`` (0.1, 0.3, 0.5), each in [0, 1]: the noise sd and the
    quantization step in units of a column's robust spread, the probability a cell goes missing
    or has its category swapped; ``max_confidence_gap`` 0.05; ``max_overconfidence_error`` 0.1;
    ``confident_threshold`` 0.9; ``n_bins`` 15 (as calibration); ``max_rows`` 20,000 (a seeded
    sample of the real rows when larger); ``min_rows`` 50 (fewer rows: insufficient evidence);
    ``seed`` 0 (sampling and every perturbation draw).
    """

    RANGES: ClassVar[Mapping[str, tuple[float, float]]] = {
        "max_confidence_gap": (0.0, 1.0),
        "max_overconfidence_error": (0.0, 1.0),
    }

    perturbations: tuple[str, ...] = PERTURBATIONS
    severities: tuple[float, ...] = (0.1, 0.3, 0.5)
    max_confidence_gap: float = 0.05
    max_overconfidence_error: float = 0.1
    confident_threshold: float = 0.9
    n_bins: int = 15
    max_rows: int = 20_000
    min_rows: int = 50
    seed: int = 0

    def check_ranges(self) -> None:
        unknown = [p for p in self.perturbations if p not in PERTURBATIONS]
        if unknown:
            raise ConfigError(
                f"unknown perturbation(s) {', '.join(map(repr, unknown))} in config['adversarial']['perturbations']; "
                f"known: {', '.join(PERTURBATIONS)}"
            )
        if not self.severities or any(not 0.0 <= float(s) <= 1.0 for s in self.severities):
            raise ConfigError(
                f"config['adversarial']['severities'] must be values in [0, 1], got {list(self.severities)}"
            )
        if not 0.0 < self.confident_threshold <= 1.0:
            raise ConfigError(
                f"config['adversarial']['confident_threshold'] must be in (0, 1], got {self.confident_threshold}"
            )
        if self.n_bins < 1 or self.max_rows < 1:
            raise ConfigError("config['adversarial'] n_bins and max_rows must be at least 1")


_PROBE_ROWS = 5


def _severity_key(severity: float) -> str:
    """``0.3`` -> ``"0.3"``, ``1.0`` -> ``"1"``: plain decimals for metric keys."""
    return np.format_float_positional(severity, trim="-")


def _predict(predict_proba: Callable, frame: pd.DataFrame, n_classes: int, what: str) -> np.ndarray:
    """Probabilities for ``frame``; a ModelError naming ``what`` if the model fails or returns junk."""
    try:
        out = predict_proba(frame)
    except Exception as exc:  # any model failure becomes one ModelError naming the input
        raise ModelError(f"predict_proba failed on {what}: {first_line(exc, with_type=True)}") from exc
    try:
        prob = check_probabilities(out, "predict_proba output", n_classes=n_classes)
    except (ValueError, TypeError) as exc:  # InputError from the validator, or output that is not numeric
        raise ModelError(
            f"predict_proba returned unusable probabilities on {what}: {first_line(exc, with_type=True)}"
        ) from exc
    if len(prob) != len(frame):
        raise ModelError(f"predict_proba returned {len(prob)} rows for {len(frame)} on {what}")
    return prob


def _accepts_nan(predict_proba: Callable, frame: pd.DataFrame, n_classes: int) -> tuple[bool, str | None]:
    """Ask the model once, on a few all-missing rows, whether it copes with NaN itself."""
    probe = frame.iloc[:_PROBE_ROWS]
    probe = probe.mask(np.ones(probe.shape, dtype=bool))
    try:
        _predict(predict_proba, probe, n_classes, "rows with missing values")
    except ModelError as exc:
        return False, str(exc)
    return True, None


def _features(frame: pd.DataFrame, categorical: Sequence[str] | None) -> Features:
    numeric, inferred = numeric_and_categorical(frame)
    if categorical is None:
        return Features(numeric=numeric, categorical=inferred, all=list(frame.columns))
    if isinstance(categorical, str):
        raise InputError(f"categorical must be a list of column names, got the string {categorical!r}")
    missing = [c for c in categorical if c not in frame.columns]
    if missing:
        raise InputError(f"categorical names column(s) not in X: {', '.join(map(str, missing))}")
    cats = list(categorical)
    return Features(numeric=[c for c in numeric if c not in cats], categorical=cats, all=list(frame.columns))


def _families_and_severities(cfg: AdversarialConfig) -> tuple[list[str], list[float]]:
    """The configured perturbations without repeats, and the severities sorted without repeats."""
    return list(dict.fromkeys(cfg.perturbations)), sorted({float(s) for s in cfg.severities})


def _scores(
    prob: np.ndarray, idx: np.ndarray, clean_pred: np.ndarray, cfg: AdversarialConfig
) -> dict[str, float]:
    conf, correct = _top_label(prob, idx)
    errs = _binned_errors(conf, correct, cfg.n_bins)
    return {
        "accuracy": float(correct.mean()),
        "mean_confidence": float(conf.mean()),
        "ece": errs["ece"],
        "overconfidence_error": errs["overconfidence_error"],
        "confident_error_rate": float(((conf >= cfg.confident_threshold) & (correct == 0)).mean()),
        "flip_rate": float((prob.argmax(axis=1) != clean_pred).mean()),
    }


def _moved(drop: float) -> str:
    return f"fell by {drop:.3f}" if drop >= 0 else f"rose by {-drop:.3f}"


def _verdict(
    clean: dict[str, float], by_severity: dict[float, dict[str, float]], cfg: AdversarialConfig
) -> dict[str, Any]:
    """The overconfidence rule of :class:`AdversarialConfig`, with its numbers and a sentence."""
    top = max(by_severity)
    accuracy_drop = clean["accuracy"] - by_severity[top]["accuracy"]
    confidence_drop = clean["mean_confidence"] - by_severity[top]["mean_confidence"]
    gap = accuracy_drop - confidence_drop
    worst_s = max(by_severity, key=lambda s: by_severity[s]["overconfidence_error"])
    worst_oe = by_severity[worst_s]["overconfidence_error"]
    reasons = []
    if gap > cfg.max_confidence_gap:
        reasons.append(
            f"at severity {_severity_key(top)} accuracy fell by {accuracy_drop:.3f} while mean confidence "
            f"{_moved(confidence_drop)} (gap {gap:.3f} > {cfg.max_confidence_gap})"
        )
    if worst_oe > cfg.max_overconfidence_error:
        reasons.append(
            f"overconfidence error {worst_oe:.3f} at severity {_severity_key(worst_s)} > {cfg.max_overconfidence_error}"
        )
    explanation = "; ".join(reasons) or (
        f"confidence followed accuracy: at severity {_severity_key(top)} accuracy {_moved(accuracy_drop)}, "
        f"mean confidence {_moved(confidence_drop)} (gap {gap:.3f} <= {cfg.max_confidence_gap}); "
        f"worst overconfidence error {worst_oe:.3f} <= {cfg.max_overconfidence_error}"
    )
    return {
        "severity": top,
        "accuracy_drop": accuracy_drop,
        "confidence_drop": confidence_drop,
        "gap": gap,
        "worst_overconfidence_error": worst_oe,
        "worst_overconfidence_severity": worst_s,
        "verdict": "overconfident" if reasons else "ok",
        "explanation": explanation,
    }


def _curves_png(
    clean: dict[str, float], results: dict[str, dict[float, dict[str, float]]], verdicts: dict
) -> bytes:
    """One panel per perturbation, two per row, so the page that embeds it keeps the text readable."""
    ncols = min(2, len(results))
    nrows = -(-len(results) // ncols)
    fig = new_figure(5.2 * ncols, 3.4 * nrows + 0.6)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, sharey=True, squeeze=False)).ravel()
    for ax, (name, by_severity) in zip(axes, results.items(), strict=False):
        xs = sorted({0.0, *by_severity})
        acc = [by_severity[s]["accuracy"] if s in by_severity else clean["accuracy"] for s in xs]
        conf = [
            by_severity[s]["mean_confidence"] if s in by_severity else clean["mean_confidence"] for s in xs
        ]
        ax.plot(xs, acc, marker="o", label="accuracy")
        ax.plot(xs, conf, marker="s", label="mean confidence")
        ax.fill_between(
            xs,
            acc,
            conf,
            where=np.asarray(conf) > np.asarray(acc),
            color="tab:red",
            alpha=0.2,
            interpolate=True,
            label="confidence above accuracy",
        )
        ax.set_title(f"{name}: {verdicts[name]['verdict']}", fontsize="x-large")
        ax.set_xlabel("severity", fontsize="large")
        ax.set_ylabel("accuracy / mean confidence", fontsize="large")
        ax.tick_params(labelsize="large")
        ax.set_ylim(0, 1.02)
    for ax in axes[len(results) :]:
        ax.set_visible(False)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=3, fontsize="large")
    return to_png(fig)


def _validated(
    predict_proba: Any, X: Any, y_true: Any, classes: Any, categorical: Sequence[str] | None
) -> tuple[pd.DataFrame, np.ndarray, int, Features]:
    """The checked rows, their labels as class indices, the number of classes, and the features by role."""
    if not callable(predict_proba):
        raise InputError(
            f"predict_proba must be callable (e.g. model.predict_proba), got {type(predict_proba).__name__}"
        )
    labels_index = check_classes(classes)
    X = check_frame(X, "X")
    labels = check_labels(y_true, "y_true")
    check_consistent_length(X=X, y_true=labels)
    idx = _encode_labels(labels, labels_index, "y_true")
    return X, idx, len(labels_index), _features(X, categorical)


def _metrics(
    n: int,
    clean: dict[str, float],
    results: dict[str, dict[float, dict[str, float]]],
    verdicts: dict[str, dict[str, Any]],
) -> dict[str, float]:
    """``n_rows``, ``clean.<score>``, ``<perturbation>.<severity>.<score>`` and ``<perturbation>.confidence_gap``."""
    metrics: dict[str, float] = {"n_rows": n, **{f"clean.{m}": v for m, v in clean.items()}}
    for name, by_severity in results.items():
        for s, scores in by_severity.items():
            metrics.update({f"{name}.{_severity_key(s)}.{m}": v for m, v in scores.items()})
        metrics[f"{name}.confidence_gap"] = verdicts[name]["gap"]
    return metrics


def _missingness_fill(
    predict_proba: Callable, frame: pd.DataFrame, features: Features, n_classes: int
) -> tuple[dict[str, dict[str, Any]] | None, dict[str, Any]]:
    """Values to impute blanked cells with (``None`` when the model copes with NaN itself), and the details."""
    accepts, probe_error = _accepts_nan(predict_proba, frame, n_classes)
    fill = None if accepts else imputation_values(frame, features)
    return fill, {"model_accepts_nan": accepts, "probe_error": probe_error, "imputation": fill or {}}


def _perturbed_scores(
    predict_proba: Callable,
    frame: pd.DataFrame,
    idx: np.ndarray,
    clean_pred: np.ndarray,
    name: str,
    features: Features,
    severities: list[float],
    fill: dict[str, dict[str, Any]] | None,
    cfg: AdversarialConfig,
    n_classes: int,
) -> dict[float, dict[str, float]]:
    """The scores of ``frame`` perturbed by ``name`` at each severity: one model call, severities stacked."""
    n = len(frame)
    stacked = pd.concat(
        perturb(name, frame, features, severities, seed=cfg.seed, fill=fill), ignore_index=True
    )
    prob = _predict(predict_proba, stacked, n_classes, f"rows perturbed by {name} at severities {severities}")
    return {s: _scores(prob[i * n : (i + 1) * n], idx, clean_pred, cfg) for i, s in enumerate(severities)}


def _status_and_summary(
    verdicts: dict[str, dict[str, Any]], worst_oe: float, n: int, cfg: AdversarialConfig
) -> tuple[Status, str]:
    overconfident = {name: v for name, v in verdicts.items() if v["verdict"] == "overconfident"}
    if overconfident:
        explained = "; ".join(f"{name}: {v['explanation']}" for name, v in overconfident.items())
        return Status.FAILED, f"Overconfident under {explained}."
    largest_gap = max(v["gap"] for v in verdicts.values())
    return Status.PASSED, (
        f"Confidence followed accuracy under {len(verdicts)} perturbation(s) on {n} rows: largest gap "
        f"{largest_gap:.3f} <= {cfg.max_confidence_gap}, worst overconfidence error "
        f"{worst_oe:.3f} <= {cfg.max_overconfidence_error}."
    )


def _too_few_rows(n_total: int, cfg: AdversarialConfig) -> CheckResult:
    """Below ``min_rows`` a shift in accuracy is noise: said, never passed."""
    return CheckResult(
        name="adversarial",
        status=Status.INSUFFICIENT_EVIDENCE,
        metrics={"n_rows": n_total},
        thresholds=thresholds_of(cfg),
        details={"n_rows": n_total, "min_rows": cfg.min_rows},
        summary=f"Only {n_total} labelled rows; at least {cfg.min_rows} are needed to test perturbations.",
    )


def _sampled_rows(n_total: int, cfg: AdversarialConfig) -> np.ndarray:
    """Every row, or a seeded sample of ``max_rows`` of them in their original order."""
    if n_total <= cfg.max_rows:
        return np.arange(n_total)
    return np.sort(np.random.default_rng(cfg.seed).choice(n_total, size=cfg.max_rows, replace=False))


def _details(n: int, n_total: int, severities: Any, features: Any, skipped: dict[str, str]) -> dict[str, Any]:
    """What was perturbed and how, for the result's details."""
    return {
        "n_rows": n,
        "n_rows_total": n_total,
        "severities": severities,
        "numeric_columns": [str(c) for c in features.numeric],
        "categorical_columns": [str(c) for c in features.categorical],
        "skipped": skipped,
        "spread": "IQR/1.349 per numeric column, the sd when the IQR is 0",
        "quantization_step": "severity x spread",
    }


def adversarial_check(
    predict_proba: Callable[[pd.DataFrame], np.ndarray],
    X: pd.DataFrame,
    y_true: Any,
    *,
    classes: Sequence,
    categorical: Sequence[str] | None = None,
    config: AdversarialConfig | None = None,
) -> CheckResult:
    """Perturb real rows at increasing severity and check that confidence falls with accuracy.

    ``predict_proba`` takes a frame of exactly the model's feature columns (``X``'s) and returns
    ``(n, k)`` probabilities ordered as ``classes``. ``categorical`` names the columns to swap
    categories in (default: the non-numeric columns); the other numeric columns get noise and
    quantization. Status: ``failed`` if any perturbation is overconfident under the rule of
    :class:`~mlflow_hitl.config.AdversarialConfig`; ``insufficient_evidence`` below ``min_rows``
    rows or when no perturbation applies; ``passed`` otherwise.
    """
    cfg = resolve_section("adversarial", AdversarialConfig, config)
    names, severities = _families_and_severities(cfg)
    X, idx, n_classes, features = _validated(predict_proba, X, y_true, classes, categorical)
    n_total = len(X)
    if n_total < cfg.min_rows:
        return _too_few_rows(n_total, cfg)
    rows = _sampled_rows(n_total, cfg)
    frame, idx, n, k = X.iloc[rows].reset_index(drop=True), idx[rows], len(rows), n_classes

    clean_prob = _predict(predict_proba, frame, k, "the clean rows")
    clean_pred = clean_prob.argmax(axis=1)
    clean = _scores(clean_prob, idx, clean_pred, cfg)
    del clean["flip_rate"], clean["confident_error_rate"]

    skipped = {name: reason for name in names if (reason := skip_reason(name, features, frame))}
    details = _details(n, n_total, severities, features, skipped)
    fill = None
    if "missingness" in names:
        fill, details["missingness"] = _missingness_fill(predict_proba, frame, features, k)
    results = {
        name: _perturbed_scores(
            predict_proba, frame, idx, clean_pred, name, features, severities, fill, cfg, k
        )
        for name in names
        if name not in skipped
    }

    verdicts = {name: _verdict(clean, by_severity, cfg) for name, by_severity in results.items()}
    metrics = _metrics(n, clean, results, verdicts)
    details["perturbations"] = verdicts
    details["clean"] = clean

    if not results:
        return CheckResult(
            name="adversarial",
            status=Status.INSUFFICIENT_EVIDENCE,
            metrics=metrics,
            thresholds=thresholds_of(cfg),
            details=details,
            summary=f"No perturbation applies to these features: {'; '.join(f'{p}: {why}' for p, why in skipped.items())}.",
        )
    metrics["worst_overconfidence_error"] = max(v["worst_overconfidence_error"] for v in verdicts.values())
    status, summary = _status_and_summary(verdicts, metrics["worst_overconfidence_error"], n, cfg)
    return CheckResult(
        name="adversarial",
        status=status,
        metrics=metrics,
        thresholds=thresholds_of(cfg),
        details=details,
        artifacts={"confidence_vs_severity.png": _curves_png(clean, results, verdicts)},
        summary=summary,
    )


# --------------------------------------------------------------------------- in validate


def _missing(inputs: ValidationInputs) -> str | None:
    return None if inputs.predict_proba is not None else f"{inputs.model} gives no class probabilities"


def _run(inputs: ValidationInputs, cfg: AdversarialConfig) -> CheckResult:
    return adversarial_check(
        inputs.predict_proba,  # type: ignore[arg-type]  # not None: _missing said so
        inputs.X_real,
        inputs.y_true,
        classes=inputs.classes,
        config=cfg,
    )


SPEC = CheckSpec(
    name="adversarial",
    settings=AdversarialConfig,
    missing=_missing,
    run=_run,
    key_metrics=("worst_overconfidence_error", "*.confidence_gap", "clean.*"),
    counts=("n_rows",),
    gate_max={"worst_overconfidence_error": "max_overconfidence_error"},
)
