"""Fairness audit of real labelled rows, and of the bias a synthetic training set carries.

Point estimates come from fairlearn (``MetricFrame`` and its disparity functions). They run on a
weighted table of per-group ``(true label, predicted label)`` counts instead of on the rows:
every metric involved is a weighted mean over those cells, so the numbers are the same, and the
cost follows the number of groups and labels, not of rows (``docs/performance.md`` has the
figures). The same counts drive the bootstrap (see :func:`_bootstrap`), which is why it is
vectorised over replicates rather than calling fairlearn once per replicate.

Those counts are also the check's input: :func:`fairness_from_counts` audits a
:class:`FairnessCounts` (rows per observed cell), which the Spark path aggregates on the executors;
:func:`fairness_check` hands it the rows themselves, each a cell of one row. Both paths run the same
formulas on the same counts, so they give the same numbers and, with the same seed, the same intervals.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from .._result import CheckResult, Status, worst_status
from .._settings import Settings, resolve_section, thresholds_of
from .._validation import check_consistent_length, check_frame, check_labels
from ..errors import ConfigError, InputError
from ._keys import MISSING_GROUP, unique_key_parts
from ._plots import new_figure, to_png
from ._seeding import named_rng
from ._spec import CheckSpec, ValidationInputs

__all__ = [
    "SPEC",
    "TOO_MANY_GROUPS",
    "FairnessConfig",
    "FairnessCounts",
    "fairness_check",
    "fairness_from_counts",
]


@dataclass(frozen=True, repr=False)
class FairnessConfig(Settings):
    """Group disparities; a group smaller than ``min_group_size`` is insufficient evidence.

    A disparity fails only when its whole bootstrap interval lies above the maximum; a point
    estimate above the maximum with an interval that straddles it needs human review.

    - ``max_demographic_parity_difference`` (0.1), ``max_equalized_odds_difference`` (0.1):
      fairlearn's between-groups differences; ten points of selection rate (or TPR/FPR) is the
      usual "look at this" line in fairness reviews.
    - ``max_bias_amplification`` (0.05): how much more the synthetic labels' base rates may differ
      between groups than the real labels' do, before the generator is blamed.
    - ``min_group_size`` (30): fewer real rows than this, and a group's rates are too noisy to
      judge; it is excluded from the disparities and named, never silently passed.
    - ``n_bootstrap`` (200), ``confidence_level`` (0.95), ``seed`` (0): seeded bootstrap intervals
      that bound every pairwise group gap at once (a plain percentile interval of max − min is biased).
    - ``intersections`` (True): also audit the intersection of all sensitive features (``sex&colour``).
    - ``max_groups`` (50): a sensitive feature with more distinct values is refused (bin it first);
      an intersection with more observed groups is skipped and reported.
    """

    RANGES: ClassVar[Mapping[str, tuple[float, float]]] = {
        "max_demographic_parity_difference": (0.0, 1.0),
        "max_equalized_odds_difference": (0.0, 1.0),
        # a difference of two base-rate differences, each in [-1, 1] as a gap between groups' rates
        "max_bias_amplification": (-1.0, 1.0),
    }

    max_demographic_parity_difference: float = 0.1
    max_equalized_odds_difference: float = 0.1
    max_bias_amplification: float = 0.05
    min_group_size: int = 30
    n_bootstrap: int = 200
    confidence_level: float = 0.95
    intersections: bool = True
    max_groups: int = 50
    seed: int = 0

    def check_ranges(self) -> None:
        if not 0 < self.confidence_level < 1:
            raise ConfigError(
                f"config['fairness']['confidence_level'] must lie in (0, 1), got {self.confidence_level}"
            )
        if self.n_bootstrap < 1:
            raise ConfigError(f"config['fairness']['n_bootstrap'] must be at least 1, got {self.n_bootstrap}")
        if self.max_groups < 2:
            raise ConfigError(f"config['fairness']['max_groups'] must be at least 2, got {self.max_groups}")


# NaN in a sensitive column is its own group: people who did not state their group are often the
# ones an audit most needs to see, and dropping them would hide exactly that.
# The refusal of a sensitive column with more groups than max_groups (real and synthetic values together,
# a missing value being one group). Whoever builds FairnessCounts from many rows checks it first.
TOO_MANY_GROUPS = (
    "sensitive column {column!r} has {groups} distinct values, more than max_groups={max_groups}; "
    "bin it first (e.g. pd.cut) or raise max_groups"
)
# Joins feature names and group values of the intersection, as fairlearn prints them.
_JOIN = "&"
# Metric keys are "<feature>.<group>.<metric>": "." would break that structure and "&", "(", "," are
# not valid MLflow metric characters, so anything but letters, digits, "_" and "-" becomes "_".
_RATES = ("selection_rate", "true_positive_rate", "false_positive_rate")
# Per-grouping numbers that become metrics; the rest of the audit stays in details.
_GROUPING_METRICS = (
    "demographic_parity_difference",
    "demographic_parity_difference_ci_low",
    "demographic_parity_difference_ci_high",
    "demographic_parity_ratio",
    "equalized_odds_difference",
    "equalized_odds_difference_ci_low",
    "equalized_odds_difference_ci_high",
    "equalized_odds_ratio",
    "model_amplification",
    "bias_amplification",
)

STATUS_RULE = (
    "failed if, for any grouping, the lower confidence bound of the demographic parity difference or of "
    "the equalized odds difference is above its maximum, or the bias amplification is above its maximum; "
    "needs_review if a point estimate is above its maximum but its interval reaches below it; "
    "insufficient_evidence if a group was excluded (fewer than min_group_size rows, or no positive or no "
    "negative rows) or a grouping has fewer than two comparable groups; passed otherwise"
)


def fairness_check(
    y_true: Any,
    y_pred: Any,
    *,
    sensitive_features: pd.DataFrame,
    positive_label: Any = None,
    synthetic_y: Any = None,
    synthetic_sensitive: pd.DataFrame | None = None,
    config: FairnessConfig | Mapping[str, Any] | None = None,
) -> CheckResult:
    """Audit a classifier's outcomes by sensitive group, and the bias the synthetic set carries.

    ``y_true`` and ``y_pred`` are the real labelled rows' labels and the model's predicted labels;
    ``sensitive_features`` holds one column per sensitive feature for the same rows (matched by
    position, not index). NaN in a sensitive column forms its own group ``missing``. Each column is
    audited on its own and, with ``config.intersections``, all of them together (``sex&colour``).

    Multiclass labels are audited one-vs-rest for ``positive_label``, which defaults to the larger
    label of a binary problem and must be given otherwise. Per group: selection rate, true and false
    positive rates, accuracy (on the original labels) and size. Per grouping: fairlearn's
    demographic parity and equalized odds differences and ratios over the groups large enough to
    judge, with seeded bootstrap intervals for the differences that bound every pairwise group gap
    at once (docs/checks/fairness.md says why not a plain percentile interval).

    With ``synthetic_y`` and ``synthetic_sensitive`` (the training set), each group's share of the
    real and the synthetic rows, and ``bias_amplification`` = demographic parity difference of the
    synthetic labels minus that of the real labels, over groups with ``min_group_size`` rows in both.
    ``model_amplification`` = demographic parity difference of the predictions minus that of the
    real labels; it needs no synthetic data.

    Status: failed if, for any grouping, the lower bound of the demographic parity or equalized odds
    difference is above its maximum, or the bias amplification is; needs_review if a point estimate
    is above its maximum but its interval reaches below it; insufficient_evidence if any group was
    excluded (fewer than ``min_group_size`` rows, or no positive or no negative rows, so TPR or FPR is
    undefined) or a grouping had fewer than two groups left; passed otherwise.
    """
    config = resolve_section("fairness", FairnessConfig, config)
    y_true = check_labels(y_true, "y_true")
    y_pred = check_labels(y_pred, "y_pred")
    sensitive = check_frame(_as_frame(sensitive_features), "sensitive_features")
    check_consistent_length(y_true=y_true, y_pred=y_pred, sensitive_features=sensitive)
    synthetic_y, synthetic_sensitive = _synthetic_rows(synthetic_y, synthetic_sensitive, sensitive)
    counts = FairnessCounts(
        sensitive=sensitive,
        y_true=y_true,
        y_pred=y_pred,
        count=np.ones(len(y_true), dtype=np.int64),
        synthetic_sensitive=synthetic_sensitive,
        synthetic_y=synthetic_y,
        synthetic_count=None if synthetic_y is None else np.ones(len(synthetic_y), dtype=np.int64),
    )
    return fairness_from_counts(counts, positive_label=positive_label, config=config)


@dataclass(frozen=True)
class FairnessCounts:
    """What the fairness audit needs to know of the rows: how many fall in each observed cell.

    A cell is one combination of the sensitive values, the true label and the predicted label
    (``sensitive``, ``y_true``, ``y_pred`` hold one entry per cell, ``count`` its rows); the
    synthetic set's cells combine the sensitive values and the label. A missing sensitive value
    (NaN or None) is a value of its own. Rows may repeat a cell: counts of equal cells add up, so
    the rows themselves (each with count 1) are valid counts, and so are counts merged from
    partitions.
    """

    sensitive: pd.DataFrame
    y_true: np.ndarray
    y_pred: np.ndarray
    count: np.ndarray
    synthetic_sensitive: pd.DataFrame | None = None
    synthetic_y: np.ndarray | None = None
    synthetic_count: np.ndarray | None = None

    def __post_init__(self) -> None:
        check_consistent_length(
            sensitive=self.sensitive, y_true=self.y_true, y_pred=self.y_pred, count=self.count
        )
        check_consistent_length(
            synthetic_sensitive=self.synthetic_sensitive,
            synthetic_y=self.synthetic_y,
            synthetic_count=self.synthetic_count,
        )
        if (self.synthetic_y is None) != (self.synthetic_count is None) or (self.synthetic_y is None) != (
            self.synthetic_sensitive is None
        ):
            raise InputError("synthetic_sensitive, synthetic_y and synthetic_count go together: all or none")
        for name, count in (("count", self.count), ("synthetic_count", self.synthetic_count)):
            if count is not None and (
                np.asarray(count).dtype.kind not in "iu" or (np.asarray(count) < 0).any()
            ):
                raise InputError(f"{name} must hold whole numbers of rows, none negative")


def fairness_from_counts(
    counts: FairnessCounts,
    *,
    positive_label: Any = None,
    config: FairnessConfig | Mapping[str, Any] | None = None,
) -> CheckResult:
    """The fairness audit of :func:`fairness_check`, from rows counted per cell instead of the rows.

    The same metrics, intervals and verdict as :func:`fairness_check` on the rows those counts
    summarise: every number is a weighted mean over the cells, and the bootstrap draws the cells'
    counts (multinomially), so only the counts matter. This is how the Spark path audits every
    row without collecting them: it counts the cells on the executors.
    """
    config = resolve_section("fairness", FairnessConfig, config)
    count = np.asarray(counts.count, dtype=np.int64)
    if count.sum() == 0:
        raise InputError("the counts hold no rows")
    labels = _Labels.of(counts.y_true, counts.y_pred, positive_label)
    synthetic_positive = (
        None if counts.synthetic_y is None else _synthetic_positive(counts.synthetic_y, labels)
    )
    synthetic_count = (
        None if counts.synthetic_count is None else np.asarray(counts.synthetic_count, dtype=np.int64)
    )
    sensitive = counts.sensitive.reset_index(drop=True)
    synthetic_sensitive = (
        None if counts.synthetic_sensitive is None else counts.synthetic_sensitive.reset_index(drop=True)
    )

    features, skipped = _groupings(sensitive, synthetic_sensitive, config)
    audits = [
        _audit(feature, key, labels, count, synthetic_positive, synthetic_count, config)
        for feature, key in zip(features, unique_key_parts([f.name for f in features]), strict=True)
    ]

    status = worst_status(a.status for a in audits)
    metrics = {k: v for a in audits for k, v in a.metrics.items() if np.isfinite(v)}
    details: dict[str, Any] = {
        "positive_label": labels.positive,
        "classes": labels.classes,
        "predicted_labels_not_in_y_true": labels.unseen,
        "n_rows": int(count.sum()),
        "n_synthetic_rows": None if synthetic_count is None else int(synthetic_count.sum()),
        "missing_values": _missing_counts(sensitive, count, synthetic_sensitive, synthetic_count),
        "features": {a.name: a.details for a in audits},
        "skipped": skipped,
        "status_rule": STATUS_RULE,
    }
    return CheckResult(
        name="fairness",
        status=status,
        metrics=metrics,
        thresholds=thresholds_of(config),
        details=details,
        artifacts={"by_group.png": _plot(audits)},
        summary=_summary(status, audits),
    )


def _as_frame(data: Any) -> Any:
    return data.to_frame() if isinstance(data, pd.Series) else data


def _sorted_classes(y: np.ndarray, input_name: str) -> list[Any]:
    classes = pd.unique(y).tolist()
    try:
        return sorted(classes)
    except TypeError:
        kinds = ", ".join(sorted({type(c).__name__ for c in classes}))
        raise InputError(f"{input_name} mixes label types ({kinds}); use one type for every label") from None


@dataclass(frozen=True)
class _Labels:
    """Labels as integer codes over the classes of y_true and y_pred, and the positive class."""

    classes: list[Any]
    positive: Any
    positive_code: int
    true: np.ndarray
    pred: np.ndarray
    unseen: list[Any]

    @classmethod
    def of(cls, y_true: np.ndarray, y_pred: np.ndarray, positive_label: Any) -> _Labels:
        true_classes = _sorted_classes(y_true, "y_true")
        pred_classes = _sorted_classes(y_pred, "y_pred")
        if len(true_classes) < 2:
            raise InputError(
                f"y_true has a single class ({true_classes[0]!r}); true and false positive rates need rows of both"
            )
        # A predicted label y_true never holds is fine (a class of the model absent from this holdout):
        # one-vs-rest it is simply "not positive". Predictions in another encoding, or scores, are not.
        unseen = [c for c in pred_classes if c not in true_classes]
        if unseen and y_pred.dtype.kind == "f" and any(float(c) % 1 for c in unseen):
            raise InputError(
                f"y_pred holds values such as {unseen[0]!r} that are not labels of y_true; "
                "pass predicted labels (model.predict), not probabilities"
            )
        if len(unseen) == len(pred_classes):
            raise InputError(
                f"y_pred shares no label with y_true (y_true: {_listing(true_classes)}; "
                f"y_pred: {_listing(pred_classes)}); encode predictions the way y_true is encoded"
            )
        classes = sorted(true_classes + unseen)  # y_pred shares a label with y_true, so types compare
        if positive_label is None:
            if len(classes) != 2:
                raise InputError(
                    f"positive_label is required when there are more than two labels "
                    f"(y_true and y_pred hold {_listing(classes)}); the audit is one-vs-rest for that label"
                )
            positive_label = classes[1]
        elif positive_label not in true_classes:
            raise InputError(
                f"positive_label {positive_label!r} is not a class of y_true ({_listing(true_classes)})"
            )
        index = pd.Index(classes)
        code = int(index.get_loc(positive_label))
        return cls(
            classes=classes,
            positive=classes[code],
            positive_code=code,
            true=index.get_indexer(y_true),
            pred=index.get_indexer(y_pred),
            unseen=unseen,
        )

    def is_positive(self, y: np.ndarray) -> np.ndarray:
        return pd.Index(self.classes).get_indexer(y) == self.positive_code


def _listing(values: list[Any], limit: int = 10) -> str:
    shown = ", ".join(map(str, values[:limit]))
    return shown + (f", … ({len(values)} in all)" if len(values) > limit else "")


def _synthetic_rows(
    synthetic_y: Any, synthetic_sensitive: Any, sensitive: pd.DataFrame
) -> tuple[np.ndarray | None, pd.DataFrame | None]:
    """The synthetic labels and sensitive columns, checked; both or neither."""
    if synthetic_y is None and synthetic_sensitive is None:
        return None, None
    if synthetic_y is None or synthetic_sensitive is None:
        given, other = ("synthetic_y", "synthetic_sensitive")
        if synthetic_y is None:
            given, other = other, given
        raise InputError(
            f"{given} was given without {other}; pass both to audit the synthetic set, or neither"
        )
    y = check_labels(synthetic_y, "synthetic_y")
    frame = check_frame(
        _as_frame(synthetic_sensitive), "synthetic_sensitive", columns=list(sensitive.columns)
    )
    check_consistent_length(synthetic_y=y, synthetic_sensitive=frame)
    return y, frame


def _synthetic_positive(y: np.ndarray, labels: _Labels) -> np.ndarray:
    """Whether each synthetic label is the positive class; refused when none is a real class."""
    synthetic_classes = _sorted_classes(y, "synthetic_y")
    if not any(c in labels.classes for c in synthetic_classes):
        raise InputError(
            f"synthetic_y shares no label with y_true (y_true: {_listing(labels.classes)}; "
            f"synthetic_y: {_listing(synthetic_classes)}); encode them the same way"
        )
    return labels.is_positive(y)


@dataclass(frozen=True)
class _Grouping:
    """One way of splitting the rows into groups: a sensitive column, or the intersection of all."""

    name: str
    groups: list[str]
    codes: np.ndarray  # group of every real row
    synthetic_codes: np.ndarray | None  # group of every synthetic row (same codes)


def _group_codes(values: pd.Series, column: str) -> tuple[np.ndarray, list[str]]:
    """Integer group codes and their labels; values that print the same are one group."""
    codes, uniques = pd.factorize(values, sort=True)
    names = np.asarray([str(u) for u in uniques], dtype=object)
    name_codes, merged = pd.factorize(names)
    groups = list(merged)
    codes = np.append(name_codes, -1)[codes]  # code -1 (NaN) stays -1
    missing = codes < 0
    if missing.any():
        if MISSING_GROUP in groups:
            raise InputError(
                f"sensitive column {column!r} has NaN and also the value {MISSING_GROUP!r}, which would merge them; "
                "rename that value or fill the NaN"
            )
        groups.append(MISSING_GROUP)
        codes[missing] = len(groups) - 1
    return codes, groups


def _groupings(
    sensitive: pd.DataFrame, synthetic: pd.DataFrame | None, config: FairnessConfig
) -> tuple[list[_Grouping], list[str]]:
    n = len(sensitive)
    columns = []
    for column in sensitive.columns:
        values = sensitive[column]
        if synthetic is not None:
            values = pd.concat([values, synthetic[column]], ignore_index=True)
        codes, groups = _group_codes(values, str(column))
        if len(groups) > config.max_groups:
            raise InputError(
                TOO_MANY_GROUPS.format(column=column, groups=len(groups), max_groups=config.max_groups)
            )
        columns.append((str(column), codes, groups))
    skipped = []
    if config.intersections and len(columns) > 1:
        name, codes, groups = columns[0]
        for other_name, other_codes, other_groups in columns[1:]:
            k = len(other_groups)
            observed, codes = np.unique(codes * k + other_codes, return_inverse=True)
            groups = [f"{groups[v // k]}{_JOIN}{other_groups[v % k]}" for v in observed]
            name = f"{name}{_JOIN}{other_name}"
        if len(groups) > config.max_groups:
            skipped.append(
                f"intersection {name} not audited: {len(groups)} groups, more than max_groups={config.max_groups}"
            )
        else:
            columns.append((name, codes, groups))
    groupings = [
        _Grouping(name, groups, codes[:n], None if synthetic is None else codes[n:])
        for name, codes, groups in columns
    ]
    return groupings, skipped


def _missing_counts(
    sensitive: pd.DataFrame,
    count: np.ndarray,
    synthetic: pd.DataFrame | None,
    synthetic_count: np.ndarray | None,
) -> dict[str, dict[str, int]]:
    """Rows with a missing value, per sensitive column, in each set."""

    def missing(frame: pd.DataFrame, weight: np.ndarray) -> dict[str, int]:
        rows = {str(c): int(weight[frame[c].isna().to_numpy()].sum()) for c in frame.columns}
        return {c: n for c, n in rows.items() if n}

    counts = {"real": missing(sensitive, count)}
    if synthetic is not None and synthetic_count is not None:
        counts["synthetic"] = missing(synthetic, synthetic_count)
    return counts


@dataclass(frozen=True)
class _Audit:
    name: str
    status: Status
    reasons: list[str]
    metrics: dict[str, float]
    details: dict[str, Any]


def _one_vs_rest(metric: Any, positive: int) -> Any:
    """A fairlearn binary metric applied to label codes as "positive class or not"."""

    def binary(y_true: np.ndarray, y_pred: np.ndarray, sample_weight: np.ndarray) -> float:
        return metric(
            (np.asarray(y_true) == positive).astype(int),
            (np.asarray(y_pred) == positive).astype(int),
            sample_weight=sample_weight,
            pos_label=1,
        )

    return binary


@dataclass(frozen=True)
class _Cells:
    """The sufficient statistics of one grouping: rows per (group, true label, predicted label) cell."""

    group: np.ndarray  # per non-empty cell
    true: np.ndarray
    pred: np.ndarray
    weight: np.ndarray  # rows in the cell
    true_pos: np.ndarray  # the cell's true label is the positive class (0/1)
    pred_pos: np.ndarray
    confusion: np.ndarray  # [group, true is positive, predicted positive] row counts
    size: np.ndarray  # rows per group
    positives: np.ndarray  # rows per group whose true label is positive

    @classmethod
    def of(cls, grouping: _Grouping, labels: _Labels, count: np.ndarray) -> _Cells:
        n_groups, k, positive = len(grouping.groups), len(labels.classes), labels.positive_code
        cell, inverse = np.unique((grouping.codes * k + labels.true) * k + labels.pred, return_inverse=True)
        weight = np.bincount(inverse.ravel(), weights=count, minlength=len(cell)).astype(np.int64)
        group, true, pred = cell // (k * k), cell // k % k, cell % k
        true_pos, pred_pos = (true == positive).astype(int), (pred == positive).astype(int)
        confusion = np.bincount(
            group * 4 + true_pos * 2 + pred_pos, weights=weight, minlength=n_groups * 4
        ).reshape(n_groups, 2, 2)
        size = confusion.sum(axis=(1, 2)).astype(int)
        positives = confusion[:, 1, :].sum(axis=1).astype(int)
        return cls(group, true, pred, weight, true_pos, pred_pos, confusion, size, positives)


def _by_group(cells: _Cells, labels: _Labels, name: str) -> pd.DataFrame:
    """fairlearn's per-group selection rate, TPR, FPR and accuracy, from the weighted cells."""
    from fairlearn.metrics import MetricFrame, false_positive_rate, selection_rate, true_positive_rate
    from sklearn.metrics import accuracy_score

    positive = labels.positive_code
    metric_fns = {
        "selection_rate": partial(selection_rate, pos_label=positive),
        "true_positive_rate": _one_vs_rest(true_positive_rate, positive),
        "false_positive_rate": _one_vs_rest(false_positive_rate, positive),
        "accuracy": accuracy_score,
    }
    with warnings.catch_warnings():  # TPR/FPR of a one-class group: reported as undefined by the caller
        warnings.simplefilter("ignore")
        return MetricFrame(
            metrics=metric_fns,
            y_true=cells.true,
            y_pred=cells.pred,
            sensitive_features=pd.Series(cells.group, name=name),
            sample_params={metric: {"sample_weight": cells.weight} for metric in metric_fns},
        ).by_group


