"""Consensus labels: majority vote checked by counting, Dawid-Skene against crowd-kit and known raters."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from crowdkit.aggregation import DawidSkene

from mlflow_hitl.errors import InputError
from mlflow_hitl.review._agreement import agreement
from mlflow_hitl.review._consensus import (
    ConsensusResult,
    consensus,
    dawid_skene,
    majority_vote,
    needs_adjudication,
)

CLASSES = [0, 1, 2]
# Nominal accuracy of each simulated rater: three good ones, one who always answers the next
# class (reliably wrong), one who answers at random.
QUALITY = {"ann": 0.9, "bob": 0.8, "cy": 0.75, "adversary": 0.0, "random": 1 / 3}


def simulate(seed: int, n_items: int, per_item: int = 3) -> tuple[pd.DataFrame, np.ndarray]:
    """Annotations by ``per_item`` distinct raters from QUALITY per item, and the true labels."""
    rng = np.random.default_rng(seed)
    names = np.array(list(QUALITY))
    truth = rng.choice(3, size=n_items, p=[0.5, 0.3, 0.2])
    picked = np.argsort(rng.random((n_items, len(names))), axis=1)[:, :per_item].ravel()
    item = np.repeat(np.arange(n_items), per_item)
    true = truth[item]
    wrong = (true + rng.integers(1, 3, size=len(item))) % 3
    accuracy = np.array([QUALITY["ann"], QUALITY["bob"], QUALITY["cy"], 0.0, 0.0])[picked]
    label = np.where(rng.random(len(item)) < accuracy, true, wrong)
    label = np.where(names[picked] == "adversary", (true + 1) % 3, label)
    label = np.where(names[picked] == "random", rng.integers(0, 3, size=len(item)), label)
    return pd.DataFrame({"item": item, "rater": names[picked], "label": label}), truth


@pytest.fixture(scope="module")
def crowd():
    return simulate(seed=7, n_items=3000)


@pytest.fixture(scope="module")
def small_crowd():
    """Smaller batch with a noisy adversary, so no confusion cell is exactly zero."""
    frame, truth = simulate(seed=3, n_items=600)
    rng = np.random.default_rng(4)
    noisy = (frame["rater"] == "adversary") & (rng.random(len(frame)) < 0.15)
    frame.loc[noisy, "label"] = rng.integers(0, 3, size=int(noisy.sum()))
    return frame, truth


def crowdkit_fit(frame: pd.DataFrame, n_iter: int) -> DawidSkene:
    """crowd-kit's DawidSkene run for exactly ``n_iter`` EM steps (tol -inf never stops early)."""
    return DawidSkene(n_iter=n_iter, tol=float("-inf")).fit(
        frame.rename(columns={"item": "task", "rater": "worker"})
    )


# --------------------------------------------------------------------------- majority vote


def test_majority_vote_matches_counting_each_item_by_hand():
    rng = np.random.default_rng(0)
    classes = ["spam", "ham", "unsure"]
    rows = [
        (f"doc{i}", f"r{j}", classes[rng.integers(3)])
        for i in range(300)
        for j in rng.choice(6, size=rng.integers(1, 6), replace=False)
    ]
    frame = pd.DataFrame(rows, columns=["item", "rater", "label"]).sample(frac=1, random_state=1)
    result = majority_vote(frame, classes=classes)

    for item, group in frame.groupby("item"):
        votes = Counter(group["label"])
        top = max(votes.values())
        winners = [c for c in classes if votes[c] == top]
        row = result.labels.loc[item]
        assert row["label"] == winners[0]
        assert row["tie"] == (len(winners) > 1)
        assert row["n_labels"] == len(group)
        assert row["confidence"] == pytest.approx(top / len(group))
        assert row["agreement"] == pytest.approx(top / len(group))
    assert set(result.labels.index) == set(frame["item"])
    assert result.method == "majority" and result.confusion is None and result.iterations is None


@pytest.mark.parametrize(
    ("classes", "expected"),
    [(["cat", "dog", "owl"], "cat"), (["dog", "cat", "owl"], "dog"), (["owl", "dog", "cat"], "dog")],
)
@pytest.mark.parametrize("row_order", [[0, 1, 2], [2, 1, 0]])
def test_majority_tie_goes_to_the_class_listed_first_and_is_flagged(classes, expected, row_order):
    frame = pd.DataFrame(
        {"item": ["x", "x", "y"], "rater": ["a", "b", "a"], "label": ["cat", "dog", "owl"]}
    ).iloc[row_order]
    labels = majority_vote(frame, classes=classes).labels
    assert labels.loc["x", "label"] == expected
    assert bool(labels.loc["x", "tie"]) and not bool(labels.loc["y", "tie"])
    assert labels.loc["x", "confidence"] == 0.5


