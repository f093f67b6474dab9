"""The auditor's dossier on a real MLflow SQLite store: a version reviewed by people, then one retrained
on their verified labels; each dossier holds the evidence, the people and the chain, and checks itself."""

from __future__ import annotations

import json
import os
import re
import shutil

import mlflow
import pytest
from click.testing import CliRunner

import mlflow_hitl
from conftest import LENIENT_POLICY
from hitl_support import log_run_with_evidence, log_sklearn_model, validate_arrests
from mlflow_hitl.cli import cli
from mlflow_hitl.errors import InputError, NotFoundError
from mlflow_hitl.review import ReviewStore

XSS = "<script>window.__xss=1</script>"
MODEL = "arrests"


@pytest.fixture(scope="module")
def case(tmp_path_factory, arrests_model, arrests_split):
    """Version 1: evidence, a 3-rater queue with an adjudication, published labels, sign-offs, gate
    decisions. Version 2: retrained on those verified labels, with its own evidence. Anchors on."""
    from mlflow_hitl.adapter.gate import check_gate, set_policy
    from mlflow_hitl.adapter.review import queue_from_model

    folder = tmp_path_factory.mktemp("dossier")
    synthetic, real, production = arrests_split
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    store_uri = f"sqlite:///{folder / 'hitl.db'}"
    with pytest.MonkeyPatch.context() as patch:
        for key, value in {
            "MLFLOW_TRACKING_URI": uri,
            "MLFLOW_HITL_STORE_URI": store_uri,
            "MLFLOW_HITL_ANCHOR_PATH": str(folder / "anchors.jsonl"),
            "MLFLOW_HITL_USER": "maya",
            "MLFLOW_REGISTRY_URI": uri,  # set_registry_uri sets it too: the context restores it
        }.items():
            patch.setenv(key, value)
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        mlflow.set_experiment(
            experiment_id=mlflow.create_experiment("dossier", artifact_location=(folder / "art").as_uri())
        )
        first_run = log_run_with_evidence(arrests_model, synthetic, real)
        mlflow.register_model(f"runs:/{first_run}/model", MODEL)
        store = ReviewStore(store_uri)
        for user, role in {"root": "admin", "dana": "fairness-reviewer", "carol": "adjudicator"}.items():
            store.grant_role(user, role, actor="root")
        set_policy(store, MODEL, LENIENT_POLICY, actor="root")

        queue = "dossier-q"
        queue_from_model(
            store, queue, data=production.head(200), model=arrests_model, actor="maya", size=8,
            raters_per_item=3, run_id=first_run, random_share=0,
        )  # fmt: skip
        for item in store.items(queue):
            for user in ("alice", "bob", "erin"):
                label = "No" if (item.position == 0 and user != "alice") else "Yes"
                store.annotate(queue, position=item.position, user=user, label=label)
        store.adjudicate(queue, position=0, user="carol", label="No", note="checked the file")
        snapshot = mlflow_hitl.publish_labels(store, queue, actor="maya", label_column="released")
        store.sign_off(run_id=first_run, check="fairness", user="dana", approve=True, note=f"fine {XSS}")
        check_gate(MODEL, "1", "alias:champion", store=store, actor="rita")

        with mlflow.start_run() as retrain:
            verified = mlflow_hitl.verified_labels(queue, store=store)
            log_sklearn_model(arrests_model, real)
            validate_arrests(arrests_model, synthetic, real)
        mlflow.register_model(f"runs:/{retrain.info.run_id}/model", MODEL)
        assert len(verified) == 8
        yield {
            "folder": folder,
            "store": store,
            "first_run": first_run,
            "retrain": retrain.info.run_id,
            "snapshot": snapshot["id"],
            "queue": queue,
            "uri": uri,
            "store_uri": store_uri,
        }
        store.close()
    # MLflow's current stores back to the session's, so no later test registers into this module's.
    mlflow.set_registry_uri(None)
    mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])


