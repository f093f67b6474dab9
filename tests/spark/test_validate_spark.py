"""``validate`` on Spark DataFrames gives the pandas path's metrics and verdicts, says how each was computed,
logs the same evidence, and refuses bad input in the same words.

Few Spark runs, shared by module-scoped fixtures: the arrests data as Spark in three partitions (with a
pandas production set beside it), and again with every row in one partition and the rest empty (with a
small sample size for the sampled checks); breast cancer once.
"""

from __future__ import annotations

import functools
import re

import mlflow
import numpy as np
import pandas as pd
import pytest

import mlflow_hitl
from conftest import ARRESTS_SENSITIVE, ARRESTS_TARGET
from mlflow_hitl import CheckResult
from mlflow_hitl.checks.registry import CHECK_NAMES
from mlflow_hitl.errors import HitlError, InputError
from mlflow_hitl.report import render_report
from mlflow_hitl.review import ReviewStore, queue_from_validation
from mlflow_hitl.spark import RUNNERS
from mlflow_hitl.spark._validate import annotated, exact, sketch

pytestmark = pytest.mark.spark

CHECKS = ["calibration", "fairness", "drift", "generator"]
CONFIG = {"fairness": {"n_bootstrap": 50}, "drift": {"render_report": False}}
ARRESTS = {"target": ARRESTS_TARGET, "sensitive_features": ARRESTS_SENSITIVE, "config": CONFIG, "log": False}
# Floating-point sums added in another order: the only difference an exact metric may show.
ROUNDING = 1e-12


@pytest.fixture(scope="module")
def pandas_result(arrests_model, arrests_split):
    synthetic, real, production = arrests_split
    return mlflow_hitl.validate(
        arrests_model, real=real, synthetic=synthetic, production=production, checks=CHECKS, **ARRESTS
    )


@pytest.fixture(scope="module")
def spark_frames(spark, arrests_split):
    """real in three partitions, real all in one partition of five (four empty), synthetic."""
    from pyspark.sql import functions as F

    synthetic, real, _ = arrests_split
    spread = spark.createDataFrame(real).repartition(3)
    lumped = spark.createDataFrame(real).repartition(5, F.lit(0))
    return spread, lumped, spark.createDataFrame(synthetic)


@pytest.fixture(scope="module")
def spark_result(arrests_model, arrests_split, spark_frames):
    """Spark real and synthetic, pandas production: mixed inputs."""
    _, _, production = arrests_split
    spread, _, synthetic = spark_frames
    return mlflow_hitl.validate(
        arrests_model, real=spread, synthetic=synthetic, production=production, checks=CHECKS, **ARRESTS
    )


@pytest.fixture(scope="module")
def lumped_result(arrests_model, arrests_split, spark_frames):
    """Every real row in one partition, four empty ones; pandas synthetic; sampled checks read 500 rows."""
    synthetic, _, production = arrests_split
    _, lumped, _ = spark_frames
    return mlflow_hitl.validate(
        arrests_model,
        real=lumped,
        synthetic=synthetic,
        production=production,
        checks=CHECKS,
        spark_sample_rows=500,
        **ARRESTS,
    )


def test_the_lumped_frame_has_empty_partitions(spark_frames):
    from pyspark.sql import functions as F

    _, lumped, _ = spark_frames
    filled = lumped.groupBy(F.spark_partition_id()).count().collect()
    assert lumped.rdd.getNumPartitions() == 5 and len(filled) == 1


def test_every_check_has_a_runner():
    assert set(RUNNERS) == set(CHECK_NAMES)


@pytest.mark.parametrize("which", ["spark_result", "lumped_result"])
def test_fairness_equals_the_pandas_path_exactly_intervals_included(request, which, pandas_result):
    result = request.getfixturevalue(which)
    ours, theirs = result.checks["fairness"], pandas_result.checks["fairness"]
    assert dict(ours.metrics) == dict(theirs.metrics)  # exact: the same counts, the same seeded draws
    assert any(name.endswith("_ci_low") for name in ours.metrics)
    assert ours.status == theirs.status and ours.summary == theirs.summary
    assert ours.details["features"] == theirs.details["features"]
    assert set(ours.details["computed"]) == set(ours.metrics)
    assert {how["how"] for how in ours.details["computed"].values()} == {"exact"}


