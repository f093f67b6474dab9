"""Generator check: is the synthetic training set a faithful and private stand-in for the real one?

Three questions, asked of the columns both sets share:

- **fidelity**: does each column have the same distribution? ``1 - KS`` for numeric columns and
  ``1 - total variation distance`` for categorical ones, on every row.
- **detectability** (classifier two-sample test, C2ST): can a gradient-boosted classifier tell a
  synthetic row from a real one? Out-of-fold ROC AUC on balanced seeded samples; 0.5 means no.
- **privacy**: does the synthetic set copy real rows (exactly, or nearly) more often than a baseline
  of real rows it never saw? :mod:`mlflow_hitl.checks._privacy` asks it.

Every column is encoded once (:mod:`mlflow_hitl.checks._rows`); the three questions then work from
those arrays, so nothing is converted twice.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from .._format import number
from .._result import CheckResult, Status
from .._settings import Settings, resolve_section, thresholds_of
from .._validation import check_frame, differing_columns, numeric_and_categorical
from ..errors import ConfigError, InputError
from ._ecdf import ks_statistic, merge_samples
from ._keys import unique_key_parts
from ._plots import new_figure, to_png
from ._privacy import (
    CopyCounts,
    Privacy,
    assess_privacy,
    plot_dcr,
    privacy_details,
    privacy_failed_rules,
    privacy_metrics,
    privacy_statement,
    privacy_status,
)
from ._rows import Encoded, encode
from ._spec import CheckSpec, ValidationInputs

__all__ = ["SPEC", "GeneratorConfig", "generator_check"]

_NAME = "generator"
# Folds of the classifier two-sample test; it needs a few rows of each set in every fold.
C2ST_FOLDS = 3


@dataclass(frozen=True, repr=False)
class GeneratorConfig(Settings):
    """Realism and privacy of the synthetic set against the real set.

    ``max_c2st_auc``: a classifier telling synthetic from real with AUC above this fails
    (0.5 = indistinguishable). ``min_fidelity``: a mean per-column fidelity (1 - KS numeric, 1 - TVD
    categorical) below it fails. ``privacy_alpha``: the significance level of the one-sided tests of
    copying against the baseline (0.05: 95 % confidence); copying beyond the baseline that is
    significant and larger than ``max_exact_copy_excess`` / ``max_near_copy_excess`` (a share of
    synthetic rows) fails. ``max_exact_copy_share`` / ``max_near_copy_share``: an absolute limit on
    the share of synthetic rows that equal, or nearly equal, a real row, whatever the baseline; 1
    (the default) switches it off. ``max_undetectable_excess``: the largest excess copying (a share
    of synthetic rows beyond the baseline's copies, what ``max_*_copy_excess`` bound) that a pass may
    leave undetected, the same figure whether or not a source is given; where the tests at these sizes
    catch only a larger one with 80 % power, the privacy verdict is insufficient evidence rather than a
    pass (1 switches it off). ``near_copy_quantile``: a row closer to a real row
    than this quantile of real-to-real nearest distances counts as a near copy. ``min_rows``: fewer
    rows in either set (or in either side of the baseline) is insufficient evidence.
    ``max_rows``: rows per set in the classifier test (seeded sample). ``max_dcr_rows``: synthetic
    rows, and real rows, whose closest record is searched (seeded samples). 10,000 rows estimate a
    share of about 5 % within ±0.5 points (95 %). ``max_reference_rows``: the real rows searched
    through; a larger real set is sampled (seeded) so the check's cost does not grow with it, and the
    near-copy baseline is taken from the same sample, so the comparison stays like for like. A near
    copy of an unsampled real row goes unseen: raise it for a stricter privacy audit. Exact copies are
    always counted over every row.
    """

    # The thresholds that bound gate metrics; the shares and excesses have their rule in check_ranges.
    RANGES: ClassVar[Mapping[str, tuple[float, float]]] = {
        "max_c2st_auc": (0.0, 1.0),
        "min_fidelity": (0.0, 1.0),
        "privacy_alpha": (0.0, 1.0),  # a p-value's range; check_ranges also refuses the ends
    }

    max_c2st_auc: float = 0.8
    privacy_alpha: float = 0.05
    max_exact_copy_excess: float = 0.0
    max_near_copy_excess: float = 0.0
    max_exact_copy_share: float = 1.0
    max_near_copy_share: float = 1.0
    max_undetectable_excess: float = 0.02
    min_fidelity: float = 0.8
    near_copy_quantile: float = 0.01
    min_rows: int = 50
    max_rows: int = 20_000
    max_dcr_rows: int = 10_000
    max_reference_rows: int = 100_000
    seed: int = 0

    def check_ranges(self) -> None:
        for name in (
            "near_copy_quantile",
            "max_exact_copy_excess",
            "max_near_copy_excess",
            "max_exact_copy_share",
            "max_near_copy_share",
        ):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(
                    f"config['generator'][{name!r}] must lie in [0, 1], got {getattr(self, name)}"
                )
        if not 0.0 < self.max_undetectable_excess <= 1.0:
            raise ConfigError(
                "config['generator']['max_undetectable_excess'] must lie in (0, 1] (1 switches the power rule off), "
                f"got {self.max_undetectable_excess}"
            )
        if not 0.0 < self.privacy_alpha < 1.0:
            raise ConfigError(
                f"config['generator']['privacy_alpha'] must lie strictly between 0 and 1, got {self.privacy_alpha}"
            )
        floor = 2 * C2ST_FOLDS
        if self.min_rows < floor or min(self.max_rows, self.max_dcr_rows) < self.min_rows:
            raise ConfigError(
                f"config['generator'] needs min_rows >= {floor} and max_rows, max_dcr_rows >= min_rows; got "
                f"min_rows={self.min_rows}, max_rows={self.max_rows}, max_dcr_rows={self.max_dcr_rows}"
            )


# HistGradientBoosting accepts category codes 0..254 (max_bins=255): the rarest levels share the last code.
_C2ST_MAX_LEVELS = 254
_FEATURE_BINS = 20
_ROWS_PER_BIN = 50
_TOP_FEATURES = 5
_PLOT_MAX_COLUMNS = 40
# OpenMP threads spin while they wait; on a machine busy with other work that made the gradient boosting
# 5-15x slower (a 600-row check took tens of seconds, the 20,000-row C2ST 20-30 s instead of 2). One thread
# costs at most ~2 s on our capped sample, so the C2ST always runs on one.


def generator_check(
    synthetic: pd.DataFrame,
    real: pd.DataFrame,
    *,
    columns: Sequence[str] | None = None,
    config: GeneratorConfig | Mapping[str, Any] | None = None,
    holdout: pd.DataFrame | None = None,
    source: pd.DataFrame | None = None,
    copy_counts: Callable[[], CopyCounts] | None = None,
) -> CheckResult:
    """Judge the synthetic set's fidelity, detectability and privacy against the real set.

    Parameters
    ----------
    synthetic : the synthetic (training) rows.
    real : real rows, the set the generator learned from or a holdout of it.
    columns : the columns to compare; by default all, and then both frames must have the same columns.
    config : a :class:`~mlflow_hitl.config.GeneratorConfig` or a mapping of its settings.
    holdout : real rows the generator never saw, the privacy baseline (with ``source``, ``real`` serves
        when it is not given); without either, real rows are compared with the other real rows.
    source : the rows the generator learned from; copies of them are the leak that matters most, and
        the baseline then asks whether they reappear more often than rows it never saw.
    copy_counts : when the frames are a seeded sample of larger sets (the Spark path), a function giving
        the exact-copy counts of every row (:class:`~mlflow_hitl.checks.CopyCounts`); it is called once
        the sample has passed this check's validation. The exact-copy metrics and the row counts in
        ``details["sizes"]`` then read those counts; the rest reads the sample.

    Returns
    -------
    CheckResult named ``generator`` with metrics ``fidelity``, ``<column>.fidelity``,
    ``correlation_similarity`` (two or more numeric columns), ``c2st_auc``, ``exact_copy_share``,
    ``real_duplicate_share``, ``near_copy_share``, ``dcr_median``, ``dcr_p05``, the baseline's
    ``exact_copy_excess``, ``exact_copy_p_value``, ``tested_exact_copy_share``,
    ``holdout_exact_copy_share`` (and the same four for ``near``), with ``source``
    ``source_exact_copy_share`` and ``source_copied_rows``; and the artifacts ``fidelity.png`` and
    ``dcr.png``. Fewer than ``min_rows`` rows in either set, or on either side of the baseline, is
    ``insufficient_evidence``; so is a privacy pass whose tests catch, with 80 % power, only an excess
    larger than ``max_undetectable_excess`` (unless a rule failed).
    """
    cfg = resolve_section(_NAME, GeneratorConfig, config)
    synthetic, real = _check_inputs(synthetic, real, columns)
    holdout = _check_extra(holdout, "holdout", real)
    source = _check_extra(source, "source", real)
    thresholds = thresholds_of(cfg)
    counts = None if copy_counts is None else copy_counts()
    sizes = {
        "rows_synthetic": len(synthetic) if counts is None else counts.synthetic_rows,
        "rows_real": len(real) if counts is None else counts.real_rows,
        "columns": len(real.columns),
    }
    if min(len(synthetic), len(real), sizes["rows_synthetic"], sizes["rows_real"]) < cfg.min_rows:
        return _too_few_rows(sizes, thresholds, cfg)

    data = encode(synthetic, real, source, holdout)
    # One generator shared in this order (C2ST sample first, then the DCR samples): results stay seeded.
    rng = np.random.default_rng(cfg.seed)
    realism = _realism(data, cfg, rng)
    privacy = assess_privacy(data, cfg, rng, counts)
    return _verdict(data, realism, privacy, cfg, sizes, thresholds)


@dataclass(frozen=True)
class _Realism:
    """How alike the two sets look: per-column fidelity, correlations and the classifier test."""

    table: list[dict[str, Any]]
    fidelity: float
    correlation: float | None
    auc: float
    feature_aucs: list[dict]
    c2st_rows: int


def _too_few_rows(sizes: dict[str, Any], thresholds: Mapping[str, Any], cfg: GeneratorConfig) -> CheckResult:
    """The early answer when either set is below ``min_rows``: too little data to judge, not a failure."""
    return CheckResult(
        name=_NAME,
        status=Status.INSUFFICIENT_EVIDENCE,
        thresholds=thresholds,
        details={"sizes": sizes},
        summary=(
            f"Too few rows to judge the generator: {sizes['rows_synthetic']} synthetic and {sizes['rows_real']} real "
            f"(at least {cfg.min_rows} of each needed)."
        ),
    )


def _realism(data: Encoded, cfg: GeneratorConfig, rng: np.random.Generator) -> _Realism:
    """Fidelity and detectability together, so the caller sees one realism answer.

    Draws the C2ST sample from ``rng``; it must run before the privacy part to keep seeded results.
    """
    table = _fidelity_table(data)
    fidelity = float(np.mean([row["fidelity"] for row in table]))
    correlation = _correlation_similarity(data)
    auc, feature_aucs, c2st_rows = _c2st(data, cfg, rng)
    return _Realism(table, fidelity, correlation, auc, feature_aucs, c2st_rows)


def _metrics(realism: _Realism, privacy: Privacy, n_synthetic: int) -> dict[str, float]:
    """The flat metric mapping, in the order it has always been reported (logged metrics keep their
    order), the privacy baseline's after."""
    metrics = {
        "fidelity": realism.fidelity,
        "c2st_auc": realism.auc,
        "exact_copy_share": privacy.exact_share,
        "real_duplicate_share": privacy.real_dup_share,
        "near_copy_share": privacy.near_share,
        "dcr_median": float(np.median(privacy.dcr_syn)),
        "dcr_p05": float(np.quantile(privacy.dcr_syn, 0.05)),
    }
    if realism.correlation is not None:
        metrics["correlation_similarity"] = realism.correlation
    table = realism.table
    metrics.update(
        zip(
            (f"{part}.fidelity" for part in unique_key_parts(row["column"] for row in table)),
            (row["fidelity"] for row in table),
            strict=True,
        )
    )
    metrics.update(privacy_metrics(privacy, n_synthetic))
    return metrics


def _verdict(
    data: Encoded,
    realism: _Realism,
    privacy: Privacy,
    cfg: GeneratorConfig,
    sizes: dict[str, Any],
    thresholds: Mapping[str, Any],
) -> CheckResult:
    """Apply the rules and assemble the result: details record how much was sampled, so a reader can
    tell an estimate from a full count."""
    metrics = _metrics(realism, privacy, sizes["rows_synthetic"])
    privacy_failed = privacy_failed_rules(privacy, cfg)
    failed = _failed_rules(metrics, cfg) + privacy_failed
    sizes.update(
        c2st_rows_per_set=realism.c2st_rows,
        dcr_synthetic_rows=len(privacy.dcr_syn),
        dcr_synthetic_sampled=len(privacy.dcr_syn) < sizes["rows_synthetic"],
        dcr_real_reference_rows=privacy.reference_rows,
        dcr_real_reference_sampled=privacy.reference_rows < sizes["rows_real"],
        dcr_real_baseline_rows=len(privacy.dcr_real),
    )
    details = {
        "sizes": sizes,
        "columns": realism.table,
        "failed_rules": failed,
        "c2st_top_features": realism.feature_aucs[:_TOP_FEATURES],
        "near_copy_distance": privacy.near_threshold,
        "privacy_baseline": privacy_details(privacy),
        "numeric_columns": data.numeric,
        "categorical_columns": data.categorical,
    }
    artifacts = {
        "fidelity.png": _plot_fidelity(realism.table, cfg.min_fidelity),
        "dcr.png": plot_dcr(privacy),
    }
    status = privacy_status(privacy, failed)  # the realism rules' failures are in `failed` too
    return CheckResult(
        name=_NAME,
        status=status,
        metrics=metrics,
        thresholds=thresholds,
        details=details,
        artifacts=artifacts,
        summary=_summary(
            metrics, failed, status, privacy_statement(privacy, cfg, caught=bool(privacy_failed))
        ),
    )


# --- validation ---------------------------------------------------------------------------------


def _check_inputs(
    synthetic: Any, real: Any, columns: Sequence[str] | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both frames on the same columns in the same order, each column of one kind in both sets."""
    if columns is None:
        synthetic = check_frame(synthetic, "synthetic")
        real = check_frame(real, "real")
        only_syn, only_real = differing_columns(synthetic, real)
        if only_syn or only_real:
            raise InputError(
                "synthetic and real have different columns "
                f"(only in synthetic: {', '.join(only_syn) or '-'}; only in real: {', '.join(only_real) or '-'}); "
                "pass columns=[...] to compare the shared ones"
            )
        columns = list(synthetic.columns)
        if list(real.columns) != columns:  # both checked already: only the order may differ
            real = real.loc[:, columns]
    else:
        synthetic = check_frame(synthetic, "synthetic", columns=columns)
        real = check_frame(real, "real", columns=columns)

    _same_kinds(synthetic, "synthetic", real)
    for name, frame in (("synthetic", synthetic), ("real", real)):
        _no_empty_columns(frame, name)
    return synthetic, real


def _check_extra(frame: Any, name: str, real: pd.DataFrame) -> pd.DataFrame | None:
    """A holdout or source (or ``None``): real's columns, in real's order, each of the same kind."""
    if frame is None:
        return None
    frame = check_frame(frame, name, columns=list(real.columns))
    _same_kinds(frame, name, real)
    _no_empty_columns(frame, name)
    return frame


def _same_kinds(frame: pd.DataFrame, name: str, real: pd.DataFrame) -> None:
    numeric, _ = numeric_and_categorical(frame)
    numeric_real, _ = numeric_and_categorical(real)
    mismatched = [c for c in real.columns if (c in numeric) != (c in numeric_real)]
    if mismatched:
        found = "; ".join(f"{c}: {name} {frame[c].dtype}, real {real[c].dtype}" for c in mismatched)
        raise InputError(
            f"column(s) numeric in one set but not in the other ({found}); cast them to the same type in both"
        )


def _no_empty_columns(frame: pd.DataFrame, name: str) -> None:
    empty = [str(c) for c in frame.columns if frame[c].isna().all()]
    if empty:
        raise InputError(
            f"{name} column(s) {', '.join(empty)} hold only missing values; drop them from columns or fill them"
        )


# --- fidelity -----------------------------------------------------------------------------------


def _total_variation(codes_a: np.ndarray, codes_b: np.ndarray, n_levels: int) -> float:
    """Half the L1 distance between category frequencies; missing is a category of its own."""
    p = np.bincount(codes_a + 1, minlength=n_levels + 1) / codes_a.size
    q = np.bincount(codes_b + 1, minlength=n_levels + 1) / codes_b.size
    return float(0.5 * np.abs(p - q).sum())


def _fidelity_table(data: Encoded) -> list[dict[str, Any]]:
    rows = []
    for j, column in enumerate(data.numeric):
        a, b = data.num_syn[:, j], data.num_real[:, j]
        miss_a, miss_b = np.isnan(a), np.isnan(b)
        ks = ks_statistic(merge_samples(a[~miss_a], b[~miss_b]))
        rows.append(
            {
                "column": column,
                "kind": "numeric",
                "statistic": "ks",
                "distance": ks,
                "fidelity": 1.0 - ks,
                "missing_synthetic": float(miss_a.mean()),
                "missing_real": float(miss_b.mean()),
            }
        )
    for j, column in enumerate(data.categorical):
        a, b = data.codes_syn[:, j], data.codes_real[:, j]
        tvd = _total_variation(a, b, int(data.n_levels[j]))
        rows.append(
            {
                "column": column,
                "kind": "categorical",
                "statistic": "tvd",
                "distance": tvd,
                "fidelity": 1.0 - tvd,
                "missing_synthetic": float((a < 0).mean()),
                "missing_real": float((b < 0).mean()),
            }
        )
    return rows


def _pearson(values: np.ndarray) -> np.ndarray:
    """Pearson correlation matrix of the columns; NaN for a pair with a constant column.

    Without missing values numpy's one matrix product serves (much faster than pandas' pairwise
    loop); with them, pandas' pairwise-complete rows are the definition we want.
    """
    if np.isnan(values).any():
        return pd.DataFrame(values).corr().to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):  # a constant column: 0 / 0, NaN as in pandas
        return np.corrcoef(values, rowvar=False)


def _correlation_similarity(data: Encoded) -> float | None:
    """``1 - mean |corr_syn - corr_real| / 2`` over numeric column pairs (SDMetrics' CorrelationSimilarity).

    Pearson on pairwise-complete rows; pairs involving a constant column are left out.
    """
    if len(data.numeric) < 2:
        return None
    upper = np.triu_indices(len(data.numeric), k=1)
    corr_syn = _pearson(data.num_syn)[upper]
    corr_real = _pearson(data.num_real)[upper]
    gaps = np.abs(corr_syn - corr_real)
    gaps = gaps[np.isfinite(gaps)]
    return float(1.0 - gaps.mean() / 2.0) if gaps.size else None


# --- classifier two-sample test -----------------------------------------------------------------


def _capped_codes(codes: np.ndarray, max_levels: int) -> np.ndarray:
    """Codes renumbered by frequency (0 = most frequent); levels past ``max_levels`` share code ``max_levels``."""
    present = codes >= 0
    counts = np.bincount(codes[present])
    rank = np.empty_like(counts)
    rank[np.argsort(-counts, kind="stable")] = np.arange(counts.size)
    out = np.full(codes.shape, np.nan)
    out[present] = np.minimum(rank[codes[present]], max_levels)
    return out


def _binned_auc(x: np.ndarray, y: np.ndarray, categorical: bool) -> float:
    """AUC of one column on its own: each bin (category, or quantile bin of a number) scores its synthetic share.

    Scored in-sample, so slightly optimistic; numbers get at most 20 bins and at least ~50 rows per bin
    to keep that small. It answers "which column gives the synthetic rows away", not the test itself.
    """
    from sklearn.metrics import roc_auc_score

    missing = np.isnan(x)
    if categorical:
        bins = np.where(missing, -1, x).astype(np.int64) + 1
    else:
        n_bins = int(np.clip(x.size // _ROWS_PER_BIN, 2, _FEATURE_BINS))
        observed = x[~missing]
        cuts = np.linspace(0, 1, n_bins + 1)[1:-1]
        edges = np.unique(np.quantile(observed, cuts)) if observed.size else np.empty(0)
        bins = np.where(missing, 0, np.searchsorted(edges, x, side="right") + 1)
    synthetic = np.bincount(bins, weights=y)
    total = np.bincount(bins)
    share = np.divide(synthetic, total, out=np.zeros_like(synthetic), where=total > 0)
    return float(roc_auc_score(y, share[bins]))


def _c2st(data: Encoded, cfg: GeneratorConfig, rng: np.random.Generator) -> tuple[float, list[dict], int]:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from threadpoolctl import threadpool_limits

    n = min(len(data.num_syn), len(data.num_real), cfg.max_rows)
    pick_syn = np.sort(rng.choice(len(data.num_syn), n, replace=False))
    pick_real = np.sort(rng.choice(len(data.num_real), n, replace=False))
    codes = np.vstack([data.codes_syn[pick_syn], data.codes_real[pick_real]])
    cats = [_capped_codes(codes[:, j], _C2ST_MAX_LEVELS) for j in range(codes.shape[1])]
    X = np.column_stack([np.vstack([data.num_syn[pick_syn], data.num_real[pick_real]]), *cats])
    y = np.r_[np.ones(n), np.zeros(n)]
    is_categorical = np.r_[
        np.zeros(len(data.numeric), dtype=bool), np.ones(len(data.categorical), dtype=bool)
    ]
    model = HistGradientBoostingClassifier(
        categorical_features=is_categorical if is_categorical.any() else None, random_state=cfg.seed
    )
    folds = StratifiedKFold(n_splits=C2ST_FOLDS, shuffle=True, random_state=cfg.seed)
    with threadpool_limits(limits=1, user_api="openmp"):
        proba = cross_val_predict(model, X, y, cv=folds, method="predict_proba")[:, 1]
    feature_aucs = [
        {"column": column, "auc": _binned_auc(X[:, j], y, bool(is_categorical[j]))}
        for j, column in enumerate(data.columns)
    ]
    feature_aucs.sort(key=lambda row: -row["auc"])
    return float(roc_auc_score(y, proba)), feature_aucs, n


# --- verdict, plots -----------------------------------------------------------------------------


def _failed_rules(metrics: Mapping[str, float], cfg: GeneratorConfig) -> list[dict[str, Any]]:
    """The realism rules; the privacy rules are :func:`privacy_failed_rules`."""
    rules = (
        ("c2st_auc", ">", cfg.max_c2st_auc, "max_c2st_auc"),
        ("fidelity", "<", cfg.min_fidelity, "min_fidelity"),
    )
    failed = []
    for metric, op, limit, setting in rules:
        value = metrics[metric]
        if (value > limit) if op == ">" else (value < limit):
            failed.append(
                {
                    "metric": metric,
                    "rule": f"{metric} {op} {setting}",
                    "value": value,
                    "threshold": limit,
                    "by": abs(value - limit),
                }
            )
    return failed


def _summary(metrics: Mapping[str, float], failed: list[dict[str, Any]], status: Status, privacy: str) -> str:
    """The verdict, then the copies beside their baseline (always: a pass says what it rests on too)."""
    if failed:
        reasons = "; ".join(
            f"{r['metric']} {number(r['value'])} {r['rule'].split()[1]} {number(r['threshold'])}"
            for r in failed
        )
        return f"The synthetic set fails as a stand-in for the real data: {reasons}. Privacy: {privacy}."
    realism = f"fidelity {number(metrics['fidelity'])}, classifier AUC {number(metrics['c2st_auc'])}"
    if status is Status.INSUFFICIENT_EVIDENCE:
        return f"The synthetic set looks realistic ({realism}), but {privacy}."
    return f"The synthetic set passes: {realism}; {privacy}."


def _plot_fidelity(table: list[dict[str, Any]], min_fidelity: float) -> bytes:
    rows = sorted(table, key=lambda row: row["fidelity"])[:_PLOT_MAX_COLUMNS]
    fig = new_figure(7.0, 1.5 + 0.25 * len(rows))
    ax = fig.add_subplot()
    values = [row["fidelity"] for row in rows]
    colours = ["tab:red" if v < min_fidelity else "tab:blue" for v in values]
    ax.barh([row["column"] for row in rows], values, color=colours)
    ax.axvline(
        min_fidelity,
        color="black",
        linestyle="--",
        label=f"min_fidelity {min_fidelity:g} (applies to the mean)",
    )
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("fidelity (1 - KS numeric, 1 - TVD categorical)")
    shown = "" if len(rows) == len(table) else f" (lowest {len(rows)} of {len(table)})"
    ax.set_title(f"Per-column fidelity, synthetic vs real{shown}")
    ax.legend(loc="lower right", fontsize="small")
    return to_png(fig)


# --------------------------------------------------------------------------- in validate


def _columns(inputs: ValidationInputs) -> list[str]:
    return list(dict.fromkeys([*inputs.features, inputs.target]))


def _missing(inputs: ValidationInputs) -> str | None:
    return None if inputs.synthetic is not None else "needs synthetic data"


def _run(inputs: ValidationInputs, cfg: GeneratorConfig) -> CheckResult:
    # columns= selects them there, once, instead of a copy here
    return generator_check(
        inputs.synthetic,  # type: ignore[arg-type]
        inputs.real,
        columns=_columns(inputs),
        config=cfg,
        holdout=inputs.holdout,
        source=inputs.source,
    )


def _data_read(inputs: ValidationInputs) -> list[tuple[str, list[str]]]:
    roles = ["synthetic", "real"] + [role for role in ("holdout", "source") if inputs.frame(role) is not None]
    return [(role, _columns(inputs)) for role in roles]


SPEC = CheckSpec(
    name=_NAME,
    settings=GeneratorConfig,
    missing=_missing,
    run=_run,
    key_metrics=(
        "fidelity",
        "c2st_auc",
        "exact_copy_share",
        "holdout_exact_copy_share",
        "exact_copy_excess",
        "near_copy_excess",
        "dcr_median",
    ),
    counts=("source_copied_rows",),
    # The baseline tests bound copying (their p-values at privacy_alpha); the absolute shares are off by default.
    gate_max={"c2st_auc": "max_c2st_auc"},
    gate_min={
        "fidelity": "min_fidelity",
        "exact_copy_p_value": "privacy_alpha",
        "near_copy_p_value": "privacy_alpha",
    },
    data_read=_data_read,
)