@pytest.fixture(scope="module")
def written(case):
    """The dossiers of both versions, written once through the Python API."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_HITL_ANCHOR_PATH", str(case["folder"] / "anchors.jsonl"))
        first = mlflow_hitl.dossier(f"models:/{MODEL}/1", case["folder"] / "d1", store=case["store"])
        second = mlflow_hitl.dossier(f"models:/{MODEL}/2", case["folder"] / "d2", store=case["store"])
    return {"first": first, "second": second}


def _copy(written, tmp_path, which="first"):
    target = tmp_path / "copy"
    shutil.copytree(written[which].path, target)
    return target


def test_the_dossier_of_a_reviewed_version_holds_evidence_people_gate_and_chain(case, written):
    first = written["first"]
    assert first.problems == ()
    names = {p.relative_to(first.path).as_posix() for p in first.path.rglob("*") if p.is_file()}
    assert {
        "index.html",
        "dossier.json",
        "manifest.json",
        "evidence/report.html",
        "evidence/summary.json",
    } <= names
    plots = {n for n in names if n.endswith(".png")}
    assert plots and all(n.startswith(("evidence/calibration/", "evidence/fairness/")) for n in plots)
    assert first.files == len(names) - 1  # every file but the manifest itself

    data = json.loads((first.path / "dossier.json").read_text())
    assert [c["name"] for c in data["checks"]] == ["calibration", "fairness"]
    assert "ece" in data["checks"][0]["key_metrics"]
    assert [(s["check_name"], s["user"], s["note"]) for s in data["signoffs"]] == [
        ("fairness", "dana", f"fine {XSS}")
    ]
    (queue,) = data["queues"]
    assert queue["name"] == case["queue"] and queue["adjudicated"] == 1
    (snapshot,) = queue["snapshots"]
    assert snapshot["id"] == case["snapshot"] and set(snapshot["raters"]) == {"alice", "bob", "erin"}
    assert snapshot["agreement"]["krippendorff_alpha"] is not None
    assert [g["action"] for g in data["gate_decisions"]] == ["gate.check"]
    assert data["anchors"]["gate_events_anchored"] == [data["gate_decisions"][0]["seq"]]
    now = {d["target"]: d for d in data["gate_now"]}
    assert set(now) == {"alias:champion", "stage:Production"}  # every target the policy protects
    met = {r["name"]: r["met"] for r in now["alias:champion"]["requirements"]}
    assert now["alias:champion"]["passed"] and met["signoff.fairness"] and met["audit.intact"]
    assert "[checks.calibration]" in data["policy_text"]
    assert data["audit"]["ok"] and data["audit"]["anchors_checked"] >= 1

    page = (first.path / "index.html").read_text()
    for section in ("Evidence per check", "Policy and gate", "Human review", "Sign-offs", "Audit chain"):
        assert section in page
    assert "no generator audit recorded" in page
    assert all(f'src="{p}"' in page for p in plots)


def test_the_dossier_of_a_retrained_version_follows_its_labels_to_the_people(case, written):
    data = json.loads((written["second"].path / "dossier.json").read_text())
    (trained_on,) = data["training_labels"]
    assert trained_on["id"] == case["snapshot"] and trained_on["run_id"] == case["first_run"]
    assert trained_on["raters"] == ["alice", "bob", "erin"] and trained_on["labels"] == 24
    assert trained_on["agreement"]["n_raters"] == 3
    assert [(a["item"], a["user"], a["note"]) for a in trained_on["adjudications"]] == [
        (0, "carol", "checked the file")
    ]
    assert [(s["check_name"], s["user"]) for s in trained_on["signoffs"]] == [("fairness", "dana")]
    page = (written["second"].path / "index.html").read_text()
    assert f"snapshot {case['snapshot']} from queue {case['queue']}" in page


def test_the_page_shows_a_script_in_a_note_as_text(written):
    page = (written["first"].path / "index.html").read_text()
    assert XSS not in page
    assert "fine &lt;script&gt;window.__xss=1&lt;/script&gt;" in page


def test_verify_passes_then_names_an_edited_a_deleted_and_an_added_file(written, tmp_path):
    intact = mlflow_hitl.verify_dossier(written["first"].path)
    assert intact.ok and intact.manifest_sha256 == written["first"].manifest_sha256
    result = CliRunner().invoke(cli, ["dossier", "verify", str(written["first"].path)])
    assert result.exit_code == 0 and "dossier intact" in result.output

    copy = _copy(written, tmp_path)
    plot = next(p for p in copy.rglob("*.png"))
    plot.write_bytes(plot.read_bytes() + b"\0")
    (copy / "evidence" / "summary.json").unlink()
    (copy / "notes.txt").write_text("added later")
    found = mlflow_hitl.verify_dossier(copy)
    relative = plot.relative_to(copy).as_posix()
    assert (found.changed, found.missing, found.extra) == (
        (relative,),
        ("evidence/summary.json",),
        ("notes.txt",),
    )
    result = CliRunner().invoke(cli, ["dossier", "verify", str(copy)])
    assert result.exit_code == 1
    assert f"{relative} was changed" in result.output
    assert "evidence/summary.json is missing" in result.output and "notes.txt was added" in result.output


def test_a_rewritten_manifest_shows_against_the_digest_kept_elsewhere(written, tmp_path):
    from mlflow_hitl._sealed import seal

    copy = _copy(written, tmp_path)
    (copy / "index.html").write_text("<p>all fine</p>")
    manifest = json.loads((copy / "manifest.json").read_text())
    (copy / "manifest.json").unlink()
    seal(copy, kind=manifest["kind"], meta={"model": manifest["model"]})  # a forger re-seals the folder
    assert mlflow_hitl.verify_dossier(copy).ok
    kept = written["first"].manifest_sha256
    result = CliRunner().invoke(cli, ["dossier", "verify", str(copy), "--expect", kept])
    assert result.exit_code == 1 and "manifest.json differs from the sha256 kept for it" in result.output


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p, "no such folder"),
        (lambda p: p.mkdir() or p, "it has no manifest.json"),
        (lambda p: p.mkdir() or (p / "manifest.json").write_text("{}") and p, "is not the manifest of"),
        (
            lambda p: (
                p.mkdir()
                or (p / "manifest.json").write_text(
                    json.dumps({"kind": "mlflow-hitl dossier", "files": {"../x": "0"}})
                )
                and p
            ),
            "it lists '../x'",
        ),
    ],
    ids=["absent", "no-manifest", "other-json", "escaping-path"],
)
def test_verify_of_a_path_that_is_no_dossier_is_one_line_and_exit_2(tmp_path, make, message):
    path = make(tmp_path / "d")
    with pytest.raises(InputError, match=message):
        mlflow_hitl.verify_dossier(path)
    result = CliRunner().invoke(cli, ["dossier", "verify", str(path)])
    assert result.exit_code == 2 and message in result.stderr and "Traceback" not in result.output


def test_the_cli_writes_refuses_a_used_folder_and_replaces_a_dossier_with_force(case, written, tmp_path):
    def run(*args):
        return CliRunner().invoke(
            cli,
            ["--tracking-uri", case["uri"], "dossier", *args, "--store-uri", case["store_uri"]],
            env={"MLFLOW_HITL_ANCHOR_PATH": str(case["folder"] / "anchors.jsonl")},
        )

    out = tmp_path / "out"
    made = run(f"models:/{MODEL}/1", "-o", str(out))
    assert made.exit_code == 0, made.output
    assert "manifest sha256" in made.output and (out / "index.html").is_file()
    refused = run(f"models:/{MODEL}/1", "-o", str(out))
    assert refused.exit_code == 2 and "not empty" in refused.stderr and "--force" in refused.stderr
    replaced = run("write", f"models:/{MODEL}/2", "-o", str(out), "--force", "--format", "json")
    assert replaced.exit_code == 0, replaced.output
    assert json.loads(replaced.stdout)["problems"] == []
    assert json.loads((out / "dossier.json").read_text())["model"]["version"] == "2"

    other = tmp_path / "other"
    other.mkdir()
    (other / "thesis.tex").write_text("mine")
    kept = run(f"models:/{MODEL}/1", "-o", str(other), "--force")
    assert kept.exit_code == 2 and "holds no dossier" in kept.stderr
    assert (other / "thesis.tex").read_text() == "mine"


def test_unknown_versions_and_versions_without_evidence_are_one_line_and_exit_2(case, written, tmp_path):
    with mlflow.start_run() as bare:
        mlflow.log_param("note", "no evidence")
    client = mlflow.MlflowClient()
    client.create_registered_model("bare")
    client.create_model_version("bare", source=f"runs:/{bare.info.run_id}/model", run_id=bare.info.run_id)
    with pytest.raises(NotFoundError, match="has no HITL evidence"):
        mlflow_hitl.dossier("models:/bare/1", tmp_path / "bare", store=case["store"])
    assert not (tmp_path / "bare").exists()
    for uri, message in (
        (f"models:/{MODEL}/9", "unknown model version"),
        ("models:/nobody/1", "unknown model version"),
        ("runs:/abc/model", "expected models:/<name>/<version>"),
        ("models:/bare/1", "has no HITL evidence"),
    ):
        result = CliRunner().invoke(
            cli,
            [
                "--tracking-uri",
                case["uri"],
                "dossier",
                uri,
                "-o",
                str(tmp_path / "x"),
                "--store-uri",
                case["store_uri"],
            ],
        )
        assert result.exit_code == 2, (uri, result.output)
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
        assert not (tmp_path / "x").exists()


# A4 at CSS's 96 dpi: 210 mm is 794 px; inside the page's 14 mm margins, 688 px are left for the text.
A4_WIDTHS = (794, 688)


def test_the_page_prints_to_a4_pdf_with_its_plots_and_no_sideways_overflow(written, browser):
    context = browser.new_context(viewport={"width": A4_WIDTHS[0], "height": 1123})
    try:
        page = context.new_page()
        page.goto((written["first"].path / "index.html").as_uri())
        page.emulate_media(media="print")
        assert page.evaluate("() => window.__xss") is None
        assert page.evaluate("() => [...document.images].every(i => i.complete && i.naturalWidth > 0)")
        assert page.evaluate("() => document.images.length") >= 2
        for width in A4_WIDTHS:
            page.set_viewport_size({"width": width, "height": 1123})
            overflow = page.evaluate(
                "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"{overflow}px wider than the page at {width}px"
        pdf = page.pdf(format="A4", print_background=True, prefer_css_page_size=True)
    finally:
        context.close()
    assert pdf.startswith(b"%PDF")
    pages = [int(n) for n in re.findall(rb"/Type\s*/Pages\b[^>]*?/Count\s+(\d+)", pdf)]
    assert pages and max(pages) >= 2, "an A4 print of the dossier has pages"


def test_lineage_still_embeds_the_plots_the_dossier_leaves_as_files(case, written):
    from mlflow_hitl.adapter.lineage import lineage

    assert lineage(MODEL, "1", store=case["store"])["_plots"]
    assert lineage(MODEL, "1", store=case["store"], plots=False)["_plots"] == {}


def test_the_lineage_outline_closes_each_branch_and_names_where_data_came_from():
    """The terminal outline: └─ before the last of each list (not ├─ left open), a frame logged from
    code named by its script rather than a JSON object of run tags."""
    from mlflow_hitl.adapter.lineage import render_tree

    source = json.dumps({"tags": {"mlflow.user": "maya", "mlflow.source.name": "train.py"}})
    signoff = {"in_audit_chain": True, "approves_registered_evidence": True, "role": "r", "audit_seq": 1}
    data = {
        "model": {"name": "m", "version": "2", "aliases": [], "stage": "None", "policy": None},
        "run": {"run_id": "r1", "author": "maya", "hitl_status": "passed", "checks": {"drift": "passed"}},
        "evidence_problems": [],
        "datasets": [{"name": "synthetic", "context": "training", "digest": "d1", "source": source}],
        "queues": [],
        "signoffs": [
            {**signoff, "check_name": "fairness", "decision": "approve", "user": "dana"},
            {**signoff, "check_name": "release", "decision": "approve", "user": "rita"},
        ],
        "gate_decisions": [],
        "audit": {"ok": True, "events": 3, "head_hash": "ab" * 32},
    }
    lines = render_tree(data).splitlines()
    assert "│  └─ synthetic [training] digest d1  from code: train.py" in lines
    assert lines[lines.index("├─ sign-offs (2)") + 1 :][:2] == [
        "│  ├─ fairness: approve by dana (r) at event 1",
        "│  └─ release: approve by rita (r) at event 1",
    ]
    assert lines[-1].startswith("└─ audit chain: intact")