@pytest.mark.parametrize("which", ["spark_result", "lumped_result"])
def test_calibration_equals_the_pandas_path_and_adaptive_ece_lies_within_its_bound(
    request, which, pandas_result
):
    result = request.getfixturevalue(which)
    ours, theirs = result.checks["calibration"], pandas_result.checks["calibration"]
    assert set(ours.metrics) == set(theirs.metrics)
    computed = ours.details["computed"]
    for name, value in theirs.metrics.items():
        bound = computed[name].get("bound", 0.0) + ROUNDING
        assert ours.metrics[name] == pytest.approx(value, abs=bound, rel=0), name
    assert computed["adaptive_ece"]["how"] == "sketch" and 0 < computed["adaptive_ece"]["bound"] < 0.05
    assert {computed[n]["how"] for n in ours.metrics if n != "adaptive_ece"} == {"exact"}
    assert ours.details["bins"]["counts"] == theirs.details["bins"]["counts"]  # every row in the same bin
    assert ours.details["groups"].keys() == theirs.details["groups"].keys()
    assert ours.status == theirs.status and ours.summary == theirs.summary
    assert ours.details["near_threshold"] == []


def test_sampled_checks_say_so_with_their_size(spark_result, lumped_result, pandas_result):
    generator = spark_result.checks["generator"]
    how = generator.details["computed"]["c2st_auc"]
    assert how == {
        "how": "sample",
        "rows": {"real": 1742, "synthetic": 1742, "production": 1742},
        "of": {"real": 1742, "synthetic": 1742, "production": 1742},
    }
    # under the sample size, every row is read (in another order, which moves only the classifier's folds)
    assert generator.metrics["fidelity"] == pytest.approx(
        pandas_result.checks["generator"].metrics["fidelity"]
    )
    small = lumped_result.checks["generator"].details["computed"]["c2st_auc"]
    assert small["how"] == "sample" and small["of"]["real"] == 1742
    assert 400 <= small["rows"]["real"] <= 500 and 400 <= small["rows"]["synthetic"] <= 500


@pytest.mark.parametrize("which", ["spark_result", "lumped_result"])
def test_drift_over_every_row_gives_the_pandas_verdicts(request, which, pandas_result):
    """The lumped run samples 500 rows for the sampled checks; drift still reads every row."""
    ours, theirs = request.getfixturevalue(which).checks["drift"], pandas_result.checks["drift"]
    assert ours.status == theirs.status
    assert ours.metrics["drifted_share"] == theirs.metrics["drifted_share"]
    assert set(ours.metrics) == set(theirs.metrics)
    computed = ours.details["computed"]
    assert set(computed) == set(ours.metrics)
    for name, value in theirs.metrics.items():
        bound = computed[name].get("bound", 0.0) + ROUNDING
        assert ours.metrics[name] == pytest.approx(value, abs=bound, rel=0, nan_ok=True), name
    assert computed["drifted_share"] == exact() and ours.details["near_threshold"] == []
    for key in ("synthetic_vs_real", "real_vs_production"):
        assert ours.details[key]["drifted_columns"] == theirs.details[key]["drifted_columns"]


@pytest.mark.parametrize("which", ["spark_result", "lumped_result"])
def test_generator_exact_copies_are_counted_over_every_row(request, which, pandas_result):
    """The lumped run's generator reads a 500-row sample, yet its exact-copy figures are the pandas path's."""
    ours, theirs = request.getfixturevalue(which).checks["generator"], pandas_result.checks["generator"]
    exact_copy = {name for name in ours.metrics if "exact_copy" in name or name == "real_duplicate_share"}
    # the shares, the baseline's excess, p-value, tested and holdout shares, and its blind spot
    assert len(exact_copy) == 7
    assert {name for name, how in ours.details["computed"].items() if how == exact()} == exact_copy
    assert theirs.metrics["exact_copy_share"] > 0 and theirs.metrics["real_duplicate_share"] > 0
    for name in exact_copy:
        assert ours.metrics[name] == pytest.approx(theirs.metrics[name], abs=ROUNDING, rel=0), name
    assert ours.details["privacy_baseline"]["exact"] == theirs.details["privacy_baseline"]["exact"]
    # The verdict's power rule (max_undetectable_excess) is the pandas path's code, on those counts.
    assert ours.status is theirs.status
    insufficient = ours.details["privacy_baseline"]["insufficient_evidence"]
    assert insufficient == theirs.details["privacy_baseline"]["insufficient_evidence"]
    sizes = ("rows_synthetic", "rows_real")
    assert [ours.details["sizes"][k] for k in sizes] == [theirs.details["sizes"][k] for k in sizes]
    assert {how["how"] for name, how in ours.details["computed"].items() if name not in exact_copy} == {
        "sample"
    }


