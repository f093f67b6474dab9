"""How much reviewers agree with each other, beyond what chance would give.

Three chance-corrected statistics, each with its own scope, so the result says which items each
one looked at (``notes``) instead of silently dropping some:

* Cohen's kappa: exactly two raters, on the items both labelled.
* Fleiss' kappa: any number of raters, but every item needs the same number of ratings; we use
  the items with the most common count (2 or more) and note how many others were left out.
* Krippendorff's alpha (nominal): any raters, any counts, from the ``krippendorff`` package.

Items with a single rating have no pair to agree or disagree and count towards none of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import krippendorff
import numpy as np
import pandas as pd

from ._consensus import _Coded, _encode

__all__ = ["AgreementResult", "agreement"]


@dataclass(frozen=True)
class AgreementResult:
    """Agreement statistics of one batch of annotations; ``None`` where a statistic is undefined.

    ``percent_agreement`` is the mean, over items with 2+ ratings, of the share of rater pairs on
    the item that gave the same label. ``notes`` says why a statistic is ``None`` or which items
    it was computed on.
    """

    cohen_kappa: float | None
    fleiss_kappa: float | None
    krippendorff_alpha: float | None
    percent_agreement: float | None
    n_items: int
    n_raters: int
    notes: tuple[str, ...]


def _chance_corrected(observed: float, expected: float) -> float | None:
    """(observed - expected) / (1 - expected), undefined when chance agreement is already certain."""
    if expected >= 1 - 1e-12:
        return None
    return float((observed - expected) / (1 - expected))


def _cohen(coded: _Coded, notes: list[str]) -> float | None:
    if len(coded.raters) != 2:
        notes.append(
            f"cohen_kappa needs exactly 2 raters, found {len(coded.raters)}: "
            "see fleiss_kappa or krippendorff_alpha"
        )
        return None
    both = coded.counts.sum(axis=1)[coded.item] == 2
    if not both.any():
        notes.append("cohen_kappa is undefined: the 2 raters labelled no item in common")
        return None
    n_single = int((coded.counts.sum(axis=1) == 1).sum())
    if n_single:
        notes.append(
            f"cohen_kappa uses the items both raters labelled; {n_single} item(s) with one label are left out"
        )
    k = len(coded.classes)
    label, rater = coded.label[both], coded.rater[both]
    first, second = label[rater == 0], label[rater == 1]  # sorted by item, so aligned item by item
    table = np.bincount(first * k + second, minlength=k * k).reshape(k, k) / len(first)
    kappa = _chance_corrected(np.trace(table), table.sum(axis=1) @ table.sum(axis=0))
    if kappa is None:
        notes.append("cohen_kappa is undefined: both raters gave one and the same class throughout")
    return kappa


def _fleiss(pairable: np.ndarray, notes: list[str]) -> float | None:
    sizes = pairable.sum(axis=1)
    values, freq = np.unique(sizes, return_counts=True)
    size = values[freq == freq.max()].max()  # most common count; the larger one on a tie
    rows = pairable[sizes == size]
    if len(rows) < len(pairable):
        notes.append(
            f"fleiss_kappa uses the {len(rows)} item(s) with {size} ratings each (the most common count); "
            f"{len(pairable) - len(rows)} item(s) with other counts are left out (krippendorff_alpha uses all)"
        )
    observed = ((rows * (rows - 1)).sum(axis=1) / (size * (size - 1))).mean()
    shares = rows.sum(axis=0) / rows.sum()
    kappa = _chance_corrected(observed, float(shares @ shares))
    if kappa is None:
        notes.append("fleiss_kappa is undefined: every rating is the same class")
    return kappa


def krippendorff_alpha(pairable: np.ndarray, notes: list[str]) -> float | None:
    """Krippendorff's alpha (nominal) of an ``items x classes`` count matrix of items with 2 or more ratings
    (``None``, with a note, when the ratings use a single class)."""
    if (pairable.sum(axis=0) > 0).sum() < 2:
        notes.append("krippendorff_alpha is undefined: the paired ratings use a single class")
        return None
    return float(krippendorff.alpha(value_counts=pairable, level_of_measurement="nominal"))


def agreement(annotations: pd.DataFrame, *, classes: Sequence) -> AgreementResult:
    """Cohen's kappa, Fleiss' kappa, Krippendorff's alpha and percent agreement of the annotations."""
    coded = _encode(annotations, classes)
    notes: list[str] = []
    sizes = coded.counts.sum(axis=1)
    pairable = coded.counts[sizes >= 2]
    cohen = _cohen(coded, notes)
    if len(pairable) == 0:
        notes.append(
            "no item has 2 or more ratings: fleiss_kappa, krippendorff_alpha and percent_agreement need pairs"
        )
        return AgreementResult(cohen, None, None, None, len(coded.items), len(coded.raters), tuple(notes))
    pair_sizes = pairable.sum(axis=1)
    percent = float(((pairable * (pairable - 1)).sum(axis=1) / (pair_sizes * (pair_sizes - 1))).mean())
    fleiss = _fleiss(pairable, notes)
    return AgreementResult(
        cohen_kappa=cohen,
        fleiss_kappa=fleiss,
        krippendorff_alpha=krippendorff_alpha(pairable, notes),
        percent_agreement=percent,
        n_items=len(coded.items),
        n_raters=len(coded.raters),
        notes=tuple(notes),
    )
