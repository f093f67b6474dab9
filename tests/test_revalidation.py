"""Validating a run again with fewer checks, on a real MLflow SQLite store and review store.

The new validation's summary is the truth and the gate judges only its checks; the files of the
checks it left out are kept, marked as the earlier validation's, and stay verifiable.
"""

import json
import warnings
from pathlib import Path

import mlflow
import pytest

import mlflow_hitl
from conftest import ARRESTS_SENSITIVE, ARRESTS_TARGET, FAST
from hitl_support import log_run_with_evidence
from mlflow_hitl.adapter.earlier import EarlierEvidenceWarning
from mlflow_hitl.adapter.gate import check_gate, set_policy
from mlflow_hitl.review import ReviewStore

# Both checks required, whatever their status; no people: the evidence alone decides.
POLICY = """
signoffs = []

[checks.calibration]
max = { ece = 0.5 }
allow_status = ["passed", "failed", "needs_review"]

[checks.fairness]
max = {}
allow_status = ["passed", "failed", "needs_review"]
"""


@pytest.fixture
def run(tracking_uri, tmp_path, arrests_model, arrests_split, monkeypatch):
    synthetic, real, _ = arrests_split
    store_uri = f"sqlite:///{tmp_path / 'hitl.db'}"
    monkeypatch.setenv("MLFLOW_HITL_STORE_URI", store_uri)
    store = ReviewStore(store_uri)
    store.grant_role("root", "admin", actor="root")
    run_id = log_run_with_evidence(arrests_model, synthetic, real)  # calibration and fairness
    mlflow.register_model(f"runs:/{run_id}/model", "arrests")
    set_policy(store, "arrests", POLICY, actor="root")

    def validate(checks, **options):
        with mlflow.start_run(run_id=run_id):
            return mlflow_hitl.validate(
                arrests_model,
                real=real,
                target=ARRESTS_TARGET,
                synthetic=synthetic,
                sensitive_features=ARRESTS_SENSITIVE,
                config=FAST,
                checks=checks,
                **options,
            )

    def unmet():
        decision = check_gate("arrests", "1", "alias:champion", store=store, actor="rita")
        return {r.name: r.detail for r in decision.unmet()}

    downloads = iter(range(100))

    def files():
        folder = tmp_path / f"download-{next(downloads)}"
        mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="hitl", dst_path=str(folder))
        return folder / "hitl"

    return {"run_id": run_id, "store": store, "validate": validate, "unmet": unmet, "files": files}


def _registrations(store, run_id):
    events = store.audit_events(subject=f"run:{run_id}", action="evidence.registered")
    return [(int(e["seq"]), json.loads(e["payload"])["summary_sha256"]) for e in events.to_dict("records")]


def test_a_narrower_validation_keeps_the_earlier_files_marked_and_the_gate_judges_only_its_checks(run):
    assert run["unmet"]() == {}
    first_seq, first_digest = _registrations(run["store"], run["run_id"])[-1]
    before = run["files"]()
    fairness_files = sorted(p.relative_to(before).as_posix() for p in (before / "fairness").iterdir())

    with pytest.warns(EarlierEvidenceWarning, match=r"held checks fairness from an earlier validation"):
        result = run["validate"](["calibration"])

    earlier = result.details["earlier"]
    assert list(earlier) == [first_digest]  # the earlier validation, by the summary digest its event pins
    entry = earlier[first_digest]
    assert entry["checks"] == {
        "fairness": json.loads((before / "summary.json").read_text())["checks"]["fairness"]
    }
    assert entry["registration"]["seq"] == first_seq and entry["registration"]["time"]
    assert entry["files"] == fairness_files
    after = run["files"]()
    summary = json.loads((after / "summary.json").read_text())
    assert summary["checks"] == {"calibration": result.checks["calibration"].status.value}
    assert summary["details"]["earlier"] == earlier
    for (
        path
    ) in fairness_files:  # kept, byte for byte, and pinned at the digest the earlier validation recorded
        assert (after / path).read_bytes() == (before / path).read_bytes()
        assert (
            summary["manifest"][path] == json.loads((before / "summary.json").read_text())["manifest"][path]
        )
    report = (after / "report.html").read_text()
    assert "Kept from an earlier validation" in report and "fairness (" in report
    assert f"registered at audit event {first_seq}" in report
    note = mlflow.MlflowClient().get_run(run["run_id"]).data.tags["mlflow.note.content"]
    assert "Kept from an earlier validation, not judged by the gate: fairness" in note

    # The gate: the evidence is intact and as registered; what it misses is said as it is.
    unmet = run["unmet"]()
    assert "evidence.registered" not in unmet and "evidence.artifacts_intact" not in unmet
    assert unmet["check.fairness"] == "fairness was not run (checks logged: calibration)"


