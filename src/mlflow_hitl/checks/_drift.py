"""Drift: has each column's distribution moved between a reference set and a current set?

Per column we use the test and threshold evidently 0.7 picks *by default* (``DataDriftPreset()``
with no options), so our verdicts are evidently's verdicts, but we compute them over every row
with numpy instead of sampling or looping in Python:

- a numeric column is sorted once per set and the two sorted runs are merged (a linear timsort
  pass); the distinct-value count, Kolmogorov-Smirnov and normed Wasserstein all read that merge;
- a categorical column is counted once per set (``pd.factorize`` + ``np.bincount``) and the counts
  aligned on the values seen in either set; chi-square, Z and Jensen-Shannon then work on a handful
  of counts (scipy's own functions, since their inputs are now tiny).

evidently's rules, read from ``evidently/core/datasets.py`` (``infer_column_type``) and
``evidently/legacy/calculations/stattests/registry.py`` (``_get_default_stattest``):

- kind comes from the *current* set: float → num; int → cat when it has at most 10 distinct values,
  else num; bool, category, strings and other objects → cat;
- missing values (NaN, None, ±inf) are dropped per column and per set before anything else;
- "small" means at most 1000 non-missing reference values: p-value tests (KS for numbers with more
  than 5 distinct values in both sets together; chi-square above 2 distinct values; Z for 2 or fewer);
  larger references get distances (normed Wasserstein for numbers with more than 5 distinct values,
  Jensen-Shannon for the rest).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import numpy as np
import pandas as pd

from .._result import CheckResult, Status, worst_status
from .._settings import Settings, resolve_section, thresholds_of
from .._validation import check_frame
from ..errors import InputError
from ._drift_report import chart_png, report_html
from ._drift_stats import (
    DRIFT_THRESHOLDS,
    column_kind,
    counts_test,
    is_drifted,
    ks_p_value,
    mixed_kinds_error,
    numeric_plan,
    unsupported_type_error,
    wasserstein_norm,
)
from ._ecdf import ks_statistic, merge_samples
from ._encoding import shared_codes
from ._keys import unique_key_parts
from ._spec import CheckSpec, ValidationInputs

__all__ = [
    "SPEC",
    "ColumnVerdict",
    "DriftConfig",
    "check_same_columns",
    "checked_drift_columns",
    "PairTable",
    "drift_check",
    "drift_result_of",
    "drift_table",
    "drift_verdict_table",
    "validated_drift_pairs",
    "with_drift_report_pages",
]


@dataclass(frozen=True, repr=False)
class DriftConfig(Settings):
    """Per-column drift uses evidently's default test and threshold for the column's type and size.

    ``max_drifted_share`` (0.1): a pair whose share of drifted columns exceeds it fails. evidently's
    preset passes a dataset while up to half its columns drift; here more than one in ten drifting
    fails, and any drifted (or untestable) column at or below the share sends the check to review.
    ``min_rows`` (30): with fewer rows in either set of a pair, finding no drift is
    insufficient evidence (drift that is found still counts).
    ``report_sample_size`` (5000) and ``seed`` (0): evidently's HTML report is rendered on a seeded
    sample of at most this many rows per set; the verdicts always use every row.
    ``render_report`` (True): False skips the HTML (and evidently's cost) and keeps the PNG chart.
    ``validate`` renders the page only when it logs the evidence.
    """

    RANGES: ClassVar[Mapping[str, tuple[float, float]]] = {"max_drifted_share": (0.0, 1.0)}

    max_drifted_share: float = 0.1
    min_rows: int = 30
    report_sample_size: int = 5_000
    render_report: bool = True
    seed: int = 0


_TABLE_COLUMNS = ["column", "kind", "stattest", "threshold", "score", "drifted", "n_reference", "n_current"]


class ColumnVerdict(NamedTuple):
    """One column's drift test, as either engine found it."""

    kind: str
    stattest: str | None  # None: no values in one of the sets, nothing to test
    score: float
    n_reference: int
    n_current: int


# --------------------------------------------------------------------------- column kinds


def _refuse_unsupported(column: Any, series: pd.Series, input_name: str) -> None:
    dtype = series.dtype
    if (
        pd.api.types.is_datetime64_any_dtype(dtype)
        or pd.api.types.is_timedelta64_dtype(dtype)
        or pd.api.types.is_complex_dtype(dtype)
        or isinstance(dtype, (pd.PeriodDtype, pd.IntervalDtype))
    ):
        raise unsupported_type_error(column, dtype, input_name)


def _family(dtype: Any) -> str:
    if (
        pd.api.types.is_bool_dtype(dtype)
        or isinstance(dtype, pd.CategoricalDtype)
        or not pd.api.types.is_numeric_dtype(dtype)
    ):
        return "cat"
    return "int" if pd.api.types.is_integer_dtype(dtype) else "float"


def _kind(column: Any, reference: pd.Series, current: pd.Series) -> str:
    """``num`` or ``cat``, decided on the current set as evidently's ``infer_column_type`` does.

    evidently skips unsigned and nullable (``Int64``, ``Float64``, ``boolean``) columns as
    "unknown"; we give them the rule of their numpy counterpart instead of dropping them.
    """
    _refuse_unsupported(column, reference, "reference")
    _refuse_unsupported(column, current, "current")
    if current.isna().all():
        # Nothing to infer from (and pandas gives an all-missing column float64 whatever it held):
        # take the reference's kind, so the column is reported untested rather than refused.
        current = reference
    family = _family(current.dtype)
    kind = column_kind(family, current.nunique() if family == "int" else 0)
    if kind == "num" and not pd.api.types.is_numeric_dtype(reference.dtype):  # bool counts as numeric
        raise mixed_kinds_error(column, reference.dtype)
    return kind


# --------------------------------------------------------------------------- the tests


def _categorical_counts(reference: pd.Series, current: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Counts per value seen in either set, on one shared encoding; missing values dropped."""
    codes_ref, codes_cur, n_levels = shared_codes(reference, current)
    return (
        np.bincount(codes_ref[codes_ref >= 0], minlength=n_levels),
        np.bincount(codes_cur[codes_cur >= 0], minlength=n_levels),
    )


def _numeric_values(series: pd.Series) -> np.ndarray:
    values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    return values[~np.isnan(values)]  # check_frame already turned ±inf into NaN


def _numeric_test(ref: np.ndarray, cur: np.ndarray) -> tuple[str, float]:
    """KS, normed Wasserstein, or a counts test, from one merge of the two sorted sets.

    scipy's ``ks_2samp`` and ``wasserstein_distance`` each sort again and search every value of
    both sets in both sorted arrays; after one merge (``_ecdf.merge_samples``), the empirical CDF of
    each set at every merged position is a cumulative count, so both statistics are one linear pass.
    """
    from scipy import stats

    merged = merge_samples(ref, cur)
    n, m = merged.n, merged.m
    plan = numeric_plan(n, m, np.count_nonzero(merged.is_run_end) + 1)
    if plan == "counts":
        stops = np.append(np.flatnonzero(merged.is_run_end), n + m - 1)
        ref_counts = np.diff(merged.ref_below[stops], prepend=0)
        return counts_test(ref_counts, np.diff(stops + 1, prepend=0) - ref_counts)
    if plan == "ks_exact":
        # scipy's exact small-sample distribution is private; the sets are small, so call it whole.
        return "ks", float(stats.ks_2samp(ref, cur).pvalue)
    if plan == "wasserstein":
        norm = wasserstein_norm(float(np.std(ref)))
        return "wasserstein", float(np.dot(np.abs(merged.gap()[:-1]), np.diff(merged.values))) / norm
    return "ks", ks_p_value(ks_statistic(merged), n, m)


def _column_verdict(column: Any, reference: pd.Series, current: pd.Series) -> ColumnVerdict:
    kind = _kind(column, reference, current)
    if kind == "num":
        ref, cur = _numeric_values(reference), _numeric_values(current)
        n_ref, n_cur = len(ref), len(cur)
        if n_ref and n_cur:
            return ColumnVerdict(kind, *_numeric_test(ref, cur), n_ref, n_cur)
    else:
        ref_counts, cur_counts = _categorical_counts(reference, current)
        n_ref, n_cur = int(ref_counts.sum()), int(cur_counts.sum())
        if n_ref and n_cur:
            return ColumnVerdict(kind, *counts_test(ref_counts, cur_counts), n_ref, n_cur)
    return ColumnVerdict(kind, None, float("nan"), n_ref, n_cur)


# --------------------------------------------------------------------------- public API


def checked_drift_columns(columns: Any) -> list[Any] | None:
    """``columns=`` as a list, or ``None`` for all; a string or an empty list is refused."""
    if columns is None:
        return None
    if isinstance(columns, (str, bytes)) or not hasattr(columns, "__iter__"):
        raise InputError(f"columns must be a list of column names, got {columns!r}")
    columns = list(columns)
    if not columns:
        raise InputError("columns is empty; pass at least one column name, or None for all")
    return columns


def check_same_columns(reference_columns: Sequence[Any], current_columns: Sequence[Any]) -> None:
    """Without ``columns=``, both sets must hold the same columns: say which are in one set only."""
    only_ref = [str(c) for c in reference_columns if c not in current_columns]
    only_cur = [str(c) for c in current_columns if c not in reference_columns]
    if only_ref or only_cur:
        found = "; ".join(
            f"only in {name}: {', '.join(cols)}"
            for name, cols in (("reference", only_ref), ("current", only_cur))
            if cols
        )
        raise InputError(
            f"reference and current must have the same columns ({found}); "
            "pass columns= to compare the shared ones"
        )


def _validated_pair(
    reference: Any, current: Any, columns: Sequence[str] | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    columns = checked_drift_columns(columns)
    reference = check_frame(reference, "reference", columns=columns)
    current = check_frame(current, "current", columns=columns)
    if columns is None:
        check_same_columns(list(reference.columns), list(current.columns))
    return reference, current


def drift_table(
    reference: pd.DataFrame, current: pd.DataFrame, *, columns: Sequence[str] | None = None
) -> pd.DataFrame:
    """Per column: evidently's default drift test, its score and its verdict, over all rows.

    Returns one row per column (in the reference's order) with ``column``, ``kind`` (``num`` or
    ``cat``), ``stattest`` (evidently's name: ``ks``, ``chisquare``, ``z``, ``wasserstein``,
    ``jensenshannon``), ``threshold``, ``score`` (a p-value for the first three, a distance for the
    last two), ``drifted`` and the non-missing counts ``n_reference`` and ``n_current``.

    A column with no values at all in either set cannot be tested: its ``stattest`` is ``None``,
    its ``score`` NaN and its ``drifted`` missing (``pd.NA``), never a quiet ``False``.
    """
    reference, current = _validated_pair(reference, current, columns)
    verdicts = [_column_verdict(column, reference[column], current[column]) for column in reference.columns]
    return drift_verdict_table(list(reference.columns), verdicts)


def drift_verdict_table(
    columns: Sequence[Any],
    verdicts: Sequence[ColumnVerdict],
    extra: Mapping[str, Sequence[Any]] | None = None,
) -> pd.DataFrame:
    """:func:`drift_table`'s table from each column's verdict: the threshold and the drift call added.

    ``extra``: more columns, appended as given (the Spark path says there how each score was found).
    """
    rows = []
    for column, verdict in zip(columns, verdicts, strict=True):
        tested = verdict.stattest is not None
        rows.append(
            {
                "column": column,
                "kind": verdict.kind,
                "stattest": verdict.stattest,
                "threshold": DRIFT_THRESHOLDS[verdict.stattest] if tested else float("nan"),
                "score": verdict.score,
                "drifted": is_drifted(verdict.stattest, verdict.score) if tested else pd.NA,
                "n_reference": verdict.n_reference,
                "n_current": verdict.n_current,
            }
        )
    table = pd.DataFrame(rows, columns=_TABLE_COLUMNS)
    table = table.astype({"drifted": "boolean", "n_reference": "int64", "n_current": "int64"})
    for name, values in (extra or {}).items():
        table[name] = list(values)
    return table


def validated_drift_pairs(pairs: Any) -> dict[str, tuple[Any, Any]]:
    if not isinstance(pairs, Mapping) or not pairs:
        raise InputError(
            "pairs must be a non-empty mapping of name to (reference, current), "
            'e.g. {"synthetic_vs_real": (synthetic, real)}'
        )
    for name, pair in pairs.items():
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise InputError(f"pairs[{name!r}] must be a (reference, current) tuple of DataFrames")
    return dict(pairs)


def _json_value(value: Any) -> Any:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    return value.item() if isinstance(value, np.generic) else value


def _records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """The table as JSON-ready records (NaN and NA become None)."""
    extra = [c for c in table.columns if c not in _TABLE_COLUMNS]
    return [
        {
            "column": str(row.column),
            "kind": row.kind,
            "stattest": row.stattest,
            "threshold": None if pd.isna(row.threshold) else float(row.threshold),
            "score": None if pd.isna(row.score) else float(row.score),
            "drifted": None if pd.isna(row.drifted) else bool(row.drifted),
            "n_reference": int(row.n_reference),
            "n_current": int(row.n_current),
            **{name: _json_value(getattr(row, name)) for name in extra},
        }
        for row in table.itertuples(index=False)
    ]


def _render(
    artifacts: dict[str, bytes],
    name: str,
    reference: pd.DataFrame,
    current: pd.DataFrame,
    columns: list[Any],
    cfg: DriftConfig,
    table: list[dict[str, Any]],
    rows: tuple[int, int] | None,
) -> dict[str, Any]:
    """Add evidently's HTML, run with our rules (``table``: our verdict per column), to ``artifacts``;
    return what it saw, or why there is no page.

    The page is a view for people, not evidence: the verdicts come from our engine. So a failure
    inside evidently on unusual data is recorded in details instead of failing the whole check.
    """
    try:
        page, sample = report_html(
            reference,
            current,
            columns=columns,
            sample_size=cfg.report_sample_size,
            seed=cfg.seed,
            max_drifted_share=cfg.max_drifted_share,
            table=table,
            rows=rows,
        )
    except Exception as exc:  # noqa: BLE001 - any evidently error; the message goes to details
        return {"error": f"evidently could not render the report: {type(exc).__name__}: {exc}"}
    if page is not None:
        artifacts[name] = page
    return sample


def with_drift_report_pages(
    result: CheckResult,
    pairs: Mapping[str, tuple[pd.DataFrame, pd.DataFrame]],
    cfg: DriftConfig,
    rows: Mapping[str, tuple[int, int]] | None = None,
) -> CheckResult:
    """``result`` with evidently's page ``P.html`` of each pair ``P`` that has a tested column.

    What the page saw goes to ``details[P]["report_sample"]``. Separate from judging drift, so
    ``validate`` renders pages only for the evidence it logs, also on a reused result. ``rows``: each
    pair's row counts when ``pairs`` hold samples already (the Spark path), for the page's banner.
    """
    details, artifacts = dict(result.details), dict(result.artifacts)
    for key, name, (reference, current) in zip(
        unique_key_parts(list(pairs)), pairs, pairs.values(), strict=True
    ):
        tested = {row["column"] for row in details[key]["table"] if row["stattest"] is not None}
        if tested:
            columns = [c for c in reference.columns if str(c) in tested]
            total = None if rows is None else rows[name]
            sample = _render(
                artifacts, f"{key}.html", reference, current, columns, cfg, details[key]["table"], total
            )
            details[key] = {**details[key], "report_sample": sample}
    return dataclasses.replace(result, details=details, artifacts=artifacts)


class _Pair(NamedTuple):
    status: Status
    sentence: str
    metrics: dict[str, float]
    details: dict[str, Any]
    chart: bytes


def _pair_table(name: Any, reference: Any, current: Any, columns: Sequence[str] | None) -> PairTable:
    try:
        table = drift_table(reference, current, columns=columns)
    except InputError as exc:
        raise InputError(f"pairs[{name!r}]: {exc}") from exc
    return PairTable(table, len(reference), len(current))


def _judge_pair(key: str, name: Any, pair: PairTable, cfg: DriftConfig) -> _Pair:
    """One pair's metrics, status, sentence, details and chart, from its drift table."""
    table = pair.table
    tested = table[table["stattest"].notna()]
    drifted = [str(c) for c in tested.loc[tested["drifted"].astype(bool), "column"]]
    untested = [str(c) for c in table.loc[table["stattest"].isna(), "column"]]
    share = len(drifted) / len(tested) if len(tested) else 0.0
    metrics = {f"{key}.drifted_share": share, f"{key}.drifted_count": float(len(drifted))}
    for column_key, row in zip(
        unique_key_parts(list(table["column"])), table.itertuples(index=False), strict=True
    ):
        metrics[f"{key}.{column_key}.score"] = row.score
        metrics[f"{key}.{column_key}.drifted"] = float("nan") if pd.isna(row.drifted) else float(row.drifted)
    n_ref, n_cur = pair.n_reference, pair.n_current
    if share > cfg.max_drifted_share:
        status = Status.FAILED
    elif drifted or untested:
        status = Status.NEEDS_REVIEW
    elif min(n_ref, n_cur) < cfg.min_rows:
        status = Status.INSUFFICIENT_EVIDENCE
    else:
        status = Status.PASSED
    sentence = f"{name}: {len(drifted)} of {len(tested)} columns drifted ({share:.0%})"
    if drifted:
        sentence += f": {', '.join(drifted[:5])}" + (
            f" and {len(drifted) - 5} more" if len(drifted) > 5 else ""
        )
    if untested:
        sentence += f", {len(untested)} untestable (no values in a set: {', '.join(untested)})"
    near = (
        [str(c) for c in table.loc[table["near_threshold"].astype(bool), "column"]]
        if "near_threshold" in table
        else []
    )
    if near:
        sentence += f", {len(near)} within the estimate's error bound of the threshold ({', '.join(near)})"
    if status is Status.INSUFFICIENT_EVIDENCE:
        sentence += f", but only {min(n_ref, n_cur)} rows in a set (at least {cfg.min_rows} needed)"
    details = {
        "name": str(name),
        "status": status.value,
        "n_reference": n_ref,
        "n_current": n_cur,
        "drifted_columns": drifted,
        "untested_columns": untested,
        "table": _records(table),
    }
    if "near_threshold" in table:
        # A score estimated from sketches whose error bound straddles the threshold: its verdict could
        # go either way on the exact score, and a reader must know which verdicts those are.
        details["near_threshold_columns"] = near
    chart = chart_png(table, title=f"{name}: {len(drifted)} of {len(tested)} columns drifted")
    return _Pair(status, sentence, metrics, details, chart)


def drift_check(
    pairs: Mapping[str, tuple[pd.DataFrame, pd.DataFrame]],
    *,
    columns: Sequence[str] | None = None,
    config: DriftConfig | None = None,
) -> CheckResult:
    """Judge drift for each named ``(reference, current)`` pair, e.g. synthetic vs real.

    Metrics, for each pair ``P``: ``P.drifted_share`` (drifted / tested columns), ``P.drifted_count``,
    ``P.<column>.score`` and ``P.<column>.drifted`` (1.0 / 0.0; NaN when the column could not be
    tested); ``drifted_share`` and ``drifted_count`` are the maxima over pairs.

    Status, first rule that applies: ``failed`` when a pair's drifted share exceeds
    ``max_drifted_share``; ``needs_review`` when any column drifted, or could not be tested (no
    values in a set); ``insufficient_evidence`` when a set has fewer than ``min_rows`` rows; else
    ``passed``. Drift found in a small set still counts (the p-value tests already allow for size);
    only the *absence* of drift needs enough rows to mean something.
    """
    cfg = resolve_section("drift", DriftConfig, config)
    pairs = validated_drift_pairs(pairs)
    tables = {
        name: _pair_table(name, reference, current, columns) for name, (reference, current) in pairs.items()
    }
    result = drift_result_of(tables, cfg)
    return with_drift_report_pages(result, pairs, cfg) if cfg.render_report else result


class PairTable(NamedTuple):
    """One pair's drift table and the row counts of its two sets."""

    table: pd.DataFrame
    n_reference: int
    n_current: int


def drift_result_of(tables: Mapping[Any, PairTable], cfg: DriftConfig) -> CheckResult:
    """The drift check's result (without evidently's pages) from each named pair's table, on either engine."""
    judged = {
        key: _judge_pair(key, name, pair, cfg)
        for key, (name, pair) in zip(unique_key_parts(list(tables)), tables.items(), strict=True)
    }
    metrics = {k: v for pair in judged.values() for k, v in pair.metrics.items()}
    metrics["drifted_share"] = max(metrics[f"{k}.drifted_share"] for k in judged)
    metrics["drifted_count"] = max(metrics[f"{k}.drifted_count"] for k in judged)
    status = worst_status(pair.status for pair in judged.values())
    return CheckResult(
        name="drift",
        status=status,
        metrics=metrics,
        thresholds=thresholds_of(cfg),
        details={key: pair.details for key, pair in judged.items()},
        artifacts={f"{key}.png": pair.chart for key, pair in judged.items()},
        summary=(
            f"Drift {status.value} (max drifted share {cfg.max_drifted_share:.0%}): "
            f"{'; '.join(pair.sentence for pair in judged.values())}."
        ),
    )


# --------------------------------------------------------------------------- in validate


def _pairs(inputs: ValidationInputs) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    """Synthetic vs real and real vs production, on the model's features, for the inputs given."""
    pairs = {}
    if inputs.synthetic is not None:
        pairs["synthetic_vs_real"] = (inputs.synthetic[inputs.features], inputs.X_real)
    if inputs.production is not None:
        pairs["real_vs_production"] = (inputs.X_real, inputs.production)  # already exactly the features
    return pairs


def _missing(inputs: ValidationInputs) -> str | None:
    if inputs.synthetic is None and inputs.production is None:
        return "needs synthetic or production data to compare with real"
    return None


def _run(inputs: ValidationInputs, cfg: DriftConfig) -> CheckResult:
    # evidently's page is rendered only for evidence that is logged (_render_for_log), and a result
    # kept in memory or for reuse never holds one.
    return drift_check(_pairs(inputs), config=dataclasses.replace(cfg, render_report=False))


def _render_for_log(result: CheckResult, inputs: ValidationInputs, cfg: DriftConfig) -> CheckResult:
    return with_drift_report_pages(result, _pairs(inputs), cfg) if cfg.render_report else result


def _data_read(inputs: ValidationInputs) -> list[tuple[str, list[str]]]:
    roles = (["synthetic", "real"] if inputs.synthetic is not None else []) + (
        ["real", "production"] if inputs.production is not None else []
    )
    return [(role, inputs.features) for role in roles]


SPEC = CheckSpec(
    name="drift",
    settings=DriftConfig,
    missing=_missing,
    run=_run,
    key_metrics=("drifted_share", "*.drifted_share"),
    counts=("drifted_count", "*.drifted_count", "*.drifted"),
    gate_max={"drifted_share": "max_drifted_share"},
    data_read=_data_read,
    render=_render_for_log,
)
