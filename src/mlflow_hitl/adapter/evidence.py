"""Reading a run's HITL evidence the way the gate and auditors must: every file re-hashed first.

:func:`read_run_evidence` is the one reader, used by :mod:`~mlflow_hitl.adapter.gate` (decisions) and
:mod:`~mlflow_hitl.adapter.lineage` (auditor reports), so both look at exactly the same things, read
once: ``hitl/summary.json`` and every file its manifest names, the run's verified-label snapshots,
its sign-offs, and the run's audit events (one query: the evidence registrations, the sign-off
events and the authenticated author).

What the files are judged against is the ``evidence.registered`` event (see
:mod:`~mlflow_hitl.adapter.registration`), not the run's own manifest, which the run's author can
rewrite: any edit, deletion, addition or manifest rewrite made after registration is listed in
``RunEvidence.changes``. A sign-off approves the registration that was current when it was given
(the newest registration event before it in the chain) and ``approves`` carries that digest.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._hashing import sha256_file, sha256_hex
from ..review import EVIDENCE_REGISTERED, ReviewStore, registration_digest
from .identity import intact, recorded_creator
from .logging import ARTIFACT_ROOT
from .registration import local_path

__all__ = [
    "RunArtifacts",
    "RunEvidence",
    "chained_signoffs",
    "read_run_evidence",
    "run_authors",
    "run_events",
    "team_mode",
    "verified_metrics",
    "verify_folder",
]

_SUMMARY = "summary.json"


class RunArtifacts:
    """Files of one run's ``hitl/`` folder: read in place from a local artifact store, else downloaded once."""

    def __init__(self, run: Any) -> None:
        self._run = run
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        local = local_path(run.info.artifact_uri)
        self.root: Path | None = None if local is None else local / ARTIFACT_ROOT

    def folder(self) -> Path | None:
        if self.root is None:
            from .downloads import download_quietly

            self._tmp = tempfile.TemporaryDirectory()
            try:
                self.root = Path(
                    download_quietly(
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


def _added_files(root: Path, manifest: Mapping[str, Any], snapshots: list[dict[str, Any]]) -> list[str]:
    """Files under ``hitl/`` that neither the summary's manifest nor a recorded snapshot accounts for."""
    known = {_SUMMARY, *manifest}
    for snapshot in snapshots:
        folder = root / "labels" / snapshot["id"]
        names: Any = {}
        if (folder / "manifest.json").is_file():
            try:
                names = json.loads((folder / "manifest.json").read_bytes())
            except ValueError:
                names = {}
        known |= {f"labels/{snapshot['id']}/{n}" for n in ("manifest.json", *names)}
    present = (p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    return [f"hitl/{relative} was added" for relative in sorted(set(present) - known)]


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


def team_mode() -> bool:
    """Whether decisions are made for a tracking server (inside it, or as its client): then only the
    server's authenticated records name authors; locally, whoever registered the evidence does."""
    import mlflow
    from mlflow.server.constants import BACKEND_STORE_URI_ENV_VAR

    return bool(os.environ.get(BACKEND_STORE_URI_ENV_VAR)) or mlflow.get_tracking_uri().startswith(
        ("http://", "https://", "databricks")
    )


def run_events(store: ReviewStore, run_id: str) -> list[dict[str, Any]]:
    """Every audit event about run ``run_id`` (its registrations, sign-offs, recorded author), one query."""
    return store.audit_events(subject=f"run:{run_id}").to_dict(orient="records")


def _in_chain(row: Mapping[str, Any], by_seq: Mapping[int, Mapping[str, Any]]) -> bool:
    event = by_seq.get(int(row["audit_seq"]))
    return (
        event is not None
        and event["hash"] == row["audit_hash"]
        and event["actor"] == row["user"]
        and event["action"] == f"signoff.{row['decision']}"
        and event["subject"] == f"run:{row['run_id']}/check:{row['check_name']}"
        and intact(event)
    )


def chained_signoffs(
    store: ReviewStore, run_id: str, events: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """The run's sign-offs whose audit event is in the chain exactly as the sign-off row says.

    A row written straight into the sign-off table, or edited afterwards, has no matching event
    and is not evidence; nor is one whose event no longer hashes to its stored hash. Two queries
    whatever the number of sign-offs: the rows, and the run's events (or ``events`` already read).
    """
    by_seq = {int(e["seq"]): e for e in (run_events(store, run_id) if events is None else events)}
    return [row for row in store.signoffs(run_id).to_dict(orient="records") if _in_chain(row, by_seq)]


def _registrations(events: list[dict[str, Any]], run_id: str) -> list[dict[str, Any]]:
    """The run's intact ``evidence.registered`` events, oldest first, each with its ``digest``: the
    sha256 of its canonical payload, which is what a sign-off approves."""
    out = []
    for event in events:
        if event["action"] == EVIDENCE_REGISTERED and event["subject"] == f"run:{run_id}" and intact(event):
            payload = json.loads(event["payload"])
            out.append(
                {
                    **payload,
                    "seq": int(event["seq"]),
                    "actor": event["actor"],
                    "time": event["time"],
                    "digest": registration_digest(payload),
                }
            )
    return out


@dataclass(frozen=True)
class RunEvidence:
    """What one run's evidence is, read once for a gate decision or a lineage report.

    - ``summary`` / ``summary_sha256``: ``hitl/summary.json`` as found (``None`` when absent);
    - ``artifact_problems``: the files that do not match the run's own manifest (``None``: no summary);
    - ``registration``: the registration in force (the newest), with ``digest`` and ``seq``; ``None``
      when the evidence was never registered; ``changes``: what differs from it now (``()``: nothing);
    - ``metrics``: ``<check>.<metric>`` from the verified result files;
    - ``own_snapshots``: the store's rows of the snapshots published to this run (one query, by run),
      ``snapshot_meta``: each one's ``snapshot.json``;
    - ``signoffs``: every sign-off row of the run with ``in_audit_chain`` and ``approves`` (the digest
      of the registration current when it was given, ``None`` if none was);
    - ``authors``: who the records say wrote the run (its authenticated creator, else in local mode
      whoever registered its evidence); ``author_problem`` says why there is none;
    - ``plots``: the manifest's PNG files, when asked for.
    """

    run_id: str
    summary: dict[str, Any] | None = None
    summary_sha256: str | None = None
    artifact_problems: tuple[str, ...] | None = None
    registration: dict[str, Any] | None = None
    changes: tuple[str, ...] = ()
    metrics: dict[str, float] = field(default_factory=dict)
    own_snapshots: list[dict[str, Any]] = field(default_factory=list)
    snapshot_meta: dict[str, dict[str, Any]] = field(default_factory=dict)
    signoffs: list[dict[str, Any]] = field(default_factory=list)
    authors: tuple[str, ...] = ()
    author_problem: str | None = None
    plots: dict[str, bytes] = field(default_factory=dict)


def _changes(
    root: Path | None,
    registration: dict[str, Any] | None,
    summary_bytes: bytes | None,
    problems: list[str],
    own: list[dict[str, Any]],
) -> tuple[str, ...]:
    if registration is None:
        return ()
    if summary_bytes is None:
        return ("hitl/summary.json was deleted",)
    found = []
    if sha256_hex(summary_bytes) != registration.get("summary_sha256"):
        found.append(
            f"hitl/summary.json was rewritten (sha256 {sha256_hex(summary_bytes)[:12]}, "
            f"registered {str(registration.get('summary_sha256'))[:12]})"
        )
    found += problems
    if root is not None:
        found += _added_files(root, json.loads(summary_bytes).get("manifest", {}), own)
    return tuple(found)


def _authors(
    store: ReviewStore,
    events: list[dict[str, Any]],
    run_id: str,
    registrations: list[dict[str, Any]],
    *,
    team: bool,
) -> tuple[tuple[str, ...], str | None]:
    creator = recorded_creator(store, f"run:{run_id}", events=events)
    if team:
        if creator is None:
            return (), f"the server recorded no authenticated creator of run {run_id}"
        # Whoever registered the run's evidence wrote it too.
        return tuple(sorted({creator, *(r["actor"] for r in registrations)})), None
    found = {r["actor"] for r in registrations} | ({creator} if creator else set())
    if not found:
        return (), f"no record names the author of run {run_id} (its evidence was never registered)"
    return tuple(sorted(found)), None


def run_authors(store: ReviewStore, run_id: str) -> tuple[str, ...]:
    """Who the gate counts as run ``run_id``'s authors (and so, with separate duties, never as its
    sign-off or its promoter): read exactly as :func:`read_run_evidence` reads them, without the artifacts."""
    events = run_events(store, run_id)
    authors, _ = _authors(store, events, run_id, _registrations(events, run_id), team=team_mode())
    return authors


def read_run_evidence(store: ReviewStore, run: Any, *, team: bool, plots: bool = False) -> RunEvidence:
    """Read and verify run ``run``'s evidence (see :class:`RunEvidence`).

    ``team``: decisions made for a tracking server, where only the server's authenticated record of
    the run's creator names its author; locally, whoever registered the evidence does.
    """
    run_id = run.info.run_id
    events = run_events(store, run_id)
    registrations = _registrations(events, run_id)
    own = store.snapshots(run_id=run_id).to_dict(orient="records")
    summary, summary_bytes, problems, metrics, meta, pngs = None, None, [], {}, {}, {}
    artifacts = RunArtifacts(run)
    try:
        root = artifacts.folder()
        if root is not None and (root / _SUMMARY).is_file():
            summary_bytes = (root / _SUMMARY).read_bytes()
            summary = json.loads(summary_bytes)
            problems = verify_folder(root, summary_bytes, own)
            metrics = verified_metrics(root, summary, problems)
            if plots:
                for relative in summary.get("manifest", {}):
                    # A deleted plot is already among the problems; show the rest.
                    if relative.endswith(".png") and (root / relative).is_file():
                        pngs[relative] = (root / relative).read_bytes()
        for snapshot in own:
            path = None if root is None else root / "labels" / snapshot["id"] / "snapshot.json"
            if path is not None and path.is_file():
                meta[snapshot["id"]] = json.loads(path.read_bytes())
        registration = registrations[-1] if registrations else None
        changes = _changes(root, registration, summary_bytes, problems, own)
    finally:
        artifacts.close()
    by_seq = {int(e["seq"]): e for e in events}
    signoffs = []
    for row in store.signoffs(run_id).to_dict(orient="records"):
        approved = [r for r in registrations if r["seq"] < int(row["audit_seq"])]
        signoffs.append(
            {
                **row,
                "in_audit_chain": _in_chain(row, by_seq),
                "approves": approved[-1]["digest"] if approved else None,
            }
        )
    authors, author_problem = _authors(store, events, run_id, registrations, team=team)
    return RunEvidence(
        run_id=run_id,
        summary=summary,
        summary_sha256=None if summary_bytes is None else sha256_hex(summary_bytes),
        artifact_problems=None if summary is None else tuple(problems),
        registration=registration,
        changes=changes,
        metrics=metrics,
        own_snapshots=own,
        snapshot_meta=meta,
        signoffs=signoffs,
        authors=authors,
        author_problem=author_problem,
        plots=pngs,
    )
