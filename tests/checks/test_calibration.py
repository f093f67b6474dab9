"""calibration_metrics and calibration_check, cross-checked against scikit-learn."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.calibration import calibration_curve
from sklearn.compose import make_column_transformer
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, brier_score_loss, log_loss
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklego.datasets import load_arrests

from mlflow_hitl import Status
from mlflow_hitl.checks import calibration_check, calibration_metrics
from mlflow_hitl.config import CalibrationConfig
from mlflow_hitl.errors import ConfigError, InputError


def _holdout_predictions(load):
    X, y = load(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.5, random_state=0, stratify=y)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.05)).fit(X_train, y_train)
    return y_test, model.predict_proba(X_test), model.classes_


@pytest.fixture(scope="module")
def binary():
    return _holdout_predictions(load_breast_cancer)


@pytest.fixture(scope="module")
def multiclass():
    return _holdout_predictions(load_wine)


def _top_label(y, prob, classes):
    pred = np.asarray(classes)[prob.argmax(axis=1)]
    return prob.max(axis=1), (pred == y).astype(int)


# --------------------------------------------------------------------------- against scikit-learn


@pytest.mark.parametrize(("strategy", "bins_key"), [("uniform", "bins"), ("quantile", "adaptive_bins")])
def test_bins_reproduce_sklearn_calibration_curve(binary, strategy, bins_key):
    y, prob, classes = binary
    result = calibration_check(y, prob, classes=classes, config=CalibrationConfig(n_bins=10))
    conf, correct = _top_label(y, prob, classes)
    prob_true, prob_pred = calibration_curve(correct, conf, n_bins=10, strategy=strategy)
    bins = result.details[bins_key]
    ours_acc = [a for a, c in zip(bins["accuracy"], bins["counts"], strict=True) if c]
    ours_conf = [v for v, c in zip(bins["confidence"], bins["counts"], strict=True) if c]
    np.testing.assert_allclose(ours_acc, prob_true, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours_conf, prob_pred, rtol=0, atol=1e-12)
    assert sum(bins["counts"]) == len(y)
    # ECE from sklearn's per-bin numbers and our counts (equal-width bins only hold for "uniform").
    counts = np.array([c for c in bins["counts"] if c])
    expected = np.sum(counts / len(y) * np.abs(prob_true - prob_pred))
    key = "ece" if strategy == "uniform" else "adaptive_ece"
    assert result.metrics[key] == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("dataset", ["binary", "multiclass"])
def test_brier_log_loss_accuracy_match_sklearn(dataset, request):
    y, prob, classes = request.getfixturevalue(dataset)
    m = calibration_metrics(y, prob, classes=classes)
    if len(classes) == 2:
        brier = brier_score_loss(y, prob[:, 1], pos_label=classes[1])
    else:
        brier = brier_score_loss(y, prob, labels=classes, scale_by_half=False)
    assert m["brier"] == pytest.approx(brier, rel=1e-12)
    assert m["log_loss"] == pytest.approx(log_loss(y, prob, labels=classes), rel=1e-12)
    assert m["accuracy"] == pytest.approx(accuracy_score(y, classes[prob.argmax(axis=1)]), abs=1e-15)
    assert m["mean_confidence"] == pytest.approx(prob.max(axis=1).mean())


def test_log_loss_is_finite_with_zero_and_one_probabilities():
    y = np.array(["a", "b", "a", "b"])
    prob = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])  # two confident misses
    m = calibration_metrics(y, prob, classes=["a", "b"])
    assert np.isfinite(m["log_loss"])
    assert m["log_loss"] == pytest.approx(log_loss(y, prob, labels=["a", "b"]), rel=1e-9)


# --------------------------------------------------------------------------- formulas by hand


def _hand_errors(conf, correct, n_bins):
    """ECE, MCE and OE straight from the definitions, one bin at a time."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    n, ece, oe, mce = len(conf), 0.0, 0.0, 0.0
    for b in range(n_bins):
        lo, hi = edges[b], edges[b + 1]
        in_bin = [
            (c, k) for c, k in zip(conf, correct, strict=True) if (lo < c <= hi) or (b == 0 and c == lo)
        ]
        if not in_bin:
            continue
        acc_b = sum(k for _, k in in_bin) / len(in_bin)
        conf_b = sum(c for c, _ in in_bin) / len(in_bin)
        ece += len(in_bin) / n * abs(acc_b - conf_b)
        oe += len(in_bin) / n * conf_b * max(conf_b - acc_b, 0.0)
        mce = max(mce, abs(acc_b - conf_b))
    return ece, mce, oe


