"""Evidence logged to a real MLflow SQLite store: metrics, artifacts with a verified manifest, tags."""

import hashlib
import json
import os
from pathlib import Path

import mlflow
import pytest

import mlflow_hitl
from conftest import ARRESTS_TARGET, FAST
from hitl_support import log_sklearn_model, validate_split
from mlflow_hitl.adapter.logging import evidence_page, logged_metrics
from mlflow_hitl.checks.registry import CHECKS
from mlflow_hitl.errors import NotFoundError

# The drift report is rendered here, on a small sample, to check it is logged.
LOGGED = {**FAST, "drift": {"report_sample_size": 300}}


@pytest.fixture
def logged(tracking_uri, arrests_model, arrests_split, tmp_path):
    with mlflow.start_run() as run:
        result = validate_split(arrests_model, arrests_split, config=LOGGED)
    local = Path(
        mlflow.artifacts.download_artifacts(
            run_id=run.info.run_id, artifact_path="hitl", dst_path=str(tmp_path / "dl")
        )
    )
    return result, mlflow.MlflowClient().get_run(run.info.run_id), local


def test_metrics_are_logged_as_hitl_check_metric(logged):
    result, run, _ = logged
    assert result.run_id == run.info.run_id
    logged_metrics = run.data.metrics
    assert logged_metrics["hitl.calibration.ece"] == pytest.approx(
        result.checks["calibration"].metrics["ece"]
    )
    assert logged_metrics["hitl.drift.synthetic_vs_real.drifted_share"] == pytest.approx(
        result.checks["drift"].metrics["synthetic_vs_real.drifted_share"]
    )


def test_only_headline_metrics_are_logged_and_result_json_keeps_every_metric(logged):
    result, run, local = logged
    logged_keys = {k for k in run.data.metrics if k.startswith("hitl.")}
    for name, check in result.checks.items():
        headline = {f"hitl.{name}.{m}" for m in CHECKS[name].headline(check.metrics)}
        counts = {f"hitl.{name}.{m}" for m in check.metrics if CHECKS[name].is_count(m)}
        mine = {k for k in logged_keys if k.startswith(f"hitl.{name}.")}
        assert mine == headline - counts, name
        assert 1 <= len(mine) <= 12, f"{name} logs {len(mine)} metrics"
        stored = json.loads((local / name / "result.json").read_text())["metrics"]
        assert set(stored) == set(check.metrics)
    # the full set is large; the run shows a handful per check
    assert sum(len(c.metrics) for c in result.checks.values()) > 3 * len(logged_keys)
    for never in (
        "hitl.drift.drifted_count",
        "hitl.drift.synthetic_vs_real.age.drifted",
        "hitl.calibration.count",
    ):
        assert never not in logged_keys


def test_headline_metrics_come_in_the_declared_order(logged):
    result, _, _ = logged
    keys = list(logged_metrics(result))
    assert keys[:2] == ["hitl.drift.drifted_share", "hitl.drift.synthetic_vs_real.drifted_share"]
    calibration = [k for k in keys if k.startswith("hitl.calibration.")]
    assert calibration[:2] == ["hitl.calibration.ece", "hitl.calibration.overconfidence_error"]
    adversarial = [k for k in keys if k.startswith("hitl.adversarial.")]
    assert adversarial[0] == "hitl.adversarial.worst_overconfidence_error"


def test_log_all_metrics_logs_every_measure_but_never_counts_or_flags(
    tracking_uri, arrests_model, arrests_split
):
    with mlflow.start_run() as run:
        result = validate_split(
            arrests_model,
            arrests_split,
            checks=["drift", "calibration", "fairness"],
            config=FAST,
            log_all_metrics=True,
        )
    logged_keys = set(mlflow.MlflowClient().get_run(run.info.run_id).data.metrics)
    expected = {
        f"hitl.{name}.{m}"
        for name, check in result.checks.items()
        for m, v in check.metrics.items()
        if v == v and not CHECKS[name].is_count(m)
    }
    assert logged_keys == expected
    assert "hitl.calibration.log_loss" in logged_keys and "hitl.fairness.sex.Male.count" not in logged_keys


def test_the_run_description_summarises_each_check(logged):
    result, run, _ = logged
    note = run.data.tags["mlflow.note.content"]
    assert "mlflow-hitl: " in note and result.status.value in note
    for name, check in result.checks.items():
        row = next(line for line in note.splitlines() if line.startswith(f"| {name} |"))
        assert check.status.value in row and check.summary[:40] in row
    assert "hitl/report.html" in note
    assert "/hitl/signoff" not in note  # logged to a local store: no server has the page


