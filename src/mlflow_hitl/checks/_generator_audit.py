"""How well people tell the generator's rows from real ones: the ``generator_audit`` check.

The answers come from a blind generator-audit queue (:func:`mlflow_hitl.review.queue_generator_audit`):
each reviewer called each row ``realistic`` or ``not realistic``. An item's *human score* is the share
of its reviewers who said ``not realistic``; the **human AUC** is the ROC AUC of that score against the
truth (synthetic = positive): 0.5 when people cannot tell, 1 when they always can. **Human accuracy**
is the share of single answers that were right (``not realistic`` for a synthetic row, ``realistic``
for a real one). Both come overall and per group (each value of each sensitive column, and each
intersection with enough rows), with bootstrap intervals; a group with too few labelled rows of either
kind is ``insufficient_evidence``, named with its sizes.

Verdict, as in the fairness check: an AUC whose whole interval lies above ``max_human_auc`` fails; a
point estimate above it whose interval reaches below needs review.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from .._result import CheckResult, Status, worst_status
from .._settings import Settings, resolve_section, thresholds_of
from ..errors import ConfigError, InputError
from ._keys import unique_key_parts
from ._seeding import named_rng
from ._spec import ReviewCheckSpec

__all__ = ["SPEC", "GeneratorAuditConfig", "generator_audit_check"]

_NAME = "generator_audit"
_NOT_REALISTIC = "not realistic"  # the answer that calls a row synthetic (review.NOT_REALISTIC)
_ITEM_COLUMNS = ("item", "synthetic", "row")
_JUDGEMENT_COLUMNS = ("item", "rater", "label", "tags", "note")
_JOIN = "&"


@dataclass(frozen=True, repr=False)
class GeneratorAuditConfig(Settings):
    """How well people may tell synthetic from real rows before the generator fails its audit.

    - ``max_human_auc`` (0.7): a human AUC (overall, or of any group) whose whole interval lies above
      this fails; a point estimate above it needs review. 0.5 means people cannot tell at all.
    - ``min_group_items`` (10): labelled synthetic and labelled real rows a group (or the whole queue)
      needs of each kind; fewer is ``insufficient_evidence``, and an intersection with fewer is not reported.
    - ``n_bootstrap`` (1000), ``confidence_level`` (0.95), ``seed`` (0): the seeded bootstrap over items
      behind every interval.
    - ``top_flagged`` (20): how many of the rows flagged most often the result lists, with their reasons.
    """

    RANGES: ClassVar[Mapping[str, tuple[float, float]]] = {"max_human_auc": (0.0, 1.0)}

    max_human_auc: float = 0.7
    min_group_items: int = 10
    n_bootstrap: int = 1000
    confidence_level: float = 0.95
    top_flagged: int = 20
    seed: int = 0

    def check_ranges(self) -> None:
        if not 0 < self.confidence_level < 1:
            raise ConfigError(
                f"config['{_NAME}']['confidence_level'] must lie in (0, 1), got {self.confidence_level}"
            )
        for name in ("n_bootstrap", "min_group_items"):
            if getattr(self, name) < 1:
                raise ConfigError(
                    f"config['{_NAME}']['{name}'] must be at least 1, got {getattr(self, name)}"
                )


def _check_inputs(items: Any, judgements: Any) -> list[str]:
    """The sensitive columns of ``items``, after refusing frames that are not what the queue gives."""
    for name, frame, columns in (
        ("items", items, _ITEM_COLUMNS),
        ("judgements", judgements, _JUDGEMENT_COLUMNS),
    ):
        if not isinstance(frame, pd.DataFrame):
            raise InputError(f"{name} must be a pandas DataFrame, got {type(frame).__name__}")
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise InputError(
                f"{name} is missing column(s) {', '.join(missing)}: pass generator_audit_inputs' frames"
            )
    if items.empty:
        raise InputError("items has no rows: the queue holds nothing to judge")
    unknown = sorted(set(judgements["item"]) - set(items["item"]))
    if unknown:
        raise InputError(f"judgements name item(s) {unknown[:5]} that items does not hold")
    return [c for c in items.columns if c not in _ITEM_COLUMNS]


def _mann_whitney_auc(scores: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """ROC AUC of each row of ``scores`` (replicates × items), ties counted half: the rank-sum form.

    Equal to scikit-learn's ``roc_auc_score`` (the tests check it), computed for every bootstrap
    replicate at once: a thousand calls of ``roc_auc_score`` cost a second per group.
    """
    from scipy.stats import rankdata

    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    ranks = rankdata(scores, axis=1)
    return (ranks[:, positive].sum(axis=1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


@dataclass(frozen=True)
class _Items:
    """Per labelled item: the truth, its human score, and its right and total answers."""

    synthetic: np.ndarray
    flags: np.ndarray  # "not realistic" answers
    answers: np.ndarray
    right: np.ndarray

    @property
    def score(self) -> np.ndarray:
        return self.flags / self.answers


def _evaluate(unit: _Items, config: GeneratorAuditConfig, name: str) -> dict[str, float]:
    """Human AUC and accuracy of one set of items with percentile intervals from a seeded bootstrap.

    The bootstrap resamples items (an item's answers stay together, since raters judge the same row
    alike) within each truth class, so every replicate has the queue's mix of synthetic and real rows.
    DeLong's interval would be exact for the AUC alone; the bootstrap gives the accuracy's interval
    from the same replicates and needs no library beyond numpy and scipy.
    """
    from sklearn.metrics import roc_auc_score

    positive = unit.synthetic
    rng = named_rng(config.seed, name)
    picks = np.concatenate(
        [
            rng.choice(np.flatnonzero(side), size=(config.n_bootstrap, int(side.sum())))
            for side in (positive, ~positive)
        ],
        axis=1,
    )
    ordered = np.concatenate([np.ones(int(positive.sum()), bool), np.zeros(int((~positive).sum()), bool)])
    aucs = _mann_whitney_auc(unit.score[picks], ordered)
    accuracies = unit.right[picks].sum(axis=1) / unit.answers[picks].sum(axis=1)
    tail = (1 - config.confidence_level) / 2
    auc_low, auc_high = np.quantile(aucs, [tail, 1 - tail])
    acc_low, acc_high = np.quantile(accuracies, [tail, 1 - tail])
    return {
        "human_auc": float(roc_auc_score(positive, unit.score)),
        "human_auc_ci_low": float(auc_low),
        "human_auc_ci_high": float(auc_high),
        "human_accuracy": float(unit.right.sum() / unit.answers.sum()),
        "human_accuracy_ci_low": float(acc_low),
        "human_accuracy_ci_high": float(acc_high),
        "n_items": float(len(positive)),
    }


def _verdict(figures: Mapping[str, float], config: GeneratorAuditConfig) -> Status:
    if figures["human_auc_ci_low"] > config.max_human_auc:
        return Status.FAILED
    if figures["human_auc"] > config.max_human_auc:
        return Status.NEEDS_REVIEW
    return Status.PASSED


def _groupings(sensitive: list[str]) -> list[tuple[str, list[str]]]:
    """``(metric key part, columns)`` of each sensitive column, then each intersection of two or more."""
    combos = [
        list(c) for size in range(1, len(sensitive) + 1) for c in itertools.combinations(sensitive, size)
    ]
    names = unique_key_parts(_JOIN.join(c) for c in combos)
    return list(zip(names, combos, strict=True))


def _per_item(items: pd.DataFrame, judgements: pd.DataFrame) -> pd.DataFrame:
    said_synthetic = judgements["label"] == _NOT_REALISTIC
    truth = judgements["item"].map(items.set_index("item")["synthetic"])
    per = (
        pd.DataFrame(
            {
                "item": judgements["item"],
                "flags": said_synthetic,
                "right": said_synthetic == truth,
                "answers": 1,
            }
        )
        .groupby("item")
        .sum()
    )
    return items.set_index("item").join(per, how="inner")


def _unit(frame: pd.DataFrame) -> _Items:
    return _Items(
        synthetic=frame["synthetic"].to_numpy(bool),
        flags=frame["flags"].to_numpy(float),
        answers=frame["answers"].to_numpy(float),
        right=frame["right"].to_numpy(float),
    )


def _sizes(frame: pd.DataFrame) -> tuple[int, int]:
    n_syn = int(frame["synthetic"].sum())
    return n_syn, len(frame) - n_syn


def _groups(
    labelled: pd.DataFrame, sensitive: list[str], config: GeneratorAuditConfig
) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """One row per reported group (figures, status or why not judged), and their metrics."""
    rows: list[dict[str, Any]] = []
    metrics: dict[str, float] = {}
    for feature_key, columns in _groupings(sensitive):
        cells = labelled[columns].astype(str).agg(_JOIN.join, axis=1)
        values = sorted(set(cells))
        for value, value_key in zip(values, unique_key_parts(values), strict=True):
            frame = labelled[(cells == value).to_numpy()]
            n_syn, n_real = _sizes(frame)
            enough = min(n_syn, n_real) >= config.min_group_items
            if len(columns) > 1 and not enough:
                continue  # an intersection too small to say anything is not a group the audit reports
            row: dict[str, Any] = {
                "feature": _JOIN.join(columns),
                "group": value,
                "key": f"{feature_key}.{value_key}",
                "synthetic_items": n_syn,
                "real_items": n_real,
            }
            if not enough:
                row["status"] = Status.INSUFFICIENT_EVIDENCE.value
                row["reason"] = (
                    f"{n_syn} synthetic and {n_real} real labelled rows; each needs min_group_items "
                    f"{config.min_group_items}"
                )
            else:
                figures = _evaluate(_unit(frame), config, f"{feature_key}={value}")
                row.update(figures, status=_verdict(figures, config).value)
                metrics.update({f"{row['key']}.{k}": v for k, v in figures.items()})
            rows.append(row)
    return rows, metrics


def _flagged(
    labelled: pd.DataFrame, judgements: pd.DataFrame, sensitive: list[str], top: int
) -> list[dict[str, Any]]:
    """The rows most often called not realistic, most flags first, with the reasons people gave."""
    flagged = labelled[labelled["flags"] > 0].copy()
    flagged["share"] = flagged["flags"] / flagged["answers"]
    flagged = flagged.sort_values(["flags", "share"], ascending=False, kind="stable").head(top)
    answers = judgements[judgements["label"] == _NOT_REALISTIC].groupby("item")
    out = []
    for item, entry in flagged.iterrows():
        said = answers.get_group(item)
        tags = Counter(tag for tagged in said["tags"] for tag in tagged)
        out.append(
            {
                "item": int(item),
                "truth": "synthetic" if entry["synthetic"] else "real",
                "group": {c: entry[c] for c in sensitive},
                "not_realistic": int(entry["flags"]),
                "answers": int(entry["answers"]),
                "tags": dict(sorted(tags.items())),
                "notes": [n for n in said["note"] if n],
                "row": entry["row"],
            }
        )
    return out


def _tag_counts(judgements: pd.DataFrame, items: pd.DataFrame) -> dict[str, dict[str, int]]:
    """How often each reason tag was given, on synthetic and on real rows."""
    truth = judgements["item"].map(items.set_index("item")["synthetic"])
    counts: dict[str, dict[str, int]] = {}
    for tags, synthetic in zip(judgements["tags"], truth, strict=True):
        for tag in tags:
            side = counts.setdefault(tag, {"synthetic": 0, "real": 0})
            side["synthetic" if synthetic else "real"] += 1
    return dict(sorted(counts.items()))


def _agreement(judgements: pd.DataFrame, classes: tuple[str, ...]) -> tuple[dict[str, float], dict[str, Any]]:
    """Rater agreement, by the review loop's own statistics (one implementation of kappa and alpha)."""
    from ..review import agreement

    if judgements.empty:
        return {}, {"notes": ["no answers yet"]}
    stats = agreement(judgements[["item", "rater", "label"]], classes=classes)
    names = ("cohen_kappa", "fleiss_kappa", "krippendorff_alpha", "percent_agreement")
    metrics = {n: float(getattr(stats, n)) for n in names if getattr(stats, n) is not None}
    return metrics, {**metrics, "n_raters": stats.n_raters, "notes": list(stats.notes)}