def _exclusion_reasons(cells: _Cells, config: FairnessConfig) -> np.ndarray:
    """Why each group is left out of the disparities (``None``: it is compared)."""
    reasons = np.full(len(cells.size), None, dtype=object)
    for g, (size, positives) in enumerate(zip(cells.size, cells.positives, strict=True)):
        if size == 0:
            reasons[g] = "no real rows"
        elif size < config.min_group_size:
            reasons[g] = f"{size} rows < min_group_size {config.min_group_size}"
        elif positives == 0 or positives == size:
            reasons[g] = (
                f"{size} rows, no {'positive' if positives == 0 else 'negative'} rows (TPR/FPR undefined)"
            )
    return reasons


def _group_rows(
    grouping: _Grouping, group_keys: list[str], cells: _Cells, by_group: pd.DataFrame, reasons: np.ndarray
) -> list[dict[str, Any]]:
    """One row per group with real rows: its size, rates, accuracy, and whether it is compared."""
    rows = []
    for g in np.flatnonzero(cells.size):
        values, positives = by_group.loc[g], int(cells.positives[g])
        negatives = int(cells.size[g]) - positives
        rows.append(
            {
                "group": grouping.groups[g],
                "key": group_keys[g],
                "count": int(cells.size[g]),
                "positives": positives,
                "negatives": negatives,
                "selection_rate": float(values["selection_rate"]),
                "true_positive_rate": float(values["true_positive_rate"]) if positives else None,
                "false_positive_rate": float(values["false_positive_rate"]) if negatives else None,
                "accuracy": float(values["accuracy"]),
                "included": reasons[g] is None,
                "reason": reasons[g],
            }
        )
    return rows


