"""Evidence registered once, then frozen, and bound to the model it evaluated (issue 7, classes 2-4).

Local mode on a real MLflow SQLite store and review store: the gate is judged through ``gate check``,
``gate promote`` and ``lineage`` as a user runs them, after the files are changed the way the run's
author could change them.
"""

import json
import re
import shutil
from datetime import datetime, timezone
from pathlib import Path

import mlflow
import pytest
from click.testing import CliRunner

import mlflow_hitl.report
from hitl_support import LENIENT_POLICY, log_run_with_evidence, validate_arrests
from mlflow_hitl.adapter.gate import check_gate, set_policy
from mlflow_hitl.adapter.registration import model_digest
from mlflow_hitl.cli import cli
from mlflow_hitl.review import ReviewStore

AUTHOR = "alice"
TARGET = "alias:champion"


@pytest.fixture
def signed(tracking_uri, tmp_path, arrests_model, arrests_split, monkeypatch):
    """Version 1 of 'arrests' by alice, its evidence registered and signed off by dana: the gate passes."""
    synthetic, real, _ = arrests_split
    store_uri = f"sqlite:///{tmp_path / 'hitl.db'}"
    monkeypatch.setenv("MLFLOW_HITL_STORE_URI", store_uri)
    monkeypatch.setenv("MLFLOW_HITL_USER", AUTHOR)
    # alice names dana as the run's user: only what the records say counts.
    run_id = log_run_with_evidence(arrests_model, synthetic, real, tags={"mlflow.user": "dana"})
    version = mlflow.register_model(f"runs:/{run_id}/model", "arrests")
    store = ReviewStore(store_uri)
    store.grant_role("root", "admin", actor="root")
    for user in ("dana", AUTHOR):
        store.grant_role(user, "fairness-reviewer", actor="root")
    set_policy(store, "arrests", LENIENT_POLICY, actor="root")
    store.sign_off(run_id=run_id, check="fairness", user="dana", approve=True)

    def invoke(*args, user="rita"):
        return CliRunner().invoke(
            cli, ["--tracking-uri", tracking_uri, *args], env={"MLFLOW_HITL_USER": user}
        )

    def unmet(version="1", actor="rita"):
        decision = check_gate("arrests", version, TARGET, store=store, actor=actor, record=False)
        return {r.name: r.detail for r in decision.unmet()}

    assert unmet() == {}
    hitl = Path(mlflow.MlflowClient().get_run(run_id).info.artifact_uri.removeprefix("file://")) / "hitl"
    model = Path(mlflow.MlflowClient().get_model_version_download_uri("arrests", "1").removeprefix("file://"))
    return {
        "run_id": run_id,
        "store": store,
        "invoke": invoke,
        "unmet": unmet,
        "hitl": hitl,
        "model": model,
        "source": version.source,
        "data": (synthetic, real),
    }


# -- class 2: evidence bound to the model -------------------------------------------------------


def test_a_version_with_a_foreign_source_and_a_passing_run_id_is_blocked(signed, tmp_path):
    client = mlflow.MlflowClient()
    foreign = tmp_path / "foreign"
    shutil.copytree(signed["model"], foreign)
    (foreign / "model.skops").write_bytes(b"another model altogether")
    client.create_model_version("arrests", foreign.as_uri(), run_id=signed["run_id"])
    unmet = signed["unmet"]("2")
    assert set(unmet) == {"evidence.model"}
    assert "model files differ from the evaluated model" in unmet["evidence.model"]
    refused = signed["invoke"]("gate", "promote", "arrests", "2", "--alias", "champion")
    assert refused.exit_code == 1 and "model files differ from the evaluated model" in refused.output

    client.create_model_version("arrests", (tmp_path / "nowhere").as_uri(), run_id=signed["run_id"])
    assert "cannot be read" in signed["unmet"]("3")["evidence.model"]
    assert signed["unmet"]("1") == {}  # the evaluated version itself still passes


