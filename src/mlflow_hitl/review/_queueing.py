"""From scored rows to a review queue: select the rows people should see, then store them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .._result import SparkScoredRows, ValidationResult
from .._validation import check_probabilities
from ..errors import InputError
from ..spark import is_spark_frame
from ._interface import QueueStore
from ._records import Queue
from ._sampling import select_for_review

__all__ = ["queue_for_review", "queue_from_validation", "queue_selection"]


def queue_for_review(
    store: QueueStore,
    name: str,
    *,
    rows: pd.DataFrame,
    y_prob: Any,
    classes: Sequence[Any],
    size: int,
    actor: str,
    strategy: str = "least-confidence",
    raters_per_item: int = 1,
    blind: bool = False,
    groups: Any = None,
    edge_cases: Mapping[str, np.ndarray] | None = None,
    random_share: float = 0.1,
    gold: Mapping[Any, Any] | None = None,
    run_id: str | None = None,
    seed: int = 0,
) -> Queue:
    """Queue the rows of ``rows`` that :func:`select_for_review` picks from the model's ``y_prob``.

    Reviewers see every column of ``rows``; the model's label and confidence are stored with each
    item and shown unless the queue is ``blind``.

    ``rows`` may be a Spark DataFrame: ``y_prob`` then names its column of class probabilities and
    ``groups`` its group column; the rows are ranked on the executors and only the chosen ones
    reach the store (:func:`mlflow_hitl.spark.queue_for_review`, which also takes a ``key`` column).
    """
    if is_spark_frame(rows):
        if not isinstance(y_prob, str):
            raise InputError("with a Spark DataFrame of rows, y_prob must name one of its columns")
        return _spark_queue(
            store,
            name,
            rows=rows,
            y_prob=y_prob,
            classes=classes,
            size=size,
            actor=actor,
            strategy=strategy,
            raters_per_item=raters_per_item,
            blind=blind,
            groups=groups,
            edge_cases=edge_cases,
            random_share=random_share,
            gold=gold,
            run_id=run_id,
            seed=seed,
        )
    if not isinstance(rows, pd.DataFrame) or rows.empty:
        raise InputError("rows must be a non-empty DataFrame of rows to review")
    proba = check_probabilities(y_prob, "y_prob", n_classes=len(classes))
    if len(proba) != len(rows):
        raise InputError(f"y_prob has {len(proba)} rows for {len(rows)} rows of data")
    selection = select_for_review(
        proba,
        size=size,
        strategy=strategy,
        random_share=random_share,
        groups=groups,
        edge_cases=edge_cases,
        seed=seed,
    )
    return queue_selection(
        store,
        name,
        rows=rows,
        selection=selection,
        proba=proba,
        classes=classes,
        actor=actor,
        raters_per_item=raters_per_item,
        blind=blind,
        strategy=strategy,
        run_id=run_id,
        gold=gold,
    )


def queue_selection(
    store: QueueStore,
    name: str,
    *,
    rows: pd.DataFrame,
    selection: pd.DataFrame,
    proba: np.ndarray,
    classes: Sequence[Any],
    actor: str,
    raters_per_item: int,
    blind: bool,
    strategy: str,
    run_id: str | None,
    gold: Mapping[Any, Any] | None,
) -> Queue:
    """Create queue ``name`` from the ``selection`` of ``rows``, each item with the model's label and
    confidence read from ``proba`` (checked class probabilities, one row per row of ``rows``)."""
    return store.create_queue(
        name,
        rows=rows,
        selection=selection,
        classes=classes,
        actor=actor,
        raters_per_item=raters_per_item,
        blind=blind,
        strategy=strategy,
        run_id=run_id,
        predictions=np.asarray(list(classes), dtype=object)[proba.argmax(axis=1)],
        confidences=proba.max(axis=1),
        gold=gold,
    )


def _spark_queue(
    store: QueueStore,
    name: str,
    *,
    rows: Any,
    groups: Any = None,
    edge_cases: Any = None,
    gold: Any = None,
    **options: Any,
) -> Queue:
    """A queue from a Spark DataFrame, whose columns (not arrays) hold the groups; ``options`` are
    :func:`mlflow_hitl.spark.queue_for_review`'s (a ``y_prob`` column, or ``predict_proba`` and ``features``)."""
    from ..spark import queue_for_review as spark_queue

    if groups is not None and not isinstance(groups, str):
        raise InputError("with a Spark DataFrame of rows, groups must name one of its columns")
    if edge_cases is not None or gold is not None:
        raise InputError(
            "edge_cases and gold are per-row arrays of a pandas frame; with a Spark DataFrame, "
            "mark gold items with a gold column (mlflow_hitl.spark.queue_for_review)"
        )
    return spark_queue(store, name, rows=rows, group_column=groups, **options)


def queue_from_validation(
    store: QueueStore, name: str, result: ValidationResult, *, size: int, actor: str, **options: Any
) -> Queue:
    """Queue the real rows a :func:`mlflow_hitl.validate` call scored, in the validated run.

    Useful to have people re-check the labels where the model disagrees most confidently, or is least
    sure. ``options`` are those of :func:`queue_for_review` (``strategy``, ``raters_per_item``, ``blind``…).

    After a validation on Spark the real rows are scored again and ranked on the executors, in one
    pass, and only the chosen rows reach the driver and the store; ``groups`` then names a column of
    the real frame, and each item's row key is the row's position in it.
    """
    scored = result.scored
    if scored is None:
        raise InputError("this validation kept no scored rows: the model gave no class probabilities")
    options.setdefault("run_id", result.run_id)
    rows = {"rows": scored.rows, "classes": scored.classes, "size": size, "actor": actor}
    if isinstance(scored, SparkScoredRows):
        scoring = {"predict_proba": scored.predict_proba, "features": scored.features}
        return _spark_queue(store, name, **rows, **scoring, **options)
    return queue_for_review(store, name, y_prob=scored.y_prob, **rows, **options)
