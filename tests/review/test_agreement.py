"""Agreement statistics against scikit-learn, statsmodels and published worked examples."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import fleiss_kappa

from mlflow_hitl.review._agreement import AgreementResult, agreement


def long_frame(matrix: list[list[object]]) -> pd.DataFrame:
    """Annotations from a raters x items matrix; None (or NaN) = the rater did not label the item."""
    return pd.DataFrame(
        [
            (item, rater, value)
            for rater, row in enumerate(matrix)
            for item, value in enumerate(row)
            if value is not None and value == value
        ],
        columns=["item", "rater", "label"],
    )


def from_counts(table: np.ndarray) -> pd.DataFrame:
    """Annotations giving each item (row) the class counts in ``table`` (rater ids are arbitrary)."""
    rows = []
    for item, counts in enumerate(table):
        labels = np.repeat(np.arange(len(counts)), counts)
        rows += [(item, f"r{j}", int(label)) for j, label in enumerate(labels)]
    return pd.DataFrame(rows, columns=["item", "rater", "label"])


# --------------------------------------------------------------------------- Cohen's kappa


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cohen_kappa_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    first = rng.choice(["a", "b", "c"], size=200, p=[0.5, 0.3, 0.2])
    second = np.where(rng.random(200) < 0.7, first, rng.choice(["a", "b", "c"], size=200))
    result = agreement(long_frame([list(first), list(second)]), classes=["a", "b", "c"])
    assert result.cohen_kappa == pytest.approx(cohen_kappa_score(first, second))
    assert result.n_raters == 2 and result.n_items == 200 and result.notes == ()


def test_cohen_kappa_uses_only_the_items_both_raters_labelled():
    rng = np.random.default_rng(5)
    first = list(rng.integers(0, 3, size=100))
    second = [v if rng.random() < 0.8 else int(rng.integers(0, 3)) for v in first]
    first[:10] = [None] * 10  # items 0-9 labelled by the second rater only
    second[95:] = [None] * 5  # items 95-99 by the first only
    result = agreement(long_frame([first, second]), classes=[0, 1, 2])
    assert result.cohen_kappa == pytest.approx(cohen_kappa_score(first[10:95], second[10:95]))
    assert any("15 item(s) with one label are left out" in note for note in result.notes)


@pytest.mark.parametrize(
    ("matrix", "reason"),
    [
        ([[0, 1, 1], [0, 1, 0], [1, 1, 0]], "needs exactly 2 raters, found 3"),
        ([[0, 1, None, None], [None, None, 1, 0]], "labelled no item in common"),
        ([[1, 1, 1], [1, 1, 1]], "one and the same class"),
    ],
)
def test_cohen_kappa_is_none_with_the_reason(matrix, reason):
    result = agreement(long_frame(matrix), classes=[0, 1])
    assert result.cohen_kappa is None
    assert any(reason in note for note in result.notes)


# --------------------------------------------------------------------------- Fleiss' kappa

# Fleiss (1971) as reproduced on Wikipedia ("Fleiss' kappa", worked example): 10 subjects,
# 14 raters each, 5 categories; published kappa 0.210.
FLEISS_EXAMPLE = np.array(
    [
        [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
    ]
)  # fmt: skip


def test_fleiss_kappa_reproduces_the_published_example():
    result = agreement(from_counts(FLEISS_EXAMPLE), classes=range(5))
    assert result.fleiss_kappa == pytest.approx(0.210, abs=5e-4)
    assert result.fleiss_kappa == pytest.approx(fleiss_kappa(FLEISS_EXAMPLE))


@pytest.mark.parametrize(("seed", "per_item"), [(0, 3), (1, 5)])
def test_fleiss_kappa_matches_statsmodels(seed, per_item):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 4, size=400)
    rows = []
    for item, true in enumerate(truth):
        for rater in rng.choice(12, size=per_item, replace=False):
            rows.append((item, rater, true if rng.random() < 0.6 else int(rng.integers(0, 4))))
    annotations = pd.DataFrame(rows, columns=["item", "rater", "label"])
    table = pd.crosstab(annotations["item"], annotations["label"]).to_numpy()
    result = agreement(annotations, classes=range(4))
    assert result.fleiss_kappa == pytest.approx(fleiss_kappa(table))


def test_fleiss_kappa_with_unequal_counts_keeps_the_most_common_count():
    rng = np.random.default_rng(9)
    three = rng.multinomial(3, [0.6, 0.3, 0.1], size=60)
    four = rng.multinomial(4, [0.6, 0.3, 0.1], size=25)
    result = agreement(from_counts(np.vstack([four, three])), classes=range(3))
    assert result.fleiss_kappa == pytest.approx(fleiss_kappa(three))
    assert any(
        "uses the 60 item(s) with 3 ratings" in n and "25 item(s) with other counts" in n
        for n in result.notes
    )


# --------------------------------------------------------------------------- Krippendorff's alpha

# Krippendorff, "Computing Krippendorff's Alpha-Reliability" (2011), the 4 observers x 12 units
# example with missing values; published nominal alpha 0.743.
KRIPPENDORFF_EXAMPLE = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
]


def alpha_from_coincidences(matrix: list[list[object]], values: list[int]) -> float:
    """Nominal alpha from the textbook coincidence-matrix formula, written independently here."""
    index = {v: i for i, v in enumerate(values)}
    o = np.zeros((len(values), len(values)))
    for unit in zip(*matrix, strict=True):
        rated = [index[v] for v in unit if v is not None]
        if len(rated) < 2:
            continue
        for a, b in [(a, b) for i, a in enumerate(rated) for j, b in enumerate(rated) if i != j]:
            o[a, b] += 1 / (len(rated) - 1)
    n_c = o.sum(axis=1)
    n = n_c.sum()
    observed = o.sum() - np.trace(o)
    expected = (np.outer(n_c, n_c).sum() - (n_c**2).sum()) / (n - 1)
    return 1 - observed / expected


def test_krippendorff_alpha_reproduces_the_published_example():
    result = agreement(long_frame(KRIPPENDORFF_EXAMPLE), classes=[1, 2, 3, 4, 5])
    assert result.krippendorff_alpha == pytest.approx(0.743, abs=5e-4)
    assert result.krippendorff_alpha == pytest.approx(
        alpha_from_coincidences(KRIPPENDORFF_EXAMPLE, [1, 2, 3, 4, 5])
    )
    assert result.n_items == 12 and result.n_raters == 4


def test_krippendorff_alpha_matches_the_formula_on_random_data():
    rng = np.random.default_rng(11)
    matrix = [[int(v) if rng.random() < 0.7 else None for v in rng.integers(0, 3, size=80)] for _ in range(5)]
    result = agreement(long_frame(matrix), classes=[0, 1, 2])
    assert result.krippendorff_alpha == pytest.approx(alpha_from_coincidences(matrix, [0, 1, 2]))


# --------------------------------------------------------------------------- percent agreement, edge cases


def test_percent_agreement_is_the_mean_share_of_agreeing_pairs():
    matrix = [["x", "x", "y", None], ["x", "y", "y", "x"], ["x", None, "z", None]]
    result = agreement(long_frame(matrix), classes=["x", "y", "z"])
    shares = []
    for unit in zip(*matrix, strict=True):
        rated = [v for v in unit if v is not None]
        if len(rated) >= 2:
            pairs = list(combinations(rated, 2))
            shares.append(sum(a == b for a, b in pairs) / len(pairs))
    assert result.percent_agreement == pytest.approx(np.mean(shares))  # (1 + 0 + 1/3) / 3


def test_one_class_only_leaves_the_kappas_undefined_with_notes():
    result = agreement(long_frame([["yes"] * 4, ["yes"] * 4]), classes=["yes"])
    assert isinstance(result, AgreementResult)
    assert (result.cohen_kappa, result.fleiss_kappa, result.krippendorff_alpha) == (None, None, None)
    assert result.percent_agreement == 1.0
    assert len(result.notes) == 3 and all("undefined" in note for note in result.notes)


def test_no_item_with_two_ratings_has_no_pairwise_statistics():
    result = agreement(long_frame([[0, None, 1], [None, 1, None], [None, None, None]]), classes=[0, 1])
    assert (
        result.percent_agreement is None and result.fleiss_kappa is None and result.krippendorff_alpha is None
    )
    assert any("no item has 2 or more ratings" in note for note in result.notes)
    assert result.n_items == 3 and result.n_raters == 2