def test_rater_quality_matches_a_pandas_computation(crowd):
    frame, truth = crowd
    gold = {i: int(truth[i]) for i in range(0, len(truth), 3)}  # a third of the items have gold
    result = majority_vote(frame, classes=CLASSES, gold=gold)

    joined = frame.join(result.labels["label"].rename("consensus"), on="item")
    joined["gold"] = joined["item"].map(gold)
    by_rater = joined.groupby("rater")
    quality = result.rater_quality
    pd.testing.assert_series_equal(
        quality["n_labels"], by_rater.size().rename("n_labels"), check_like=True, check_dtype=False
    )
    expected_agreement = by_rater.apply(lambda g: (g["label"] == g["consensus"]).mean())
    on_gold = joined.dropna(subset=["gold"])
    expected_gold = on_gold.groupby("rater").apply(lambda g: (g["label"] == g["gold"]).mean())
    for rater in QUALITY:
        assert quality.loc[rater, "agreement_with_consensus"] == pytest.approx(expected_agreement[rater])
        assert quality.loc[rater, "gold_accuracy"] == pytest.approx(expected_gold[rater])
    assert quality["estimated_accuracy"].isna().all()


def test_without_gold_accuracy_is_nan_and_raters_without_gold_items_too():
    frame = pd.DataFrame({"item": [1, 1, 2], "rater": ["a", "b", "c"], "label": [0, 0, 1]})
    assert majority_vote(frame, classes=[0, 1]).rater_quality["gold_accuracy"].isna().all()
    quality = majority_vote(frame, classes=[0, 1], gold={1: 1}).rater_quality
    assert quality.loc["a", "gold_accuracy"] == 0.0 and quality.loc["b", "gold_accuracy"] == 0.0
    assert np.isnan(quality.loc["c", "gold_accuracy"])


def test_one_class_only_is_fine():
    frame = pd.DataFrame({"item": [1, 1, 2], "rater": ["a", "b", "a"], "label": ["yes"] * 3})
    for method in ("majority", "dawid-skene"):
        labels = consensus(frame, classes=["yes"], method=method).labels
        assert labels["label"].tolist() == ["yes", "yes"]
        assert labels["confidence"].tolist() == [1.0, 1.0] and not labels["tie"].any()


# --------------------------------------------------------------------------- Dawid-Skene


def test_dawid_skene_follows_crowdkit_step_for_step(small_crowd):
    """Same start (vote shares), same EM: after n steps the posteriors must match crowd-kit's.

    crowd-kit does one more M-step after its last E-step, so its confusion and prior after n steps
    are ours after n + 1. Smoothing is made negligible because crowd-kit only clips at 1e-10.
    """
    frame, _ = small_crowd
    steps = 15
    ck = crowdkit_fit(frame, steps)
    ours = dawid_skene(frame, classes=CLASSES, max_iter=steps, tol=0, smoothing=1e-12)
    assert ours.iterations == steps and ours.converged is False

    theirs = ck.probas_.reindex(index=ours.labels.index, columns=CLASSES).to_numpy()
    np.testing.assert_allclose(ours.labels["confidence"], theirs.max(axis=1), atol=1e-8)
    assert (ours.labels["label"].to_numpy() == theirs.argmax(axis=1)).all()

    following = dawid_skene(frame, classes=CLASSES, max_iter=steps + 1, tol=0, smoothing=1e-12)
    for rater, matrix in following.confusion.items():
        their_matrix = ck.errors_.loc[rater].reindex(index=CLASSES, columns=CLASSES).to_numpy().T
        np.testing.assert_allclose(matrix, their_matrix, atol=1e-8)  # rows true class, columns given
    np.testing.assert_allclose(list(following.class_prior.values()), ck.priors_[CLASSES], atol=1e-8)


