"""Generator check: is the synthetic training set a faithful and private stand-in for the real one?

Three questions, asked of the columns both sets share:

- **fidelity**: does each column have the same distribution? ``1 - KS`` for numeric columns and
  ``1 - total variation distance`` for categorical ones, on every row.
- **detectability** (classifier two-sample test, C2ST): can a gradient-boosted classifier tell a
  synthetic row from a real one? Out-of-fold ROC AUC on balanced seeded samples; 0.5 means no.
- **privacy**: how many synthetic rows are exact copies of real rows (row hashes, every row), and how
  many sit closer to a real row than real rows sit to each other (distance to closest record, DCR).

Every column is encoded once (numeric values as floats, categories as integer codes shared by both
sets, as the drift check encodes them); the three questions then work from those arrays, so nothing is
converted twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .._result import CheckResult, Status
from .._settings import Settings, resolve_section, thresholds_of
from .._validation import check_frame, numeric_and_categorical
from ..errors import ConfigError, InputError
from ._ecdf import ks_statistic, merge_samples
from ._encoding import shared_codes
from ._keys import unique_key_parts
from ._plots import new_figure, to_png
from ._spec import CheckSpec, ValidationInputs

__all__ = ["SPEC", "GeneratorConfig", "generator_check"]

_NAME = "generator"
# Folds of the classifier two-sample test; it needs a few rows of each set in every fold.
C2ST_FOLDS = 3


@dataclass(frozen=True, repr=False)
class GeneratorConfig(Settings):
    """Realism and privacy of the synthetic set against the real set.

    ``max_c2st_auc``: a classifier telling synthetic from real with AUC above this fails
    (0.5 = indistinguishable). ``max_exact_copy_share`` / ``max_near_copy_share``: above these shares
    of synthetic rows that equal, or nearly equal, a real row the check fails. ``min_fidelity``: a mean
    per-column fidelity (1 - KS numeric, 1 - TVD categorical) below it fails. ``near_copy_quantile``:
    a synthetic row closer to a real row than this quantile of real-to-real nearest distances counts
    as a near copy. ``min_rows``: fewer rows in either set is insufficient evidence.
    ``max_rows``: rows per set in the classifier test (seeded sample). ``max_dcr_rows``: synthetic
    rows, and real rows, whose closest record is searched (seeded samples). 10,000 rows estimate a
    share of about 5 % within ±0.5 points (95 %). ``max_reference_rows``: the real rows searched
    through; a larger real set is sampled (seeded) so the check's cost does not grow with it, and the
    near-copy baseline is taken from the same sample, so the comparison stays like for like. A near
    copy of an unsampled real row goes unseen: raise it for a stricter privacy audit. Exact copies are
    always counted over every row.
    """

    max_c2st_auc: float = 0.8
    max_exact_copy_share: float = 0.01
    max_near_copy_share: float = 0.05
    min_fidelity: float = 0.8
    near_copy_quantile: float = 0.01
    min_rows: int = 50
    max_rows: int = 20_000
    max_dcr_rows: int = 10_000
    max_reference_rows: int = 100_000
    seed: int = 0

    def check_ranges(self) -> None:
        if not 0.0 <= self.near_copy_quantile <= 1.0:
            raise ConfigError(
                f"config['generator']['near_copy_quantile'] must lie in [0, 1], got {self.near_copy_quantile}"
            )
        floor = 2 * C2ST_FOLDS
        if self.min_rows < floor or min(self.max_rows, self.max_dcr_rows) < self.min_rows:
            raise ConfigError(
                f"config['generator'] needs min_rows >= {floor} and max_rows, max_dcr_rows >= min_rows; got "
                f"min_rows={self.min_rows}, max_rows={self.max_rows}, max_dcr_rows={self.max_dcr_rows}"
            )


# HistGradientBoosting accepts category codes 0..254 (max_bins=255): the rarest levels share the last code.
_C2ST_MAX_LEVELS = 254
# One-hot width per categorical column in the distance space: the search costs time in proportion to the
# width, so rarer levels share one "other" slot (they look alike to the distance; exact copies are still
# found on the full data by hashing).
_DCR_MAX_LEVELS = 16
# A category mismatch then costs a distance of 1, the same as one standard deviation on a numeric column.
_ONE_HOT_VALUE = 1.0 / np.sqrt(2.0)
_FEATURE_BINS = 20
_ROWS_PER_BIN = 50
_TOP_FEATURES = 5
_PLOT_MAX_COLUMNS = 40
# OpenMP threads spin while they wait; on a machine busy with other work that made the gradient boosting
# 5-15x slower (a 600-row check took tens of seconds, the 20,000-row C2ST 20-30 s instead of 2). One thread
# costs at most ~2 s on our capped sample, so the C2ST always runs on one. The neighbour search is
# matrix-product bound and does gain from threads, so it gets them from this many real rows on.
_PARALLEL_MIN_ROWS = 10_000


@dataclass(frozen=True)
class _Encoded:
    """Both sets as arrays: numeric values (NaN kept) and category codes shared by both sets (-1 = missing)."""

    numeric: list[str]
    categorical: list[str]
    num_syn: np.ndarray
    num_real: np.ndarray
    codes_syn: np.ndarray
    codes_real: np.ndarray
    n_levels: np.ndarray

    @property
    def columns(self) -> list[str]:
        return self.numeric + self.categorical


def generator_check(
    synthetic: pd.DataFrame,
    real: pd.DataFrame,
    *,
    columns: Sequence[str] | None = None,
    config: GeneratorConfig | Mapping[str, Any] | None = None,
) -> CheckResult:
    """Judge the synthetic set's fidelity, detectability and privacy against the real set.

    Parameters
    ----------
    synthetic : the synthetic (training) rows.
    real : real rows, the set the generator learned from or a holdout of it.
    columns : the columns to compare; by default all, and then both frames must have the same columns.
    config : a :class:`~mlflow_hitl.config.GeneratorConfig` or a mapping of its settings.

    Returns
    -------
    CheckResult named ``generator`` with metrics ``fidelity``, ``<column>.fidelity``,
    ``correlation_similarity`` (two or more numeric columns), ``c2st_auc``, ``exact_copy_share``,
    ``real_duplicate_share``, ``near_copy_share``, ``dcr_median``, ``dcr_p05`` and the artifacts
    ``fidelity.png`` and ``dcr.png``. Fewer than ``min_rows`` rows in either set is
    ``insufficient_evidence``.
    """
    cfg = resolve_section(_NAME, GeneratorConfig, config)
    synthetic, real = _check_inputs(synthetic, real, columns)
    thresholds = thresholds_of(cfg)
    sizes = {"rows_synthetic": len(synthetic), "rows_real": len(real), "columns": len(real.columns)}
    if min(len(synthetic), len(real)) < cfg.min_rows:
        return _too_few_rows(sizes, thresholds, cfg)

    data = _encode(synthetic, real)
    # One generator shared in this order (C2ST sample first, then the DCR samples): results stay seeded.
    rng = np.random.default_rng(cfg.seed)
    realism = _realism(data, cfg, rng)
    privacy = _privacy(data, cfg, rng)
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


@dataclass(frozen=True)
class _Privacy:
    """How close synthetic rows sit to real ones: exact copies and distances to the closest record."""

    exact_share: float
    real_dup_share: float
    dcr_syn: np.ndarray
    dcr_real: np.ndarray
    reference_rows: int
    near_threshold: float
    near_share: float


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


def _realism(data: _Encoded, cfg: GeneratorConfig, rng: np.random.Generator) -> _Realism:
    """Fidelity and detectability together, so the caller sees one realism answer.

    Draws the C2ST sample from ``rng``; it must run before :func:`_privacy` to keep seeded results.
    """
    table = _fidelity_table(data)
    fidelity = float(np.mean([row["fidelity"] for row in table]))
    correlation = _correlation_similarity(data)
    auc, feature_aucs, c2st_rows = _c2st(data, cfg, rng)
    return _Realism(table, fidelity, correlation, auc, feature_aucs, c2st_rows)


def _privacy(data: _Encoded, cfg: GeneratorConfig, rng: np.random.Generator) -> _Privacy:
    """Exact and near copies of real rows; a near copy is closer than real rows sit to each other.

    The near-copy distance is a quantile of the real-to-real baseline, so "near" adapts to the data.
    """
    exact_share, real_dup_share = _exact_copies(data)
    dcr_syn, dcr_real, reference_rows = _distances_to_closest_record(
        data, cfg.max_dcr_rows, cfg.max_reference_rows, rng
    )
    near_threshold = float(np.quantile(dcr_real, cfg.near_copy_quantile))
    near_share = float(np.mean(dcr_syn < near_threshold))
    return _Privacy(
        exact_share, real_dup_share, dcr_syn, dcr_real, reference_rows, near_threshold, near_share
    )


def _metrics(realism: _Realism, privacy: _Privacy) -> dict[str, float]:
    """The flat metric mapping, in the order it has always been reported (logged metrics keep their order)."""
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
    return metrics


def _verdict(
    data: _Encoded,
    realism: _Realism,
    privacy: _Privacy,
    cfg: GeneratorConfig,
    sizes: dict[str, Any],
    thresholds: Mapping[str, Any],
) -> CheckResult:
    """Apply the rules and assemble the result: details record how much was sampled, so a reader can
    tell an estimate from a full count."""
    metrics = _metrics(realism, privacy)
    failed = _failed_rules(metrics, cfg)
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
        "numeric_columns": data.numeric,
        "categorical_columns": data.categorical,
    }
    artifacts = {
        "fidelity.png": _plot_fidelity(realism.table, cfg.min_fidelity),
        "dcr.png": _plot_dcr(privacy.dcr_syn, privacy.dcr_real, privacy.near_threshold),
    }
    return CheckResult(
        name=_NAME,
        status=Status.FAILED if failed else Status.PASSED,
        metrics=metrics,
        thresholds=thresholds,
        details=details,
        artifacts=artifacts,
        summary=_summary(metrics, failed),
    )


# --- validation ---------------------------------------------------------------------------------


def _check_inputs(
    synthetic: Any, real: Any, columns: Sequence[str] | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both frames on the same columns in the same order, each column of one kind in both sets."""
    if columns is None:
        synthetic = check_frame(synthetic, "synthetic")
        real = check_frame(real, "real")
        only_syn = [str(c) for c in synthetic.columns if c not in real.columns]
        only_real = [str(c) for c in real.columns if c not in synthetic.columns]
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

    num_syn, _ = numeric_and_categorical(synthetic)
    num_real, _ = numeric_and_categorical(real)
    mismatched = [c for c in columns if (c in num_syn) != (c in num_real)]
    if mismatched:
        found = "; ".join(f"{c}: synthetic {synthetic[c].dtype}, real {real[c].dtype}" for c in mismatched)
        raise InputError(
            f"column(s) numeric in one set but not in the other ({found}); cast them to the same type in both"
        )
    for name, frame in (("synthetic", synthetic), ("real", real)):
        empty = [str(c) for c in frame.columns if frame[c].isna().all()]
        if empty:
            raise InputError(
                f"{name} column(s) {', '.join(empty)} hold only missing values; drop them from columns or fill them"
            )
    return synthetic, real