def _summary(
    status: Status, overall: Mapping[str, float] | None, groups: list[dict[str, Any]], n: int
) -> str:
    if overall is None:
        return f"too few labelled rows to say whether people can tell synthetic from real ({n} labelled)"
    text = (
        f"people told synthetic from real rows with AUC {overall['human_auc']:.2f} "
        f"[{overall['human_auc_ci_low']:.2f}, {overall['human_auc_ci_high']:.2f}] over {n} labelled rows"
    )
    judged = [g for g in groups if "human_auc" in g]
    if judged:
        worst = max(judged, key=lambda g: g["human_auc"])
        text += f"; easiest to tell: {worst['feature']}={worst['group']} (AUC {worst['human_auc']:.2f})"
    short = [g for g in groups if g["status"] == Status.INSUFFICIENT_EVIDENCE.value]
    if short:
        text += f"; {len(short)} group(s) too small to judge"
    return f"{text} ({status.value})"


def _csv(rows: list[dict[str, Any]]) -> bytes:
    return pd.DataFrame(rows).to_csv(index=False).encode()


def _flagged_sheet(flagged: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The flagged rows flat, for a spreadsheet: group and row values as columns, reasons as text."""
    return [
        {
            "item": f["item"],
            "truth": f["truth"],
            **f["group"],
            "not_realistic": f["not_realistic"],
            "answers": f["answers"],
            "tags": "; ".join(f"{tag} ({n})" for tag, n in f["tags"].items()),
            "notes": " | ".join(f["notes"]),
            **{f"row.{c}": v for c, v in f["row"].items()},
        }
        for f in flagged
    ]


def generator_audit_check(
    items: pd.DataFrame,
    judgements: pd.DataFrame,
    *,
    config: GeneratorAuditConfig | Mapping[str, Any] | None = None,
) -> CheckResult:
    """Judge how well people told the generator's rows from real ones (see the module docstring).

    ``items`` and ``judgements`` are :func:`mlflow_hitl.review.generator_audit_inputs` of the audit
    queue. Items nobody labelled yet are left out (and counted). Metrics: ``human_auc``,
    ``human_accuracy`` and their ``_ci_low``/``_ci_high`` overall and as ``<feature>.<group>.<metric>``,
    ``worst_group_human_auc``, the flag rates on synthetic and on real rows, and rater agreement.
    Artifacts: ``groups.csv`` and ``flagged.csv``.
    """
    config = resolve_section(_NAME, GeneratorAuditConfig, config)
    sensitive = _check_inputs(items, judgements)
    labelled = _per_item(items, judgements)
    n_syn, n_real = _sizes(labelled)
    metrics: dict[str, float] = {
        "n_items": float(len(items)),
        "n_labelled_items": float(len(labelled)),
        "n_judgements": float(len(judgements)),
    }
    overall = None
    statuses = []
    if min(n_syn, n_real) >= config.min_group_items:
        overall = _evaluate(_unit(labelled), config, "overall")
        metrics.update({k: v for k, v in overall.items() if k != "n_items"})
        statuses.append(_verdict(overall, config))
        answers = labelled.groupby("synthetic")[["flags", "answers"]].sum()
        metrics["synthetic_flag_rate"] = float(answers.loc[True, "flags"] / answers.loc[True, "answers"])
        metrics["real_flag_rate"] = float(answers.loc[False, "flags"] / answers.loc[False, "answers"])
    else:
        statuses.append(Status.INSUFFICIENT_EVIDENCE)
    groups, group_metrics = _groups(labelled, sensitive, config) if overall is not None else ([], {})
    metrics.update(group_metrics)
    statuses += [Status(g["status"]) for g in groups]
    judged = [g["human_auc"] for g in groups if "human_auc" in g]
    if judged:
        metrics["worst_group_human_auc"] = max(judged)
    agreement_metrics, agreement_details = _agreement(judgements, ("realistic", _NOT_REALISTIC))
    metrics.update(agreement_metrics)
    status = worst_status(statuses)
    flagged = _flagged(labelled, judgements, sensitive, config.top_flagged)
    return CheckResult(
        name=_NAME,
        status=status,
        metrics=metrics,
        thresholds=thresholds_of(config),
        details={
            "sensitive": sensitive,
            "labelled": {"synthetic": n_syn, "real": n_real, "unlabelled": len(items) - len(labelled)},
            "groups": groups,
            "flagged": flagged,
            "tags": _tag_counts(judgements, items),
            "agreement": agreement_details,
        },
        artifacts={"groups.csv": _csv(groups), "flagged.csv": _csv(_flagged_sheet(flagged))},
        summary=_summary(status, overall, groups, len(labelled)),
    )


SPEC = ReviewCheckSpec(
    name=_NAME,
    settings=GeneratorAuditConfig,
    compute=generator_audit_check,
    key_metrics=(
        "human_auc",
        "worst_group_human_auc",
        "human_accuracy",
        "synthetic_flag_rate",
        "real_flag_rate",
        "krippendorff_alpha",
        "*.human_auc",
    ),
    counts=("n_items", "n_labelled_items", "n_judgements", "*.n_items"),
    gate_max={"human_auc": "max_human_auc", "*.human_auc": "max_human_auc"},
)