def test_default_smoothing_stays_close_to_crowdkit(small_crowd):
    frame, _ = small_crowd
    ck = crowdkit_fit(frame, 40)
    ours = dawid_skene(frame, classes=CLASSES, max_iter=40, tol=0)
    theirs = ck.probas_.reindex(index=ours.labels.index, columns=CLASSES).to_numpy()
    assert (ours.labels["label"].to_numpy() == theirs.argmax(axis=1)).mean() >= 0.99
    for rater, matrix in ours.confusion.items():
        their_matrix = ck.errors_.loc[rater].reindex(index=CLASSES, columns=CLASSES).to_numpy().T
        np.testing.assert_allclose(matrix, their_matrix, atol=0.02)


def test_dawid_skene_recovers_known_rater_quality_and_beats_majority(crowd):
    frame, truth = crowd
    gold = dict(enumerate(truth.tolist()))
    ds = dawid_skene(frame, classes=CLASSES, gold=gold)
    mv = majority_vote(frame, classes=CLASSES)

    ds_accuracy = (ds.labels["label"].to_numpy() == truth).mean()
    mv_accuracy = (mv.labels["label"].to_numpy() == truth).mean()
    assert ds.converged and ds_accuracy > 0.9 and ds_accuracy > mv_accuracy + 0.15
    quality = ds.rater_quality
    for rater, nominal in QUALITY.items():
        assert quality.loc[rater, "estimated_accuracy"] == pytest.approx(nominal, abs=0.03), rater
        assert quality.loc[rater, "estimated_accuracy"] == pytest.approx(
            quality.loc[rater, "gold_accuracy"], abs=0.03
        )
    adversary = np.array(ds.confusion["adversary"])
    assert all(adversary[c, (c + 1) % 3] > 0.95 for c in range(3))  # learnt: "always the next class"
    np.testing.assert_allclose(list(ds.class_prior.values()), np.bincount(truth) / len(truth), atol=0.02)


def test_dawid_skene_result_is_json_able_and_normalised(crowd):
    frame, _ = crowd
    result = dawid_skene(frame, classes=CLASSES)
    decoded = json.loads(json.dumps({"confusion": result.confusion, "class_prior": result.class_prior}))
    assert set(decoded["confusion"]) == set(QUALITY)
    for matrix in result.confusion.values():
        assert np.shape(matrix) == (3, 3)
        np.testing.assert_allclose(np.sum(matrix, axis=1), 1.0)
    assert sum(result.class_prior.values()) == pytest.approx(1.0)
    assert result.labels["confidence"].between(1 / 3, 1).all()
    assert list(result.labels.columns) == ["label", "confidence", "n_labels", "agreement", "tie"]
    assert list(result.rater_quality.columns) == [
        "n_labels",
        "agreement_with_consensus",
        "gold_accuracy",
        "estimated_accuracy",
    ]


def test_max_iter_caps_the_steps_and_reports_not_converged(crowd):
    frame, _ = crowd
    result = dawid_skene(frame, classes=CLASSES, max_iter=2)
    assert result.iterations == 2 and result.converged is False


def test_unanimous_raters_get_confident_labels():
    frame = pd.DataFrame(
        {
            "item": np.repeat(np.arange(50), 3),
            "rater": list("abc") * 50,
            "label": np.repeat(np.arange(50) % 2, 3),
        }
    )
    result = dawid_skene(frame, classes=[0, 1])
    assert (result.labels["label"].to_numpy() == np.arange(50) % 2).all()
    assert (result.labels["confidence"] > 0.99).all() and (result.labels["agreement"] == 1).all()


# --------------------------------------------------------------------------- dispatch and adjudication


@pytest.mark.parametrize(("method", "direct"), [("majority", majority_vote), ("dawid-skene", dawid_skene)])
def test_consensus_dispatches_to_the_named_method(small_crowd, method, direct):
    frame, _ = small_crowd
    result = consensus(frame, classes=CLASSES, method=method)
    assert isinstance(result, ConsensusResult) and result.method == method
    pd.testing.assert_frame_equal(result.labels, direct(frame, classes=CLASSES).labels)


ADJUDICATION = pd.DataFrame(
    [
        ("all-agree", "a", "x"), ("all-agree", "b", "x"), ("all-agree", "c", "x"),
        ("two-of-three", "a", "x"), ("two-of-three", "b", "x"), ("two-of-three", "c", "y"),
        ("tied", "a", "x"), ("tied", "b", "y"),
        ("single", "a", "y"),
    ],
    columns=["item", "rater", "label"],
)  # fmt: skip