def test_a_drifted_share_whose_verdict_could_flip_is_reported_near_the_threshold():
    """Two of ten columns drifted, one of them sketched within its bound: the share lies in [0.1, 0.2]."""
    from mlflow_hitl.spark._validate import _drift_computed

    def row(name, drifted, near):
        estimate = "sketch" if near else "exact"
        return {
            "column": name,
            "stattest": "wasserstein",
            "drifted": drifted,
            "estimate": estimate,
            "bound": 0.01 if near else 0.0,
            "near_threshold": near,
        }

    table = [row("a", True, True), row("b", True, False)] + [row(f"c{i}", False, False) for i in range(8)]
    metrics = {"p.drifted_share": 0.2, "p.drifted_count": 2.0, "drifted_share": 0.2, "drifted_count": 2.0}
    for r in table:
        metrics[f"p.{r['column']}.score"], metrics[f"p.{r['column']}.drifted"] = 0.1, float(r["drifted"])
    result = CheckResult(
        name="drift",
        status="failed",
        metrics=metrics,
        thresholds={"max_drifted_share": 0.1},
        details={"p": {"table": table, "estimates": {"sketch": "quantiles"}}},
    )
    computed = _drift_computed(result)
    assert computed["drifted_share"]["low"] == 0.1 and computed["drifted_share"]["high"] == 0.2
    assert computed["p.a.score"]["bound"] == 0.01 and computed["p.b.score"] == exact()
    assert computed["p.a.drifted"]["how"] == "sketch" and computed["p.b.drifted"] == exact()
    near = annotated(result, computed).details["near_threshold"]
    assert [n["metric"] for n in near] == ["drifted_share"]
    # one column fewer drifted: the share could fall to 0.0 but not rise above 0.1, so no flip
    metrics.update(
        {"drifted_share": 0.1, "p.drifted_share": 0.1, "p.drifted_count": 1.0, "drifted_count": 1.0}
    )
    table[1]["drifted"] = False
    assert annotated(result, _drift_computed(result)).details["near_threshold"] == []


def test_details_count_rows_and_fingerprint_inputs_whatever_the_partitioning(
    spark_result, lumped_result, pandas_result
):
    assert spark_result.details["rows"] == pandas_result.details["rows"]
    for key in ("features", "features_source", "sensitive_features", "target", "probabilities"):
        assert spark_result.details[key] == pandas_result.details[key], key
    assert spark_result.details["classes"] == list(pandas_result.details["classes"])
    spread, lumped = spark_result.details["fingerprints"], lumped_result.details["fingerprints"]
    assert spread == lumped  # order-independent: the same rows, split differently (or given as pandas)
    assert len(spread["real"]) == 64 and spread["real"] != spread["synthetic"] and spread["holdout"] is None
    # what a queue needs to score the real rows again, left on the executors (nothing cached, no rows here)
    scored = spark_result.scored
    assert scored.features == tuple(pandas_result.details["features"]) and not scored.rows.is_cached
    assert scored.rows.columns == list(pandas_result.scored.rows.columns)
    assert scored.classes == pandas_result.scored.classes


def test_the_report_says_how_each_check_was_computed(spark_result, pandas_result):
    page = render_report(spark_result)
    assert "Computed on Spark:" in page and "from a sketch, within ±" in page and "seeded sample" in page
    assert "Computed on Spark" not in render_report(pandas_result)


