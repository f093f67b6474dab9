"""mlflow_hitl.validate through its public path, with real models on real data."""

from fnmatch import fnmatchcase

import mlflow
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_wine
from sklearn.linear_model import LogisticRegression, RidgeClassifier

import mlflow_hitl
from conftest import ARRESTS_SENSITIVE, ARRESTS_TARGET, FAST
from mlflow_hitl import Status
from mlflow_hitl.checks.registry import CHECKS
from mlflow_hitl.errors import InputError, ModelError


def test_all_checks_run_when_all_inputs_are_given(arrests_model, arrests_split):
    synthetic, real, production = arrests_split
    result = mlflow_hitl.validate(
        arrests_model,
        real=real,
        target=ARRESTS_TARGET,
        synthetic=synthetic,
        production=production,
        sensitive_features=ARRESTS_SENSITIVE,
        config=FAST,
    )
    assert list(result.checks) == ["drift", "calibration", "adversarial", "fairness", "generator"]
    assert result.skipped == {}
    assert result.run_id is None  # no active run: nothing logged
    assert result.status in set(Status)
    assert result.status == mlflow_hitl._result.worst_status(c.status for c in result.checks.values())
    assert result.details["features_source"] == "feature_names_in_"
    assert ARRESTS_TARGET not in result.details["features"]
    drift = result.checks["drift"].metrics
    assert {"synthetic_vs_real.drifted_share", "real_vs_production.drifted_share", "drifted_share"} <= set(
        drift
    )
    calibration = result.checks["calibration"].metrics
    accuracy = (arrests_model.predict(real[result.details["features"]]) == real[ARRESTS_TARGET]).mean()
    assert calibration["accuracy"] == pytest.approx(accuracy)
    # Each check's declared key metrics and default gate bounds name metrics it computes: a pattern that
    # matched nothing would hide a number from the report, or make the default gate unmeetable.
    for name, spec in CHECKS.items():
        for pattern in (*spec.key_metrics, *spec.gate_max, *spec.gate_min):
            assert any(fnmatchcase(k, pattern) for k in result.checks[name].metrics), f"{name}: {pattern}"


def test_checks_without_their_inputs_are_skipped_and_say_why(arrests_model, arrests_split):
    _, real, _ = arrests_split
    result = mlflow_hitl.validate(arrests_model, real=real, target=ARRESTS_TARGET, config=FAST)
    assert set(result.checks) == {"calibration", "adversarial"}
    assert result.skipped == {
        "drift": "needs synthetic or production data to compare with real",
        "fairness": "needs sensitive_features",
        "generator": "needs synthetic data",
    }


def test_checks_subset_and_explicit_features(arrests_model, arrests_split):
    _, real, _ = arrests_split
    features = list(arrests_model.feature_names_in_)
    result = mlflow_hitl.validate(
        arrests_model, real=real, target=ARRESTS_TARGET, features=features, checks=["calibration"]
    )
    assert list(result.checks) == ["calibration"]
    assert result.details["features_source"] == "argument"


def test_model_without_probabilities_gets_label_only_checks(arrests_split):
    synthetic, real, _ = arrests_split
    numeric = ["age", "checks", "year"]
    model = RidgeClassifier().fit(synthetic[numeric], synthetic[ARRESTS_TARGET])
    result = mlflow_hitl.validate(
        model, real=real, target=ARRESTS_TARGET, sensitive_features=["colour"], config=FAST
    )
    assert "fairness" in result.checks
    assert result.skipped["calibration"] == "RidgeClassifier gives no class probabilities"
    assert result.skipped["adversarial"] == "RidgeClassifier gives no class probabilities"


def test_multiclass_model_on_real_data():
    data = load_wine(as_frame=True).frame
    train, test = data.iloc[::2], data.iloc[1::2]
    features = [c for c in data.columns if c != "target"]
    model = LogisticRegression(max_iter=5000).fit(train[features], train["target"])
    result = mlflow_hitl.validate(model, real=test, target="target", checks=["calibration"])
    probabilities = model.predict_proba(test[features])
    assert result.checks["calibration"].metrics["mean_confidence"] == pytest.approx(
        probabilities.max(axis=1).mean()
    )


