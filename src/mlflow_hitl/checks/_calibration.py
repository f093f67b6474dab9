"""Calibration: does the model's confidence match how often it is right?

Everything is computed on the *top label* (the predicted class and its probability), so one
definition serves binary and multiclass models. The binned errors (ECE, adaptive ECE, MCE, OE)
are written here by hand because scikit-learn has none of them; they reduce to three
``np.bincount`` calls, one linear pass over the rows. The adversarial check reuses
:func:`_binned_errors`, so both checks share one implementation of ECE and OE.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
)
from ..errors import ConfigError, InputError
from ._keys import unique_key_parts
from ._plots import new_figure, to_png
from ._spec import CheckSpec, ValidationInputs

__all__ = ["SPEC", "CalibrationConfig", "calibration_check", "calibration_metrics"]


@dataclass(frozen=True, repr=False)
class CalibrationConfig(Settings):
    """ECE and overconfidence error (OE) above their maxima fail the check.

    ``n_bins`` (15): equal-width bins of top-label confidence for ECE, MCE and OE, and the number
    of equal-mass bins for adaptive ECE. ``max_ece`` (0.05) and ``max_overconfidence_error``
    (0.05): overall values above them fail; a group above them (with enough rows) needs review.
    ``min_samples`` (50): fewer rows overall is insufficient evidence; a group with fewer rows
    is reported with its count and not judged.
    """

    RANGES: ClassVar[Mapping[str, tuple[float, float]]] = {
        "max_ece": (0.0, 1.0),
        "max_overconfidence_error": (0.0, 1.0),
    }

    n_bins: int = 15
    max_ece: float = 0.05
    max_overconfidence_error: float = 0.05
    min_samples: int = 50

    def check_ranges(self) -> None:
        if self.n_bins < 1:
            raise ConfigError(f"n_bins must be a whole number of at least 1, got {self.n_bins!r}")


# Probabilities are clipped to [eps, 1 - eps] before the logarithm, as scikit-learn's log_loss
# does, so a confident 0 for the true class costs -log(eps) ~ 36 instead of infinity.
_EPS = float(np.finfo(float).eps)


# --------------------------------------------------------------------------- validation helpers


def _encode_labels(y: np.ndarray, classes: pd.Index, input_name: str) -> np.ndarray:
    """Column index in ``classes`` of each label; an error naming labels that are not classes."""
    idx = classes.get_indexer(y)
    unknown = idx < 0
    if unknown.any():
        found = ", ".join(repr(v) for v in pd.unique(y[unknown]).tolist()[:5])
        raise InputError(
            f"{input_name} has label(s) {found} not in classes {classes.tolist()!r}; "
            "pass classes= listing every label, in the column order of the probabilities"
        )
    return idx


# --------------------------------------------------------------------------- the numbers


def _top_label(prob: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Confidence (max probability) and correctness of the predicted class (first on ties)."""
    pred = prob.argmax(axis=1)
    return prob[np.arange(len(prob)), pred], (pred == idx).astype(float)


def _bin_stats(conf: np.ndarray, correct: np.ndarray, edges: np.ndarray) -> dict[str, np.ndarray]:
    """Per-bin counts and sums; bins are (lo, hi] with the first closed at lo, as sklearn's calibration_curve."""
    n_bins = len(edges) - 1
    ids = np.searchsorted(edges[1:-1], conf)
    return {
        "counts": np.bincount(ids, minlength=n_bins),
        "conf_sum": np.bincount(ids, weights=conf, minlength=n_bins),
        "acc_sum": np.bincount(ids, weights=correct, minlength=n_bins),
    }


def _errors(stats: dict[str, np.ndarray], n: int) -> tuple[float, float, float]:
    """ECE, MCE and OE from per-bin sums.

    ECE = sum_b |B_b|/n |acc_b - conf_b| = sum_b |acc_sum_b - conf_sum_b| / n;
    OE = sum_b |B_b|/n conf_b max(conf_b - acc_b, 0) (Thulasidasan et al. 2019).
    """
    counts, conf_sum, acc_sum = stats["counts"], stats["conf_sum"], stats["acc_sum"]
    filled = counts > 0
    gap = (conf_sum[filled] - acc_sum[filled]) / counts[filled]
    conf_b = conf_sum[filled] / counts[filled]
    ece = float(np.abs(conf_sum - acc_sum).sum() / n)
    mce = float(np.abs(gap).max()) if filled.any() else 0.0
    oe = float((counts[filled] * conf_b * np.maximum(gap, 0.0)).sum() / n)
    return ece, mce, oe