def test_a_sign_off_carries_over_only_to_the_same_model_files(signed, tmp_path):
    client = mlflow.MlflowClient()
    client.create_model_version("arrests", signed["source"], run_id=signed["run_id"])  # v2: same source
    copy = tmp_path / "copy"
    shutil.copytree(signed["model"], copy)
    client.create_model_version("arrests", copy.as_uri(), run_id=signed["run_id"])  # v3: same files
    assert model_digest(copy) == model_digest(signed["model"])
    assert signed["unmet"]("2") == {} and signed["unmet"]("3") == {}
    (copy / "notes.txt").write_text("one more file")
    client.create_model_version("arrests", copy.as_uri(), run_id=signed["run_id"])  # v4: other files
    assert set(signed["unmet"]("4")) == {"evidence.model"}
    assert set(signed["unmet"]("3")) == {"evidence.model"}  # v3's source changed under it too


# -- class 3: evidence registered once, then frozen ---------------------------------------------


def _rewrite_with_manifest(hitl: Path, relative: str, text: str) -> None:
    """Change a file and recompute its hash in hitl/summary.json, as a careful forger would."""
    from mlflow_hitl._hashing import sha256_file

    (hitl / relative).write_text(text)
    summary = json.loads((hitl / "summary.json").read_text())
    summary["manifest"][relative] = sha256_file(hitl / relative)
    (hitl / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True))


def _edit_statuses(hitl: Path) -> None:
    summary = json.loads((hitl / "summary.json").read_text())
    summary["checks"] = {name: "passed" for name in summary["checks"]}
    summary["status"] = "passed"
    (hitl / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True))


def _forge_snapshot(hitl: Path) -> None:
    (hitl / "labels" / "forged").mkdir(parents=True)
    (hitl / "labels" / "forged" / "labels.csv").write_text("x\n1\n")


TAMPERING = {
    "overwrite a result": lambda hitl: (hitl / "calibration" / "result.json").write_text("{}"),
    "delete a plot": lambda hitl: (hitl / "calibration" / "reliability.png").unlink(),
    "add a file": lambda hitl: (hitl / "fairness" / "waiver.json").write_text('{"approved": true}'),
    "add a snapshot folder": _forge_snapshot,
    "rewrite a result and its manifest hash": lambda hitl: _rewrite_with_manifest(
        hitl, "calibration/result.json", '{"metrics": {"ece": 0.0}, "status": "passed"}'
    ),
    "edit summary.json statuses": _edit_statuses,
    "delete summary.json": lambda hitl: (hitl / "summary.json").unlink(),
}


def test_any_change_after_registration_blocks_gate_check_and_shows_in_lineage(signed, tmp_path):
    hitl, invoke = signed["hitl"], signed["invoke"]
    pristine = tmp_path / "pristine"
    shutil.copytree(hitl, pristine)
    for what, tamper in TAMPERING.items():
        tamper(hitl)
        check = invoke("gate", "check", "models:/arrests/1", "--target", "champion", "--format", "json")
        assert check.exit_code == 1, (what, check.output)
        details = {r["name"]: r["detail"] for r in json.loads(check.stdout)["requirements"] if not r["met"]}
        assert "evidence changed after registration" in details.get("evidence.registered", ""), (
            what,
            details,
        )
        trace = invoke("lineage", "models:/arrests/1", "--format", "json")
        assert trace.exit_code == 1, (what, trace.output)
        problems = json.loads(trace.stdout)["evidence_problems"]
        assert any("evidence changed after registration" in p for p in problems), (what, problems)
        shutil.rmtree(hitl)
        shutil.copytree(pristine, hitl)
    assert signed["unmet"]() == {}  # restored exactly: as registered


