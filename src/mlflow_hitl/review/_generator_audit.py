"""A blind audit of the synthetic-data generator by people: the queue, the answers, and what they found.

The classifier two-sample test (``generator`` check) says whether a *machine* can tell synthetic rows
from real ones; this asks people who know the domain, group by group. The queue mixes synthetic rows,
stratified by demographic group (and by intersections of groups large enough to say something), with
real rows as controls, in a seeded order; reviewers answer ``realistic`` or ``not realistic`` and may
tag why (:data:`AUDIT_TAGS`).

Nobody labelling sees which rows are synthetic. The truth of each item is stored as the item's gold
label (``not realistic`` for a synthetic row, ``realistic`` for a real one), which no item, export or
page carries and which the server refuses to reviewers of a blind queue; every item has the same
selection reason, no score, and a row key that is its position in the shuffled queue, so nothing
beside the row's own values tells the two apart. The queue's ``strategy`` is :data:`GENERATOR_AUDIT`:
that is how the terminal, the exports and the pages know to offer the reason tags.

Reason tags travel inside the annotation's comment (``[tags: stereotyped, other] free text``), so a
tagged answer passes through every existing surface, import and audit event unchanged.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .._hashing import canonical_json
from .._review_options import GENERATOR_AUDIT
from .._validation import differing_columns
from ..errors import InputError
from ._interface import QueueStore
from ._records import Queue, QueueLabels

__all__ = [
    "AUDIT_CLASSES",
    "AUDIT_TAGS",
    "GENERATOR_AUDIT",
    "NOT_REALISTIC",
    "REALISTIC",
    "AuditSample",
    "audit_comment",
    "generator_audit_inputs",
    "generator_audit_sample",
    "is_generator_audit",
    "queue_generator_audit",
    "read_audit_comment",
]

REALISTIC, NOT_REALISTIC = "realistic", "not realistic"
AUDIT_CLASSES: tuple[str, str] = (REALISTIC, NOT_REALISTIC)
# Why a row does not look real; "other" asks for a comment saying what.
AUDIT_TAGS: tuple[str, ...] = ("implausible-combination", "stereotyped", "looks-like-a-real-person", "other")
_REASON = "generator-audit"  # every item's selection reason: the same for synthetic and real rows
_MISSING = "<missing>"
_TAGGED = re.compile(r"\A\[tags:([^\]]*)\]\s*(.*)\Z", re.DOTALL)


def is_generator_audit(queue: Queue) -> bool:
    """Whether ``queue`` is a generator audit (its answers are realism judgements with reason tags)."""
    return queue.strategy == GENERATOR_AUDIT


# -- reason tags ------------------------------------------------------------------------------------


def _tag(text: str) -> str:
    """A tag as typed (``Looks like a real person``, ``stereotyped``) in its canonical spelling."""
    tag = re.sub(r"[\s_]+", "-", text.strip().lower())
    if tag not in AUDIT_TAGS:
        raise InputError(f"unknown reason tag {text.strip()!r}; choose from {', '.join(AUDIT_TAGS)}")
    return tag


def _tags(tags: Iterable[str] | str | None) -> tuple[str, ...]:
    """Canonical tags in :data:`AUDIT_TAGS` order; a string holds several, separated by ``,`` or ``;``."""
    if tags is None:
        return ()
    parts = re.split(r"[,;]", tags) if isinstance(tags, str) else list(tags)
    chosen = {_tag(p) for p in parts if isinstance(p, str) and p.strip()}
    return tuple(t for t in AUDIT_TAGS if t in chosen)


def audit_comment(tags: Iterable[str] | str | None, note: str | None) -> str | None:
    """The annotation comment that carries ``tags`` (canonical, ordered) and the free-text ``note``."""
    chosen = _tags(tags)
    note = (note or "").strip() or None
    if not chosen:
        return note
    head = f"[tags: {', '.join(chosen)}]"
    return f"{head} {note}" if note else head


def read_audit_comment(comment: str | None) -> tuple[tuple[str, ...], str | None]:
    """``(tags, note)`` of a comment written by :func:`audit_comment` (a plain comment: no tags)."""
    if not comment:
        return (), None
    found = _TAGGED.match(comment)
    if found is None:
        return (), comment.strip() or None
    return _tags(found.group(1)), found.group(2).strip() or None


# -- the sample ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditSample:
    """The rows of a generator audit, as :meth:`QueueStore.create_queue` takes them.

    ``rows``: the picked synthetic and real rows in their shuffled queue order, indexed by row key
    (the position as text); ``selection``: one entry per row (``row``, ``reason``, ``group``: the
    row's sensitive values as canonical JSON); ``truth``: row key -> gold label (``not realistic``
    for synthetic rows); ``strata``: each stratum sampled (``stratum``, ``synthetic``, ``real``: rows
    picked), marginal groups first; ``skipped``: intersections too small to sample, with their sizes.
    """

    rows: pd.DataFrame
    selection: pd.DataFrame
    truth: dict[str, str]
    strata: pd.DataFrame
    skipped: tuple[str, ...]


def _frame(value: Any, name: str) -> pd.DataFrame:
    if not isinstance(value, pd.DataFrame):
        raise InputError(f"{name} must be a pandas DataFrame, got {type(value).__name__}")
    if value.empty:
        raise InputError(f"{name} has no rows: a generator audit needs {name} rows to show reviewers")
    return value


def _sensitive(sensitive: Any, synthetic: pd.DataFrame, real: pd.DataFrame) -> list[str]:
    columns = [sensitive] if isinstance(sensitive, str) else list(sensitive or ())
    if not columns or not all(isinstance(c, str) and c for c in columns):
        raise InputError("sensitive must name one or more columns to stratify by (e.g. sex, race)")
    if len(set(columns)) != len(columns):
        raise InputError(f"sensitive lists a column twice: {columns}")
    for column in columns:
        if column not in synthetic.columns:
            known = ", ".join(map(str, synthetic.columns[:20]))
            raise InputError(f"sensitive column {column!r} is not a column of the data; it has: {known}")
    return columns


def _same_columns(synthetic: pd.DataFrame, real: pd.DataFrame) -> None:
    """Refuse sets with different columns: a reviewer would tell them apart by that alone."""
    only_synthetic, only_real = differing_columns(synthetic, real)
    if only_synthetic or only_real:
        raise InputError(
            "synthetic and real must have the same columns (reviewers would tell them apart by that alone); "
            f"only in synthetic: {', '.join(only_synthetic) or 'none'}; only in real: {', '.join(only_real) or 'none'}"
        )


def _whole(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InputError(f"{name} must be a whole number ≥ 1, got {value!r}")
    return int(value)


def _ratio(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 10:
        raise InputError(
            f"control_ratio (real rows per synthetic row) must be above 0 and at most 10, got {value!r}"
        )
    return float(value)


def _stratum_name(columns: Sequence[str], values: Sequence[str]) -> str:
    return "&".join(f"{c}={v}" for c, v in zip(columns, values, strict=True))


def _strata(
    keys: pd.DataFrame, is_synthetic: np.ndarray, columns: list[str], per_group: int, n_controls: int
) -> tuple[list[tuple[str, np.ndarray]], list[str]]:
    """The strata to fill, most constrained (largest intersections) first, and the intersections skipped.

    Every value of every sensitive column is a stratum (a group too small is refused by the caller);
    an intersection of two or more columns is one when both sets hold enough rows of it to fill it.
    """
    strata: list[tuple[str, np.ndarray]] = []
    skipped: list[str] = []
    for size in range(len(columns), 0, -1):
        for combo in itertools.combinations(columns, size):
            cells = keys[list(combo)].agg(tuple, axis=1) if size > 1 else keys[combo[0]].map(lambda v: (v,))
            for cell in sorted(set(cells[is_synthetic])):
                mask = (cells == cell).to_numpy()
                name = _stratum_name(combo, cell)
                n_syn, n_real = int((mask & is_synthetic).sum()), int((mask & ~is_synthetic).sum())
                if size > 1 and (n_syn < per_group or n_real < n_controls):
                    skipped.append(f"{name} ({n_syn} synthetic, {n_real} real rows)")
                    continue
                strata.append((name, mask))
    return strata, skipped


def _check_groups(
    strata: list[tuple[str, np.ndarray]], is_synthetic: np.ndarray, per_group: int, n_controls: int
) -> None:
    for name, mask in strata:
        if "&" in name:
            continue
        n_syn, n_real = int((mask & is_synthetic).sum()), int((mask & ~is_synthetic).sum())
        if n_syn < per_group:
            raise InputError(
                f"per_group {per_group} is larger than group {name}: the synthetic data has {n_syn} row(s) of it; "
                "lower per_group"
            )
        if n_real < n_controls:
            raise InputError(
                f"group {name} has {n_real} real row(s), fewer than the {n_controls} controls "
                "per_group × control_ratio asks for; lower per_group or control_ratio"
            )


def _fill(
    strata: list[tuple[str, np.ndarray]], pool: np.ndarray, target: int, rng: np.random.Generator
) -> np.ndarray:
    """Rows of ``pool`` picked so every stratum holds at least ``target`` of them (seeded, greedy).

    Strata overlap (a row is in its sex group, its race group and their intersection), so each stratum
    only tops up what the earlier ones already picked: the sample stays as small as the targets allow.
    """
    picked = np.zeros(len(pool), dtype=bool)
    for _, mask in strata:
        inside = mask & pool
        need = target - int((inside & picked).sum())
        if need > 0:
            candidates = np.flatnonzero(inside & ~picked)
            picked[rng.choice(candidates, size=min(need, len(candidates)), replace=False)] = True
    return picked


def generator_audit_sample(
    synthetic: pd.DataFrame,
    real: pd.DataFrame,
    *,
    sensitive: Sequence[str] | str,
    per_group: int,
    control_ratio: float = 1.0,
    seed: int = 0,
) -> AuditSample:
    """Pick the rows of a generator audit: ``per_group`` synthetic rows of every sensitive group.

    Every value of each ``sensitive`` column gets at least ``per_group`` synthetic rows and
    ``ceil(per_group × control_ratio)`` real ones (the controls), and so does every intersection of
    columns that both sets hold enough rows of. Rows are drawn at random (seeded) and shuffled together.
    """
    synthetic, real = _frame(synthetic, "synthetic"), _frame(real, "real")
    _same_columns(synthetic, real)
    columns = _sensitive(sensitive, synthetic, real)
    per_group = _whole(per_group, "per_group")
    n_controls = math.ceil(per_group * _ratio(control_ratio))
    # One frame, so a column's values are written alike whichever set a row comes from (an int column
    # next to a float one would otherwise show 3 against 3.0 and give the game away).
    combined = pd.concat([synthetic, real[list(synthetic.columns)]], ignore_index=True)
    is_synthetic = np.arange(len(combined)) < len(synthetic)
    keys = pd.DataFrame({c: combined[c].astype("string").fillna(_MISSING).astype(object) for c in columns})
    strata, skipped = _strata(keys, is_synthetic, columns, per_group, n_controls)
    _check_groups(strata, is_synthetic, per_group, n_controls)
    rng = np.random.default_rng(seed)
    picked = _fill(strata, is_synthetic, per_group, rng) | _fill(strata, ~is_synthetic, n_controls, rng)
    order = rng.permutation(np.flatnonzero(picked))
    row_keys = [str(i) for i in range(len(order))]
    rows = combined.iloc[order].set_axis(row_keys)
    groups = [
        canonical_json(dict(zip(columns, v, strict=True))) for v in keys.iloc[order].itertuples(index=False)
    ]
    selection = pd.DataFrame({"row": np.arange(len(order)), "reason": _REASON, "group": groups})
    truth = {k: NOT_REALISTIC if is_synthetic[i] else REALISTIC for k, i in zip(row_keys, order, strict=True)}
    counts = pd.DataFrame(
        [
            {
                "stratum": name,
                "synthetic": int((mask & picked & is_synthetic).sum()),
                "real": int((mask & picked & ~is_synthetic).sum()),
            }
            for name, mask in sorted(strata, key=lambda s: (s[0].count("&"), s[0]))
        ]
    )
    return AuditSample(rows=rows, selection=selection, truth=truth, strata=counts, skipped=tuple(skipped))


def queue_generator_audit(
    store: QueueStore,
    name: str,
    *,
    synthetic: pd.DataFrame,
    real: pd.DataFrame,
    sensitive: Sequence[str] | str,
    per_group: int,
    actor: str,
    raters_per_item: int = 2,
    control_ratio: float = 1.0,
    run_id: str | None = None,
    seed: int = 0,
) -> Queue:
    """Create queue ``name``: a blind generator audit of ``synthetic`` against ``real`` controls.

    See :func:`generator_audit_sample` for what is picked; ``run_id`` is the run the results belong
    to (the generator's, or the model's whose gate should hold them). The queue is always blind.
    """
    sample = generator_audit_sample(
        synthetic, real, sensitive=sensitive, per_group=per_group, control_ratio=control_ratio, seed=seed
    )
    return store.create_queue(
        name,
        rows=sample.rows,
        selection=sample.selection,
        classes=AUDIT_CLASSES,
        actor=actor,
        raters_per_item=raters_per_item,
        blind=True,
        strategy=GENERATOR_AUDIT,
        run_id=run_id,
        gold=sample.truth,
    )


# -- the answers ------------------------------------------------------------------------------------


def generator_audit_inputs(labels: QueueLabels) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(items, judgements)`` of a generator-audit queue, for :func:`mlflow_hitl.checks.generator_audit_check`.

    ``items``: one row per item: ``item`` (position), ``synthetic`` (the truth), one column per
    sensitive column (its value as text) and ``row`` (the values reviewers saw). ``judgements``: one
    row per answer: ``item``, ``rater``, ``label``, ``tags`` (a tuple), ``note``. An adjudication does
    not replace the raters' answers: each one is a person's judgement of realism.
    """
    queue = labels.queue
    if not is_generator_audit(queue):
        raise InputError(
            f"queue {queue.name!r} is not a generator audit (its strategy is {queue.strategy!r}); "
            "create one with queue_generator_audit or mlflow-hitl queue create --kind generator-audit"
        )
    records = []
    for item in labels.items:
        truth = labels.gold.get(item.position)
        if truth is None or item.group is None:
            raise InputError(f"item {item.position} of queue {queue.name!r} has no recorded truth or group")
        records.append(
            {
                "item": item.position,
                "synthetic": truth == NOT_REALISTIC,
                **json.loads(item.group),
                "row": dict(item.payload),
            }
        )
    items = pd.DataFrame(records)
    annotations = labels.annotations
    parsed = [read_audit_comment(c) for c in annotations["comment"]]
    judgements = pd.DataFrame(
        {
            "item": annotations["item"].to_numpy(),
            "rater": annotations["rater"].to_numpy(),
            "label": annotations["label"].to_numpy(),
            "tags": [p[0] for p in parsed],
            "note": [p[1] for p in parsed],
        }
    )
    return items, judgements