def _with_representation(
    rows: list[dict[str, Any]],
    representation: dict[str, dict[str, Any]],
    grouping: _Grouping,
    group_keys: list[str],
) -> list[dict[str, Any]]:
    """The rows with each group's share of the real and synthetic sets, plus groups only the generator produced."""
    for row in rows:
        row.update(representation.pop(row["group"]))
    return rows + [
        {
            "group": group_name,
            "key": group_keys[grouping.groups.index(group_name)],
            "count": 0,
            "included": False,
            "reason": "no real rows",
            **extra,
        }
        for group_name, extra in representation.items()
    ]


def _audit_metrics(
    key: str, rows: list[dict[str, Any]], numbers: dict[str, Any], shares: bool
) -> dict[str, float]:
    """``<feature>.<group>.<rate|accuracy|count>``, with synthetic data ``<feature>.<group>.real_share`` and
    ``.synthetic_share``, and the grouping's own numbers ``<feature>.<_GROUPING_METRICS>``."""
    metrics: dict[str, float] = {}
    for row in rows:
        if row["count"]:  # a group with real rows
            for name in (*_RATES, "accuracy", "count"):
                if row[name] is not None:
                    metrics[f"{key}.{row['key']}.{name}"] = float(row[name])
    if shares:
        for row in rows:
            metrics[f"{key}.{row['key']}.real_share"] = row["real_share"]
            metrics[f"{key}.{row['key']}.synthetic_share"] = row["synthetic_share"]
    metrics.update({f"{key}.{name}": float(numbers[name]) for name in _GROUPING_METRICS if name in numbers})
    return metrics


