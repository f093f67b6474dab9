"""adversarial_check with real fitted models on real data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import make_column_transformer
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklego.datasets import load_arrests

from mlflow_hitl import Status
from mlflow_hitl.checks import adversarial_check, calibration_metrics
from mlflow_hitl.config import AdversarialConfig
from mlflow_hitl.errors import ConfigError, InputError, ModelError

_SCORES = ("accuracy", "mean_confidence", "ece", "overconfidence_error", "confident_error_rate", "flip_rate")


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.5, random_state=0, stratify=y)
    models = {
        "imputing_pipeline": make_pipeline(SimpleImputer(), StandardScaler(), LogisticRegression()),
        "hist_gradient_boosting": HistGradientBoostingClassifier(max_iter=50, random_state=0),
        "refuses_nan": make_pipeline(StandardScaler(), LogisticRegression()),
    }
    for model in models.values():
        model.fit(X_train, y_train)
    return X_test.reset_index(drop=True), y_test.to_numpy(), models


@pytest.fixture(scope="module")
def arrests():
    df = load_arrests(as_frame=True)
    features = ["colour", "year", "age", "sex", "employed", "citizen", "checks"]
    categorical = ["colour", "sex", "employed", "citizen"]
    train, test = train_test_split(df, test_size=0.3, random_state=0)
    model = make_pipeline(
        make_column_transformer(
            (
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")
                ),
                categorical,
            ),
            remainder=make_pipeline(SimpleImputer(strategy="median"), StandardScaler()),
        ),
        LogisticRegression(),
    ).fit(train[features], train["released"])
    return test[features].reset_index(drop=True), test["released"].to_numpy(), model


class Spy:
    """Passes calls through to a model and keeps every frame it was asked about."""

    def __init__(self, predict_proba):
        self.predict_proba = predict_proba
        self.frames: list[pd.DataFrame] = []

    def __call__(self, frame):
        self.frames.append(frame.copy())
        return self.predict_proba(frame)


def _series(result, perturbation, score, severities):
    return [
        result.metrics[f"{perturbation}.{np.format_float_positional(s, trim='-')}.{score}"]
        for s in severities
    ]


# --------------------------------------------------------------------------- behaviour with real models


@pytest.mark.parametrize("name", ["imputing_pipeline", "hist_gradient_boosting", "refuses_nan"])
def test_accuracy_does_not_rise_with_noise_and_severity_zero_changes_nothing(cancer, name):
    X, y, models = cancer
    model = models[name]
    severities = (0.0, 0.25, 0.5, 0.75, 1.0)
    result = adversarial_check(
        model.predict_proba, X, y, classes=model.classes_, config={"severities": severities}
    )
    accuracy = _series(result, "gaussian_noise", "accuracy", severities)
    assert all(later <= earlier + 0.02 for earlier, later in zip(accuracy, accuracy[1:], strict=False))
    assert accuracy[-1] < accuracy[0]
    for perturbation in ["gaussian_noise", "missingness", "quantization"]:
        assert result.metrics[f"{perturbation}.0.flip_rate"] == 0.0
        assert result.metrics[f"{perturbation}.0.accuracy"] == result.metrics["clean.accuracy"]
    clean = calibration_metrics(y, model.predict_proba(X), classes=model.classes_)
    assert result.metrics["clean.accuracy"] == pytest.approx(clean["accuracy"])
    assert result.metrics["clean.ece"] == pytest.approx(clean["ece"])
    assert result.metrics["clean.overconfidence_error"] == pytest.approx(clean["overconfidence_error"])


@pytest.mark.parametrize(
    ("name", "accepts_nan"),
    [("imputing_pipeline", True), ("hist_gradient_boosting", True), ("refuses_nan", False)],
)
def test_missingness_probes_nan_and_imputes_only_when_refused(cancer, name, accepts_nan):
    X, y, models = cancer
    model = models[name]
    spy = Spy(model.predict_proba)
    result = adversarial_check(spy, X, y, classes=model.classes_, config={"perturbations": ["missingness"]})
    report = result.details["missingness"]
    assert report["model_accepts_nan"] is accepts_nan
    missing_seen = any(frame.isna().any().any() for frame in spy.frames[2:])  # after clean and probe calls
    assert missing_seen is accepts_nan
    if accepts_nan:
        assert report["imputation"] == {}
        assert report["probe_error"] is None
    else:
        assert "Input X contains NaN" in report["probe_error"]
        assert {c: v["strategy"] for c, v in report["imputation"].items()} == dict.fromkeys(
            X.columns, "median"
        )
        assert report["imputation"]["mean radius"]["value"] == pytest.approx(X["mean radius"].median())
    assert result.metrics["missingness.0.5.accuracy"] <= result.metrics["clean.accuracy"] + 0.02


def test_same_seed_reproduces_and_another_seed_differs(cancer):
    X, y, models = cancer
    model = models["imputing_pipeline"]
    first = adversarial_check(model.predict_proba, X, y, classes=model.classes_)
    again = adversarial_check(model.predict_proba, X, y, classes=model.classes_)
    other = adversarial_check(model.predict_proba, X, y, classes=model.classes_, config={"seed": 1})
    assert dict(first.metrics) == dict(again.metrics)
    assert first.details == again.details
    assert dict(first.metrics) != dict(other.metrics)


def test_a_perturbations_draws_do_not_depend_on_the_others_configured(cancer):
    # Seeded by (seed, name), not by list position: adding or reordering perturbations changes no other draw.
    X, y, models = cancer
    model = models["imputing_pipeline"]
    alone = adversarial_check(
        model.predict_proba,
        X,
        y,
        classes=model.classes_,
        config={"perturbations": ["quantization", "missingness"]},
    )
    among = adversarial_check(
        model.predict_proba,
        X,
        y,
        classes=model.classes_,
        config={"perturbations": ["missingness", "gaussian_noise", "quantization"]},
    )
    for name in ("missingness", "quantization"):
        mine = {k: v for k, v in alone.metrics.items() if k.startswith(f"{name}.")}
        assert mine and mine == {k: v for k, v in among.metrics.items() if k.startswith(f"{name}.")}


def test_always_confident_model_fails_with_the_gap_stated(cancer):
    X, y, models = cancer
    model = models["imputing_pipeline"]

    def always_99(frame):
        hard = model.predict_proba(frame).argmax(axis=1)
        return np.where(np.arange(2) == hard[:, None], 0.99, 0.01)

    severities = (0.3, 0.6, 1.0)
    result = adversarial_check(always_99, X, y, classes=model.classes_, config={"severities": severities})
    assert result.status is Status.FAILED
    verdict = result.details["perturbations"]["missingness"]
    assert verdict["verdict"] == "overconfident"
    accuracy_drop = result.metrics["clean.accuracy"] - result.metrics["missingness.1.accuracy"]
    confidence_drop = (
        result.metrics["clean.mean_confidence"] - result.metrics["missingness.1.mean_confidence"]
    )
    assert confidence_drop == pytest.approx(0.0, abs=1e-12)
    assert verdict["gap"] == pytest.approx(accuracy_drop - confidence_drop)
    assert verdict["gap"] > AdversarialConfig().max_confidence_gap
    assert result.metrics["missingness.confidence_gap"] == pytest.approx(verdict["gap"])
    assert f"gap {verdict['gap']:.3f} > 0.05" in verdict["explanation"]
    assert "missingness" in result.summary and "gap" in result.summary
    # Every wrong answer is a confident one.
    wrong = 1 - result.metrics["missingness.1.accuracy"]
    assert result.metrics["missingness.1.confident_error_rate"] == pytest.approx(wrong)


def test_well_behaved_model_passes_with_its_verdicts_stated(cancer):
    X, y, models = cancer
    model = models["imputing_pipeline"]
    result = adversarial_check(model.predict_proba, X, y, classes=model.classes_)
    assert result.status is Status.PASSED, result.summary
    for name, verdict in result.details["perturbations"].items():
        assert verdict["verdict"] == "ok", name
        assert verdict["gap"] <= AdversarialConfig().max_confidence_gap
        assert verdict["explanation"].startswith("confidence followed accuracy")
    assert result.artifacts["confidence_vs_severity.png"].startswith(b"\x89PNG")
    result.to_json()


def test_metric_keys_and_skipped_perturbations(cancer):
    X, y, models = cancer
    model = models["imputing_pipeline"]
    result = adversarial_check(model.predict_proba, X, y, classes=model.classes_)
    assert result.details["skipped"] == {
        "category_swap": "no categorical feature column with at least two categories"
    }
    applied = ["gaussian_noise", "missingness", "quantization"]
    expected = {f"{p}.{s}.{m}" for p in applied for s in ("0.1", "0.3", "0.5") for m in _SCORES}
    expected |= {f"{p}.confidence_gap" for p in applied}
    expected |= {f"clean.{m}" for m in ("accuracy", "mean_confidence", "ece", "overconfidence_error")}
    expected |= {"worst_overconfidence_error", "n_rows"}
    assert set(result.metrics) == expected
    oes = [
        result.metrics[k]
        for k in expected
        if k.endswith(".overconfidence_error") and not k.startswith("clean")
    ]
    assert result.metrics["worst_overconfidence_error"] == max(oes)


# --------------------------------------------------------------------------- the perturbations do what the docs say


def test_perturbations_follow_their_definitions(arrests):
    X, y, model = arrests
    spy = Spy(model.predict_proba)
    severities = (0.2, 0.5, 1.0)
    result = adversarial_check(spy, X, y, classes=model.classes_, config={"severities": severities})
    assert result.details["skipped"] == {}
    assert result.details["categorical_columns"] == ["colour", "sex", "employed", "citizen"]
    assert result.details["missingness"]["model_accepts_nan"] is True
    n = len(X)
    # clean, NaN probe, then one stacked call per perturbation in config order.
    noise, missing, swap, rounded = (spy.frames[i] for i in (2, 3, 4, 5))
    assert all(len(f) == n * len(severities) for f in (noise, missing, swap, rounded))
    numeric = ["year", "age", "checks"]
    q75, q25 = X[numeric].quantile(0.75), X[numeric].quantile(0.25)
    spread = ((q75 - q25) / 1.349).where(q75 > q25, X[numeric].std(ddof=0))
    for i, s in enumerate(severities):
        block = slice(i * n, (i + 1) * n)
        # Gaussian noise: sd of the added noise is severity x robust spread.
        added = noise.iloc[block][numeric].reset_index(drop=True) - X[numeric]
        np.testing.assert_allclose(added.std() / spread, s, rtol=0.1)
        # Missingness: about severity of the cells are blank.
        share = missing.iloc[block].isna().to_numpy().mean()
        assert share == pytest.approx(s, abs=4 * np.sqrt(s * (1 - s) / (n * X.shape[1])) + 1e-12)
        # Category swap: about severity of the categorical cells changed, always to a category seen.
        swapped = swap.iloc[block].reset_index(drop=True)
        for col in result.details["categorical_columns"]:
            changed = (swapped[col] != X[col]).mean()
            assert changed == pytest.approx(s, abs=4 * np.sqrt(s * (1 - s) / n) + 1e-12)  # 4 binomial sds
            assert set(swapped[col]) <= set(X[col])
        assert swapped[numeric].equals(X[numeric])
        # Quantization: numeric cells are multiples of step = severity x spread, within half a step.
        q = rounded.iloc[block][numeric].reset_index(drop=True)
        step = s * spread
        np.testing.assert_allclose((q / step) - np.round(q / step), 0.0, atol=1e-6)
        assert ((q - X[numeric]).abs() <= step / 2 + 1e-9).all().all()
    assert result.metrics["category_swap.1.flip_rate"] > result.metrics["category_swap.0.2.flip_rate"]


def test_sampling_to_max_rows(arrests):
    X, y, model = arrests
    spy = Spy(model.predict_proba)
    result = adversarial_check(spy, X, y, classes=model.classes_, config={"max_rows": 200})
    assert result.metrics["n_rows"] == 200
    assert result.details["n_rows_total"] == len(X)
    assert len(spy.frames[0]) == 200
    assert all(len(f) == 600 for f in spy.frames[2:])


def test_explicit_categorical_columns(arrests):
    X, y, model = arrests
    result = adversarial_check(
        model.predict_proba,
        X,
        y,
        classes=model.classes_,
        categorical=["colour"],
        config={"perturbations": ["category_swap"]},
    )
    assert result.details["categorical_columns"] == ["colour"]
    assert set(result.details["perturbations"]) == {"category_swap"}


# --------------------------------------------------------------------------- sizes, failures and bad input


def test_too_few_rows_is_insufficient_evidence(cancer):
    X, y, models = cancer
    model = models["imputing_pipeline"]
    result = adversarial_check(model.predict_proba, X.iloc[:30], y[:30], classes=model.classes_)
    assert result.status is Status.INSUFFICIENT_EVIDENCE
    assert "30" in result.summary and "50" in result.summary


def test_no_applicable_perturbation_is_insufficient_evidence(cancer):
    X, y, models = cancer
    model = models["imputing_pipeline"]
    result = adversarial_check(
        model.predict_proba, X, y, classes=model.classes_, config={"perturbations": ["category_swap"]}
    )
    assert result.status is Status.INSUFFICIENT_EVIDENCE
    assert "category_swap" in result.summary


def test_model_failing_on_perturbed_rows_raises_model_error_naming_the_perturbation(cancer):
    X, y, models = cancer
    model = models["imputing_pipeline"]
    low, high = X.min(), X.max()

    def refuses_unseen_values(frame):
        if ((frame < low) | (frame > high)).any().any():
            raise ValueError("value outside the training range\nsecond line")
        return model.predict_proba(frame)

    with pytest.raises(ModelError, match=r"gaussian_noise .*ValueError: value outside the training range$"):
        adversarial_check(refuses_unseen_values, X, y, classes=model.classes_)


@pytest.mark.parametrize(
    ("predict_proba", "match"),
    [
        (lambda frame: 1 / 0, "predict_proba failed on the clean rows: ZeroDivisionError"),
        (lambda frame: np.full((len(frame), 3), 1 / 3), "3 columns but there are 2 classes"),
        (lambda frame: np.full((5, 2), 0.5), "returned 5 rows for"),
        (
            lambda frame: np.full((len(frame), 2), "high"),
            "unusable probabilities on the clean rows: ValueError",
        ),
    ],
    ids=["raises", "wrong-columns", "wrong-rows", "not-numbers"],
)
def test_unusable_model_output_is_a_model_error(cancer, predict_proba, match):
    X, y, models = cancer
    with pytest.raises(ModelError, match=match):
        adversarial_check(predict_proba, X, y, classes=[0, 1])


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"X": "not a frame"}, InputError, "X must be a pandas DataFrame"),
        ({"y_true": np.zeros(10)}, InputError, "inconsistent numbers of rows"),
        ({"classes": [0, 2]}, InputError, r"label\(s\) 1 not in classes"),
        ({"categorical": ["nope"]}, InputError, "categorical names column"),
        ({"categorical": "mean radius"}, InputError, "list of column names"),
        ({"predict_proba": "model"}, InputError, "predict_proba must be callable"),
        (
            {"config": {"perturbations": ["blur"]}},
            ConfigError,
            "unknown perturbation.*'blur'.*known: gaussian_noise",
        ),
        ({"config": {"severities": [0.5, 2.0]}}, ConfigError, r"values in \[0, 1\]"),
        ({"config": {"confident_threshold": 0}}, ConfigError, "confident_threshold"),
        ({"config": {"severity": [0.5]}}, ConfigError, "unknown setting 'severity'"),
    ],
    ids=[
        "X-type",
        "length",
        "label",
        "categorical-missing",
        "categorical-string",
        "not-callable",
        "perturbation",
        "severity-range",
        "confident-threshold",
        "unknown-setting",
    ],
)
def test_bad_inputs(cancer, change, error, match):
    X, y, models = cancer
    model = models["imputing_pipeline"]
    kwargs = {"predict_proba": model.predict_proba, "X": X, "y_true": y, "classes": model.classes_, **change}
    with pytest.raises(error, match=match):
        adversarial_check(
            kwargs.pop("predict_proba"),
            kwargs.pop("X"),
            kwargs.pop("y_true"),
            classes=kwargs.pop("classes"),
            **kwargs,
        )