def test_a_sign_off_approves_only_the_evidence_registered_when_it_was_given(signed, monkeypatch):
    store, run_id = signed["store"], signed["run_id"]
    synthetic, real = signed["data"]
    # The report says when it was made, to the minute: logged again in another minute it is other evidence.
    # Its clock is held at the first report's minute, so "the same evidence" below does not depend on timing.
    made = re.search(
        r"<th>made</th><td[^>]*>(\d{4}-\d\d-\d\d \d\d:\d\d) UTC", (signed["hitl"] / "report.html").read_text()
    )
    first_minute = datetime.strptime(made[1], "%Y-%m-%d %H:%M").replace(tzinfo=timezone.utc)

    class HeldClock(datetime):
        @classmethod
        def now(cls, tz=None):
            return first_minute

    monkeypatch.setattr(mlflow_hitl.report, "datetime", HeldClock)

    def log_again(rows):
        with mlflow.start_run(run_id=run_id):
            validate_arrests(mlflow.sklearn.load_model(signed["source"]), synthetic, rows)

    # The same evidence logged again has the same digest: what dana approved, byte for byte.
    log_again(real)
    assert signed["unmet"]() == {}
    # The author logs other evidence into the run: a registration dana has not seen.
    log_again(real.iloc[:-25])
    unmet = signed["unmet"]()
    assert set(unmet) == {"signoff.fairness"}
    assert "approved other evidence than the registered one" in unmet["signoff.fairness"]
    tree = signed["invoke"]("lineage", "models:/arrests/1")
    assert "APPROVED OTHER EVIDENCE" in tree.stdout and "registered at event" in tree.stdout
    store.sign_off(run_id=run_id, check="fairness", user="dana", approve=True)
    assert signed["unmet"]() == {}
    registrations = store.audit_events(subject=f"run:{run_id}", action="evidence.registered")
    assert len(registrations) == 3 and set(registrations["actor"]) == {AUTHOR}


# -- class 4: identities from the records, not from what the client wrote -----------------------


def test_an_author_naming_someone_else_still_cannot_sign_off_or_promote(signed):
    store, run_id = signed["store"], signed["run_id"]
    assert mlflow.MlflowClient().get_run(run_id).info.user_id == "dana"  # what the client claimed
    set_policy(store, "arrests", LENIENT_POLICY.replace("count = 1", "count = 2"), actor="root")
    store.sign_off(run_id=run_id, check="fairness", user=AUTHOR, approve=True)
    unmet = signed["unmet"](actor=AUTHOR)
    assert set(unmet) == {"signoff.fairness", "duties.promoter"}
    assert unmet["signoff.fairness"].startswith("1 of 2 distinct fairness-reviewer approval(s) (dana)")
    assert "alice is the model's author and cannot sign off" in unmet["signoff.fairness"]
    assert "alice is the model's author" in unmet["duties.promoter"]
    set_policy(store, "arrests", LENIENT_POLICY, actor="root")
    by_author = signed["invoke"]("gate", "promote", "arrests", "1", "--alias", "champion", user=AUTHOR)
    assert by_author.exit_code == 1 and "duties.promoter" in by_author.output
    by_dana = signed["invoke"]("gate", "promote", "arrests", "1", "--alias", "champion", user="dana")
    assert by_dana.exit_code == 0, by_dana.output  # named in the run's tags, but she wrote nothing


def test_evidence_logged_without_a_review_store_is_unregistered_and_blocks(
    tracking_uri, tmp_path, arrests_model, arrests_split, monkeypatch
):
    synthetic, real, _ = arrests_split
    monkeypatch.setenv("MLFLOW_HITL_STORE_URI", "sqlite:////nonexistent-dir/hitl.db")
    with pytest.warns(UserWarning, match="is not registered"):
        run_id = log_run_with_evidence(arrests_model, synthetic, real)
    mlflow.register_model(f"runs:/{run_id}/model", "arrests")
    store = ReviewStore(f"sqlite:///{tmp_path / 'hitl.db'}")
    decision = check_gate("arrests", "1", TARGET, store=store, actor="rita", record=False)
    details = {r.name: r.detail for r in decision.unmet()}
    assert "no registration of the evidence" in details["evidence.registered"]
    assert "never registered" in details["signoff.fairness"]  # nobody is on record as its author
