"""fairness_check: every point metric cross-checked against fairlearn on real data and a real model."""

from __future__ import annotations

import json
import re
import time
from functools import partial

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    count,
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
    equalized_odds_ratio,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from sklearn.datasets import load_wine
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklego.datasets import load_arrests

from mlflow_hitl import Status
from mlflow_hitl.checks import fairness_check
from mlflow_hitl.config import FairnessConfig
from mlflow_hitl.errors import ConfigError, InputError

SENSITIVE = ["colour", "sex", "citizen", "age_group"]
KEY = re.compile(r"^[A-Za-z0-9_\-. /]+$")


@pytest.fixture(scope="module")
def arrests():
    """Half of load_arrests to train on (it plays the synthetic set), half as the real holdout."""
    df = load_arrests(as_frame=True)
    df["age_group"] = pd.cut(df["age"], [0, 18, 25, 35, 100]).astype(str)
    features = pd.get_dummies(df.drop(columns=["released", "age_group"]), drop_first=True)
    train, test = train_test_split(df.index, test_size=0.5, random_state=0, stratify=df["released"])
    model = HistGradientBoostingClassifier(max_iter=50, random_state=0).fit(
        features.loc[train], df.loc[train, "released"]
    )
    real = df.loc[test].reset_index(drop=True)
    real["predicted"] = model.predict(features.loc[test])
    return real, df.loc[train].reset_index(drop=True)


@pytest.fixture(scope="module")
def arrests_result(arrests):
    real, _ = arrests
    return fairness_check(real["released"], real["predicted"], sensitive_features=real[SENSITIVE])


def _binary(values, positive="Yes"):
    return (np.asarray(values) == positive).astype(int)


def _group_rows(result, feature):
    return {row["group"]: row for row in result.details["features"][feature]["by_group"]}


@pytest.mark.parametrize("columns", [["colour"], ["sex"], ["citizen"], ["age_group"], ["sex", "colour"]])
def test_per_group_metrics_match_metricframe(arrests, columns):
    real, _ = arrests
    result = fairness_check(real["released"], real["predicted"], sensitive_features=real[columns])
    feature = "&".join(columns)
    expected = MetricFrame(
        metrics={
            "selection_rate": partial(selection_rate, pos_label="Yes"),
            "true_positive_rate": partial(true_positive_rate, pos_label="Yes"),
            "false_positive_rate": partial(false_positive_rate, pos_label="Yes"),
            "accuracy": accuracy_score,
            "count": count,
        },
        y_true=real["released"],
        y_pred=real["predicted"],
        sensitive_features=real[columns],
    ).by_group
    rows = _group_rows(result, feature)
    key = result.details["features"][feature]["key"]
    assert len(rows) == len(expected)
    for group, values in expected.iterrows():
        label = "&".join(map(str, group)) if isinstance(group, tuple) else str(group)
        row = rows[label]
        for metric, value in values.items():
            assert result.metrics[f"{key}.{row['key']}.{metric}"] == pytest.approx(value), (label, metric)
    assert result.details["positive_label"] == "Yes"


@pytest.mark.parametrize("columns", [["colour"], ["sex"], ["citizen"], ["age_group"], ["sex", "colour"]])
def test_disparities_match_fairlearn(arrests, columns):
    real, _ = arrests
    result = fairness_check(real["released"], real["predicted"], sensitive_features=real[columns])
    feature = "&".join(columns)
    assert result.details["features"][feature]["excluded_groups"] == []
    key = result.details["features"][feature]["key"]
    args = (_binary(real["released"]), _binary(real["predicted"]))
    for name, fn in [
        ("demographic_parity_difference", demographic_parity_difference),
        ("demographic_parity_ratio", demographic_parity_ratio),
        ("equalized_odds_difference", equalized_odds_difference),
        ("equalized_odds_ratio", equalized_odds_ratio),
    ]:
        assert result.metrics[f"{key}.{name}"] == pytest.approx(fn(*args, sensitive_features=real[columns]))
    labels_dpd = demographic_parity_difference(args[0], args[0], sensitive_features=real[columns])
    model_dpd = result.metrics[f"{key}.demographic_parity_difference"]
    assert result.metrics[f"{key}.model_amplification"] == pytest.approx(model_dpd - labels_dpd)