def _audit(
    grouping: _Grouping,
    key: str,
    labels: _Labels,
    count: np.ndarray,
    synthetic_positive: np.ndarray | None,
    synthetic_count: np.ndarray | None,
    config: FairnessConfig,
) -> _Audit:
    cells = _Cells.of(grouping, labels, count)
    reasons = _exclusion_reasons(cells, config)
    eligible = np.array([r is None for r in reasons])
    group_keys = unique_key_parts(grouping.groups)
    rows = _group_rows(grouping, group_keys, cells, _by_group(cells, labels, grouping.name), reasons)

    findings: list[tuple[Status, str]] = []
    excluded = [
        {"group": grouping.groups[g], "count": int(cells.size[g]), "reason": reasons[g]}
        for g in range(len(grouping.groups))
        if cells.size[g] and not eligible[g]
    ]
    if excluded:
        listed = ", ".join(f"{e['group']} ({e['reason']})" for e in excluded)
        findings.append((Status.INSUFFICIENT_EVIDENCE, f"groups excluded from the disparities: {listed}"))
    numbers: dict[str, Any] = {}
    if eligible.sum() < 2:
        findings.append(
            (
                Status.INSUFFICIENT_EVIDENCE,
                f"fewer than two groups can be compared ({int(eligible.sum())} of {int((cells.size > 0).sum())} "
                f"have at least {config.min_group_size} rows with both classes)",
            )
        )
    else:
        numbers, disparity_findings = _disparities(
            cells.true_pos,
            cells.pred_pos,
            cells.group,
            cells.weight,
            eligible,
            cells.confusion,
            config,
            grouping.name,
        )
        findings += disparity_findings
    if synthetic_positive is not None and synthetic_count is not None:
        amplification, amplification_findings, representation = _amplification(
            grouping, cells.confusion, eligible, synthetic_positive, synthetic_count, config
        )
        numbers.update(amplification)
        findings += amplification_findings
        rows = _with_representation(rows, representation, grouping, group_keys)
    if "demographic_parity_difference" in numbers:
        numbers["model_amplification"] = (
            numbers["demographic_parity_difference"] - numbers["label_parity_difference"]
        )

    status = worst_status(s for s, _ in findings)
    details = {
        "key": key,
        "verdict": status.value,
        "reasons": [reason for _, reason in findings] or ["every disparity is within its maximum"],
        **numbers,
        "by_group": rows,
        "excluded_groups": excluded,
    }
    metrics = _audit_metrics(key, rows, numbers, shares=synthetic_positive is not None)
    return _Audit(grouping.name, status, [r for s, r in findings if s is status], metrics, details)


