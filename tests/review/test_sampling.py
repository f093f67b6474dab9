"""uncertainty_scores and select_for_review: formulas, selection order, stratification, control weights."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import entropy as scipy_entropy
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mlflow_hitl.errors import InputError
from mlflow_hitl.review import control_rows, select_among
from mlflow_hitl.review._sampling import STRATEGIES, select_for_review, uncertainty_scores

DOC = Path(__file__).resolve().parents[2] / "docs" / "review" / "sampling.md"
SCORED = [s for s in STRATEGIES if s != "random"]


# --------------------------------------------------------------------------- formulas, row by row


def _least_confidence(p):
    return 1 - max(p)


def _margin(p):
    first, second = sorted(p, reverse=True)[:2]
    return 1 - (first - second)


def _entropy(p):
    return -sum(x * math.log(x) for x in p if x > 0) / math.log(len(p))


FORMULAS = {"least-confidence": _least_confidence, "margin": _margin, "entropy": _entropy}

TINY = [
    [1.0, 0.0],
    [0.5, 0.5],
    [0.8, 0.2],
    [0.3, 0.7],
    [0.7, 0.2, 0.1],
    [1 / 3, 1 / 3, 1 / 3],
    [0.0, 0.6, 0.4],
    [0.25, 0.25, 0.25, 0.25],
    [0.1, 0.2, 0.3, 0.4],
]


@pytest.mark.parametrize("strategy", SCORED)
@pytest.mark.parametrize("p", TINY, ids=lambda p: "-".join(f"{x:.2f}" for x in p))
def test_each_score_matches_its_formula_on_hand_made_rows(strategy, p):
    assert uncertainty_scores(np.array([p]), strategy=strategy)[0] == pytest.approx(FORMULAS[strategy](p))


@pytest.mark.parametrize(
    ("p", "expected"),
    [
        # (least-confidence, margin, entropy), worked out by hand
        ([1.0, 0.0, 0.0], (0.0, 0.0, 0.0)),
        ([0.5, 0.5, 0.0], (0.5, 1.0, math.log(2) / math.log(3))),
        (
            [0.6, 0.3, 0.1],
            (0.4, 0.7, -(0.6 * math.log(0.6) + 0.3 * math.log(0.3) + 0.1 * math.log(0.1)) / math.log(3)),
        ),
        ([0.25, 0.25, 0.25, 0.25], (0.75, 1.0, 1.0)),
    ],
)
def test_known_answers(p, expected):
    for strategy, value in zip(SCORED, expected, strict=True):
        assert uncertainty_scores(np.array([p]), strategy=strategy)[0] == pytest.approx(value)


def test_entropy_agrees_with_scipy_on_random_probabilities_with_zeros():
    rng = np.random.default_rng(0)
    for k in (2, 3, 7):
        prob = rng.dirichlet(np.full(k, 0.3), size=500)
        prob[:50, 0] = 0.0
        prob /= prob.sum(axis=1, keepdims=True)
        expected = scipy_entropy(prob, axis=1) / np.log(k)
        np.testing.assert_allclose(uncertainty_scores(prob, strategy="entropy"), expected, atol=1e-12)


@pytest.mark.parametrize("strategy", SCORED)
def test_scores_lie_in_unit_interval_and_one_dimensional_input_is_binary(strategy):
    rng = np.random.default_rng(1)
    prob = rng.dirichlet([0.5, 0.5, 0.5], size=1000)
    scores = uncertainty_scores(prob, strategy=strategy)
    assert scores.min() >= 0 and scores.max() <= 1
    positive = rng.random(200)
    np.testing.assert_allclose(
        uncertainty_scores(positive, strategy=strategy),
        uncertainty_scores(np.column_stack([1 - positive, positive]), strategy=strategy),
    )


def test_binary_scores_all_rank_rows_the_same_way():
    positive = np.random.default_rng(2).random(300)
    ranks = [
        pd.Series(uncertainty_scores(positive, strategy=s)).rank(method="first").to_numpy() for s in SCORED
    ]
    for other in ranks[1:]:
        np.testing.assert_array_equal(ranks[0], other)


# --------------------------------------------------------------------------- real data


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.5, random_state=0, stratify=y)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.05)).fit(X_train, y_train)
    return X_test, y_test, model.predict_proba(X_test)


def test_least_confidence_picks_are_the_top_scores_outside_control_and_edge_rows(cancer):
    X, _, prob = cancer
    extreme_radius = X[:, 0] > np.quantile(X[:, 0], 0.97)
    queue = select_for_review(
        prob, size=60, random_share=0.25, edge_cases={"extreme_radius": extreme_radius}, seed=3
    )
    score = 1 - prob.max(axis=1)
    np.testing.assert_allclose(queue["score"], score[queue["row"]])

    edge = queue[queue["reason"] == "edge-case:extreme_radius"]
    control = queue[queue["reason"] == "random-control"]
    picked = queue[queue["reason"] == "least-confidence"]
    assert set(edge["row"]) == set(np.flatnonzero(extreme_radius))
    assert len(control) == 15 and len(picked) == 60 - 15 - len(edge)

    others = pd.Series(score).drop(index=np.concatenate([edge["row"], control["row"]]))
    expected = others.sort_values(ascending=False, kind="stable").index[: len(picked)]
    assert picked["row"].tolist() == expected.tolist()  # same rows, same order
    assert picked["score"].is_monotonic_decreasing


def test_uncertain_rows_are_less_accurate_than_random_control_rows(cancer):
    _, y, prob = cancer
    correct = prob.argmax(axis=1) == y
    uncertain, control = [], []
    for seed in range(30):
        queue = select_for_review(prob, size=40, random_share=0.5, seed=seed)
        uncertain.append(correct[queue.loc[queue["reason"] == "least-confidence", "row"]].mean())
        control.append(correct[queue.loc[queue["reason"] == "random-control", "row"]].mean())
    assert np.mean(uncertain) + 0.15 < np.mean(control)
    assert np.mean(control) == pytest.approx(correct.mean(), abs=0.03)


def test_horvitz_thompson_estimate_from_control_rows_is_unbiased(cancer):
    X, y, prob = cancer
    correct = prob.argmax(axis=1) == y
    edge = X[:, 0] > np.quantile(X[:, 0], 0.9)
    estimates = []
    for seed in range(300):
        queue = select_for_review(prob, size=30, random_share=0.5, edge_cases={"big": edge}, seed=seed)
        control = queue[queue["reason"] == "random-control"]
        estimates.append((correct[control["row"]] / control["inclusion_probability"]).sum())
    truth = correct[~edge].sum()
    standard_error = np.std(estimates) / np.sqrt(len(estimates))
    assert abs(np.mean(estimates) - truth) < 4 * standard_error


# --------------------------------------------------------------------------- stratification


def test_stratified_by_colour_gives_each_group_its_share(arrests_split, arrests_model):
    _, real, _ = arrests_split
    prob = arrests_model.predict_proba(real.drop(columns="released"))
    colour = real["colour"]
    queue = select_for_review(prob, size=200, random_share=0.1, groups=colour, seed=0)

    picked = queue[queue["reason"] == "least-confidence"]
    assert picked["group"].value_counts().to_dict() == {"White": 90, "Black": 90}
    assert (queue["group"].to_numpy() == colour.to_numpy()[queue["row"]]).all()

    score = pd.Series(1 - prob.max(axis=1))
    rest = score.drop(index=queue.loc[queue["reason"] == "random-control", "row"])
    for group, rows in picked.groupby("group")["row"]:
        top = rest[colour.loc[rest.index] == group].nlargest(90, keep="first").index
        assert set(rows) == set(top), group


def test_a_small_group_gives_all_its_rows_and_the_rest_go_to_the_others(arrests_split, arrests_model):
    _, real, _ = arrests_split
    few_black = pd.concat([real[real["colour"] == "White"], real[real["colour"] == "Black"].head(15)])
    prob = arrests_model.predict_proba(few_black.drop(columns="released"))
    queue = select_for_review(prob, size=120, random_share=0.0, groups=few_black["colour"].to_numpy())
    assert queue["group"].value_counts().to_dict() == {"White": 105, "Black": 15}


@pytest.mark.parametrize(
    ("sizes", "k", "expected"),
    [
        ({"a": 5, "b": 5}, 6, {"a": 3, "b": 3}),
        ({"a": 5, "b": 2, "c": 10}, 8, {"a": 3, "b": 2, "c": 3}),
        ({"a": 1, "b": 1, "c": 10}, 9, {"a": 1, "b": 1, "c": 7}),
        ({"a": 4, "b": 4, "c": 4}, 12, {"a": 4, "b": 4, "c": 4}),
        ({"b": 30, "a": 3}, 3, {"a": 2, "b": 1}),  # leftover to the group whose next row is more uncertain
    ],
)
def test_equal_split_table(sizes, k, expected):
    # Least-confidence score 0.5 - 0.01 i - offset for a group's i-th row: each group's rows fall in row
    # order, and group "a" is a hair more uncertain at every level, so it wins a leftover row.
    groups = np.concatenate([[g] * n for g, n in sizes.items()])
    positive = np.concatenate(
        [0.5 + np.arange(n) * 0.01 + (0.001 if g == "a" else 0.002) for g, n in sizes.items()]
    )
    queue = select_for_review(positive, size=k, random_share=0.0, groups=groups)
    assert queue["group"].value_counts().to_dict() == expected
    for g, rows in queue.groupby("group")["row"]:
        own = np.flatnonzero(groups == g)
        assert sorted(rows) == own[: expected[g]].tolist()  # each group's most uncertain rows


def test_missing_groups_form_their_own_group():
    groups = pd.Series(["x", None, "y", np.nan, "x", "y"])
    queue = select_for_review(np.full(6, 0.5), size=6, random_share=0.0, groups=groups)
    assert queue["group"].value_counts().to_dict() == {"x": 2, "missing": 2, "y": 2}
    assert set(queue.loc[queue["group"] == "missing", "row"]) == {1, 3}


def test_groups_only_label_rows_under_the_random_strategy():
    groups = np.array(["a"] * 90 + ["b"] * 10)
    queue = select_for_review(np.full(100, 0.3), size=20, strategy="random", groups=groups, seed=4)
    assert (queue["reason"] == "random-control").all()
    assert (queue["group"].to_numpy() == groups[queue["row"]]).all()
    assert queue["score"].isna().all()
    assert (queue["inclusion_probability"] == 20 / 100).all()


# --------------------------------------------------------------------------- selection rules


@pytest.mark.parametrize(
    ("size", "share", "n_control"),
    [(10, 0.1, 1), (10, 0.25, 3), (10, 0.0, 0), (2, 0.01, 1), (1, 0.01, 0), (1, 0.5, 1), (20, 1.0, 20)],
)
def test_control_count_rounds_half_up_with_at_least_one(size, share, n_control):
    queue = select_for_review(np.linspace(0.01, 0.99, 50), size=size, random_share=share)
    control = queue[queue["reason"] == "random-control"]
    assert len(queue) == size and len(control) == n_control
    assert (control["inclusion_probability"] == n_control / 50).all()
    assert queue.loc[queue["reason"] != "random-control", "inclusion_probability"].isna().all()


def test_random_control_rows_are_drawn_with_their_stated_probability():
    n, edge = 20, np.zeros(20, dtype=bool)
    edge[[0, 7]] = True
    hits = np.zeros(n)
    trials = 1000
    for seed in range(trials):
        queue = select_for_review(
            np.linspace(0.05, 0.95, n), size=8, random_share=0.5, edge_cases={"e": edge}, seed=seed
        )
        control = queue[queue["reason"] == "random-control"]
        assert (control["inclusion_probability"] == 4 / 18).all()
        hits[control["row"]] += 1
    frequency = hits / trials
    assert (frequency[edge] == 0).all()
    tolerance = 4.5 * math.sqrt((4 / 18) * (14 / 18) / trials)
    np.testing.assert_allclose(frequency[~edge], 4 / 18, atol=tolerance)


def test_edge_cases_come_first_with_the_first_matching_name():
    positive = np.array([0.5, 0.9, 0.6, 0.99, 0.55, 0.7])
    rare = np.array([False, True, False, True, False, False])
    late = np.array([False, True, False, False, False, True])
    queue = select_for_review(positive, size=4, random_share=0.0, edge_cases={"rare": rare, "late": late})
    assert queue["reason"].tolist() == [
        "edge-case:late",
        "edge-case:rare",
        "edge-case:rare",
        "least-confidence",
    ]
    assert queue["row"].tolist() == [5, 1, 3, 0]  # edge rows most uncertain first, then row 0 (score 0.5)
    assert queue["rank"].tolist() == [1, 2, 3, 4]


def test_too_many_edge_rows_keeps_the_most_uncertain_of_them():
    positive = np.array([0.5, 0.9, 0.6, 0.99, 0.55, 0.7])
    mask = np.array([True, True, True, True, False, True])
    queue = select_for_review(positive, size=3, random_share=0.5, edge_cases={"m": mask})
    assert queue["row"].tolist() == [0, 2, 5]
    assert (queue["reason"] == "edge-case:m").all()


def test_random_strategy_keeps_edge_cases_and_draws_overflowing_ones_uniformly():
    mask = np.arange(100) % 10 == 0  # 10 edge rows
    fits = select_for_review(np.full(100, 0.3), size=25, strategy="random", edge_cases={"m": mask}, seed=1)
    assert fits["row"].head(10).tolist() == np.flatnonzero(mask).tolist()
    assert (fits["reason"].iloc[10:] == "random-control").all()
    assert (fits["inclusion_probability"].iloc[10:] == 15 / 90).all()
    draws = [
        select_for_review(np.full(100, 0.3), size=4, strategy="random", edge_cases={"m": mask}, seed=s)
        for s in range(5)
    ]
    assert all((d["reason"] == "edge-case:m").all() and mask[d["row"]].all() for d in draws)
    assert len({tuple(d["row"]) for d in draws}) > 1  # a draw, not always the first four


def test_ties_are_broken_by_row_position():
    queue = select_for_review(np.full(10, 0.5), size=4, random_share=0.0)
    assert queue["row"].tolist() == [0, 1, 2, 3]


def test_size_above_the_row_count_selects_every_row_once():
    prob = np.random.default_rng(5).dirichlet([1, 1, 1], size=30)
    groups = np.repeat(["a", "b", "c"], 10)
    first_two = np.arange(30) < 2
    queue = select_for_review(
        prob, size=1000, strategy="entropy", groups=groups, random_share=0.2, edge_cases={"first": first_two}
    )
    assert sorted(queue["row"]) == list(range(30))
    assert queue["reason"].value_counts().to_dict() == {
        "entropy": 22,
        "random-control": 6,
        "edge-case:first": 2,
    }
    assert (queue.loc[queue["reason"] == "random-control", "inclusion_probability"] == 6 / 28).all()


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_columns_and_rank(strategy):
    prob = np.random.default_rng(6).dirichlet([1, 1], size=50)
    plain = select_for_review(prob, size=10, strategy=strategy)
    grouped = select_for_review(prob, size=10, strategy=strategy, groups=np.arange(50) % 3)
    assert plain.columns.tolist() == ["row", "reason", "score", "inclusion_probability", "rank"]
    assert grouped.columns.tolist() == ["row", "reason", "score", "group", "inclusion_probability", "rank"]
    assert plain["rank"].tolist() == list(range(1, 11))
    if strategy != "random":
        expected = uncertainty_scores(prob, strategy=strategy)[plain["row"]]
        np.testing.assert_allclose(plain["score"], expected)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_same_seed_same_queue_other_seed_other_control_rows(strategy):
    prob = np.random.default_rng(7).dirichlet([1, 1, 1], size=500)
    groups = np.random.default_rng(8).choice(["a", "b", None], size=500)
    a = select_for_review(prob, size=60, strategy=strategy, groups=groups, random_share=0.3, seed=11)
    b = select_for_review(prob, size=60, strategy=strategy, groups=groups, random_share=0.3, seed=11)
    c = select_for_review(prob, size=60, strategy=strategy, groups=groups, random_share=0.3, seed=12)
    pd.testing.assert_frame_equal(a, b)
    assert set(a.loc[a["reason"] == "random-control", "row"]) != set(
        c.loc[c["reason"] == "random-control", "row"]
    )
    assert not a["row"].duplicated().any()


def test_many_rows_with_groups_and_edge_cases():
    rng = np.random.default_rng(9)
    n = 200_000
    prob = rng.dirichlet([1, 1, 1], size=n)
    groups = rng.choice(["a", "b", "c", "d"], size=n)
    rare = rng.random(n) < 1e-4
    queue = select_for_review(prob, size=500, strategy="margin", groups=groups, edge_cases={"rare": rare})
    assert len(queue) == 500 and not queue["row"].duplicated().any()
    assert set(queue.loc[queue["reason"] == "edge-case:rare", "row"]) == set(np.flatnonzero(rare))
    margin = queue[queue["reason"] == "margin"]
    counts = margin["group"].value_counts()
    assert counts.max() - counts.min() <= 1


# --------------------------------------------------------------------------- bad input


GOOD = np.array([[0.9, 0.1], [0.4, 0.6], [0.5, 0.5], [0.2, 0.8]])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"size": 0}, "size must be at least 1, got 0"),
        ({"size": -3}, "size must be at least 1"),
        ({"size": 2.5}, "size must be an integer"),
        ({"size": True}, "size must be an integer"),
        ({"random_share": -0.1}, r"random_share must be a number in \[0, 1\]"),
        ({"random_share": 1.5}, r"random_share must be a number in \[0, 1\]"),
        ({"random_share": float("nan")}, r"random_share must be a number in \[0, 1\]"),
        ({"random_share": "half"}, r"random_share must be a number in \[0, 1\]"),
        (
            {"strategy": "bald"},
            "strategy 'bald' is unknown; use one of least-confidence, margin, entropy, random",
        ),
        ({"groups": ["a", "b"]}, "groups has 2 entries but y_prob has 4 rows"),
        ({"groups": np.zeros((4, 2))}, "groups must be one-dimensional"),
        (
            {"edge_cases": {"x": np.array([True, False])}},
            r"edge_cases\['x'\] has 2 entries but y_prob has 4 rows",
        ),
        (
            {"edge_cases": {"x": np.array([1, 0, 0, 1])}},
            r"edge_cases\['x'\] must be a boolean mask, got dtype int64",
        ),
        ({"edge_cases": {"x": [0.0, 1.0, 0.0, 0.0]}}, r"edge_cases\['x'\] must be a boolean mask"),
        (
            {"edge_cases": {"x": pd.Series([True, None, False, True], dtype="boolean")}},
            r"edge_cases\['x'\] has missing values",
        ),
        ({"edge_cases": [np.ones(4, dtype=bool)]}, "edge_cases must map a name to a boolean mask"),
        ({"edge_cases": {3: np.ones(4, dtype=bool)}}, "edge_cases names must be non-empty strings"),
        ({"seed": 1.5}, "seed must be an integer"),
    ],
)
def test_bad_options_are_refused(kwargs, message):
    with pytest.raises(InputError, match=message):
        select_for_review(GOOD, **{"size": 2, **kwargs})


@pytest.mark.parametrize(
    ("y_prob", "message"),
    [
        (np.array([[0.9, 0.3]]), "y_prob rows must sum to 1"),
        (np.array([[1.0], [1.0]]), "y_prob has one column"),
        (np.array([[np.nan, 1.0]]), "y_prob contains NaN"),
    ],
)
def test_bad_probabilities_are_refused(y_prob, message):
    with pytest.raises(InputError, match=message):
        select_for_review(y_prob, size=1)
    with pytest.raises(InputError, match=message):
        uncertainty_scores(y_prob, strategy="margin")


@pytest.mark.parametrize(
    ("strategy", "message"),
    [("random", "strategy 'random' has no uncertainty score"), ("confidence", "use one of least-confidence")],
)
def test_uncertainty_scores_refuses_non_scores(strategy, message):
    with pytest.raises(InputError, match=message):
        uncertainty_scores(GOOD, strategy=strategy)


def test_nullable_boolean_mask_without_missing_values_is_accepted():
    mask = pd.Series([False, True, False, False], dtype="boolean")
    queue = select_for_review(GOOD, size=1, edge_cases={"x": mask})
    assert queue["row"].tolist() == [1]


# --------------------------------------------------------------------------- rows ranked elsewhere


def _best_candidates(score, groups, control, n_uncertain):
    """What an engine ranking rows where they live hands over: the control rows and each group's best."""
    rows = pd.DataFrame({"row": np.arange(len(score)), "score": score})
    if groups is not None:
        rows["group"] = groups
    rest = rows[~rows["row"].isin(control)].sort_values(["score", "row"], ascending=[False, True])
    by = rest["group"].fillna("missing") if groups is not None else np.zeros(len(rest))
    best = rest[rest.groupby(by).cumcount() < n_uncertain]
    return pd.concat([rows[rows["row"].isin(control)], best]).sample(frac=1, random_state=0)


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("grouped", [False, True])
@pytest.mark.parametrize("random_share", [0.0, 0.3])
def test_select_among_the_best_candidates_is_the_full_selection(strategy, grouped, random_share):
    rng = np.random.default_rng(7)
    n = 500
    # Rounded probabilities: many exact ties, so the tie-break by position is exercised.
    prob = rng.dirichlet([1, 1, 1], n).round(1)
    prob = prob / prob.sum(axis=1, keepdims=True)
    groups = rng.choice(np.array(["a", "b", "c", None], dtype=object), n, p=[0.6, 0.3, 0.05, 0.05])
    groups = groups if grouped else None
    expected = select_for_review(prob, size=40, strategy=strategy, random_share=random_share, groups=groups)
    score = np.full(n, np.nan) if strategy == "random" else uncertainty_scores(prob, strategy=strategy)
    control, n_uncertain = control_rows(n, size=40, strategy=strategy, random_share=random_share)
    assert len(control) + n_uncertain == 40
    candidates = _best_candidates(score, groups, control, n_uncertain)
    assert len(candidates) < n
    chosen = select_among(candidates, n_rows=n, size=40, strategy=strategy, random_share=random_share)
    pd.testing.assert_frame_equal(chosen, expected)


def test_select_among_refuses_candidates_without_the_control_rows():
    control, _ = control_rows(100, size=10, random_share=0.5)
    candidates = pd.DataFrame({"row": np.setdiff1d(np.arange(100), control[:1]), "score": 0.5})
    with pytest.raises(InputError, match="must include every random-control row"):
        select_among(candidates, n_rows=100, size=10, random_share=0.5)


# --------------------------------------------------------------------------- the docs


def test_the_documented_example_prints_what_the_page_shows(capsys):
    text = DOC.read_text()
    code = re.search(r"## Example\n\n```python\n(.*?)```", text, re.DOTALL).group(1)
    shown = re.search(r"```text\n(.*?)```", text[text.index("## Example") :], re.DOTALL).group(1)
    # The page imports the public name; until review/__init__ exports it, run it from the private module.
    code = code.replace("from mlflow_hitl.review import", "from mlflow_hitl.review._sampling import")
    exec(compile(code, str(DOC), "exec"), {})
    assert capsys.readouterr().out == shown
    for strategy in STRATEGIES:
        assert f"`{strategy}`" in text