@pytest.mark.parametrize(
    ("min_agreement", "expected"),
    [
        (0.0, ["tied"]),
        (0.5, ["tied"]),
        (0.7, ["two-of-three", "tied"]),
        (1.0, ["two-of-three", "tied"]),
    ],
)
def test_needs_adjudication_sends_low_agreement_and_ties(min_agreement, expected):
    result = majority_vote(ADJUDICATION, classes=["x", "y"])
    assert needs_adjudication(result, min_agreement=min_agreement) == expected


def test_dawid_skene_overruling_every_rater_goes_to_adjudication(crowd):
    frame, _ = crowd
    result = dawid_skene(frame, classes=CLASSES)
    overruled = result.labels.index[result.labels["agreement"] == 0].tolist()
    assert overruled  # the adversary's "next class" answers make some of these
    assert set(overruled) <= set(needs_adjudication(result, min_agreement=0.5))


@pytest.mark.parametrize("bad", [-0.1, 1.5, "high", None])
def test_needs_adjudication_refuses_a_bad_threshold(bad):
    result = majority_vote(ADJUDICATION, classes=["x", "y"])
    with pytest.raises(InputError, match="min_agreement must be a number between 0 and 1"):
        needs_adjudication(result, min_agreement=bad)


# --------------------------------------------------------------------------- bad input


def tiny(**columns):
    base = {"item": [1, 1, 2], "rater": ["a", "b", "a"], "label": ["x", "y", "x"]}
    return pd.DataFrame({**base, **columns})


BAD_INPUT = [
    ([("item", 1)], ["x", "y"], "must be a pandas DataFrame"),
    (tiny().drop(columns=["rater"]), ["x", "y"], "missing column.*rater"),
    (tiny().drop(columns=["item", "label"]), ["x", "y"], "missing column.*item, label"),
    (tiny().iloc[:0], ["x", "y"], "annotations has no rows"),
    (tiny(label=["x", None, "y"]), ["x", "y"], r"annotations.label has 1 missing value"),
    (tiny(rater=["a", np.nan, "a"]), ["x", "y"], r"annotations.rater has 1 missing value"),
    (tiny(label=["x", "maybe", "y"]), ["x", "y"], "label.*'maybe' not in classes"),
    (tiny(label=[0, 1, 7]), [0, 1], r"label\(s\) 7 not in classes \[0, 1\]"),
    (tiny(rater=["a", "a", "a"]), ["x", "y"], "rater 'a' labelled item 1 more than once"),
    (tiny(), [], "classes is empty"),
    (tiny(), ["x", "y", "x"], "classes has duplicate labels: 'x'"),
    (tiny(), "xy", "classes must be a sequence"),
    (tiny(), ["x", None], "classes contains a missing value"),
]


@pytest.mark.parametrize(("annotations", "classes", "message"), BAD_INPUT)
@pytest.mark.parametrize("method", [majority_vote, dawid_skene, agreement])
def test_bad_annotations_are_refused_with_the_cause(method, annotations, classes, message):
    with pytest.raises(InputError, match=message):
        method(annotations, classes=classes)


@pytest.mark.parametrize(
    ("gold", "message"),
    [
        ({1: "maybe"}, "gold has label.*'maybe' not in classes"),
        ({1: None}, "gold has a missing label"),
        ({"1": "x"}, "gold shares no item with annotations"),
        ([("1", "x")], "gold must be a mapping"),
    ],
)
@pytest.mark.parametrize("method", ["majority", "dawid-skene"])
def test_bad_gold_is_refused(method, gold, message):
    with pytest.raises(InputError, match=message):
        consensus(tiny(), classes=["x", "y"], method=method, gold=gold)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_iter": 0}, "max_iter must be a positive integer"),
        ({"max_iter": 2.5}, "max_iter must be a positive integer"),
        ({"tol": -1.0}, "tol must be a non-negative number"),
        ({"smoothing": 0.0}, "smoothing must be a positive number"),
    ],
)
def test_bad_dawid_skene_options_are_refused(options, message):
    with pytest.raises(InputError, match=message):
        dawid_skene(tiny(), classes=["x", "y"], **options)


def test_unknown_method_lists_the_methods():
    with pytest.raises(
        InputError, match="unknown consensus method 'mace'; use one of: majority, dawid-skene"
    ):
        consensus(tiny(), classes=["x", "y"], method="mace")