@pytest.mark.parametrize(
    ("p_positive", "y", "n_bins"),
    [
        ([0.9, 0.85, 0.3, 0.65, 0.55, 0.95, 0.15, 0.75], [1, 0, 0, 0, 1, 1, 1, 1], 5),
        ([0.99, 0.97, 0.93, 0.91, 0.02, 0.05, 0.45, 0.35], [0, 1, 1, 0, 0, 1, 0, 0], 10),
        ([0.7, 0.7, 0.7, 0.7], [1, 1, 1, 0], 3),
    ],
    ids=["mixed", "overconfident", "one-bin"],
)
def test_ece_mce_oe_by_hand(p_positive, y, n_bins):
    p = np.asarray(p_positive)
    prob = np.column_stack([1 - p, p])
    conf = np.maximum(p, 1 - p)
    correct = ((p > 0.5).astype(int) == np.asarray(y)).astype(float)
    ece, mce, oe = _hand_errors(conf, correct, n_bins)
    m = calibration_metrics(y, prob, classes=[0, 1], n_bins=n_bins)
    assert m["ece"] == pytest.approx(ece, abs=1e-12)
    assert m["mce"] == pytest.approx(mce, abs=1e-12)
    assert m["overconfidence_error"] == pytest.approx(oe, abs=1e-12)
    assert 0 <= m["overconfidence_error"] <= m["ece"] <= m["mce"] + 1e-12


def _calibrated(n, k, seed):
    """Probabilities from a Dirichlet and labels drawn from them: calibrated by construction."""
    rng = np.random.default_rng(seed)
    prob = rng.dirichlet(np.full(k, 0.5), size=n)
    y = (prob.cumsum(axis=1) > rng.random((n, 1))).argmax(axis=1)
    return y, prob


@pytest.mark.parametrize("k", [2, 4])
def test_perfectly_calibrated_data_has_near_zero_ece_and_passes(k):
    y, prob = _calibrated(200_000, k, seed=k)
    result = calibration_check(y, prob, classes=list(range(k)))
    assert result.metrics["ece"] < 0.01
    assert result.metrics["adaptive_ece"] < 0.01
    assert result.metrics["overconfidence_error"] < 0.01
    assert result.status is Status.PASSED
    assert "Calibrated" in result.summary


def _sharpen(prob, power):
    sharp = prob**power
    return sharp / sharp.sum(axis=1, keepdims=True)


def test_overconfident_predictions_have_positive_oe_and_fail():
    y, prob = _calibrated(20_000, 3, seed=1)
    result = calibration_check(y, _sharpen(prob, 4.0), classes=[0, 1, 2])
    assert result.metrics["overconfidence_error"] > 0.05
    assert result.metrics["mean_confidence"] > result.metrics["accuracy"]
    assert result.status is Status.FAILED
    assert "overconfidence error" in result.summary


def test_underconfident_predictions_fail_on_ece_but_have_no_oe():
    y, prob = _calibrated(20_000, 3, seed=2)
    result = calibration_check(y, _sharpen(prob, 0.4), classes=[0, 1, 2])
    assert result.metrics["overconfidence_error"] < 1e-3
    assert result.metrics["ece"] > 0.05
    assert result.status is Status.FAILED
    assert result.details["reasons"][0].startswith("ECE")


# --------------------------------------------------------------------------- real models and groups


@pytest.mark.parametrize("dataset", ["binary", "multiclass"])
def test_real_model_result_shape(dataset, request):
    y, prob, classes = request.getfixturevalue(dataset)
    result = calibration_check(y, prob, classes=classes)
    assert result.name == "calibration"
    assert result.status in {Status.PASSED, Status.FAILED}
    assert result.metrics["count"] == len(y)
    assert result.thresholds["max_ece"] == CalibrationConfig().max_ece
    assert result.artifacts["reliability.png"].startswith(b"\x89PNG")
    assert len(result.details["bins"]["edges"]) == CalibrationConfig().n_bins + 1
    assert result.details["brier"].startswith("binary" if len(classes) == 2 else "multiclass")
    result.to_json()  # details are JSON-serialisable