def _uniform_edges(n_bins: int) -> np.ndarray:
    return np.linspace(0.0, 1.0, n_bins + 1)


def _quantile_edges(conf: np.ndarray, n_bins: int) -> np.ndarray:
    """Equal-mass edges, the same quantiles as sklearn's ``calibration_curve(strategy="quantile")``."""
    return np.percentile(conf, np.linspace(0.0, 100.0, n_bins + 1))


def _binned_errors(conf: np.ndarray, correct: np.ndarray, n_bins: int) -> dict[str, float]:
    """Equal-width ECE, MCE and OE of top-label confidences: the one implementation both checks use."""
    ece, mce, oe = _errors(_bin_stats(conf, correct, _uniform_edges(n_bins)), len(conf))
    return {"ece": ece, "mce": mce, "overconfidence_error": oe}


def _metrics(idx: np.ndarray, prob: np.ndarray, n_bins: int) -> dict[str, float]:
    """Every calibration metric of validated inputs (labels already encoded as column indices)."""
    n = len(idx)
    conf, correct = _top_label(prob, idx)
    p_true = prob[np.arange(n), idx]
    if prob.shape[1] == 2:
        # Binary: sklearn's brier_score_loss on the positive class (column 1), range [0, 1].
        brier = float(np.mean((prob[:, 1] - (idx == 1)) ** 2))
    else:
        # Multiclass: mean over rows of sum_k (p_k - 1[y = k])^2, range [0, 2] (Brier 1950).
        brier = float(np.mean((prob**2).sum(axis=1) - 2.0 * p_true + 1.0))
    adaptive_ece, _, _ = _errors(_bin_stats(conf, correct, _quantile_edges(conf, n_bins)), n)
    return {
        **_binned_errors(conf, correct, n_bins),
        "adaptive_ece": adaptive_ece,
        "brier": brier,
        "log_loss": float(-np.mean(np.log(np.clip(p_true, _EPS, 1.0 - _EPS)))),
        "accuracy": float(correct.mean()),
        "mean_confidence": float(conf.mean()),
    }


def _validated(y_true: Any, y_prob: Any, classes: Any) -> tuple[pd.Index, np.ndarray, np.ndarray]:
    labels_index = check_classes(classes)
    labels = check_labels(y_true, "y_true")
    prob = check_probabilities(y_prob, "y_prob", n_classes=len(labels_index))
    check_consistent_length(y_true=labels, y_prob=prob)
    return labels_index, _encode_labels(labels, labels_index, "y_true"), prob


def calibration_metrics(y_true: Any, y_prob: Any, *, classes: Sequence, n_bins: int = 15) -> dict[str, float]:
    """Calibration metrics of top-label confidences.

    ``y_prob`` is ``(n, k)`` with columns ordered as ``classes`` (a 1-D array is the positive-class
    probability of a binary model). Returns ``ece`` (equal-width bins), ``adaptive_ece``
    (equal-mass bins), ``mce``, ``brier`` (binary: on the positive class ``classes[1]``;
    multiclass: mean sum of squares over classes), ``log_loss`` (probabilities clipped to
    [eps, 1-eps]), ``overconfidence_error``, ``accuracy`` and ``mean_confidence``.
    """
    n_bins = resolve_section("calibration", CalibrationConfig, {"n_bins": n_bins}).n_bins  # its rules
    _, idx, prob = _validated(y_true, y_prob, classes)
    return _metrics(idx, prob, n_bins)


# --------------------------------------------------------------------------- the check


def _bins_table(stats: dict[str, np.ndarray], edges: np.ndarray) -> dict[str, list]:
    counts = stats["counts"]
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = stats["acc_sum"] / counts
        conf = stats["conf_sum"] / counts
    return {
        "edges": [float(e) for e in edges],
        "counts": [int(c) for c in counts],
        "accuracy": [float(a) if c else None for a, c in zip(acc, counts, strict=True)],
        "confidence": [float(v) if c else None for v, c in zip(conf, counts, strict=True)],
    }


