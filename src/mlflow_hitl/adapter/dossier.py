"""One dossier per model version, for auditors: a folder that holds the whole case and checks itself.

``index.html`` is what an auditor reads (and prints): the evidence per check with its plots, the
policy and every gate decision, the human review with its agreement, adjudications and sign-offs, the
verified labels followed through retraining, the audit-chain verification and its anchors.
``dossier.json`` is the same for tools; ``evidence/`` holds the run's ``hitl/`` evidence exactly as
logged (``summary.json`` and every file its manifest names, ``report.html`` and the plots among them);
``manifest.json`` pins every file by sha256 (:mod:`mlflow_hitl._sealed`), so :func:`verify_dossier`
checks the folder offline, without MLflow or the review store.

The facts are :func:`~mlflow_hitl.adapter.lineage.lineage`'s (which reads the run through
:func:`~mlflow_hitl.adapter.evidence.read_run_evidence`), plus the policy's text, the gate as it
stands now for each protected target (decided, not recorded: writing a dossier changes nothing) and
the anchors of the audit chain.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .._identity import acting_user
from .._sealed import MANIFEST, SealCheck, check_seal, seal
from ..errors import InputError, NotFoundError
from ..review import ReviewStore
from .evidence import RunArtifacts
from .gate import check_gate, policy_for
from .lineage import lineage
from .logging import ARTIFACT_ROOT

__all__ = ["KIND", "Dossier", "dossier", "parse_model_version_uri", "verify_dossier"]

KIND = "mlflow-hitl dossier"
_SUMMARY = "summary.json"
_EVIDENCE = "evidence"


@dataclass(frozen=True)
class Dossier:
    """A dossier written: where, the sha256 of its manifest (keep it elsewhere), how many files it
    pins, and what did not verify when it was written (``()``: the evidence and the chain are intact)."""

    path: Path
    manifest_sha256: str
    files: int
    problems: tuple[str, ...]


def parse_model_version_uri(uri: str) -> tuple[str, str]:
    """``models:/<name>/<version>`` as ``(name, version)``; an ``InputError`` for anything else."""
    name, _, version = uri.removeprefix("models:/").rpartition("/")
    if not uri.startswith("models:/") or not name or not version.isdigit():
        raise InputError(f"expected models:/<name>/<version> with a version number, got {uri!r}")
    return name, version


def _output_folder(output_dir: str | Path, *, force: bool) -> Path:
    """The folder to write: new, empty, or (with ``force``) an earlier dossier, never anything else."""
    folder = Path(output_dir)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{folder} is a file, not a folder for the dossier")
    if folder.is_dir() and any(folder.iterdir()):
        if not force:
            raise InputError(f"{folder} is not empty: choose a new folder, or pass --force to replace it")
        try:
            check_seal(folder, kind=KIND)
        except InputError as exc:
            # --force replaces a dossier; it never deletes a folder of other files.
            raise InputError(f"{folder} is not empty and holds no dossier, even with --force: {exc}") from exc
    return folder


def _copy_evidence(run_id: str, target: Path) -> dict[str, Any]:
    """The run's ``hitl/summary.json`` and every file its manifest names, copied under ``target``."""
    import mlflow

    artifacts = RunArtifacts(mlflow.MlflowClient().get_run(run_id))
    try:
        root = artifacts.folder()
        if root is None or not (root / _SUMMARY).is_file():
            raise NotFoundError(f"run {run_id} has no HITL evidence ({ARTIFACT_ROOT}/{_SUMMARY})")
        summary = json.loads((root / _SUMMARY).read_bytes())
        for relative in (_SUMMARY, *sorted(summary.get("manifest", {}))):
            source = root / relative
            if source.is_file():  # a deleted file is among the lineage's evidence problems
                (target / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, target / relative)
    finally:
        artifacts.close()
    return summary


def _checks(summary: dict[str, Any], evidence: Path) -> list[dict[str, Any]]:
    """Each check as its copied ``result.json`` says, with the paths of its plots and files in the dossier."""
    from ..checks.registry import ALL_CHECKS

    listed = sorted(summary.get("manifest", {}))
    out = []
    for name, status in summary.get("checks", {}).items():
        path = evidence / name / "result.json"
        result = json.loads(path.read_bytes()) if path.is_file() else {}
        metrics = result.get("metrics", {})
        spec = ALL_CHECKS.get(name)
        files = [f"{_EVIDENCE}/{r}" for r in listed if r.startswith(f"{name}/")]
        out.append(
            {
                "name": name,
                "status": status,
                "summary": result.get("summary", "result.json is missing"),
                "key_metrics": {k: metrics[k] for k in (spec.headline(metrics) if spec else metrics)},
                "thresholds": result.get("thresholds", {}),
                "plots": [f for f in files if f.endswith(".png")],
                "files": [f for f in files if not f.endswith(".png")],
            }
        )
    return out