@pytest.fixture(scope="module")
def arrests():
    df = load_arrests(as_frame=True)
    features = ["colour", "year", "age", "sex", "employed", "citizen", "checks"]
    train, test = train_test_split(df, test_size=0.5, random_state=0)
    categorical = ["colour", "sex", "employed", "citizen"]
    model = make_pipeline(
        make_column_transformer(
            (OneHotEncoder(handle_unknown="ignore"), categorical), remainder=StandardScaler()
        ),
        LogisticRegression(),
    ).fit(train[features], train["released"])
    return test.reset_index(drop=True), model.predict_proba(test[features]), model.classes_


def test_groups_on_arrests(arrests):
    test, prob, classes = arrests
    groups = test[["colour", "sex", "age"]]
    result = calibration_check(test["released"], prob, classes=classes, groups=groups)
    conf, correct = _top_label(test["released"].to_numpy(), prob, classes)
    for feature in ["colour", "sex"]:
        for value, count in test[feature].value_counts().items():
            mask = (test[feature] == value).to_numpy()
            assert result.metrics[f"{feature}.{value}.count"] == count
            assert result.metrics[f"{feature}.{value}.accuracy"] == pytest.approx(correct[mask].mean())
            expected_ece = calibration_metrics(test["released"][mask], prob[mask], classes=classes)["ece"]
            assert result.metrics[f"{feature}.{value}.ece"] == pytest.approx(expected_ece)
    # Small age groups: a count, no judged metrics, listed as insufficient.
    small = test["age"].value_counts()
    small = small[small < CalibrationConfig().min_samples]
    assert len(small) > 0
    for age, count in small.items():
        assert result.metrics[f"age.{age}.count"] == count
        assert f"age.{age}.ece" not in result.metrics
        assert result.details["groups"]["age"][str(age)]["status"] == "insufficient_evidence"
    listed = {(g["feature"], g["group"]) for g in result.details["insufficient_groups"]}
    assert {("age", str(a)) for a in small.index} <= listed
    result.to_json()


def test_a_miscalibrated_group_needs_review_while_overall_passes():
    y_a, prob_a = _calibrated(40_000, 2, seed=3)
    rng = np.random.default_rng(4)
    n_b = 1_000
    prob_b = np.column_stack([np.full(n_b, 0.05), np.full(n_b, 0.95)])  # 95% sure of class 1 ...
    y_b = (rng.random(n_b) < 0.6).astype(int)  # ... right 60% of the time
    y = np.concatenate([y_a, y_b])
    groups = pd.DataFrame({"site": ["a"] * len(y_a) + ["b"] * n_b})
    result = calibration_check(y, np.vstack([prob_a, prob_b]), classes=[0, 1], groups=groups)
    assert result.metrics["ece"] < CalibrationConfig().max_ece
    assert result.metrics["site.b.overconfidence_error"] > CalibrationConfig().max_overconfidence_error
    assert result.status is Status.NEEDS_REVIEW
    assert "site=b" in result.summary
    assert result.details["groups"]["site"]["a"]["status"] == "passed"


def test_group_values_are_sanitised_into_distinct_metric_keys():
    y, prob = _calibrated(400, 2, seed=5)
    groups = pd.DataFrame({"region (EU)": ["a+b"] * 200 + ["a*b"] * 200})
    result = calibration_check(y, prob, classes=[0, 1], groups=groups)
    assert result.metrics["region_EU.a_b.count"] == 200
    assert result.metrics["region_EU.a_b_2.count"] == 200
    assert set(result.details["groups"]["region (EU)"]) == {"a+b", "a*b"}


# --------------------------------------------------------------------------- sizes and bad input


def test_too_few_rows_is_insufficient_evidence():
    y, prob = _calibrated(20, 2, seed=6)
    result = calibration_check(y, prob, classes=[0, 1])
    assert result.status is Status.INSUFFICIENT_EVIDENCE
    assert "20" in result.summary and "50" in result.summary