def _reliability_png(bins: dict[str, list], ece: float, oe: float, n: int) -> bytes:
    fig = new_figure(6.0, 5.5)
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    edges = np.asarray(bins["edges"])
    width = np.diff(edges)
    filled = [i for i, c in enumerate(bins["counts"]) if c]
    acc = [bins["accuracy"][i] for i in filled]
    conf = [bins["confidence"][i] for i in filled]
    top.bar(
        edges[filled],
        acc,
        width=width[filled],
        align="edge",
        color="tab:blue",
        edgecolor="white",
        label="accuracy",
    )
    # The gap from each bin's accuracy to its mean confidence: above the bar = overconfident.
    top.bar(
        edges[filled],
        np.subtract(conf, acc),
        bottom=acc,
        width=width[filled],
        align="edge",
        color="tab:red",
        alpha=0.3,
        edgecolor="tab:red",
        hatch="//",
        label="gap to mean confidence",
    )
    top.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
    top.set_ylim(0, 1)
    top.set_ylabel("accuracy")
    top.legend(loc="upper left", fontsize="small")
    top.set_title(f"Reliability diagram: ECE {ece:.3f}, OE {oe:.3f} (n={n:,})")
    bottom.bar(edges[:-1], bins["counts"], width=width, align="edge", color="tab:grey", edgecolor="white")
    for i in filled:
        bottom.annotate(
            str(bins["counts"][i]),
            (edges[i] + width[i] / 2, bins["counts"][i]),
            ha="center",
            va="bottom",
            fontsize="small",
        )
    bottom.set_ylim(0, max(bins["counts"]) * 1.3 or 1)  # room for the tallest bar's count
    bottom.set_xlim(0, 1)
    bottom.set_xlabel("confidence (top-label probability)")
    bottom.set_ylabel("rows")
    return to_png(fig)


def _group_metrics(
    groups: pd.DataFrame, idx: np.ndarray, prob: np.ndarray, cfg: CalibrationConfig
) -> tuple[dict[str, float], dict[str, Any], list[str]]:
    """Per sensitive feature and value: metrics, a details table, and the groups that breach a maximum."""
    metrics: dict[str, float] = {}
    table: dict[str, Any] = {}
    breaches: list[str] = []
    conf, correct = _top_label(prob, idx)
    for feature, feature_key in zip(groups.columns, unique_key_parts(groups.columns), strict=True):
        codes, values = pd.factorize(groups[feature], use_na_sentinel=False)
        rows: dict[str, Any] = {}
        for code, (value, key) in enumerate(zip(values, unique_key_parts(values), strict=True)):
            mask = codes == code
            count = int(mask.sum())
            prefix = f"{feature_key}.{key}"
            metrics[f"{prefix}.count"] = count
            if count < cfg.min_samples:
                rows[str(value)] = {"count": count, "status": "insufficient_evidence"}
                continue
            errs = _binned_errors(conf[mask], correct[mask], cfg.n_bins)
            accuracy = float(correct[mask].mean())
            metrics.update(
                {
                    f"{prefix}.ece": errs["ece"],
                    f"{prefix}.overconfidence_error": errs["overconfidence_error"],
                    f"{prefix}.accuracy": accuracy,
                }
            )
            breached = (
                errs["ece"] > cfg.max_ece or errs["overconfidence_error"] > cfg.max_overconfidence_error
            )
            if breached:
                breaches.append(
                    f"{feature}={value} (n={count}): ECE {errs['ece']:.3f}, OE {errs['overconfidence_error']:.3f}"
                )
            rows[str(value)] = {
                "count": count,
                "ece": errs["ece"],
                "overconfidence_error": errs["overconfidence_error"],
                "accuracy": accuracy,
                "mean_confidence": float(conf[mask].mean()),
                "status": "needs_review" if breached else "passed",
            }
        table[str(feature)] = rows
    return metrics, table, breaches


def _insufficient_groups(groups: dict[str, dict[Any, dict[str, Any]]]) -> list[dict[str, Any]]:
    """The groups too small to judge, named with their size (never silently passed)."""
    return [
        {"feature": feature, "group": value, "count": row["count"]}
        for feature, rows in groups.items()
        for value, row in rows.items()
        if row["status"] == "insufficient_evidence"
    ]


def _reasons(metrics: dict[str, float], cfg: CalibrationConfig) -> list[str]:
    """The overall numbers above their maxima, as a person reads them."""
    reasons = []
    if metrics["ece"] > cfg.max_ece:
        reasons.append(f"ECE {metrics['ece']:.3f} > {cfg.max_ece}")
    if metrics["overconfidence_error"] > cfg.max_overconfidence_error:
        reasons.append(
            f"overconfidence error {metrics['overconfidence_error']:.3f} > {cfg.max_overconfidence_error}"
        )
    return reasons


