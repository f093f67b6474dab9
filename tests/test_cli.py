"""The mlflow-hitl command line, driven through click's CliRunner against a real SQLite store."""

import json

import mlflow
import pytest
from click.testing import CliRunner

from conftest import ARRESTS_TARGET
from hitl_support import log_sklearn_model
from mlflow_hitl.cli import cli

FAST_TOML = """
[adversarial]
max_rows = 300
[fairness]
n_bootstrap = 50
[drift]
render_report = false
"""


@pytest.fixture
def files(tmp_path, arrests_split):
    synthetic, real, production = arrests_split
    paths = {name: tmp_path / f"{name}.csv" for name in ("synthetic", "real", "production")}
    synthetic.to_csv(paths["synthetic"], index=False)
    real.to_csv(paths["real"], index=False)
    production.to_csv(paths["production"], index=False)
    paths["config"] = tmp_path / "fast.toml"
    paths["config"].write_text(FAST_TOML)
    return paths


@pytest.fixture
def model_run(tracking_uri, arrests_model, arrests_split):
    _, real, _ = arrests_split
    with mlflow.start_run() as run:
        log_sklearn_model(arrests_model, real)
    return run.info.run_id


def _not_json(constant):
    raise AssertionError(f"{constant} is not JSON")


def invoke(tracking_uri, *args):
    return CliRunner().invoke(cli, ["--tracking-uri", tracking_uri, *args])


def test_every_command_has_help():
    runner = CliRunner()
    assert runner.invoke(cli, ["--help"]).exit_code == 0
    for name, command in cli.commands.items():
        result = runner.invoke(cli, [name, "--help"])
        assert result.exit_code == 0, name
        assert command.help and "Example" in command.help, f"{name} needs help text with an example"


def test_validate_logs_to_the_models_run_and_exit_code_follows_status(tracking_uri, files, model_run):
    result = invoke(
        tracking_uri,
        "validate",
        "--model-uri",
        f"runs:/{model_run}/model",
        "--real",
        str(files["real"]),
        "--target",
        ARRESTS_TARGET,
        "--synthetic",
        str(files["synthetic"]),
        "--production",
        str(files["production"]),
        "--sensitive",
        "colour,sex",
        "--config",
        str(files["config"]),
        "--format",
        "json",
    )
    assert result.exit_code in (0, 1), result.output
    payload = json.loads(result.stdout, parse_constant=_not_json)  # strict JSON: no NaN, no Infinity
    assert payload["run_id"] == model_run
    assert result.exit_code == (0 if payload["status"] == "passed" else 1)
    assert set(payload["checks"]) == {"drift", "calibration", "adversarial", "fairness", "generator"}
    assert payload["details"]["features_source"] == "signature"
    tags = mlflow.MlflowClient().get_run(model_run).data.tags
    assert tags["hitl.status"] == payload["status"]


