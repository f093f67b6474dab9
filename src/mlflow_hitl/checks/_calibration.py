"""Calibration: does the model's confidence match how often it is right?

Everything is computed on the *top label* (the predicted class and its probability), so one
definition serves binary and multiclass models. The binned errors (ECE, adaptive ECE, MCE, OE)
are written here by hand because scikit-learn has none of them; they reduce to three
``np.bincount`` calls, one linear pass over the rows. The adversarial check reuses
:func:`_binned_errors`, so both checks share one implementation of ECE and OE.

Every metric is a function of a few sums: per-bin counts, confidence and accuracy sums, and the
totals of the Brier and log-loss terms (:class:`CalibrationStats`). :func:`calibration_from_stats`
judges those; :func:`calibration_check` computes them from the rows, and the Spark path sums them
on the executors, so both paths share every formula.
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

__all__ = [
    "SPEC",
    "CalibrationConfig",
    "CalibrationGroupStats",
    "CalibrationStats",
    "calibration_check",
    "calibration_from_stats",
    "calibration_metrics",
    "uniform_edges",
]


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


def uniform_edges(n_bins: int) -> np.ndarray:
    """The equal-width bin edges of confidence: ``n_bins + 1`` values from 0 to 1."""
    return np.linspace(0.0, 1.0, n_bins + 1)


def _quantile_edges(conf: np.ndarray, n_bins: int) -> np.ndarray:
    """Equal-mass edges, the same quantiles as sklearn's ``calibration_curve(strategy="quantile")``."""
    return np.percentile(conf, np.linspace(0.0, 100.0, n_bins + 1))


def _binned_errors(conf: np.ndarray, correct: np.ndarray, n_bins: int) -> dict[str, float]:
    """Equal-width ECE, MCE and OE of top-label confidences: the one implementation both checks use."""
    ece, mce, oe = _errors(_bin_stats(conf, correct, uniform_edges(n_bins)), len(conf))
    return {"ece": ece, "mce": mce, "overconfidence_error": oe}


@dataclass(frozen=True)
class CalibrationGroupStats:
    """One group's sums: rows, right top labels, summed confidence, and its equal-width bins."""

    n: int
    correct: float
    confidence: float
    bins: Mapping[str, np.ndarray]  # counts, conf_sum, acc_sum per equal-width bin


@dataclass(frozen=True)
class CalibrationStats:
    """The sums every calibration metric is computed from.

    ``bins`` and ``adaptive_bins`` hold per-bin ``counts``, ``conf_sum`` and ``acc_sum``: over the
    equal-width edges of ``n_bins`` bins, and over ``adaptive_edges`` (equal-mass). ``correct``,
    ``confidence``, ``brier`` and ``log_loss`` are sums over the rows (right top labels, top-label
    confidence, the per-row Brier term, -log of the clipped probability of the true class).
    ``groups``: per sensitive feature, ``(value, stats)`` per group, in the order the groups appear.
    """

    n: int
    correct: float
    confidence: float
    brier: float
    log_loss: float
    bins: Mapping[str, np.ndarray]
    adaptive_edges: np.ndarray
    adaptive_bins: Mapping[str, np.ndarray]
    groups: Mapping[str, Sequence[tuple[Any, CalibrationGroupStats]]] | None = None


def _row_stats(
    idx: np.ndarray, prob: np.ndarray, n_bins: int, groups: pd.DataFrame | None = None
) -> CalibrationStats:
    """The sums of :class:`CalibrationStats` from validated rows (labels encoded as column indices)."""
    n = len(idx)
    conf, correct = _top_label(prob, idx)
    p_true = prob[np.arange(n), idx]
    if prob.shape[1] == 2:
        # Binary: sklearn's brier_score_loss on the positive class (column 1), range [0, 1].
        brier = (prob[:, 1] - (idx == 1)) ** 2
    else:
        # Multiclass: sum_k (p_k - 1[y = k])^2 per row, range [0, 2] (Brier 1950).
        brier = (prob**2).sum(axis=1) - 2.0 * p_true + 1.0
    edges = uniform_edges(n_bins)
    adaptive_edges = _quantile_edges(conf, n_bins)
    by_group = None
    if groups is not None:
        by_group = {}
        for feature in groups.columns:
            codes, values = pd.factorize(groups[feature], use_na_sentinel=False)
            rows = []
            for code, value in enumerate(values):
                mask = codes == code
                rows.append(
                    (
                        value,
                        CalibrationGroupStats(
                            n=int(mask.sum()),
                            correct=float(correct[mask].sum()),
                            confidence=float(conf[mask].sum()),
                            bins=_bin_stats(conf[mask], correct[mask], edges),
                        ),
                    )
                )
            by_group[feature] = rows
    return CalibrationStats(
        n=n,
        correct=float(correct.sum()),
        confidence=float(conf.sum()),
        brier=float(brier.sum()),
        log_loss=float(-np.log(np.clip(p_true, _EPS, 1.0 - _EPS)).sum()),
        bins=_bin_stats(conf, correct, edges),
        adaptive_edges=adaptive_edges,
        adaptive_bins=_bin_stats(conf, correct, adaptive_edges),
        groups=by_group,
    )