def _label_parity_difference(label_counts: np.ndarray, groups: np.ndarray) -> float:
    """fairlearn's demographic parity difference of the labels themselves (their base rates).

    ``label_counts[g]`` holds group g's rows with label 0 and with label 1; only ``groups`` count.
    """
    from fairlearn.metrics import demographic_parity_difference

    counts = label_counts[groups]
    g, label = np.nonzero(counts)
    return float(
        demographic_parity_difference(
            label, label, sensitive_features=groups[g], sample_weight=counts[g, label].astype(float)
        )
    )


def _disparities(
    true_pos: np.ndarray,
    pred_pos: np.ndarray,
    group: np.ndarray,
    weight: np.ndarray,
    eligible: np.ndarray,
    confusion: np.ndarray,
    config: FairnessConfig,
    name: str,
) -> tuple[dict[str, float], list[tuple[Status, str]]]:
    """fairlearn's disparities over the eligible groups, their bootstrap intervals and the findings.

    One ``MetricFrame`` serves all four numbers, read the way fairlearn's own
    ``demographic_parity_*`` and ``equalized_odds_*`` functions (worst case) read theirs; building
    one frame per function would cost four times as much for the same values.
    """
    from fairlearn.metrics import MetricFrame, false_positive_rate, selection_rate, true_positive_rate

    keep = eligible[group]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = MetricFrame(
            metrics=dict(zip(_RATES, (selection_rate, true_positive_rate, false_positive_rate), strict=True)),
            y_true=true_pos[keep],
            y_pred=pred_pos[keep],
            sensitive_features=group[keep],
            sample_params={name: {"sample_weight": weight[keep]} for name in _RATES},
        )
    difference, ratio = frame.difference(), frame.ratio()
    odds = ["true_positive_rate", "false_positive_rate"]
    values = {
        "demographic_parity_difference": float(difference["selection_rate"]),
        "demographic_parity_ratio": float(ratio["selection_rate"]),
        "equalized_odds_difference": float(difference[odds].max()),
        "equalized_odds_ratio": float(ratio[odds].min()),
        "label_parity_difference": _label_parity_difference(confusion.sum(axis=2), np.flatnonzero(eligible)),
    }
    # Seeded per grouping, so a feature's interval does not change when other features are added.
    rng = named_rng(config.seed, name)
    intervals = _bootstrap(confusion, eligible, config, rng)
    level = f"{config.confidence_level:.0%}"
    findings: list[tuple[Status, str]] = []
    for metric, maximum in (
        ("demographic_parity_difference", config.max_demographic_parity_difference),
        ("equalized_odds_difference", config.max_equalized_odds_difference),
    ):
        low, high = intervals[metric]
        values[f"{metric}_ci_low"], values[f"{metric}_ci_high"] = low, high
        point, label = values[metric], metric.replace("_", " ")
        if low > maximum:
            findings.append(
                (
                    Status.FAILED,
                    f"{label} {point:.3f} ({level} CI {low:.3f} to {high:.3f}) is above the maximum {maximum}",
                )
            )
        elif point > maximum:
            findings.append(
                (
                    Status.NEEDS_REVIEW,
                    f"{label} {point:.3f} is above the maximum {maximum} but its {level} CI "
                    f"({low:.3f} to {high:.3f}) reaches below it",
                )
            )
    return values, findings