def test_excluded_groups_are_left_out_of_the_disparity(arrests, arrests_result):
    real, _ = arrests
    feature = "&".join(SENSITIVE)
    audit = arrests_result.details["features"][feature]
    excluded = {e["group"] for e in audit["excluded_groups"]}
    assert excluded, "the four-way intersection of 2,613 rows has groups below 30 rows"
    for e in audit["excluded_groups"]:
        assert e["count"] < 30 or "no " in e["reason"]
    labels = real[SENSITIVE].astype(str).agg("&".join, axis=1)
    keep = ~labels.isin(excluded)
    expected = demographic_parity_difference(
        _binary(real.loc[keep, "released"]),
        _binary(real.loc[keep, "predicted"]),
        sensitive_features=labels[keep],
    )
    assert audit["demographic_parity_difference"] == pytest.approx(expected)
    assert audit["verdict"] != Status.PASSED.value


def test_metric_keys_are_sanitised_and_details_serialise(arrests_result):
    assert all(KEY.match(k) for k in arrests_result.metrics)
    assert "age_group.0_18.count" in arrests_result.metrics  # "(0, 18]"
    assert "colour_sex_citizen_age_group.Black_Male_Yes_18_25.selection_rate" in arrests_result.metrics
    assert json.loads(arrests_result.to_json())["details"]["features"]["colour"]["verdict"]
    assert arrests_result.artifacts["by_group.png"].startswith(b"\x89PNG")
    assert arrests_result.thresholds["max_demographic_parity_difference"] == 0.1


def test_bootstrap_interval_contains_the_estimate_and_narrows_with_more_data(arrests):
    real, _ = arrests
    small = fairness_check(real["released"], real["predicted"], sensitive_features=real[["colour"]])
    big_real = pd.concat([real] * 10, ignore_index=True)
    big = fairness_check(big_real["released"], big_real["predicted"], sensitive_features=big_real[["colour"]])
    for name in ("demographic_parity_difference", "equalized_odds_difference"):
        point, low, high = (small.metrics[f"colour.{name}{s}"] for s in ("", "_ci_low", "_ci_high"))
        assert low < point < high
        assert big.metrics[f"colour.{name}"] == pytest.approx(point)
        big_width = big.metrics[f"colour.{name}_ci_high"] - big.metrics[f"colour.{name}_ci_low"]
        assert big_width < 0.5 * (high - low)  # about 1/sqrt(10)


