"""The hitl evaluator, found by name through MLflow's own plugin registry, on a real SQLite store."""

import mlflow
import pytest
from mlflow.models.evaluation import list_evaluators

from conftest import ARRESTS_TARGET, FAST
from hitl_support import log_sklearn_model


def test_evaluator_is_registered_under_its_name():
    assert "hitl" in list_evaluators()


@pytest.fixture
def model_uri(tracking_uri, arrests_model, arrests_split):
    _, real, _ = arrests_split
    with mlflow.start_run() as run:
        info = log_sklearn_model(arrests_model, real)
    return info.model_uri, run.info.run_id


def evaluate_with_hitl(uri, real, **hitl_config):
    """MLflow's own evaluate, with the hitl evaluator only, on the real rows."""
    return mlflow.models.evaluate(
        uri,
        data=real,
        targets=ARRESTS_TARGET,
        model_type="classifier",
        evaluators=["hitl"],
        evaluator_config={"hitl": hitl_config},
    )


def test_evaluate_with_hitl_logs_the_evidence(model_uri, arrests_split):
    uri, _ = model_uri
    synthetic, real, _ = arrests_split
    with mlflow.start_run() as run:
        evaluation = evaluate_with_hitl(
            uri, real, synthetic=synthetic, sensitive_features=["sex"], config=FAST
        )
    stored = mlflow.MlflowClient().get_run(run.info.run_id)
    assert evaluation.metrics["hitl.calibration.ece"] == pytest.approx(
        stored.data.metrics["hitl.calibration.ece"]
    )
    assert "hitl.fairness.sex.demographic_parity_difference" in evaluation.metrics
    assert stored.data.tags["hitl.status"] == evaluation.artifacts["hitl_summary"].content["status"]
    assert set(evaluation.artifacts["hitl_summary"].content["checks"]) == {
        "drift",
        "calibration",
        "adversarial",
        "fairness",
        "generator",
    }
    # the metrics MLflow logs again to the evaluated model are the run's headline metrics, not hundreds
    assert set(evaluation.metrics) == {k for k in stored.data.metrics if k.startswith("hitl.")}


def test_the_evaluation_lists_the_report_each_result_and_every_plot(model_uri, arrests_split):
    uri, _ = model_uri
    synthetic, real, _ = arrests_split
    with mlflow.start_run():
        evaluation = evaluate_with_hitl(
            uri, real, synthetic=synthetic, sensitive_features=["sex"], config=FAST
        )
    artifacts = evaluation.artifacts
    assert "HITL evidence report" in artifacts["hitl_report"].content
    assert "pyfunc model (flavour mlflow.sklearn, run " in artifacts["hitl_report"].content  # not "Pipeline"
    summary = artifacts["hitl_summary"].content
    for check in summary["checks"]:
        assert artifacts[f"hitl_{check}_result"].content["status"] == summary["checks"][check]["status"]
    plots = {name for name in artifacts if name.endswith(".png")}
    assert {"hitl_calibration_reliability.png", "hitl_adversarial_confidence_vs_severity.png"} <= plots
    assert artifacts["hitl_calibration_reliability.png"].content.size[0] > 100  # a loaded image
    # every plot the run holds is listed
    expected = {f"hitl_{c}_{f}" for c, check in summary["checks"].items() for f in check["artifacts"]}
    assert expected <= set(artifacts)


def test_unknown_evaluator_config_key_is_refused(model_uri, arrests_split):
    uri, _ = model_uri
    _, real, _ = arrests_split
    with mlflow.start_run(), pytest.raises(Exception, match="unknown hitl evaluator_config key.*sensitive"):
        evaluate_with_hitl(uri, real, sensitive=["sex"])


def test_a_second_evaluation_on_the_same_data_reuses_the_data_only_checks(model_uri, arrests_split):
    uri, _ = model_uri
    synthetic, real, _ = arrests_split

    def evaluate(**options):
        with mlflow.start_run():
            evaluation = evaluate_with_hitl(uri, real, synthetic=synthetic, config=FAST, **options)
        return evaluation.artifacts["hitl_summary"].content

    first, second, fresh = evaluate(), evaluate(), evaluate(reuse=False)
    assert "reused" not in first["details"] and "reused" not in fresh["details"]
    assert second["details"]["reused"] == ["drift", "generator"]
    assert second["checks"]["generator"] == first["checks"]["generator"] == fresh["checks"]["generator"]