def test_one_class_present_still_computes():
    y = np.ones(100, dtype=int)
    prob = np.column_stack([np.linspace(0.0, 0.4, 100), np.linspace(1.0, 0.6, 100)])
    m = calibration_metrics(y, prob, classes=[0, 1])
    assert m["accuracy"] == 1.0
    assert m["log_loss"] == pytest.approx(log_loss(y, prob, labels=[0, 1]))
    assert m["brier"] == pytest.approx(brier_score_loss(y, prob[:, 1], pos_label=1))
    assert m["overconfidence_error"] == 0.0


def test_one_dimensional_probability_is_the_positive_class():
    y, prob = _calibrated(500, 2, seed=7)
    one_column = calibration_metrics(y, prob[:, 1], classes=[0, 1])
    assert one_column == pytest.approx(calibration_metrics(y, prob, classes=[0, 1]), abs=1e-12)


_GOOD_Y = np.array([0, 1, 1, 0])
_GOOD_P = np.array([[0.8, 0.2], [0.3, 0.7], [0.4, 0.6], [0.9, 0.1]])


@pytest.mark.parametrize(
    ("y", "prob", "classes", "match"),
    [
        (_GOOD_Y, np.where(_GOOD_P == 0.2, np.nan, _GOOD_P), [0, 1], "y_prob contains NaN"),
        (
            _GOOD_Y,
            np.hstack([_GOOD_P, np.zeros((4, 1))]),
            [0, 1],
            "y_prob has 3 columns but there are 2 classes",
        ),
        (np.array([0, 1, 2, 0]), _GOOD_P, [0, 1], r"y_true has label\(s\) 2 not in classes \[0, 1\]"),
        (np.array(["no", "yes", "maybe", "no"]), _GOOD_P, ["no", "yes"], "'maybe' not in classes"),
        (np.array([], dtype=int), np.empty((0, 2)), [0, 1], "y_true is empty"),
        (_GOOD_Y[:3], _GOOD_P, [0, 1], "inconsistent numbers of rows: y_true=3, y_prob=4"),
        (_GOOD_Y, _GOOD_P * 1.5, [0, 1], r"y_prob must lie in \[0, 1\]"),
        (_GOOD_Y, _GOOD_P * 0.5, [0, 1], "rows must sum to 1"),
        (_GOOD_Y, _GOOD_P, [0], "at least two labels"),
        (_GOOD_Y, _GOOD_P, [1, 1], "duplicate labels"),
        (_GOOD_Y, _GOOD_P, "01", "sequence of class labels"),
        (np.array([0, None, 1, 0], dtype=object), _GOOD_P, [0, 1], "missing label"),
    ],
    ids=[
        "nan-prob",
        "wrong-columns",
        "unknown-label",
        "unknown-string-label",
        "empty",
        "length",
        "out-of-range",
        "not-summing",
        "one-class",
        "duplicate-classes",
        "classes-string",
        "missing-label",
    ],
)
@pytest.mark.parametrize("function", [calibration_metrics, calibration_check])
def test_bad_inputs(function, y, prob, classes, match):
    with pytest.raises(InputError, match=match):
        function(y, prob, classes=classes)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"groups": pd.DataFrame({"g": ["a"] * 3})}, InputError, "inconsistent numbers of rows"),
        ({"groups": pd.Series(["a"] * 4)}, InputError, "groups must be a pandas DataFrame"),
        ({"config": {"max_ece": -1}}, ConfigError, "must not be negative"),
        ({"config": {"bins": 10}}, ConfigError, "unknown setting 'bins'"),
        ({"config": CalibrationConfig(n_bins=0)}, ConfigError, "n_bins"),
    ],
    ids=["groups-length", "groups-type", "negative-threshold", "unknown-setting", "zero-bins"],
)
def test_bad_check_options(kwargs, error, match):
    with pytest.raises(error, match=match):
        calibration_check(_GOOD_Y, _GOOD_P, classes=[0, 1], **kwargs)


def test_config_mapping_overrides_thresholds():
    y, prob = _calibrated(2_000, 2, seed=8)
    result = calibration_check(
        y, _sharpen(prob, 3.0), classes=[0, 1], config={"max_ece": 1.0, "max_overconfidence_error": 1.0}
    )
    assert result.status is Status.PASSED
    assert result.thresholds["max_ece"] == 1.0