def _metrics(stats: CalibrationStats) -> dict[str, float]:
    """Every overall calibration metric, from the sums (means are sum / n, as ``np.mean`` takes them)."""
    n = stats.n
    ece, mce, oe = _errors(stats.bins, n)
    adaptive_ece, _, _ = _errors(stats.adaptive_bins, n)
    return {
        "ece": ece,
        "mce": mce,
        "overconfidence_error": oe,
        "adaptive_ece": adaptive_ece,
        "brier": float(stats.brier / n),
        "log_loss": float(stats.log_loss / n),  # -S / n is exactly -(S / n)
        "accuracy": float(stats.correct / n),
        "mean_confidence": float(stats.confidence / n),
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
    return _metrics(_row_stats(idx, prob, n_bins))


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
    groups: Mapping[str, Sequence[tuple[Any, CalibrationGroupStats]]], cfg: CalibrationConfig
) -> tuple[dict[str, float], dict[str, Any], list[str]]:
    """Per sensitive feature and value: metrics, a details table, and the groups that breach a maximum."""
    metrics: dict[str, float] = {}
    table: dict[str, Any] = {}
    breaches: list[str] = []
    for (feature, values), feature_key in zip(groups.items(), unique_key_parts(groups), strict=True):
        rows: dict[str, Any] = {}
        keys = unique_key_parts(value for value, _ in values)
        for (value, stats), key in zip(values, keys, strict=True):
            count = stats.n
            prefix = f"{feature_key}.{key}"
            metrics[f"{prefix}.count"] = count
            if count < cfg.min_samples:
                rows[str(value)] = {"count": count, "status": "insufficient_evidence"}
                continue
            ece, _, oe = _errors(stats.bins, count)
            accuracy = float(stats.correct / count)
            metrics.update(
                {
                    f"{prefix}.ece": ece,
                    f"{prefix}.overconfidence_error": oe,
                    f"{prefix}.accuracy": accuracy,
                }
            )
            breached = ece > cfg.max_ece or oe > cfg.max_overconfidence_error
            if breached:
                breaches.append(f"{feature}={value} (n={count}): ECE {ece:.3f}, OE {oe:.3f}")
            rows[str(value)] = {
                "count": count,
                "ece": ece,
                "overconfidence_error": oe,
                "accuracy": accuracy,
                "mean_confidence": float(stats.confidence / count),
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
    labels, idx, prob = _validated(y_true, y_prob, classes)
    if groups is not None:
        groups = check_frame(groups, "groups").reset_index(drop=True)
        check_consistent_length(y_true=idx, groups=groups)
    return calibration_from_stats(_row_stats(idx, prob, cfg.n_bins, groups), classes=labels, config=cfg)


def calibration_from_stats(
    stats: CalibrationStats, *, classes: Sequence, config: CalibrationConfig | Mapping[str, Any] | None = None
) -> CheckResult:
    """The verdict of :func:`calibration_check` from the sums its metrics are made of.

    ``stats.bins`` must be binned over ``uniform_edges(config.n_bins)``; ``classes`` are the
    probability columns' labels, in order. The Spark path sums the statistics on the executors and
    calls this, so both paths judge with the same formulas.
    """
    cfg = resolve_section("calibration", CalibrationConfig, config)
    labels = check_classes(classes)
    if stats.n < 1:
        raise InputError("the calibration statistics hold no rows")
    n = stats.n
    metrics = _metrics(stats)
    bins = _bins_table(stats.bins, uniform_edges(cfg.n_bins))
    details: dict[str, Any] = {
        "n": n,
        "classes": [str(c) for c in labels],
        "brier": (
            f"binary Brier score of the positive class {labels.tolist()[1]!r}"
            if len(labels) == 2
            else "multiclass Brier score: mean over rows of the sum over classes of squared errors"
        ),
        "bins": bins,
        "adaptive_bins": _bins_table(stats.adaptive_bins, stats.adaptive_edges),
    }
    breaches: list[str] = []
    if stats.groups is not None:
        group_metrics, details["groups"], breaches = _group_metrics(stats.groups, cfg)
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
