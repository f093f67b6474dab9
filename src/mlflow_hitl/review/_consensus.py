"""One label per item from several reviewers' labels: majority vote and Dawid-Skene.

Input everywhere is a long frame of annotations (one row per ``item``, ``rater``, ``label``),
validated once by :func:`_encode` and turned into integer codes, so the methods below are plain
numpy over arrays of ``n_annotations`` codes and ``items x classes`` count matrices.

Dawid-Skene is written here rather than taken from ``crowd-kit``: that library's ``DawidSkene``
gives the same answers (the tests cross-check it), but it declares ``transformers`` as a hard
dependency and runs each EM step as pandas joins (~90 ms per step on 300,000 annotations, so a
slow-converging batch costs seconds); ours is two sparse products, ~8 ms per step.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .._review_options import METHODS
from .._validation import check_classes
from ..errors import InputError

if TYPE_CHECKING:
    import scipy.sparse as sp

__all__ = ["METHODS", "ConsensusResult", "consensus", "dawid_skene", "majority_vote", "needs_adjudication"]

COLUMNS = ("item", "rater", "label")

# Two posteriors closer than this are a tie for Dawid-Skene.
_TIE_TOL = 1e-9


@dataclass(frozen=True)
class ConsensusResult:
    """The consensus label of every item, and how far each rater agrees with it.

    ``labels`` (index ``item``): ``label``, ``confidence`` (share of votes for majority vote, the
    posterior probability for Dawid-Skene), ``n_labels``, ``agreement`` (share of the item's raters
    who gave the consensus label) and ``tie`` (the top classes could not be told apart).
    ``rater_quality`` (index ``rater``): ``n_labels``, ``agreement_with_consensus``,
    ``gold_accuracy`` (NaN without gold, or for a rater who labelled no gold item) and
    ``estimated_accuracy`` (Dawid-Skene's estimate; NaN for majority vote).
    ``confusion`` maps each rater to a ``k x k`` nested list, row = true class, column = given
    label, both in ``classes`` order; ``class_prior`` maps each class to its estimated share.
    Those two, ``iterations`` and ``converged`` are ``None`` for majority vote.
    """

    method: str
    labels: pd.DataFrame
    rater_quality: pd.DataFrame
    confusion: dict[Hashable, list[list[float]]] | None = None
    class_prior: dict[Hashable, float] | None = None
    iterations: int | None = None
    converged: bool | None = None


@dataclass(frozen=True)
class _Coded:
    """Annotations as integer codes, sorted by item (so each item is one contiguous run)."""

    items: pd.Index
    raters: pd.Index
    classes: pd.Index
    item: np.ndarray
    rater: np.ndarray
    label: np.ndarray
    counts: np.ndarray  # items x classes: how many raters gave each class


# --------------------------------------------------------------------------- validation


def _encode(annotations: Any, classes: Any) -> _Coded:
    """Validate the annotations once, at the door, and return them as integer codes.

    A missing label is refused rather than skipped: an item a rater did not answer is simply
    absent from the frame, so a NaN is more likely a bug upstream than a deliberate blank.
    """
    if not isinstance(annotations, pd.DataFrame):
        raise InputError(
            "annotations must be a pandas DataFrame with columns item, rater, label; "
            f"got {type(annotations).__name__}"
        )
    missing = [c for c in COLUMNS if c not in annotations.columns]
    if missing:
        raise InputError(
            f"annotations is missing column(s) {', '.join(missing)}: pass one row per item, rater, label"
        )
    if annotations.empty:
        raise InputError("annotations has no rows: pass at least one (item, rater, label) row")
    class_index = check_classes(classes, min_classes=1)
    for column in COLUMNS:
        n_missing = int(annotations[column].isna().sum())
        if n_missing:
            raise InputError(
                f"annotations.{column} has {n_missing} missing value(s): drop those rows "
                "(an item a rater did not label is simply absent)"
            )
    label = class_index.get_indexer(annotations["label"])
    if (label < 0).any():
        unknown = ", ".join(
            repr(v) for v in pd.unique(annotations["label"].to_numpy()[label < 0])[:5].tolist()
        )
        raise InputError(
            f"annotations.label has label(s) {unknown} not in classes {class_index.tolist()!r}; "
            "fix the labels or add them to classes"
        )
    item, items = pd.factorize(annotations["item"])
    rater, raters = pd.factorize(annotations["rater"])
    repeated = pd.Series(item.astype(np.int64) * len(raters) + rater).duplicated().to_numpy()
    if repeated.any():
        first = np.flatnonzero(repeated)[0]
        who, what = raters[[rater[first]]].tolist()[0], items[[item[first]]].tolist()[0]
        raise InputError(
            f"rater {who!r} labelled item {what!r} more than once; "
            "keep one annotation per (item, rater), e.g. the latest"
        )
    order = np.argsort(item, kind="stable")
    item, rater, label = item[order], rater[order], label[order]
    k = len(class_index)
    counts = np.bincount(item * k + label, minlength=len(items) * k).reshape(len(items), k)
    return _Coded(
        items=pd.Index(items, name="item"),
        raters=pd.Index(raters, name="rater"),
        classes=class_index,
        item=item,
        rater=rater,
        label=label,
        counts=counts,
    )


def _encode_gold(gold: Mapping[Hashable, Hashable] | None, coded: _Coded) -> np.ndarray:
    """Class code of each item's gold label, -1 where there is none."""
    codes = np.full(len(coded.items), -1)
    if gold is None:
        return codes
    if not isinstance(gold, Mapping):
        raise InputError(f"gold must be a mapping item -> true label, got {type(gold).__name__}")
    keys = pd.Index(list(gold.keys()))
    values = pd.Index(list(gold.values()), dtype=object)
    if values.hasnans:
        raise InputError("gold has a missing label: leave items without a true label out of gold")
    label = coded.classes.get_indexer(values)
    if (label < 0).any():
        unknown = ", ".join(repr(v) for v in pd.unique(values[label < 0])[:5].tolist())
        raise InputError(f"gold has label(s) {unknown} not in classes {coded.classes.tolist()!r}")
    position = coded.items.get_indexer(keys)
    if len(keys) and not (position >= 0).any():
        raise InputError(
            "gold shares no item with annotations: check that its keys are item ids of the same type"
        )
    codes[position[position >= 0]] = label[position >= 0]
    return codes


# --------------------------------------------------------------------------- shared result parts


def _labels_frame(coded: _Coded, winner: np.ndarray, confidence: np.ndarray, tie: np.ndarray) -> pd.DataFrame:
    n_labels = coded.counts.sum(axis=1)
    return pd.DataFrame(
        {
            "label": coded.classes.take(winner),
            "confidence": confidence,
            "n_labels": n_labels,
            "agreement": coded.counts[np.arange(len(winner)), winner] / n_labels,
            "tie": tie,
        },
        index=coded.items,
    )


def _rater_quality(
    coded: _Coded, winner: np.ndarray, gold: np.ndarray, estimated: np.ndarray | None
) -> pd.DataFrame:
    n_raters = len(coded.raters)
    n_labels = np.bincount(coded.rater, minlength=n_raters)
    agrees = coded.label == winner[coded.item]
    item_gold = gold[coded.item]
    on_gold = item_gold >= 0
    n_gold = np.bincount(coded.rater[on_gold], minlength=n_raters)
    right = np.bincount(
        coded.rater[on_gold], weights=coded.label[on_gold] == item_gold[on_gold], minlength=n_raters
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        gold_accuracy = np.where(n_gold > 0, right / n_gold, np.nan)
    return pd.DataFrame(
        {
            "n_labels": n_labels,
            "agreement_with_consensus": np.bincount(coded.rater, weights=agrees, minlength=n_raters)
            / n_labels,
            "gold_accuracy": gold_accuracy,
            "estimated_accuracy": np.full(n_raters, np.nan) if estimated is None else estimated,
        },
        index=coded.raters,
    )


# --------------------------------------------------------------------------- majority vote


def majority_of_counts(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Majority vote on an ``items x classes`` count matrix: each item's winning class (its column),
    the share of its votes the winner got, and whether the top classes tied."""
    top = counts.max(axis=1)
    winner = counts.argmax(axis=1)  # argmax returns the first maximum: the earliest class wins ties
    tie = (counts == top[:, None]).sum(axis=1) > 1
    return winner, top / counts.sum(axis=1), tie


def majority_vote(
    annotations: pd.DataFrame, *, classes: Sequence, gold: Mapping[Hashable, Hashable] | None = None
) -> ConsensusResult:
    """The most frequent label of each item.

    Ties are broken in favour of the class listed first in ``classes`` (so the answer never
    depends on row order) and flagged with ``tie=True``, which sends the item to adjudication.
    ``gold`` (item -> true label) only scores the raters; it does not change the labels.
    """
    coded = _encode(annotations, classes)
    gold_codes = _encode_gold(gold, coded)
    winner, share, tie = majority_of_counts(coded.counts)
    labels = _labels_frame(coded, winner, share, tie)
    return ConsensusResult(
        method="majority", labels=labels, rater_quality=_rater_quality(coded, winner, gold_codes, None)
    )


# --------------------------------------------------------------------------- Dawid-Skene


def _incidence(coded: _Coded) -> sp.csr_array:
    """Items x (rater, given label) matrix of 0/1: which rater said what about each item.

    Both EM steps are one product with it, so a step costs O(n_annotations x classes) in
    compiled code, whatever the mix of raters per item.
    """
    import scipy.sparse as sp  # here, not at import: the review store loads this module without scipy

    k = len(coded.classes)
    cell = coded.rater * k + coded.label
    shape = (len(coded.items), len(coded.raters) * k)
    return sp.csr_array((np.ones(len(cell)), (coded.item, cell)), shape=shape)


def _m_step(
    posterior: np.ndarray, incidence: sp.csr_array, k: int, smoothing: float
) -> tuple[np.ndarray, np.ndarray]:
    """Class prior and confusion matrices (rater x true x given) from the posteriors (class x item)."""
    expected = incidence.T @ posterior.T  # (rater, given) x true: posterior mass behind each answer
    expected = expected.reshape(-1, k, k).transpose(0, 2, 1) + smoothing
    confusion = expected / expected.sum(axis=2, keepdims=True)
    prior = (posterior.sum(axis=1) + smoothing) / (posterior.shape[1] + k * smoothing)
    return prior, confusion


def _e_step(prior: np.ndarray, confusion: np.ndarray, incidence: sp.csr_array) -> tuple[np.ndarray, float]:
    """Posteriors (class x item) from the parameters, and the log-likelihood of all annotations.

    Class-major layout on purpose: numpy reduces a (3, n) array over its 3 rows ~20x faster than
    an (n, 3) array over its 3 columns.
    """
    k = len(prior)
    log_given = np.log(confusion).transpose(0, 2, 1).reshape(-1, k)  # (rater, given) x true
    log_joint = np.ascontiguousarray((incidence @ log_given).T) + np.log(prior)[:, None]
    top = log_joint.max(axis=0)
    scaled = np.exp(log_joint - top)
    total = scaled.sum(axis=0)
    return scaled / total, float((top + np.log(total)).sum())


def dawid_skene(
    annotations: pd.DataFrame,
    *,
    classes: Sequence,
    max_iter: int = 100,
    tol: float = 1e-6,
    smoothing: float = 0.01,
    gold: Mapping[Hashable, Hashable] | None = None,
) -> ConsensusResult:
    """Labels weighted by each rater's estimated confusion matrix (Dawid & Skene, 1979).

    EM starting from the majority-vote shares: the M-step estimates each rater's confusion matrix
    and the class prior from the current posteriors, the E-step recomputes every item's posterior
    from them. It stops when the mean log-likelihood per annotation changes by less than ``tol``,
    or after ``max_iter`` steps (``converged=False``). A rater who is reliably wrong in a
    consistent way (always says "cat" for dogs) still informs the labels.

    ``smoothing`` is a pseudo-count (a Dirichlet prior) added to every confusion-matrix cell and
    class-prior entry. Without it a rater seen once gets probability 0 for every other answer,
    and that zero would veto the true class of any item the rater touches. The default 0.01 is
    too small to move a rater with a real track record.
    """
    if not isinstance(max_iter, (int, np.integer)) or isinstance(max_iter, bool) or max_iter < 1:
        raise InputError(f"max_iter must be a positive integer, got {max_iter!r}")
    if not isinstance(tol, (int, float)) or isinstance(tol, bool) or not tol >= 0:
        raise InputError(f"tol must be a non-negative number, got {tol!r}")
    if not isinstance(smoothing, (int, float)) or isinstance(smoothing, bool) or not smoothing > 0:
        raise InputError(f"smoothing must be a positive number (a pseudo-count), got {smoothing!r}")
    coded = _encode(annotations, classes)
    gold_codes = _encode_gold(gold, coded)
    k = len(coded.classes)
    incidence = _incidence(coded)
    posterior = (coded.counts / coded.counts.sum(axis=1, keepdims=True)).T
    previous, converged, iterations = -np.inf, False, 0
    while iterations < max_iter and not converged:
        prior, confusion = _m_step(posterior, incidence, k, smoothing)
        posterior, log_likelihood = _e_step(prior, confusion, incidence)
        iterations += 1
        converged = abs(log_likelihood - previous) / len(coded.item) < tol
        previous = log_likelihood

    winner = posterior.argmax(axis=0)
    ranked = np.sort(posterior, axis=0)
    tie = ranked[-1] - ranked[-2] <= _TIE_TOL if k > 1 else np.zeros(len(winner), dtype=bool)
    labels = _labels_frame(coded, winner, ranked[-1], tie)
    estimated = (prior * np.diagonal(confusion, axis1=1, axis2=2)).sum(axis=1)
    return ConsensusResult(
        method="dawid-skene",
        labels=labels,
        rater_quality=_rater_quality(coded, winner, gold_codes, estimated),
        confusion={r: confusion[i].tolist() for i, r in enumerate(coded.raters.tolist())},
        class_prior={c: float(p) for c, p in zip(coded.classes.tolist(), prior, strict=True)},
        iterations=iterations,
        converged=bool(converged),
    )


# --------------------------------------------------------------------------- dispatch and adjudication


def consensus(
    annotations: pd.DataFrame,
    *,
    classes: Sequence,
    method: str = "majority",
    gold: Mapping[Hashable, Hashable] | None = None,
) -> ConsensusResult:
    """Consensus by ``method`` ("majority" or "dawid-skene"), with each method's defaults."""
    if method == "majority":
        return majority_vote(annotations, classes=classes, gold=gold)
    if method == "dawid-skene":
        return dawid_skene(annotations, classes=classes, gold=gold)
    raise InputError(f"unknown consensus method {method!r}; use one of: {', '.join(METHODS)}")


def needs_adjudication(result: ConsensusResult, *, min_agreement: float) -> list:
    """Items a human adjudicator should settle: agreement below ``min_agreement``, or a tie.

    An item labelled by a single rater has agreement 1.0 and is not sent here: too few labels is
    a coverage question for the review queue, not a disagreement.
    """
    if (
        not isinstance(min_agreement, (int, float))
        or isinstance(min_agreement, bool)
        or not 0 <= min_agreement <= 1
    ):
        raise InputError(f"min_agreement must be a number between 0 and 1, got {min_agreement!r}")
    labels = result.labels
    return labels.index[
        unsettled(labels["agreement"].to_numpy(), labels["tie"].to_numpy(), min_agreement)
    ].tolist()


def unsettled(agreement: np.ndarray, tie: np.ndarray, min_agreement: float) -> np.ndarray:
    """Which items go to an adjudicator: agreement below ``min_agreement``, or a tie."""
    return (agreement < min_agreement) | tie.astype(bool)
