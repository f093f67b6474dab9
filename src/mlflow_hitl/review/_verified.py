"""From a queue's labels to the labels humans verified: consensus, agreement, adjudication, coverage.

An item's label is *verified* when it has all of its ``raters_per_item`` labels and their
consensus is clear (agreement at least ``min_agreement`` and no tie), or when an adjudicator
settled it. Everything else is listed as ``pending`` (waiting for an adjudicator) or
``incomplete`` (waiting for raters), never silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .._review_options import DEFAULT_MIN_AGREEMENT
from .._validation import check_classes
from ._agreement import AgreementResult, agreement, krippendorff_alpha
from ._consensus import consensus, majority_of_counts, needs_adjudication, unsettled
from ._interface import QueueStore
from ._records import QueueLabels

__all__ = [
    "DEFAULT_MIN_AGREEMENT",
    "QueueConsensus",
    "QueueTally",
    "consensus_of",
    "queue_consensus",
    "queue_tally",
]


_LABEL_COLUMNS = ["row_key", "label", "source", "confidence", "n_labels", "agreement", "raters"]


@dataclass(frozen=True)
class QueueConsensus:
    """Where a queue stands. ``labels`` (index ``item``) holds every item that has a label or an
    adjudication; ``verified`` only those that count.

    ``labels`` columns: ``row_key`` (the source row), ``label``, ``source`` (``consensus`` or
    ``adjudicated``), ``confidence``, ``n_labels``, ``agreement``, ``raters`` (``rater=label; ...``).
    """

    queue: str
    method: str
    min_agreement: float
    labels: pd.DataFrame
    pending: tuple[int, ...]
    incomplete: tuple[int, ...]
    agreement: AgreementResult | None
    rater_quality: pd.DataFrame

    @property
    def verified(self) -> pd.DataFrame:
        excluded = set(self.pending) | set(self.incomplete)
        return self.labels[~self.labels.index.isin(excluded)]

    def summary(self) -> dict[str, Any]:
        """Counts and agreement statistics, JSON-ready."""
        stats = self.agreement
        return {
            "queue": self.queue,
            "method": self.method,
            "min_agreement": self.min_agreement,
            "labelled_items": len(self.labels),
            "verified_items": len(self.verified),
            "adjudicated_items": int((self.labels["source"] == "adjudicated").sum()),
            "pending_adjudication": list(self.pending),
            "incomplete_items": list(self.incomplete),
            "agreement": None
            if stats is None
            else {
                "cohen_kappa": stats.cohen_kappa,
                "fleiss_kappa": stats.fleiss_kappa,
                "krippendorff_alpha": stats.krippendorff_alpha,
                "percent_agreement": stats.percent_agreement,
                "n_items": stats.n_items,
                "n_raters": stats.n_raters,
                "notes": list(stats.notes),
            },
        }


def queue_consensus(
    store: QueueStore, name: str, *, method: str = "majority", min_agreement: float = DEFAULT_MIN_AGREEMENT
) -> QueueConsensus:
    """Consensus and agreement of queue ``name``, with adjudications applied, from one read of the store."""
    return consensus_of(store.queue_labels(name), method=method, min_agreement=min_agreement)


def consensus_of(
    state: QueueLabels, *, method: str = "majority", min_agreement: float = DEFAULT_MIN_AGREEMENT
) -> QueueConsensus:
    """Consensus and agreement of a queue's labels as read by :meth:`ReviewStore.queue_labels`."""
    queue, name = state.queue, state.queue.name
    keys = {item.position: item.row_key for item in state.items}
    annotations = state.annotations
    adjudicated = state.adjudications.set_index("item")
    gold = state.gold

    if annotations.empty:
        labels = pd.DataFrame(columns=_LABEL_COLUMNS).rename_axis("item")
        pending: list[int] = []
        stats, quality = None, pd.DataFrame()
    else:
        labelled = set(annotations["item"])
        result = consensus(
            annotations[["item", "rater", "label"]],
            classes=list(queue.classes),
            method=method,
            gold={k: v for k, v in gold.items() if k in labelled} or None,
        )
        labels = result.labels[["label", "confidence", "n_labels", "agreement"]].copy()
        labels["source"] = "consensus"
        pairs = [f"{r}={lab}" for r, lab in zip(annotations["rater"], annotations["label"], strict=True)]
        raters = pd.Series(pairs, index=annotations.index).groupby(annotations["item"]).agg("; ".join)
        labels["raters"] = raters.reindex(labels.index)
        pending = [int(i) for i in needs_adjudication(result, min_agreement=min_agreement)]
        stats = agreement(annotations[["item", "rater", "label"]], classes=list(queue.classes))
        quality = result.rater_quality

    for item, row in adjudicated.iterrows():
        labels.loc[item, ["label", "source"]] = [row["label"], "adjudicated"]
    labels["row_key"] = [keys[int(i)] for i in labels.index]
    labels = labels[_LABEL_COLUMNS].sort_index()
    labels.index = labels.index.astype(int)
    labels.index.name = "item"
    done = set(adjudicated.index.astype(int))
    pending = [i for i in pending if i not in done]
    n_labels = labels["n_labels"].fillna(0)
    incomplete = [int(i) for i in labels.index[(n_labels < queue.raters_per_item)] if i not in done]
    return QueueConsensus(
        queue=name,
        method=method,
        min_agreement=min_agreement,
        labels=labels,
        pending=tuple(sorted(pending)),
        incomplete=tuple(sorted(set(incomplete) - set(pending))),
        agreement=stats,
        rater_quality=quality,
    )


@dataclass(frozen=True)
class QueueTally:
    """Where a queue stands by majority vote, as counts: what :func:`queue_consensus` (method ``majority``)
    reports for the queue (``labelled`` items, ``verified``, ``pending``, ``incomplete``, ``adjudicated``,
    Krippendorff's alpha), tallied from the label counts the database makes instead of from every label."""

    labelled: int
    verified: int
    pending: int
    incomplete: int
    adjudicated: int
    krippendorff_alpha: float | None


def queue_tally(store: QueueStore, name: str, *, min_agreement: float = DEFAULT_MIN_AGREEMENT) -> QueueTally:
    """Queue ``name``'s :class:`QueueTally`, from its label counts and adjudications (the Queues page's
    read: a few rows per item, where :func:`queue_consensus` reads every item, label and comment)."""
    queue = store.queue(name)
    counts = store.label_counts(name)
    settled = np.array(sorted({int(i) for i in store.adjudications(name)["item"]}), dtype=np.int64)
    classes = check_classes(list(queue.classes), min_classes=1)
    items, rows = np.unique(counts["item"].to_numpy(dtype=np.int64), return_inverse=True)
    matrix = np.zeros((len(items), len(classes)), dtype=np.int64)
    np.add.at(matrix, (rows, classes.get_indexer(counts["label"])), counts["count"].to_numpy(dtype=np.int64))
    _, share, tie = majority_of_counts(matrix)
    n_labels = matrix.sum(axis=1)
    open_ = ~np.isin(items, settled)
    pending = unsettled(share, tie, min_agreement) & open_
    incomplete = (n_labels < queue.raters_per_item) & open_ & ~pending
    labelled = len(np.union1d(items, settled))
    pairable = matrix[n_labels >= 2]
    return QueueTally(
        labelled=labelled,
        verified=labelled - int(pending.sum()) - int(incomplete.sum()),
        pending=int(pending.sum()),
        incomplete=int(incomplete.sum()),
        adjudicated=len(settled),
        krippendorff_alpha=krippendorff_alpha(pairable, []) if len(pairable) else None,
    )