def _group_rates(cells: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Selection rate, TPR and FPR per group from ``[..., group, true, predicted]`` counts (NaN if undefined)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        selection = cells[..., :, 1].sum(axis=-1) / cells.sum(axis=(-2, -1))
        tpr = cells[..., 1, 1] / cells[..., 1, :].sum(axis=-1)
        fpr = cells[..., 0, 1] / cells[..., 0, :].sum(axis=-1)
    return selection, tpr, fpr


def _gap_interval(
    points: list[np.ndarray], replicates: list[np.ndarray], level: float
) -> tuple[float, float]:
    """Simultaneous interval for the largest gap between groups over one or more rates.

    ``points[m]`` holds rate m per group, ``replicates[m]`` the same per bootstrap replicate.
    The pairwise gaps d_q get bootstrap standard errors se_q and c, the ``level`` quantile of
    max_q |d*_q - d_q| / se_q; then, at that level, every true gap lies in d_q ± c·se_q at once,
    so the true largest gap lies in [max_q (|d_q| - c·se_q), max_q (|d_q| + c·se_q)].
    """
    i, j = np.triu_indices(points[0].shape[-1], k=1)
    gaps = np.concatenate([p[i] - p[j] for p in points])
    draws = np.concatenate([r[:, i] - r[:, j] for r in replicates], axis=1)
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # a gap undefined in every replicate
        se = np.nan_to_num(np.nanstd(draws, axis=0))
        deviation = np.where(se > 0, np.abs(draws - gaps) / se, 0.0)
    # A replicate where a group lost its positives or negatives has no gap for that group's pairs.
    largest = np.where(np.isnan(draws), -np.inf, deviation).max(axis=1)
    largest = largest[np.isfinite(largest)]
    if not largest.size:
        return np.nan, np.nan
    c = np.quantile(largest, level)
    return max(0.0, float(np.max(np.abs(gaps) - c * se))), float(np.max(np.abs(gaps) + c * se))


def _bootstrap(
    confusion: np.ndarray, eligible: np.ndarray, config: FairnessConfig, rng: np.random.Generator
) -> dict[str, tuple[float, float]]:
    """Bootstrap intervals of the demographic parity and equalized odds differences.

    Resampling n rows with replacement puts Multinomial(n, cell count / n) rows into the
    (group, true, predicted) cells, so drawing those counts directly is the ordinary row bootstrap,
    exactly, at a cost that does not grow with n.

    Why not the percentile interval of the replicated max − min: the largest gap between noisy
    groups is biased upward and the bootstrap adds that bias a second time, so the interval sits
    above the truth. In simulation, a fair model audited over eight groups of 60 rows had its whole
    percentile interval above 0.1 in 98 % (DPD) and 100 % (EOD) of audits. :func:`_gap_interval`
    bounds every pairwise gap at once instead: with two groups it is the usual interval for their
    difference, it always contains the point estimate, and the same fair model's lower bound was
    above 0.1 in under 2 % of audits.
    """
    n = confusion.sum()
    draws = rng.multinomial(int(n), (confusion / n).ravel(), size=config.n_bootstrap)
    cells = draws.reshape(config.n_bootstrap, *confusion.shape)[:, eligible].astype(float)
    selection, tpr, fpr = _group_rates(confusion[eligible].astype(float))
    selection_draws, tpr_draws, fpr_draws = _group_rates(cells)
    level = config.confidence_level
    return {
        "demographic_parity_difference": _gap_interval([selection], [selection_draws], level),
        # fairlearn's worst case over TPR and FPR: one interval over the gaps of both
        "equalized_odds_difference": _gap_interval([tpr, fpr], [tpr_draws, fpr_draws], level),
    }


def _amplification(
    grouping: _Grouping,
    confusion: np.ndarray,
    eligible: np.ndarray,
    synthetic_positive: np.ndarray,
    synthetic_count: np.ndarray,
    config: FairnessConfig,
) -> tuple[dict[str, float], list[tuple[Status, str]], dict[str, dict[str, Any]]]:
    """Representation of each group in both sets and the bias amplification of the synthetic labels."""
    n_groups = len(grouping.groups)
    real_counts = confusion.sum(axis=2)  # [group, label is positive]
    synthetic_counts = (
        np.bincount(
            grouping.synthetic_codes * 2 + synthetic_positive.astype(int),
            weights=synthetic_count,
            minlength=n_groups * 2,
        )
        .astype(np.int64)
        .reshape(n_groups, 2)
    )
    real_size, synthetic_size = real_counts.sum(axis=1), synthetic_counts.sum(axis=1)
    representation = {}
    for g in np.flatnonzero(real_size + synthetic_size):
        representation[grouping.groups[g]] = {
            "real_share": float(real_size[g] / real_size.sum()),
            "synthetic_share": float(synthetic_size[g] / synthetic_size.sum()),
            "synthetic_count": int(synthetic_size[g]),
            "real_base_rate": float(real_counts[g, 1] / real_size[g]) if real_size[g] else None,
            "synthetic_base_rate": float(synthetic_counts[g, 1] / synthetic_size[g])
            if synthetic_size[g]
            else None,
        }
    comparable = np.flatnonzero(eligible & (synthetic_size >= config.min_group_size))
    if comparable.size < 2:
        return (
            {},
            [
                (
                    Status.INSUFFICIENT_EVIDENCE,
                    f"bias amplification needs two groups with at least {config.min_group_size} rows in both the "
                    f"real and the synthetic set; found {comparable.size}",
                )
            ],
            representation,
        )
    real = _label_parity_difference(real_counts, comparable)
    synthetic = _label_parity_difference(synthetic_counts, comparable)
    amplification = synthetic - real
    findings = []
    if amplification > config.max_bias_amplification:
        findings.append(
            (
                Status.FAILED,
                f"bias amplification {amplification:.3f} is above the maximum {config.max_bias_amplification} "
                f"(base-rate difference {synthetic:.3f} in the synthetic labels vs {real:.3f} in the real ones)",
            )
        )
    values = {
        "bias_amplification": amplification,
        "synthetic_label_parity_difference": synthetic,
        "real_label_parity_difference": real,
    }
    return values, findings, representation


def _summary(status: Status, audits: list[_Audit]) -> str:
    if status is Status.PASSED:
        names = ", ".join(a.name for a in audits)
        return f"Fairness passed: every disparity is within its maximum for {names}."
    # Every reason, not the first and a count: the summary is what the report, the CLI and the run's
    # description show, and a reviewer should not have to dig the rest out of result.json.
    issues = [f"{a.name}: {reason}" for a in audits if a.status is status for reason in a.reasons]
    verdict = {
        Status.FAILED: "failed",
        Status.NEEDS_REVIEW: "needs review",
        Status.INSUFFICIENT_EVIDENCE: "has insufficient evidence",
    }[status]
    return f"Fairness {verdict}: {'; '.join(issues)}."


def _plot(audits: list[_Audit]) -> bytes:
    """Per grouping, horizontal bars of selection rate, TPR and FPR by group; excluded groups in grey."""
    from matplotlib.patches import Patch

    series = (
        ("selection_rate", "selection rate", "tab:blue", "#bdbdbd"),
        ("true_positive_rate", "TPR", "tab:orange", "#9e9e9e"),
        ("false_positive_rate", "FPR", "tab:green", "#d9d9d9"),
    )
    tables = [[r for r in a.details["by_group"] if r["count"]] for a in audits]
    heights = [max(len(t), 1) + 1.5 for t in tables]
    fig = new_figure(8.0, 0.3 * sum(heights) + 0.6)
    axes = fig.subplots(len(audits), 1, squeeze=False, gridspec_kw={"height_ratios": heights})[:, 0]
    bar = 0.27
    for ax, audit, rows in zip(axes, audits, tables, strict=True):
        y = np.arange(len(rows))
        for i, (field, label, colour, grey) in enumerate(series):
            values = [np.nan if r[field] is None else r[field] for r in rows]
            colours = [colour if r["included"] else grey for r in rows]
            ax.barh(y + (i - 1) * bar, values, height=bar, color=colours, label=label)
        ax.set_yticks(y, [f"{r['group']} (n={r['count']:,})" for r in rows], fontsize=7)
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        details = audit.details
        title = f"{audit.name}: {details['verdict']}"
        if "demographic_parity_difference" in details:
            title += (
                f" (DPD {details['demographic_parity_difference']:.3f}, "
                f"EOD {details['equalized_odds_difference']:.3f})"
            )
        ax.set_title(title, fontsize=9, loc="left")
        ax.tick_params(axis="x", labelsize=7)
    fig.legend(
        handles=[Patch(color=colour, label=label) for _, label, colour, _ in series],
        loc="outside upper center",
        ncols=3,
        fontsize=7,
        title="grey bars: group excluded from the disparities",
        title_fontsize=7,
    )
    axes[-1].set_xlabel("rate", fontsize=8)
    return to_png(fig)


# --------------------------------------------------------------------------- in validate


def _missing(inputs: ValidationInputs) -> str | None:
    return None if inputs.sensitive else "needs sensitive_features"


def _run(inputs: ValidationInputs, cfg: FairnessConfig) -> CheckResult:
    synthetic = inputs.synthetic
    return fairness_check(
        inputs.y_true,
        inputs.y_pred,
        sensitive_features=inputs.real[inputs.sensitive],
        synthetic_y=None if synthetic is None else synthetic[inputs.target].to_numpy(),
        synthetic_sensitive=None if synthetic is None else synthetic[inputs.sensitive],
        config=cfg,
    )


SPEC = CheckSpec(
    name="fairness",
    settings=FairnessConfig,
    missing=_missing,
    run=_run,
    key_metrics=("*.demographic_parity_difference", "*.equalized_odds_difference", "*.bias_amplification"),
    counts=("*.count",),
    gate_max={
        "*.demographic_parity_difference_ci_low": "max_demographic_parity_difference",
        "*.equalized_odds_difference_ci_low": "max_equalized_odds_difference",
        "*.bias_amplification": "max_bias_amplification",
    },
    # needs_review is what the required fairness sign-off of the default policy reviews
    gate_allow_status=("passed", "needs_review"),
)