@pytest.mark.parametrize(
    ("change", "kwargs", "match"),
    [
        (lambda r: r.drop(columns=[ARRESTS_TARGET]), {}, "real is missing column.*released"),
        (lambda r: r.drop(columns=["age"]), {}, "real is missing column.*age"),
        (lambda r: r.iloc[:0], {}, "real has 0 row"),
        (lambda r: r.assign(released=r[ARRESTS_TARGET].where(r.index > 0)), {}, "1 missing label"),
        (lambda r: r.assign(released="Maybe"), {}, r"label\(s\) \['Maybe'\] the model does not know"),
        (lambda r: r, {"checks": ["drfit"]}, "unknown check.*'drfit'.*choose from drift"),
        (lambda r: r, {"sensitive_features": [ARRESTS_TARGET]}, "cannot also be a sensitive feature"),
        (lambda r: r, {"sensitive_features": ["religion"]}, "real is missing column.*religion"),
        (lambda r: r, {"production": pd.DataFrame({"age": [1]})}, "production is missing column"),
        (lambda r: r, {"config": {"calibration": {"max_ec": 1}}}, "unknown setting 'max_ec'"),
        (lambda r: r, {"features": ["age", ARRESTS_TARGET]}, "listed among the model's features"),
    ],
)
def test_bad_input_is_refused_with_one_clear_message(arrests_model, arrests_split, change, kwargs, match):
    _, real, _ = arrests_split
    with pytest.raises(InputError, match=match):
        mlflow_hitl.validate(arrests_model, real=change(real), target=ARRESTS_TARGET, **kwargs)


def test_a_model_that_fails_to_predict_is_a_model_error(arrests_split):
    _, real, _ = arrests_split
    model = LogisticRegression().fit(np.zeros((4, 1)) + [[0], [1], [0], [1]], ["No", "Yes", "No", "Yes"])
    with pytest.raises(ModelError, match="model.predict_proba failed"):
        mlflow_hitl.validate(model, real=real, target=ARRESTS_TARGET, features=["colour"])


def test_the_callers_frames_are_not_modified(arrests_model, arrests_split):
    synthetic, real, production = arrests_split
    before = real.copy()
    mlflow_hitl.validate(
        arrests_model,
        real=real,
        target=ARRESTS_TARGET,
        synthetic=synthetic,
        sensitive_features=["colour"],
        config=FAST,
    )
    pd.testing.assert_frame_equal(real, before)


def test_without_a_run_to_log_to_no_html_is_rendered_and_a_logged_run_gets_every_page(
    tracking_uri, arrests_model, arrests_split
):
    # evidently's page is evidence for people reading the run: made only when it is logged, also for a
    # drift result reused from an unlogged call.
    synthetic, real, production = arrests_split
    config = {**FAST, "drift": {"report_sample_size": 200}}
    options = dict(
        real=real, target=ARRESTS_TARGET, synthetic=synthetic, production=production, config=config
    )
    kept = mlflow_hitl.validate(arrests_model, checks=["drift"], log=False, **options)
    drift = kept.checks["drift"]
    assert sorted(drift.artifacts) == ["real_vs_production.png", "synthetic_vs_real.png"]
    assert all(
        "report_sample" not in drift.details[pair] for pair in ("synthetic_vs_real", "real_vs_production")
    )

    with mlflow.start_run():
        logged = mlflow_hitl.validate(arrests_model, checks=["drift"], **options)
    assert logged.details["reused"] == ["drift"]
    assert sorted(logged.checks["drift"].artifacts) == [
        "real_vs_production.html",
        "real_vs_production.png",
        "synthetic_vs_real.html",
        "synthetic_vs_real.png",
    ]
    assert logged.checks["drift"].details["synthetic_vs_real"]["report_sample"]["reference"] == 200
    assert sorted(kept.checks["drift"].artifacts) == ["real_vs_production.png", "synthetic_vs_real.png"]


def test_holdout_and_source_reach_the_generator_check(arrests_model, arrests_split):
    """validate(source=, holdout=): the privacy baseline contrasts the generator's training rows with unseen rows."""
    synthetic, real, _ = arrests_split
    source, holdout = real.iloc[: len(real) // 2], real.iloc[len(real) // 2 :]
    result = mlflow_hitl.validate(
        arrests_model,
        real=real,
        target=ARRESTS_TARGET,
        synthetic=synthetic,
        source=source,
        holdout=holdout.assign(unused=1),  # extra columns are ignored
        checks="generator",
        log=False,
    )
    generator = result.checks["generator"]
    assert generator.details["privacy_baseline"]["design"] == "training_vs_unseen"
    assert generator.metrics["source_copied_rows"] >= 0
    assert result.details["rows"]["holdout"] == len(holdout)
    assert result.details["fingerprints"]["source"] is not None
    with pytest.raises(mlflow_hitl.HitlError, match="holdout is missing column"):
        mlflow_hitl.validate(
            arrests_model,
            real=real,
            target=ARRESTS_TARGET,
            synthetic=synthetic,
            holdout=holdout.drop(columns="age"),
            checks="generator",
            log=False,
        )
