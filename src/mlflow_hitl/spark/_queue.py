"""Review queues from a Spark DataFrame: rows ranked on the executors, only the chosen ones fetched.

The pandas path scores every row, draws the random-control rows by position and takes the most
uncertain of the rest (ties by position). Here the same happens where the rows live:

1. each row gets its position: its place in the frame as given, or in ``key`` order when a key
   column is named (partition counts, one small job, turn Spark's per-partition ids into positions);
2. the model (or a column of probabilities already there) and the uncertainty score run in pandas
   batches on the executors, with the review layer's own score formulas;
3. the control positions are drawn on the driver (:func:`mlflow_hitl.review.control_rows`, the
   pandas path's seeded draw) and one job fetches them with, per group, the best-scoring other rows
   (``orderBy(score).limit(k)``, or a rank within each group);
4. :func:`mlflow_hitl.review.select_among` picks from those few rows what
   :func:`mlflow_hitl.review.select_for_review` picks from all of them, and only they reach the store.

A frame's order is the order Spark reads it in (a table's files, ``createDataFrame``'s rows); a
shuffle (``repartition``) reorders it. Naming a ``key`` column (the table's id) makes the choice
independent of how the frame was partitioned, and stores each item under its id.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import Column, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from .._validation import check_probabilities, check_unique_columns
from ..errors import HitlError, InputError
from ..review import Queue, QueueStore, control_rows, queue_selection, select_among, uncertainty_scores
from ._inputs import column, in_pandas, on_executors
from ._scoring import PROBA, predictions, scored

__all__ = ["queue_for_review"]

POSITION = "_hitl_position"
SCORE = "_hitl_score"
_ID = "_hitl_id"
_CONTROL = "_hitl_control"
_RANK = "_hitl_rank"
# monotonically_increasing_id(): the partition index in the upper 31 bits, the row's index within
# its partition in the lower 33.
_PARTITION_BITS = 33


def queue_for_review(
    store: QueueStore,
    name: str,
    *,
    rows: Any,
    classes: Sequence[Any],
    size: int,
    actor: str,
    y_prob: str | None = None,
    predict_proba: Callable[[pd.DataFrame], np.ndarray] | None = None,
    features: Sequence[str] | None = None,
    key: str | None = None,
    strategy: str = "least-confidence",
    raters_per_item: int = 1,
    blind: bool = False,
    group_column: str | None = None,
    random_share: float = 0.1,
    gold_column: str | None = None,
    run_id: str | None = None,
    seed: int = 0,
) -> Queue:
    """Queue the rows of the Spark DataFrame ``rows`` that :func:`mlflow_hitl.review.select_for_review`
    would pick from the same rows as a pandas frame, fetching only those rows to the driver.

    The probabilities come from ``y_prob``, the name of an array column of class probabilities (in
    ``classes`` order), or from ``predict_proba`` applied to the ``features`` columns on the
    executors. Reviewers see every other column except ``key`` (each item's row key: the key's value,
    else the row's position, as a pandas frame indexed by the key, or with a plain index, would give)
    and ``gold_column`` (known labels of gold items). ``group_column`` splits the uncertain picks
    equally across its values.
    """
    if (y_prob is None) == (predict_proba is None):
        raise InputError("pass y_prob (a column of class probabilities) or predict_proba, not both")
    named = {"y_prob": y_prob, "key": key, "group column": group_column, "gold column": gold_column}
    _check_columns(rows, named, features or ())
    base = _numbered(rows, key)
    proba_column = y_prob or PROBA
    proba_of = functools.partial(
        _proba_of,
        y_prob=y_prob,
        features=list(features or ()),
        predict_proba=predict_proba,
        classes=np.asarray(list(classes), dtype=object),
    )
    try:
        selection, position = _selection(
            base,
            proba_of,
            n_classes=len(classes),
            inputs=[*(features or ()), *([y_prob] if y_prob else [])],
            group_column=group_column,
            size=size,
            strategy=strategy,
            random_share=random_share,
            seed=seed,
        )
        chosen = _chosen(
            base.withColumn(POSITION, position), selection, y_prob, features, predict_proba, classes
        )
    finally:
        if key is not None:
            base.unpersist()
    shown, proba, gold = _items(chosen, rows.columns, key, gold_column, y_prob, proba_column, len(classes))
    return queue_selection(
        store,
        name,
        rows=shown,
        selection=selection.assign(row=np.arange(len(selection))),
        proba=proba,
        classes=classes,
        actor=actor,
        raters_per_item=raters_per_item,
        blind=blind,
        strategy=strategy,
        run_id=run_id,
        gold=gold,
    )


def _numbered(rows: Any, key: str | None) -> Any:
    """``rows`` with the id that orders them; sorted by ``key`` and persisted when given, since a sort's
    partitions may differ between jobs and the positions must not (the caller unpersists)."""
    if key is None:
        return rows.withColumn(_ID, F.monotonically_increasing_id())
    return rows.orderBy(column(key)).withColumn(_ID, F.monotonically_increasing_id()).persist()


def _chosen(
    rows: Any,
    selection: pd.DataFrame,
    y_prob: str | None,
    features: Sequence[str] | None,
    predict_proba: Callable[[pd.DataFrame], np.ndarray] | None,
    classes: Sequence[Any],
) -> pd.DataFrame:
    """The chosen rows, whole, in the selection's order, with their probabilities again: the model
    sees only these rows."""
    chosen_rows = rows.filter(F.col(POSITION).isin([int(r) for r in selection["row"]]))
    if y_prob is None:
        chosen_rows = scored(
            chosen_rows,
            features=list(features or ()),
            label_type=_label_type(classes),
            predict=predict_proba,
            predict_proba=predict_proba,
            classes=classes,
        )
    return _fetch(chosen_rows).set_index(POSITION).loc[selection["row"].to_numpy()]


def _proba_of(
    batch: pd.DataFrame,
    *,
    y_prob: str | None,
    features: list[str],
    predict_proba: Callable[[pd.DataFrame], np.ndarray] | None,
    classes: np.ndarray,
) -> np.ndarray:
    """A batch's class probabilities, on an executor: the model's, or the ``y_prob`` column's."""
    if y_prob is None:
        return predictions(batch, features, predict_proba, predict_proba, classes)[1]
    values = batch[y_prob]
    if values.isna().any():
        raise InputError("y_prob contains NaN or infinite values")
    return np.stack(values.to_numpy())


def _items(
    chosen: pd.DataFrame,
    columns: Sequence[str],
    key: str | None,
    gold_column: str | None,
    y_prob: str | None,
    proba_column: str,
    n_classes: int,
) -> tuple[pd.DataFrame, np.ndarray, dict[Any, Any] | None]:
    """The chosen rows as reviewers see them (indexed by row key), their probabilities, the gold labels."""
    keys = chosen[key].to_numpy() if key is not None else chosen.index.to_numpy()
    proba = check_probabilities(np.stack(chosen[proba_column].to_numpy()), "y_prob", n_classes=n_classes)
    gold = None
    if gold_column is not None:
        known = chosen[gold_column].notna().to_numpy()
        gold = dict(zip(keys[known], chosen[gold_column].to_numpy()[known], strict=True))
    shown = [c for c in columns if c not in (key, gold_column, y_prob)]
    return chosen[shown].set_axis(pd.Index(keys)), proba, gold


def _selection(
    base: Any,
    proba_of: Callable[[pd.DataFrame], np.ndarray],
    *,
    n_classes: int,
    inputs: Sequence[str],
    group_column: str | None,
    size: int,
    strategy: str,
    random_share: float,
    seed: int,
) -> tuple[pd.DataFrame, Any]:
    """``select_for_review``'s choice among ``base``'s rows, ranked on the executors; and the position column.

    Ranking carries only what it needs through the Python workers and the shuffle: the row id, the
    group and the model's inputs go in, the row id, the group and the score come back, in one pass
    (the model and the score in the same batch). Only the candidates reach the driver.
    """
    n_rows, position = _positions(base)
    if n_rows == 0:
        raise InputError("rows must be a non-empty DataFrame of rows to review")
    control, n_uncertain = control_rows(
        n_rows, size=size, strategy=strategy, random_share=random_share, seed=seed
    )
    grouping = [group_column] if group_column is not None else []
    needed = [_ID, *grouping, *inputs]
    ranked = _with_scores(
        base.select(*[column(c) for c in dict.fromkeys(needed)]),
        [_ID, *grouping],
        proba_of,
        n_classes=n_classes,
        strategy=strategy,
    )
    ranked = ranked.withColumn(POSITION, position)
    ranked = ranked.withColumn(_CONTROL, F.col(POSITION).isin([int(c) for c in control]))
    candidates = _fetch(_candidates(ranked, group_column, n_control=len(control), n_uncertain=n_uncertain))
    selection = select_among(
        candidates.rename(columns={POSITION: "row", SCORE: "score", **dict.fromkeys(grouping, "group")}),
        n_rows=n_rows,
        size=size,
        strategy=strategy,
        random_share=random_share,
        seed=seed,
    )
    return selection, position


def _check_columns(rows: Any, named: dict[str, str | None], features: Sequence[str]) -> None:
    check_unique_columns(rows.columns, "data")
    for what, name in named.items():
        if name is not None and name not in rows.columns:
            raise InputError(
                f"{what} {name!r} is not a column of the data; it has: {', '.join(rows.columns[:20])}"
            )
    missing = [c for c in features if c not in rows.columns]
    if missing:
        raise InputError(f"data is missing the model's input column(s) {', '.join(missing)}")


def _positions(frame: Any) -> tuple[int, Column]:
    """The number of rows, and each row's position (0, 1, ...) in the frame's order, as a column.

    One small job counts each partition's rows; a row's position is then the rows of the partitions
    before its own plus its index within its partition, both read from its Spark row id.
    """
    partition = F.shiftright(F.col(_ID), _PARTITION_BITS)
    counts = dict(_fetch(frame.select(partition.alias("p")).groupBy("p").count()).itertuples(index=False))
    if not counts:
        return 0, F.lit(None)
    sizes = [counts.get(p, 0) for p in range(max(counts) + 1)]
    starts = F.array(*[F.lit(int(s)) for s in np.concatenate([[0], np.cumsum(sizes)[:-1]])])
    within = F.col(_ID).bitwiseAND(F.lit((1 << _PARTITION_BITS) - 1))
    return int(sum(sizes)), F.element_at(starts, (partition + 1).cast("int")) + within


def _label_type(classes: Sequence[Any]) -> Any:
    """The Spark type of the predicted label column that scoring adds (the queue does not read it)."""
    values = np.asarray(list(classes))
    if values.dtype.kind == "b":
        return T.BooleanType()
    if values.dtype.kind in "iu":
        return T.LongType()
    if values.dtype.kind == "f":
        return T.DoubleType()
    return T.StringType()


def _with_scores(
    frame: Any,
    keep: Sequence[str],
    proba_of: Callable[[pd.DataFrame], np.ndarray],
    *,
    n_classes: int,
    strategy: str,
) -> Any:
    """``frame``'s ``keep`` columns and :data:`SCORE`, the uncertainty under ``strategy`` (NaN for
    ``random``), from each batch's probabilities (``proba_of``) checked as the pandas path checks them,
    computed in pandas batches on the executors."""
    schema = T.StructType([*(frame.schema[c] for c in keep), T.StructField(SCORE, T.DoubleType(), True)])

    def score(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            if batch.empty:
                continue
            proba = check_probabilities(proba_of(batch), "y_prob", n_classes=n_classes)
            scores = np.nan if strategy == "random" else uncertainty_scores(proba, strategy=strategy)
            yield batch[list(keep)].assign(**{SCORE: scores})

    return in_pandas(frame, score, schema)


def _candidates(frame: Any, group_column: str | None, *, n_control: int, n_uncertain: int) -> Any:
    """The control rows and the ``n_uncertain`` best-scoring other rows (of each group), ties by position."""
    best = [F.col(SCORE).desc(), F.col(POSITION)]
    shown = [column(c) for c in (POSITION, SCORE, *([group_column] if group_column is not None else []))]
    if group_column is None:
        return frame.orderBy(F.col(_CONTROL).desc(), *best).limit(n_control + n_uncertain).select(*shown)
    rank = F.row_number().over(Window.partitionBy(_CONTROL, column(group_column)).orderBy(*best))
    return (
        frame.withColumn(_RANK, rank).filter(F.col(_CONTROL) | (F.col(_RANK) <= n_uncertain)).select(*shown)
    )


def _fetch(frame: Any) -> pd.DataFrame:
    """``frame.toPandas()``, an error raised on an executor coming back in one line (:func:`on_executors`).

    pyspark warns with the worker's traceback before it raises; that warning is dropped when the
    error is ours (the one line says it all) and passed on otherwise.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            return on_executors(frame.toPandas)
        except HitlError:
            caught.clear()
            raise
        finally:
            for warning in caught:
                warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