def test_the_evidence_page_is_on_the_tracking_server_without_its_credentials():
    for uri, page in (
        (
            "http://ann:secret@mlflow.example.org:5000/",
            "http://mlflow.example.org:5000/hitl/signoff?run_id=r1",
        ),
        ("https://example.org/mlflow", "https://example.org/mlflow/hitl/signoff?run_id=r1"),
        ("http://[::1]:5000", "http://[::1]:5000/hitl/signoff?run_id=r1"),
    ):
        mlflow.set_tracking_uri(uri)
        assert evidence_page("r1") == page
    mlflow.set_tracking_uri("sqlite:///mlflow.db")
    assert evidence_page("r1") is None


def test_validating_again_replaces_its_section_and_keeps_the_users_description(
    tracking_uri, arrests_model, arrests_split
):
    _, real, _ = arrests_split
    with mlflow.start_run(description="Baseline model, trained on the May synthetic set.") as run:
        pass
    for _ in range(2):
        mlflow_hitl.validate(
            arrests_model, real=real, target=ARRESTS_TARGET, checks=["calibration"], run_id=run.info.run_id
        )
    note = mlflow.MlflowClient().get_run(run.info.run_id).data.tags["mlflow.note.content"]
    assert note.startswith("Baseline model, trained on the May synthetic set.")
    assert note.count("| calibration |") == 1


def test_tags_record_status_per_check(logged):
    result, run, _ = logged
    assert run.data.tags["hitl.status"] == result.status.value
    pairs = dict(p.split("=") for p in run.data.tags["hitl.checks"].split(","))
    assert pairs == {name: check.status.value for name, check in result.checks.items()}


def test_summary_manifest_matches_every_artifact(logged):
    result, _, local = logged
    summary = json.loads((local / "summary.json").read_text())
    assert summary["status"] == result.status.value
    files = {p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file()} - {"summary.json"}
    assert set(summary["manifest"]) == files
    for relative, digest in summary["manifest"].items():
        assert hashlib.sha256((local / relative).read_bytes()).hexdigest() == digest
    for name in result.checks:
        assert (
            json.loads((local / name / "result.json").read_text())["status"]
            == result.checks[name].status.value
        )
    assert {"calibration/reliability.png", "drift/synthetic_vs_real.html", "report.html"} <= files


def test_report_html_names_every_check_and_embeds_plots(logged):
    result, _, local = logged
    page = (local / "report.html").read_text()
    for name, _check in result.checks.items():
        assert f'id="{name}"' in page
    assert page.count("data:image/png;base64,") >= 3
    assert result.status.value in page


def test_unknown_run_id_is_not_found(tracking_uri, arrests_model, arrests_split):
    _, real, _ = arrests_split
    with pytest.raises(NotFoundError, match="unknown MLflow run 'nope'"):
        mlflow_hitl.validate(
            arrests_model, real=real, target=ARRESTS_TARGET, checks=["calibration"], run_id="nope"
        )


def test_explicit_run_id_logs_to_a_finished_run(tracking_uri, arrests_model, arrests_split):
    _, real, _ = arrests_split
    with mlflow.start_run() as run:
        pass
    result = mlflow_hitl.validate(
        arrests_model, real=real, target=ARRESTS_TARGET, checks=["calibration"], run_id=run.info.run_id
    )
    assert mlflow.MlflowClient().get_run(run.info.run_id).data.tags["hitl.status"] == result.status.value


def test_log_false_inside_a_run_logs_nothing(tracking_uri, arrests_model, arrests_split):
    _, real, _ = arrests_split
    with mlflow.start_run() as run:
        result = mlflow_hitl.validate(
            arrests_model, real=real, target=ARRESTS_TARGET, checks=["calibration"], log=False
        )
    assert result.run_id is None
    assert "hitl.status" not in mlflow.MlflowClient().get_run(run.info.run_id).data.tags