def _verdict(
    metrics: dict[str, float], cfg: CalibrationConfig, n: int, reasons: list[str], breaches: list[str]
) -> tuple[Status, str]:
    """Too few rows first (never a pass), then an overall breach fails, a group breach needs review."""
    if n < cfg.min_samples:
        return (
            Status.INSUFFICIENT_EVIDENCE,
            f"Only {n:,} labelled rows; at least {cfg.min_samples:,} are needed to judge calibration.",
        )
    if reasons:
        return Status.FAILED, f"Miscalibrated on {n:,} rows: {'; '.join(reasons)}."
    if breaches:
        return (
            Status.NEEDS_REVIEW,
            f"Calibrated overall (ECE {metrics['ece']:.3f}) but not in group(s): {'; '.join(breaches)}.",
        )
    return Status.PASSED, (
        f"Calibrated on {n:,} rows: ECE {metrics['ece']:.3f} <= {cfg.max_ece}, "
        f"overconfidence error {metrics['overconfidence_error']:.3f} <= {cfg.max_overconfidence_error}."
    )


def calibration_check(
    y_true: Any,
    y_prob: Any,
    *,
    classes: Sequence,
    groups: pd.DataFrame | None = None,
    config: CalibrationConfig | None = None,
) -> CheckResult:
    """Judge whether the model's confidence can be trusted on real labelled rows.

    Status: ``insufficient_evidence`` below ``config.min_samples`` rows; ``failed`` when ECE or
    overconfidence error exceeds its maximum; ``needs_review`` when the overall numbers pass but a
    group of at least ``min_samples`` rows exceeds a maximum (small samples inflate ECE, so a person
    looks before a group alone fails a model); ``passed`` otherwise. Groups smaller than
    ``min_samples`` get only a count and are not judged.
    """
    cfg = resolve_section("calibration", CalibrationConfig, config)
    n_bins = cfg.n_bins
    labels, idx, prob = _validated(y_true, y_prob, classes)
    if groups is not None:
        groups = check_frame(groups, "groups").reset_index(drop=True)
        check_consistent_length(y_true=idx, groups=groups)
    n = len(idx)
    metrics = _metrics(idx, prob, n_bins)
    conf, correct = _top_label(prob, idx)
    uniform_edges = _uniform_edges(n_bins)
    quantile_edges = _quantile_edges(conf, n_bins)
    bins = _bins_table(_bin_stats(conf, correct, uniform_edges), uniform_edges)
    details: dict[str, Any] = {
        "n": n,
        "classes": [str(c) for c in labels],
        "brier": (
            f"binary Brier score of the positive class {labels.tolist()[1]!r}"
            if len(labels) == 2
            else "multiclass Brier score: mean over rows of the sum over classes of squared errors"
        ),
        "bins": bins,
        "adaptive_bins": _bins_table(_bin_stats(conf, correct, quantile_edges), quantile_edges),
    }
    breaches: list[str] = []
    if groups is not None:
        group_metrics, details["groups"], breaches = _group_metrics(groups, idx, prob, cfg)
        metrics.update(group_metrics)
        details["insufficient_groups"] = _insufficient_groups(details["groups"])
    metrics["count"] = n

    reasons = _reasons(metrics, cfg)
    status, summary = _verdict(metrics, cfg, n, reasons, breaches)
    details["reasons"] = reasons + [f"group {b}" for b in breaches]
    return CheckResult(
        name="calibration",
        status=status,
        metrics=metrics,
        thresholds=thresholds_of(cfg),
        details=details,
        artifacts={
            "reliability.png": _reliability_png(bins, metrics["ece"], metrics["overconfidence_error"], n)
        },
        summary=summary,
    )


# --------------------------------------------------------------------------- in validate


def _missing(inputs: ValidationInputs) -> str | None:
    return None if inputs.proba is not None else f"{inputs.model} gives no class probabilities"


def _run(inputs: ValidationInputs, cfg: CalibrationConfig) -> CheckResult:
    return calibration_check(
        inputs.y_true,
        inputs.proba,
        classes=inputs.classes,
        groups=inputs.real[inputs.sensitive] if inputs.sensitive else None,
        config=cfg,
    )


SPEC = CheckSpec(
    name="calibration",
    settings=CalibrationConfig,
    missing=_missing,
    run=_run,
    key_metrics=("ece", "overconfidence_error", "adaptive_ece", "mce", "brier", "accuracy"),
    counts=("count", "*.count"),
    gate_max={"ece": "max_ece", "overconfidence_error": "max_overconfidence_error"},
)