def test_a_fair_model_over_many_small_groups_does_not_fail():
    """The largest gap among noisy groups is biased upward; the interval must not take that for a disparity.

    Eight groups of 60 rows, predictions independent of everything: a percentile interval of the
    replicated max − min lies wholly above 0.1 here (the check would fail a fair model).
    """
    rng = np.random.default_rng(0)
    n = 480
    groups = pd.DataFrame({"group": np.repeat(list("ABCDEFGH"), n // 8)})
    y_true, y_pred = rng.integers(0, 2, n), rng.integers(0, 2, n)
    result = fairness_check(y_true, y_pred, sensitive_features=groups)
    assert result.status is not Status.FAILED, result.summary
    for name in ("demographic_parity_difference", "equalized_odds_difference"):
        low, point, high = (result.metrics[f"group.{name}{s}"] for s in ("_ci_low", "", "_ci_high"))
        assert low <= point <= high
        assert low <= 0.1


def test_bootstrap_is_seeded(arrests):
    real, _ = arrests
    runs = [
        fairness_check(
            real["released"], real["predicted"], sensitive_features=real[["sex"]], config={"seed": seed}
        )
        for seed in (1, 1, 2)
    ]
    key = "sex.equalized_odds_difference_ci_high"
    assert runs[0].metrics[key] == runs[1].metrics[key] != runs[2].metrics[key]
    with_others = fairness_check(
        real["released"], real["predicted"], sensitive_features=real[["colour", "sex"]], config={"seed": 1}
    )
    assert with_others.metrics[key] == runs[0].metrics[key]  # each grouping has its own stream


def _frame(spec):
    """Rows from {group: (positives, negatives, true positives, false positives)}."""
    y_true, y_pred, groups = [], [], []
    for group, (pos, neg, tp, fp) in spec.items():
        y_true += [1] * pos + [0] * neg
        y_pred += [1] * tp + [0] * (pos - tp) + [1] * fp + [0] * (neg - fp)
        groups += [group] * (pos + neg)
    return np.array(y_true), np.array(y_pred), pd.DataFrame({"group": groups})


FAIR = (500, 500, 400, 100)  # selection 0.5, TPR 0.8, FPR 0.2


@pytest.mark.parametrize(
    ("spec", "dpd", "eod", "status"),
    [
        # selection 0.7 vs 0.3; TPR 0.9 vs 0.5, FPR 0.5 vs 0.1
        ({"A": (500, 500, 450, 250), "B": (500, 500, 250, 50)}, 0.4, 0.4, Status.FAILED),
        ({"A": FAIR, "B": FAIR}, 0.0, 0.0, Status.PASSED),
        # selection 0.56 vs 0.44 with equal TPR/FPR, 200 rows each: above 0.1 but not confidently
        ({"A": (120, 80, 96, 16), "B": (80, 120, 64, 24)}, 0.12, 0.0, Status.NEEDS_REVIEW),
        ({"A": FAIR, "B": FAIR, "C": (5, 5, 4, 1)}, 0.0, 0.0, Status.INSUFFICIENT_EVIDENCE),
        ({"A": (500, 500, 450, 250), "B": (500, 500, 250, 50), "C": (5, 5, 4, 1)}, 0.4, 0.4, Status.FAILED),
    ],
    ids=["disparity-fails", "fair-passes", "uncertain-needs-review", "tiny-group", "fail-beats-tiny-group"],
)
def test_status_on_known_disparities(spec, dpd, eod, status):
    y_true, y_pred, groups = _frame(spec)
    result = fairness_check(y_true, y_pred, sensitive_features=groups)
    assert result.status is status, result.summary
    assert result.metrics["group.demographic_parity_difference"] == pytest.approx(dpd)
    assert result.metrics["group.equalized_odds_difference"] == pytest.approx(eod)
    assert result.details["positive_label"] == 1


@pytest.mark.parametrize(
    ("small_group", "reason"),
    [
        ((5, 5, 4, 1), "10 rows < min_group_size 30"),
        ((0, 40, 0, 5), "40 rows, no positive rows (TPR/FPR undefined)"),
    ],
)
def test_small_or_one_class_groups_are_named_with_their_size(small_group, reason):
    y_true, y_pred, groups = _frame({"A": FAIR, "B": FAIR, "C": small_group})
    result = fairness_check(y_true, y_pred, sensitive_features=groups)
    assert result.status is Status.INSUFFICIENT_EVIDENCE
    assert f"C ({reason})" in result.summary
    excluded = result.details["features"]["group"]["excluded_groups"]
    assert excluded == [{"group": "C", "count": sum(small_group[:2]), "reason": reason}]
    assert result.metrics["group.C.count"] == sum(small_group[:2])


def test_a_feature_with_one_comparable_group_is_insufficient():
    y_true, y_pred, groups = _frame({"A": FAIR, "B": (5, 5, 4, 1)})
    result = fairness_check(y_true, y_pred, sensitive_features=groups)
    assert result.status is Status.INSUFFICIENT_EVIDENCE
    assert "fewer than two groups can be compared (1 of 2" in " ".join(
        result.details["features"]["group"]["reasons"]
    )
    assert "group.demographic_parity_difference" not in result.metrics


def _inflate(labels, mask, share, rng):
    """Relabel ``share`` of the negative rows under ``mask`` as positive."""
    labels = labels.copy()
    negatives = np.flatnonzero(mask & (labels == "No"))
    labels[rng.choice(negatives, int(share * negatives.size), replace=False)] = "Yes"
    return labels


@pytest.mark.parametrize(("inflated", "sign"), [("White", 1), ("Black", -1)])
def test_bias_amplification_of_a_synthetic_set(arrests, inflated, sign):
    real, train = arrests
    synthetic_y = _inflate(
        train["released"].to_numpy(), (train["colour"] == inflated).to_numpy(), 0.6, np.random.default_rng(0)
    )
    result = fairness_check(
        real["released"],
        real["predicted"],
        sensitive_features=real[["colour"]],
        synthetic_y=synthetic_y,
        synthetic_sensitive=train[["colour"]],
    )

    def base_rate_gap(labels, colour):
        rates = pd.Series(labels == "Yes").groupby(colour.to_numpy()).mean()
        return rates.max() - rates.min()

    expected = base_rate_gap(synthetic_y, train["colour"]) - base_rate_gap(
        real["released"].to_numpy(), real["colour"]
    )
    assert np.sign(expected) == sign
    assert result.metrics["colour.bias_amplification"] == pytest.approx(expected)
    if expected > 0.05:
        assert result.status is Status.FAILED
        assert "bias amplification" in " ".join(result.details["features"]["colour"]["reasons"])
    real_share = real["colour"].value_counts(normalize=True)
    synthetic_share = train["colour"].value_counts(normalize=True)
    for group in ("Black", "White"):
        assert result.metrics[f"colour.{group}.real_share"] == pytest.approx(real_share[group])
        assert result.metrics[f"colour.{group}.synthetic_share"] == pytest.approx(synthetic_share[group])


def test_representation_lists_groups_only_the_generator_produced():
    y_true, y_pred, groups = _frame({"A": FAIR, "B": FAIR})
    synthetic = pd.DataFrame({"group": ["A"] * 50 + ["B"] * 40 + ["Z"] * 10})
    result = fairness_check(
        y_true,
        y_pred,
        sensitive_features=groups,
        synthetic_y=np.tile([0, 1], 50),
        synthetic_sensitive=synthetic,
    )
    assert result.metrics["group.Z.real_share"] == 0.0
    assert result.metrics["group.Z.synthetic_share"] == pytest.approx(0.1)
    assert _group_rows(result, "group")["Z"]["reason"] == "no real rows"
    assert result.status is Status.PASSED


def test_multiclass_is_one_vs_rest_for_the_positive_label():
    data = load_wine(as_frame=True)
    X, y = data.data, data.target
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=200)).fit(X[::2], y[::2])
    sensitive = pd.DataFrame({"strong": np.where(X["alcohol"] > X["alcohol"].median(), "high", "low")})
    y_pred = model.predict(X)
    with pytest.raises(InputError, match=r"positive_label is required .*0, 1, 2"):
        fairness_check(y, y_pred, sensitive_features=sensitive)
    result = fairness_check(y, y_pred, sensitive_features=sensitive, positive_label=1)
    assert result.details["positive_label"] == 1
    binary = ((y == 1).astype(int), (y_pred == 1).astype(int))
    assert result.metrics["strong.demographic_parity_difference"] == pytest.approx(
        demographic_parity_difference(*binary, sensitive_features=sensitive["strong"])
    )
    assert result.metrics["strong.equalized_odds_difference"] == pytest.approx(
        equalized_odds_difference(*binary, sensitive_features=sensitive["strong"])
    )
    accuracy = MetricFrame(
        metrics=accuracy_score, y_true=y, y_pred=y_pred, sensitive_features=sensitive
    ).by_group
    for group in ("high", "low"):  # accuracy is on the original three classes
        assert result.metrics[f"strong.{group}.accuracy"] == pytest.approx(accuracy[group])


def test_predicted_labels_the_holdout_lacks_are_allowed_with_a_positive_label():
    y_true, y_pred, groups = _frame({"A": FAIR, "B": FAIR})
    y_true, y_pred = np.where(y_true == 1, "b", "a"), np.where(y_pred == 1, "b", "a")
    y_pred[:7] = "c"  # a third class of the model, absent from this holdout
    with pytest.raises(InputError, match="positive_label is required"):
        fairness_check(y_true, y_pred, sensitive_features=groups)
    result = fairness_check(y_true, y_pred, sensitive_features=groups, positive_label="b")
    assert result.details["predicted_labels_not_in_y_true"] == ["c"]
    assert result.metrics["group.A.selection_rate"] == pytest.approx((500 - 7) / 1000)


def test_nan_in_a_sensitive_column_is_its_own_group():
    y_true, y_pred, groups = _frame({"A": FAIR, "B": FAIR})
    groups = groups.astype(object)
    groups.loc[:39, "group"] = np.nan
    result = fairness_check(y_true, y_pred, sensitive_features=groups)
    assert result.metrics["group.missing.count"] == 40
    assert result.details["missing_values"] == {"real": {"group": 40}}


def test_an_intersection_with_too_many_groups_is_skipped_and_said(arrests):
    real, _ = arrests
    result = fairness_check(
        real["released"],
        real["predicted"],
        sensitive_features=real[SENSITIVE],
        config=FairnessConfig(max_groups=10),
    )
    observed = real[SENSITIVE].drop_duplicates().shape[0]
    assert f"not audited: {observed} groups, more than max_groups=10" in result.details["skipped"][0]
    assert not any(k.startswith("colour_sex") for k in result.metrics)


def _good():
    y_true, y_pred, groups = _frame({"A": FAIR, "B": FAIR})
    return {"y_true": y_true, "y_pred": y_pred, "sensitive_features": groups}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"sensitive_features": [1, 2]}, "sensitive_features must be a pandas DataFrame"),
        ({"y_pred": np.ones(5)}, "inconsistent numbers of rows: y_true=2000, y_pred=5"),
        ({"y_true": np.zeros(2000)}, r"y_true has a single class \(0"),
        ({"y_true": np.r_[np.nan, np.ones(1999)]}, "y_true has 1 missing label"),
        ({"y_pred": np.full(2000, "yes")}, "y_pred shares no label with y_true"),
        ({"y_pred": np.linspace(0, 1, 2000)}, "not probabilities"),
        ({"positive_label": 7}, r"positive_label 7 is not a class of y_true \(0, 1\)"),
        (
            {"synthetic_sensitive": pd.DataFrame({"group": ["A"]})},
            "synthetic_sensitive was given without synthetic_y",
        ),
        ({"synthetic_y": [0, 1]}, "synthetic_y was given without synthetic_sensitive"),
        (
            {"synthetic_y": [0, 1], "synthetic_sensitive": pd.DataFrame({"other": ["A", "B"]})},
            "synthetic_sensitive is missing column",
        ),
        (
            {"synthetic_y": ["x", "y"], "synthetic_sensitive": pd.DataFrame({"group": ["A", "B"]})},
            "synthetic_y shares no label with y_true",
        ),
        (
            {"sensitive_features": pd.DataFrame({"group": np.arange(2000)})},
            r"2000 distinct values.*bin it first",
        ),
        (
            {"sensitive_features": pd.DataFrame({"group": ["missing", None] * 1000})},
            "has NaN and also the value 'missing'",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_bad_input_is_refused_with_a_clear_message(change, message):
    with pytest.raises(InputError, match=message):
        fairness_check(**{**_good(), **change})


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"confidence_level": 1.5}, r"\['confidence_level'\] must lie in \(0, 1\), got 1.5"),
        ({"n_bootstrap": 0}, r"\['n_bootstrap'\] must be at least 1, got 0"),
        ({"max_bias": 0.1}, "unknown setting 'max_bias'"),
    ],
)
def test_bad_config_is_refused(config, message):
    with pytest.raises(ConfigError, match=message):
        fairness_check(**_good(), config=config)