# --- encoding -----------------------------------------------------------------------------------


def _encode(synthetic: pd.DataFrame, real: pd.DataFrame) -> _Encoded:
    numeric, categorical = numeric_and_categorical(real)
    n_syn, n_real = len(synthetic), len(real)
    codes_syn = np.empty((n_syn, len(categorical)), dtype=np.int64)
    codes_real = np.empty((n_real, len(categorical)), dtype=np.int64)
    n_levels = np.empty(len(categorical), dtype=np.int64)
    for j, column in enumerate(categorical):
        codes_syn[:, j], codes_real[:, j], n_levels[j] = shared_codes(synthetic[column], real[column])
    return _Encoded(
        numeric=[str(c) for c in numeric],
        categorical=[str(c) for c in categorical],
        num_syn=_floats(synthetic, numeric),
        num_real=_floats(real, numeric),
        codes_syn=codes_syn,
        codes_real=codes_real,
        n_levels=n_levels,
    )


def _floats(frame: pd.DataFrame, columns: Sequence[Any]) -> np.ndarray:
    """The columns as one float array (NaN for missing), filled column by column.

    Column-major, so each column is contiguous for the sorts and hashes that follow, and without the
    intermediate frame that ``frame[columns].to_numpy()`` builds and then interleaves.
    """
    out = np.empty((len(frame), len(columns)), order="F")
    for j, column in enumerate(columns):
        out[:, j] = frame[column].to_numpy(dtype=float, na_value=np.nan)
    return out