def test_a_model_validated_by_uri_is_named_by_it_in_the_report(
    tracking_uri, arrests_model, arrests_split, tmp_path
):
    _, real, _ = arrests_split
    with mlflow.start_run() as run:
        info = log_sklearn_model(arrests_model, real)
    result = mlflow_hitl.validate(
        info.model_uri, real=real, target=ARRESTS_TARGET, checks=["calibration"], run_id=run.info.run_id
    )
    assert result.details["model_uri"] == info.model_uri
    local = Path(
        mlflow.artifacts.download_artifacts(
            run_id=run.info.run_id, artifact_path="hitl", dst_path=str(tmp_path)
        )
    )
    assert json.loads((local / "summary.json").read_text())["details"]["model_uri"] == info.model_uri
    assert f"<th>model URI</th><td class=finding>{info.model_uri}</td>" in (local / "report.html").read_text()


def test_a_registered_model_name_not_registered_yet_gets_the_default_policy(
    tracking_uri, arrests_model, arrests_split, tmp_path
):
    """Validating before registering is a normal order: the name is kept, the default policy's bounds shown."""
    _, real, _ = arrests_split
    with mlflow.start_run() as run:
        mlflow_hitl.validate(
            arrests_model,
            real=real,
            target=ARRESTS_TARGET,
            checks=["calibration"],
            registered_model_name="later",
        )
    local = Path(
        mlflow.artifacts.download_artifacts(
            run_id=run.info.run_id, artifact_path="hitl", dst_path=str(tmp_path)
        )
    )
    assert json.loads((local / "summary.json").read_text())["details"]["registered_model_name"] == "later"
    assert "<code>ece &lt;= 0.05</code>" in (local / "report.html").read_text()


def test_validate_draws_no_progress_bars_for_its_own_downloads(
    tracking_uri, arrests_model, arrests_split, monkeypatch, capfd
):
    """Reading the run's summary and the model's files to hash them is not the user's download: MLflow's
    bars (one left at 0/1 for a summary not logged yet) stay out of their terminal or notebook."""
    monkeypatch.delenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", raising=False)
    _, real, _ = arrests_split
    with mlflow.start_run():
        capfd.readouterr()
        mlflow_hitl.validate(arrests_model, real=real, target=ARRESTS_TARGET, checks=["calibration"])
    assert "Downloading artifacts" not in capfd.readouterr().err
    assert "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR" not in os.environ  # the switch put back as it was


def test_the_report_shows_the_gate_policy_of_the_registered_model_it_is_validated_for(
    tracking_uri, arrests_model, arrests_split, tmp_path
):
    """Validated for its registered model, a run's report shows that model's gate bounds and their origin."""
    from mlflow_hitl.adapter.gate import set_policy
    from mlflow_hitl.adapter.review import open_store

    _, real, _ = arrests_split
    store = open_store()
    store.grant_role("root", "admin", actor="root")

    def validated(name: str | None) -> tuple[str, str]:
        with mlflow.start_run() as run:
            info = log_sklearn_model(arrests_model, real)
            mlflow.register_model(info.model_uri, "arrests")
            mlflow_hitl.validate(
                arrests_model,
                real=real,
                target=ARRESTS_TARGET,
                checks=["calibration"],
                registered_model_name=name,
            )
        folder = tmp_path / run.info.run_id
        mlflow.artifacts.download_artifacts(
            run_id=run.info.run_id, artifact_path="hitl", dst_path=str(folder)
        )
        note = mlflow.MlflowClient().get_run(run.info.run_id).data.tags["mlflow.note.content"]
        return (folder / "hitl" / "report.html").read_text(), note

    # What validate is given decides, not the registry: the same validation logs the same evidence.
    report, note = validated(None)
    assert "release gate bound" not in report and "Release gate" not in note
    assert "validate with the registered model&#x27;s name to show its bounds here" in report

    report, note = validated("arrests")  # no policy of its own yet: the strict default is in force
    assert "the default policy (arrests has none of its own)" in report
    assert "<code>ece &lt;= 0.05</code>" in report  # the default bound: the check's own default threshold

    record = set_policy(store, "arrests", "[checks.calibration]\nmax = { ece = 0.005 }\n", actor="root")
    report, note = validated("arrests")
    origin = (
        f"policy of arrests v1, set by root {record['set_at'][:16].replace('T', ' ')} "
        f"(sha256 {record['policy_hash'][:12]})"
    )
    assert origin in report
    assert "<code>ece &lt;= 0.005</code></td><td>❌</td>" in report
    assert f"Release gate ({origin}): 0 of 1 bounds met; unmet: calibration.ece <= 0.005" in note