def test_a_metric_within_its_bound_of_a_threshold_is_reported_near_it():
    result = CheckResult(
        name="calibration",
        status="passed",
        metrics={"ece": 0.048, "overconfidence_error": 0.01, "brier": 0.2},
        thresholds={"max_ece": 0.05, "max_overconfidence_error": 0.05},
    )
    near = annotated(
        result,
        {"ece": sketch(0.005, "test"), "overconfidence_error": sketch(0.005, "test"), "brier": exact()},
    ).details["near_threshold"]
    assert near == [{"metric": "ece", "value": 0.048, "threshold": "max_ece", "bound": 0.005}]


def test_validate_logs_spark_evidence_with_the_pandas_metric_names(
    tracking_uri, arrests_model, arrests_split, spark_frames
):
    synthetic, real, _ = arrests_split
    spread, _, spark_synthetic = spark_frames
    options = {**ARRESTS, "log": True, "checks": ["calibration", "fairness"]}
    with mlflow.start_run() as pandas_run:
        mlflow_hitl.validate(arrests_model, real=real, synthetic=synthetic, **options)
    with mlflow.start_run() as spark_run:
        result = mlflow_hitl.validate(arrests_model, real=spread, synthetic=spark_synthetic, **options)
    client = mlflow.MlflowClient()
    logged = {run.info.run_id: client.get_run(run.info.run_id).data for run in (pandas_run, spark_run)}
    pandas_data, spark_data = logged[pandas_run.info.run_id], logged[spark_run.info.run_id]
    assert result.run_id == spark_run.info.run_id
    assert (
        set(spark_data.metrics) == set(pandas_data.metrics) and "hitl.calibration.ece" in spark_data.metrics
    )
    assert spark_data.tags["hitl.status"] == pandas_data.tags["hitl.status"]
    artifacts = client.download_artifacts(spark_run.info.run_id, "hitl/fairness/result.json")
    with open(artifacts) as stored:
        assert '"computed"' in stored.read()


@pytest.fixture(scope="module")
def breast_cancer():
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame = load_breast_cancer(as_frame=True).frame
    features = [c for c in frame.columns if c != "target"][:10]
    frame = frame[[*features, "target"]].assign(size=np.where(frame["mean radius"] > 14, "large", "small"))
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    return frame, model.fit(frame[features].iloc[::2], frame["target"].iloc[::2]), features


def test_breast_cancer_integer_labels_give_the_same_calibration_and_fairness(spark, breast_cancer):
    frame, model, features = breast_cancer
    options = {
        "target": "target",
        "sensitive_features": ["size"],
        "features": features,
        "checks": ["calibration", "fairness"],
        "config": {"fairness": {"n_bootstrap": 50}, "calibration": {"min_samples": 20}},
        "log": False,
    }
    theirs = mlflow_hitl.validate(model, real=frame, **options)
    ours = mlflow_hitl.validate(model, real=spark.createDataFrame(frame).repartition(2), **options)
    assert dict(ours.checks["fairness"].metrics) == dict(theirs.checks["fairness"].metrics)
    bound = ours.checks["calibration"].details["computed"]["adaptive_ece"]["bound"]
    for name, value in theirs.checks["calibration"].metrics.items():
        allowed = (bound if name == "adaptive_ece" else 0) + ROUNDING
        assert ours.checks["calibration"].metrics[name] == pytest.approx(value, abs=allowed, rel=0), name
    assert {n: c.status for n, c in ours.checks.items()} == {n: c.status for n, c in theirs.checks.items()}
    assert ours.details["classes"] == [0, 1]


def _null_target(frame, spark):
    from pyspark.sql import functions as F

    if isinstance(frame, pd.DataFrame):
        return frame.assign(released=None)
    return frame.withColumn(ARRESTS_TARGET, F.lit(None).cast("string"))


def _string_ages(frame, spark):
    from pyspark.sql import functions as F

    if isinstance(frame, pd.DataFrame):
        return frame.assign(age=frame["age"].astype(str) + " years")
    return frame.withColumn("age", F.concat(F.col("age").cast("string"), F.lit(" years")))