# --- fidelity -----------------------------------------------------------------------------------


def _total_variation(codes_a: np.ndarray, codes_b: np.ndarray, n_levels: int) -> float:
    """Half the L1 distance between category frequencies; missing is a category of its own."""
    p = np.bincount(codes_a + 1, minlength=n_levels + 1) / codes_a.size
    q = np.bincount(codes_b + 1, minlength=n_levels + 1) / codes_b.size
    return float(0.5 * np.abs(p - q).sum())


def _fidelity_table(data: _Encoded) -> list[dict[str, Any]]:
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


def _correlation_similarity(data: _Encoded) -> float | None:
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


def _c2st(data: _Encoded, cfg: GeneratorConfig, rng: np.random.Generator) -> tuple[float, list[dict], int]:
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


# --- privacy ------------------------------------------------------------------------------------


def _row_hashes(num: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """One 64-bit hash per row over every compared column (pandas' vectorised hashing).

    Numbers are canonicalised first (-0.0 -> 0.0, one NaN bit pattern) so equal rows hash equally; a
    collision between different rows has probability about n_syn * n_real / 2**64, negligible here.
    """
    num = np.where(np.isnan(num), np.nan, num + 0.0)
    # Each block is hashed where it lies (a frame over a 2-D array does not copy it) and the two row
    # hashes are then hashed together: no stacked copy of every column.
    parts = {
        name: pd.util.hash_pandas_object(pd.DataFrame(block), index=False).to_numpy()
        for name, block in (("numbers", num), ("codes", codes))
        if block.shape[1]
    }
    return pd.util.hash_pandas_object(pd.DataFrame(parts), index=False).to_numpy()


def _exact_copies(data: _Encoded) -> tuple[float, float]:
    """Share of synthetic rows equal to some real row, and the same share of real rows among the other real rows.

    The second number is the baseline: in data with few distinct rows, equal rows are common and not a leak.
    """
    h_syn = _row_hashes(data.num_syn, data.codes_syn)
    h_real = _row_hashes(data.num_real, data.codes_real)
    # pandas' hash-table isin: ten times faster than np.isin's sort at a million rows, same answer.
    copied = pd.Series(h_syn).isin(h_real).mean()
    return float(copied), float(pd.Series(h_real).duplicated(keep=False).mean())


def _distance_space(
    data: _Encoded, syn_rows: np.ndarray, real_rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The chosen synthetic and real rows as dense floats: numbers standardised by the whole real
    set, categories one-hot.

    Missing values are imputed, in both sets, with the real set's median (numeric) or most frequent
    category: a row copied together with its gaps stays at distance 0, and a gap costs no more than
    the distance from a typical real value.
    """
    median = np.nanmedian(data.num_real, axis=0)
    mean = np.nanmean(data.num_real, axis=0)
    std = np.nanstd(data.num_real, axis=0)
    std[~(std > 0)] = 1.0

    def numeric(x: np.ndarray) -> np.ndarray:
        return (np.where(np.isnan(x), median, x) - mean) / std

    blocks_syn, blocks_real = [numeric(data.num_syn[syn_rows])], [numeric(data.num_real[real_rows])]
    for j in range(len(data.categorical)):
        real_codes = data.codes_real[:, j]
        counts = np.bincount(real_codes[real_codes >= 0], minlength=int(data.n_levels[j]))
        order = np.argsort(-counts, kind="stable")
        kept = min(counts.size, _DCR_MAX_LEVELS)
        slot = np.full(counts.size, kept)
        slot[order[:kept]] = np.arange(kept)
        width = kept + (counts.size > kept)
        for codes, blocks in (
            (data.codes_syn[syn_rows, j], blocks_syn),
            (real_codes[real_rows], blocks_real),
        ):
            filled = np.where(codes < 0, order[0], codes)
            block = np.zeros((codes.size, width))
            block[np.arange(codes.size), slot[filled]] = _ONE_HOT_VALUE
            blocks.append(block)
    return np.hstack(blocks_syn), np.hstack(blocks_real)


def _distances_to_closest_record(
    data: _Encoded, max_rows: int, max_reference_rows: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, int]:
    """Euclidean distance from (sampled) synthetic rows to the closest reference row, from sampled
    reference rows to their closest *other* reference row, and the number of reference rows.

    The reference is the real set, sampled to ``max_reference_rows`` when larger so the cost of the
    search does not grow with the real data; the real-to-real baseline comes from the same reference,
    so "near" means the same thing on both sides.
    """
    from sklearn.neighbors import NearestNeighbors
    from threadpoolctl import threadpool_limits

    def sample(n: int, k: int) -> np.ndarray:
        return np.sort(rng.choice(n, k, replace=False)) if n > k else np.arange(n)

    syn_rows = sample(len(data.num_syn), max_rows)
    real_rows = sample(len(data.num_real), max_reference_rows)
    space_syn, space_real = _distance_space(data, syn_rows, real_rows)
    queries = space_real[sample(len(space_real), max_rows)] if len(space_real) > max_rows else space_real
    # Brute force: in ~20+ dimensions trees prune little, and sklearn's chunked GEMM search is several times faster.
    index = NearestNeighbors(algorithm="brute").fit(space_real)
    threads = 1 if len(space_real) < _PARALLEL_MIN_ROWS else None
    with threadpool_limits(limits=threads, user_api="openmp"):
        dcr_syn = index.kneighbors(space_syn, n_neighbors=1)[0][:, 0]
        # The closest hit of a real row is itself (or an identical row); the second is its closest other record.
        dcr_real = index.kneighbors(queries, n_neighbors=2)[0][:, 1]
    return dcr_syn, dcr_real, len(real_rows)


# --- verdict, plots -----------------------------------------------------------------------------


def _failed_rules(metrics: Mapping[str, float], cfg: GeneratorConfig) -> list[dict[str, Any]]:
    rules = (
        ("c2st_auc", ">", cfg.max_c2st_auc, "max_c2st_auc"),
        ("exact_copy_share", ">", cfg.max_exact_copy_share, "max_exact_copy_share"),
        ("near_copy_share", ">", cfg.max_near_copy_share, "max_near_copy_share"),
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


def _summary(metrics: Mapping[str, float], failed: list[dict[str, Any]]) -> str:
    if failed:
        reasons = "; ".join(
            f"{r['metric']} {r['value']:.3g} {r['rule'].split()[1]} {r['threshold']:.3g}" for r in failed
        )
        if any(r["metric"] == "exact_copy_share" for r in failed) and metrics["real_duplicate_share"] > 0:
            reasons += (
                f" (real rows repeat other real rows at {metrics['real_duplicate_share']:.3g}:"
                " in data with few distinct rows, copies can be natural)"
            )
        return f"The synthetic set fails as a stand-in for the real data: {reasons}."
    return (
        f"The synthetic set passes: fidelity {metrics['fidelity']:.3f}, classifier AUC {metrics['c2st_auc']:.3f}, "
        f"{metrics['exact_copy_share']:.1%} exact and {metrics['near_copy_share']:.1%} near copies of real rows."
    )


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


def _plot_dcr(dcr_syn: np.ndarray, dcr_real: np.ndarray, near_threshold: float) -> bytes:
    fig = new_figure()
    ax = fig.add_subplot()
    top = float(np.quantile(np.r_[dcr_syn, dcr_real], 0.995)) or 1.0
    bins = np.linspace(0.0, top, 51)
    ax.hist(
        np.minimum(dcr_syn, top), bins=bins, density=True, alpha=0.6, label="synthetic → closest real row"
    )
    ax.hist(
        np.minimum(dcr_real, top), bins=bins, density=True, alpha=0.6, label="real → closest other real row"
    )
    ax.axvline(
        near_threshold, color="black", linestyle="--", label=f"near-copy distance {near_threshold:.3g}"
    )
    ax.set_xlabel("distance (standardised units; top 0.5% in the last bin)")
    ax.set_ylabel("density")
    ax.set_title("Distance to closest real record")
    ax.legend(fontsize="small")
    return to_png(fig)


# --------------------------------------------------------------------------- in validate


def _columns(inputs: ValidationInputs) -> list[str]:
    return list(dict.fromkeys([*inputs.features, inputs.target]))


def _missing(inputs: ValidationInputs) -> str | None:
    return None if inputs.synthetic is not None else "needs synthetic data"


def _run(inputs: ValidationInputs, cfg: GeneratorConfig) -> CheckResult:
    # columns= selects them there, once, instead of a copy here
    return generator_check(inputs.synthetic, inputs.real, columns=_columns(inputs), config=cfg)  # type: ignore[arg-type]


SPEC = CheckSpec(
    name=_NAME,
    settings=GeneratorConfig,
    missing=_missing,
    run=_run,
    key_metrics=("c2st_auc", "exact_copy_share", "near_copy_share", "dcr_median", "fidelity"),
    gate_max={
        "c2st_auc": "max_c2st_auc",
        "exact_copy_share": "max_exact_copy_share",
        "near_copy_share": "max_near_copy_share",
    },
    gate_min={"fidelity": "min_fidelity"},
    data_read=lambda inputs: [("synthetic", _columns(inputs)), ("real", _columns(inputs))],
)