def test_a_million_rows_agree_with_a_plain_group_by():
    """Prints the time (no timed assertion) and checks the compressed path against the raw rows.

    fairlearn itself needs seconds per metric on a million raw rows, so the reference here is a
    plain pandas group-by; the fairlearn cross-checks above cover the definitions.
    """
    rng = np.random.default_rng(0)
    n = 1_000_000
    sensitive = pd.DataFrame({"sex": rng.choice(["F", "M"], n), "colour": rng.choice(["B", "W", "O"], n)})
    y_true = rng.integers(0, 2, n)
    y_pred = np.where(rng.random(n) < 0.8, y_true, 1 - y_true)
    start = time.perf_counter()
    result = fairness_check(y_true, y_pred, sensitive_features=sensitive)
    print(f"fairness_check on {n:,} rows, 2 features + intersection: {time.perf_counter() - start:.2f} s")
    for columns in (["colour"], ["sex", "colour"]):
        key = "_".join(columns)
        rates = pd.Series(y_pred).groupby([sensitive[c] for c in columns]).mean()
        expected = rates.max() - rates.min()
        assert result.metrics[f"{key}.demographic_parity_difference"] == pytest.approx(expected)
    assert result.metrics["sex.F.count"] == (sensitive["sex"] == "F").sum()
    assert result.status is Status.PASSED