def _gate_now(store: ReviewStore, name: str, version: str, targets: list[str]) -> list[dict[str, Any]]:
    """The gate for each protected target as it stands now: decided from the evidence, not recorded."""
    out = []
    for target in targets:
        decision = check_gate(name, version, target, store=store, record=False).to_dict()
        out.append({k: v for k, v in decision.items() if k != "evidence"})
    return out


def _anchors(store: ReviewStore, gate_events: list[dict[str, Any]]) -> dict[str, Any]:
    """The anchor log this process verifies the chain against, and which gate decisions it anchors."""
    log = getattr(store, "anchor_log", None)
    if log is None:
        where = (
            "no anchor log is configured (MLFLOW_HITL_ANCHOR_PATH)"
            if isinstance(store, ReviewStore)
            else "kept by the server: its verification above checked them"
        )
        return {"log": None, "note": where, "count": None, "last": None, "gate_events_anchored": []}
    records = log.records()
    anchored = {r.get("seq") for r in records}
    return {
        "log": str(getattr(log, "path", log)),
        "note": None,
        "count": len(records),
        "last": records[-1] if records else None,
        "gate_events_anchored": [e["seq"] for e in gate_events if e["seq"] in anchored],
    }


def _facts(store: ReviewStore, name: str, version: str, evidence: Path) -> dict[str, Any]:
    """Everything the dossier says, as plain JSON data (the ``evidence/`` files already copied)."""
    from .. import __version__
    from ..gate import policy_to_toml

    data = lineage(name, version, store=store, plots=False)
    data.pop("_plots", None)
    policy, record = policy_for(store, name)
    targets = [f"alias:{a}" for a in policy.protect_aliases] + [f"stage:{s}" for s in policy.protect_stages]
    summary = json.loads((evidence / _SUMMARY).read_bytes())
    return {
        "kind": KIND,
        "generated_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "generated_by": acting_user(),
        "mlflow_hitl_version": __version__,
        **data,
        "checks": _checks(summary, evidence),
        "skipped_checks": summary.get("skipped", {}),
        "policy_text": record["policy"] if record else policy_to_toml(policy),
        "gate_now": _gate_now(store, name, version, targets),
        "anchors": _anchors(store, data["gate_decisions"]),
        "problems": _problems(data),
    }


def _problems(data: dict[str, Any]) -> list[str]:
    """What did not verify when the dossier was written: the evidence's problems and a broken chain."""
    audit = data["audit"]
    broken = (
        [] if audit["ok"] else [f"audit chain broken at event {audit['first_bad_seq']}: {audit['problem']}"]
    )
    return [*data["evidence_problems"], *broken]


def dossier(
    model_uri: str, output_dir: str | Path, *, store: ReviewStore | None = None, force: bool = False
) -> Dossier:
    """Write the dossier of ``model_uri`` (``models:/<name>/<version>``) into ``output_dir``.

    ``output_dir`` must be new or empty; ``force`` replaces an earlier dossier there (never a folder
    of other files). The folder appears whole or not at all. A version that is unknown, or whose run
    has no HITL evidence, raises (``NotFoundError``) and writes nothing. Evidence that changed after
    it was registered, or a broken audit chain, is written into the dossier and listed in
    :attr:`Dossier.problems`.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    from .dossier_page import render_dossier
    from .review import open_store

    name, version = parse_model_version_uri(model_uri)
    folder = _output_folder(output_dir, force=force)
    store = store if store is not None else open_store()
    try:
        run_id = mlflow.MlflowClient().get_model_version(name, version).run_id
    except MlflowException as exc:
        raise NotFoundError(f"unknown model version {model_uri}") from exc
    if not run_id:
        raise NotFoundError(f"{model_uri} has no run, so no HITL evidence to put in a dossier")
    folder.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        evidence = building / _EVIDENCE
        _copy_evidence(run_id, evidence)
        data = _facts(store, name, version, evidence)
        (building / "dossier.json").write_text(
            json.dumps(data, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8"
        )
        (building / "index.html").write_text(render_dossier(data), encoding="utf-8")
        digest = seal(building, kind=KIND, meta={"model": model_uri, "generated_at": data["generated_at"]})
        if folder.exists():
            shutil.rmtree(folder)
        building.rename(folder)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    files = len(json.loads((folder / MANIFEST).read_bytes())["files"])
    return Dossier(path=folder, manifest_sha256=digest, files=files, problems=tuple(data["problems"]))


def verify_dossier(path: str | Path, *, expected_sha256: str | None = None) -> SealCheck:
    """Re-hash every file of the dossier at ``path`` against its ``manifest.json``, offline.

    ``expected_sha256``: the manifest's sha256 as kept elsewhere when the dossier was written; a
    rewritten manifest then shows too. Raises ``InputError`` when ``path`` is no dossier.
    """
    return check_seal(Path(path), kind=KIND, expected_sha256=expected_sha256)