def test_validate_text_output_and_no_log(tracking_uri, files, model_run):
    result = invoke(
        tracking_uri,
        "validate",
        "--model-uri",
        f"runs:/{model_run}/model",
        "--real",
        str(files["real"]),
        "--target",
        ARRESTS_TARGET,
        "--checks",
        "calibration",
        "--no-log",
    )
    assert result.exit_code in (0, 1)
    assert result.stdout.startswith("status: ")
    assert "calibration" in result.stdout
    assert "logged to run" not in result.stdout
    assert "hitl.status" not in mlflow.MlflowClient().get_run(model_run).data.tags


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--real", "missing.csv"], "--real: file missing.csv does not exist"),
        (["--real", "{real}", "--target", "verdict"], "real is missing column(s) verdict"),
        (["--real", "{bad}"], "--real: cannot read"),
        (["--real", "{empty}"], "--real: "),
        (["--real", "{real}", "--checks", "vibes"], "unknown check(s) 'vibes'"),
        # A requested check that its inputs cannot feed is a usage error, not insufficient_evidence (exit 1).
        (
            ["--real", "{real}", "--checks", "calibration,fairness"],
            "check 'fairness' was asked for but cannot run: needs sensitive_features",
        ),
        (["--real", "{real}", "--checks", "generator", "--sensitive", "sex"], "check 'generator' was asked"),
        (["--real", "{real}", "--config", "{badconfig}"], "config file"),
        (["--real", "{real}", "--run-id", "0123456789abcdef"], "unknown MLflow run '0123456789abcdef'"),
        (
            ["--real", "{real}", "--model-uri", "runs:/0123456789abcdef/model"],
            "unknown MLflow run '0123456789abcdef'",
        ),
        (["--real", "{real}", "--model-uri", "{real}", "--no-log"], "cannot load model"),
        (["--real", "{real}", "--model-uri", "models:/no-such-model/1"], "unknown registered model version"),
    ],
)
def test_bad_input_exits_2_with_one_line(tracking_uri, files, model_run, tmp_path, args, message):
    (tmp_path / "bad.csv").write_bytes(b'a,b\n1,"2\n3')
    (tmp_path / "empty.csv").write_bytes(b"")
    (tmp_path / "bad.toml").write_text("[calibration\nmax_ece = ")
    paths = {
        "real": files["real"],
        "bad": tmp_path / "bad.csv",
        "empty": tmp_path / "empty.csv",
        "badconfig": tmp_path / "bad.toml",
    }
    args = [a.format(**paths) for a in args]
    base = {"--model-uri": f"runs:/{model_run}/model", "--target": ARRESTS_TARGET}
    for flag, value in base.items():
        if flag not in args:
            args += [flag, value]
    result = invoke(tracking_uri, "validate", *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output + result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "hitl.status" not in mlflow.MlflowClient().get_run(model_run).data.tags  # nothing logged


def test_validate_for_a_registered_model_shows_its_gate_from_a_runs_uri(
    tracking_uri, files, model_run, tmp_path
):
    """``--registered-model-name`` is the API's ``registered_model_name``: a ``runs:/`` URI names no model."""
    mlflow.register_model(f"runs:/{model_run}/model", "arrests")
    options = f"--model-uri runs:/{model_run}/model --target {ARRESTS_TARGET} --checks calibration".split()
    result = invoke(
        tracking_uri, "validate", *options, "--real", str(files["real"]), "--registered-model-name", "arrests"
    )
    assert result.exit_code in (0, 1), result.output
    mlflow.artifacts.download_artifacts(run_id=model_run, artifact_path="hitl", dst_path=str(tmp_path))
    report = (tmp_path / "hitl" / "report.html").read_text()
    assert "the default policy (arrests has none of its own)" in report
    assert "<code>ece &lt;= 0.05</code>" in report  # the gate's bound on the check, shown


def test_a_model_name_not_registered_yet_is_validated_with_a_warning(
    tracking_uri, files, model_run, tmp_path
):
    """Validating before registering is a normal order; a typo would show the default policy, so it is said."""
    options = f"--model-uri runs:/{model_run}/model --target {ARRESTS_TARGET} --checks calibration".split()
    result = invoke(
        tracking_uri, "validate", *options, "--real", str(files["real"]), "--registered-model-name", "arests"
    )
    assert result.exit_code in (0, 1), result.output
    assert (
        "warning: no registered model 'arests' yet: the report shows the default policy's bounds"
        in result.output
    )
    mlflow.artifacts.download_artifacts(run_id=model_run, artifact_path="hitl", dst_path=str(tmp_path))
    assert "<code>ece &lt;= 0.05</code>" in (tmp_path / "hitl" / "report.html").read_text()


def test_a_refused_validation_leaves_no_empty_run_behind(tracking_uri, files, arrests_model, tmp_path):
    """A model outside any run gets a new ``hitl-validate`` run; refused input must not leave it FAILED and empty."""
    import sklearn

    folder = tmp_path / "model"
    mlflow.sklearn.save_model(
        arrests_model, folder, pip_requirements=[f"scikit-learn=={sklearn.__version__}"]
    )
    args = ["--model-uri", str(folder), "--real", str(files["real"]), "--target", ARRESTS_TARGET]
    refused = invoke(tracking_uri, "validate", *args, "--checks", "fairness")
    assert refused.exit_code == 2 and "needs sensitive_features" in refused.stderr
    assert mlflow.search_runs(search_all_experiments=True).empty  # none left, not even FAILED
    logged = invoke(tracking_uri, "validate", *args, "--checks", "calibration")
    assert logged.exit_code in (0, 1), logged.output
    runs = mlflow.search_runs(search_all_experiments=True)
    assert runs["tags.mlflow.runName"].tolist() == ["hitl-validate"] and runs["status"].tolist() == [
        "FINISHED"
    ]


def test_missing_required_option_is_a_usage_error(tracking_uri):
    result = invoke(tracking_uri, "validate", "--real", "x.csv")
    assert result.exit_code == 2
    assert "Missing option" in result.stderr