def test_kept_files_stay_the_earliest_validations_and_can_still_not_be_edited(run):
    first_digest = _registrations(run["store"], run["run_id"])[-1][1]
    with pytest.warns(EarlierEvidenceWarning):
        run["validate"](["calibration"])
    with pytest.warns(EarlierEvidenceWarning):
        again = run["validate"](["calibration"])
    assert list(again.details["earlier"]) == [first_digest]  # still the first validation's, not the second's

    # An edit of a kept file after registration is caught like any other.
    hitl = (
        Path(mlflow.MlflowClient().get_run(run["run_id"]).info.artifact_uri.removeprefix("file://")) / "hitl"
    )
    (hitl / "fairness" / "result.json").write_text("{}")
    unmet = run["unmet"]()
    assert "hitl/fairness/result.json was altered" in unmet["evidence.artifacts_intact"]


def test_validating_every_check_again_leaves_nothing_earlier(run):
    with pytest.warns(EarlierEvidenceWarning):
        run["validate"](["calibration"])
    with warnings.catch_warnings():
        warnings.simplefilter("error", EarlierEvidenceWarning)
        full = run["validate"](["calibration", "fairness"])
    assert "earlier" not in full.details
    summary = json.loads((run["files"]() / "summary.json").read_text())
    assert "earlier" not in summary["details"]
    assert run["unmet"]() == {}


def test_the_command_line_says_so_in_one_line(run, tracking_uri, arrests_split, tmp_path):
    from click.testing import CliRunner

    from mlflow_hitl.cli import cli

    _, real, _ = arrests_split
    real_csv = tmp_path / "real.csv"
    real.to_csv(real_csv, index=False)
    result = CliRunner().invoke(
        cli,
        ["--tracking-uri", tracking_uri, "validate", "--model-uri", f"runs:/{run['run_id']}/model"]
        + [
            "--real",
            str(real_csv),
            "--target",
            ARRESTS_TARGET,
            "--checks",
            "calibration",
            "--format",
            "json",
        ],
    )
    assert result.exit_code in (0, 1), result.output
    json.loads(result.stdout)  # stdout stays clean JSON
    lines = [line for line in result.stderr.splitlines() if "earlier validation" in line]
    assert len(lines) == 1 and lines[0].startswith(f"warning: run {run['run_id']} held checks fairness")
    assert "EarlierEvidenceWarning" not in result.stderr


def test_adding_the_left_out_check_back_with_log_check_leaves_nothing_earlier(
    run, arrests_model, arrests_split
):
    """log_check reads the run's summary back; what was earlier is recomputed, never carried over."""
    from mlflow_hitl.adapter.logging import log_check

    with pytest.warns(EarlierEvidenceWarning):
        run["validate"](["calibration"])
    fairness = run["validate"](["fairness"], log=False).checks["fairness"]
    merged = log_check(fairness, run_id=run["run_id"])
    assert set(merged.checks) == {"calibration", "fairness"} and "earlier" not in merged.details
    summary = json.loads((run["files"]() / "summary.json").read_text())
    assert "earlier" not in summary["details"]
    assert run["unmet"]() == {}


def test_log_check_shows_the_gate_the_validation_recorded(run):
    """The registered model's name is part of the evidence: a check added later keeps the gate section,
    read from the run's summary, and the new registration is the evidence the gate then verifies."""
    from mlflow_hitl._hashing import sha256_hex
    from mlflow_hitl.adapter.logging import log_check

    with pytest.warns(EarlierEvidenceWarning):
        run["validate"](["calibration"], registered_model_name="arrests")
    fairness = run["validate"](["fairness"], log=False).checks["fairness"]
    merged = log_check(fairness, run_id=run["run_id"])

    assert merged.details["registered_model_name"] == "arrests"
    files = run["files"]()
    summary_bytes = (files / "summary.json").read_bytes()
    assert json.loads(summary_bytes)["details"]["registered_model_name"] == "arrests"
    report = (files / "report.html").read_text()
    assert "policy of arrests v1, set by root" in report
    assert "<code>ece &lt;= 0.5</code></td><td>✅</td>" in report  # the policy's bound, met
    note = mlflow.MlflowClient().get_run(run["run_id"]).data.tags["mlflow.note.content"]
    assert "Release gate (policy of arrests v1" in note
    assert _registrations(run["store"], run["run_id"])[-1][1] == sha256_hex(summary_bytes)
    assert run["unmet"]() == {}
