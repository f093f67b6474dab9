"""Reading a run's HITL evidence the way the gate and auditors must: every file re-hashed first.

Shared by :mod:`~mlflow_hitl.adapter.gate` (decisions) and :mod:`~mlflow_hitl.adapter.lineage`
(auditor reports), so both look at exactly the same things.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from .._hashing import sha256_file
from ..review import ReviewStore
from ..review._audit import event_hash
from .logging import ARTIFACT_ROOT

__all__ = ["RunArtifacts", "chained_signoffs", "snapshot_alpha", "verified_metrics", "verify_folder"]

_SERVER_ARTIFACTS_ENV = "_MLFLOW_SERVER_ARTIFACT_DESTINATION"
_HASHED = (
    "seq",
    "time",
    "actor",
    "action",
    "subject",
    "payload",
    "prev_hash",
)  # an event's fields under its hash


class RunArtifacts:
    """Files of one run's ``hitl/`` folder: read in place from a local artifact store, else downloaded once."""

    def __init__(self, run: Any) -> None:
        self._run = run
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        parsed = urlparse(run.info.artifact_uri)
        self.root: Path | None = None
        if parsed.scheme in ("", "file"):
            self.root = Path(unquote(parsed.path)) / ARTIFACT_ROOT
        elif parsed.scheme == "mlflow-artifacts":
            # Inside the tracking server, proxied artifacts live under its local destination.
            destination = urlparse(os.environ.get(_SERVER_ARTIFACTS_ENV, ""))
            if destination.path and destination.scheme in ("", "file"):
                self.root = Path(unquote(destination.path)) / unquote(parsed.path).lstrip("/") / ARTIFACT_ROOT

    def folder(self) -> Path | None:
        if self.root is None:
            import mlflow

            self._tmp = tempfile.TemporaryDirectory()
            try:
                self.root = Path(
                    mlflow.artifacts.download_artifacts(
                        run_id=self._run.info.run_id, artifact_path=ARTIFACT_ROOT, dst_path=self._tmp.name
                    )
                )
            except Exception:  # nothing logged under hitl/ (each artifact store raises its own type)
                return None
        return self.root if self.root.is_dir() else None

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()


def verify_folder(root: Path, summary_bytes: bytes, snapshots: list[dict[str, Any]]) -> list[str]:
    """Every file the summary and the snapshot manifests name, re-hashed; a list of what no longer matches."""
    problems = []
    manifest = json.loads(summary_bytes).get("manifest", {})
    for relative, digest in sorted(manifest.items()):
        path = root / relative
        if not path.is_file():
            problems.append(f"hitl/{relative} is missing")
        elif sha256_file(path) != digest:
            problems.append(f"hitl/{relative} was altered (sha256 differs from hitl/summary.json)")
    for snapshot in snapshots:
        folder = root / "labels" / snapshot["id"]
        manifest_path = folder / "manifest.json"
        if not manifest_path.is_file():
            problems.append(f"hitl/labels/{snapshot['id']}/manifest.json is missing")
            continue
        if sha256_file(manifest_path) != snapshot["manifest_sha256"]:
            problems.append(f"hitl/labels/{snapshot['id']}/manifest.json was altered")
            continue
        for name, digest in json.loads(manifest_path.read_bytes()).items():
            path = folder / name
            if not path.is_file() or sha256_file(path) != digest:
                problems.append(f"hitl/labels/{snapshot['id']}/{name} was altered or removed")
    return problems


def verified_metrics(root: Path, summary: dict[str, Any], problems: list[str]) -> dict[str, float]:
    """``<check>.<metric>`` from each check's manifest-verified ``result.json``.

    Not from the run's metrics: anyone who can write to the run can log a metric again, while the
    result files are pinned by the sha256 manifest in ``hitl/summary.json``.
    """
    metrics: dict[str, float] = {}
    for check in summary.get("checks", {}):
        path = root / check / "result.json"
        if not path.is_file() or any(p.startswith(f"hitl/{check}/result.json") for p in problems):
            continue
        for name, value in json.loads(path.read_bytes()).get("metrics", {}).items():
            metrics[f"{check}.{name}"] = float("nan") if value is None else float(value)
    return metrics


def chained_signoffs(store: ReviewStore, run_id: str) -> list[dict[str, Any]]:
    """The run's sign-offs whose audit event is in the chain exactly as the sign-off row says.

    A row written straight into the sign-off table, or edited afterwards, has no matching event
    and is not evidence; nor is one whose event no longer hashes to its stored hash. That re-hash
    checks the events a decision rests on at every check, whatever part of the chain was walked.
    """
    rows = []
    for row in store.signoffs(run_id).to_dict(orient="records"):
        event = store.audit_event(row["audit_seq"])
        if (
            event is not None
            and event["hash"] == row["audit_hash"]
            and event_hash(**{k: event[k] for k in _HASHED}) == event["hash"]
            and event["actor"] == row["user"]
            and event["action"] == f"signoff.{row['decision']}"
            and event["subject"] == f"run:{row['run_id']}/check:{row['check_name']}"
        ):
            rows.append(row)
    return rows


def snapshot_alpha(root: Path | None, snapshot_id: str) -> float | None:
    path = None if root is None else root / "labels" / snapshot_id / "snapshot.json"
    if path is None or not path.is_file():
        return None
    agreement = json.loads(path.read_bytes()).get("agreement") or {}
    return agreement.get("krippendorff_alpha")