# (case, how real is spoiled (pandas or Spark alike), other arguments)
BAD_INPUTS = [
    (
        "missing feature",
        lambda f, s: f.drop("age") if not isinstance(f, pd.DataFrame) else f.drop(columns="age"),
        {},
    ),
    ("empty real", lambda f, s: f.limit(0) if not isinstance(f, pd.DataFrame) else f.iloc[:0], {}),
    ("all-null target", _null_target, {}),
    ("strings where the model wants numbers", _string_ages, {}),
    (
        "too many groups",
        lambda f, s: f,
        {"sensitive_features": ["age"], "checks": ["fairness"], "config": {"fairness": {"max_groups": 10}}},
    ),
    ("synthetic not a frame", lambda f, s: f, {"synthetic": [1, 2, 3]}),
    ("synthetic without a sensitive column", lambda f, s: f, {"synthetic": "drop colour"}),
]


@pytest.mark.parametrize(("case", "spoil", "extra"), BAD_INPUTS, ids=[c for c, _, _ in BAD_INPUTS])
def test_bad_input_is_refused_as_the_pandas_path_refuses_it(
    spark, arrests_model, arrests_split, spark_frames, case, spoil, extra
):
    synthetic, real, _ = arrests_split
    spread, _, _ = spark_frames
    options = {**ARRESTS, "checks": ["calibration", "fairness"], **extra}
    if options.get("synthetic") == "drop colour":
        options["synthetic"] = synthetic.drop(columns="colour")
    errors = []
    for frame in (real, spread):
        with pytest.raises(HitlError) as raised:
            mlflow_hitl.validate(arrests_model, real=spoil(frame, spark), **options)
        errors.append(raised.value)
    pandas_error, spark_error = errors
    assert type(spark_error) is type(pandas_error)
    # the model names the first value it cannot read, which depends on the partitioning
    same = functools.partial(re.sub, r"'\d+ years'", "'<age> years'")
    assert same(str(spark_error)) == same(str(pandas_error))
    assert "\n" not in str(spark_error)


def test_a_model_without_probabilities_is_audited_for_fairness_and_skips_calibration(
    spark, breast_cancer, tmp_path
):
    from sklearn.linear_model import RidgeClassifier

    frame, _, features = breast_cancer
    model = RidgeClassifier().fit(frame[features], frame["target"])
    options = {"target": "target", "sensitive_features": ["size"], "features": features, "log": False}
    options["checks"], options["config"] = ["calibration", "fairness"], {"fairness": {"n_bootstrap": 50}}
    theirs = mlflow_hitl.validate(model, real=frame, **options)
    ours = mlflow_hitl.validate(model, real=spark.createDataFrame(frame), **options)
    assert dict(ours.checks["fairness"].metrics) == dict(theirs.checks["fairness"].metrics)
    assert ours.skipped == theirs.skipped and "calibration" in ours.skipped
    assert ours.details["classes"] == list(theirs.details["classes"])
    store = ReviewStore(f"sqlite:///{tmp_path / 'hitl.db'}")
    for result in (theirs, ours):
        with pytest.raises(InputError, match="^this validation kept no scored rows: the model gave no class"):
            queue_from_validation(store, "recheck", result, size=5, actor="ana")


@pytest.mark.parametrize(
    "bad",
    [[0.7, 0.7], [1.2, -0.2], [float("nan"), 1.0]],
    ids=["sum above 1", "outside 0 to 1", "NaN"],
)
def test_probabilities_the_pandas_path_refuses_are_refused_in_its_words(spark, bad):
    from mlflow_hitl.checks import calibration_check
    from mlflow_hitl.spark._calibration import calibration_stats

    probabilities = [bad, [0.6, 0.4], [0.1, 0.9]]
    rows = [(y, "a", p) for y, p in zip("aba", probabilities, strict=True)]
    scored = spark.createDataFrame(rows, "y string, _hitl_pred string, _hitl_proba array<double>")
    with pytest.raises(HitlError) as pandas_error:
        calibration_check(list("aba"), probabilities, classes=["a", "b"])
    with pytest.raises(HitlError) as spark_error:
        calibration_stats(scored, target="y", classes=["a", "b"], sensitive=[], n_bins=5)
    assert str(spark_error.value) == str(pandas_error.value)
    assert type(spark_error.value) is type(pandas_error.value)
