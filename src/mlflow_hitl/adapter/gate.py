"""Gate decisions for registered model versions: evidence from MLflow and the review store, judged by
the model's policy, recorded, and enforced on promotion.

The decision is computed from evidence only: the version's run, its ``hitl/summary.json`` with the
sha256 of every artifact re-verified, its metrics against the *policy's* thresholds, the review
store's sign-offs and verified-label snapshots for that run, and an intact audit chain. The
``hitl.gate.<target>`` tag written on the model version is a record of the outcome, never an input.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from ..errors import HitlError, InputError, NotFoundError
from ..gate import (
    Evidence,
    GateDecision,
    Policy,
    decide,
    default_policy,
    is_protected,
    parse_policy,
    policy_hash,
)
from ..review import ReviewStore
from .logging import ARTIFACT_ROOT

__all__ = [
    "GateBlockedError",
    "check_gate",
    "collect_evidence",
    "enforce",
    "internal_writes",
    "policy_for",
    "promote",
    "set_policy",
    "target_of",
]

POLICY_HASH_TAG = "hitl.policy_hash"
_SERVER_ARTIFACTS_ENV = "_MLFLOW_SERVER_ARTIFACT_DESTINATION"
GATE_TAG_PREFIX = "hitl.gate."

# Set while mlflow-hitl itself writes hitl.* tags, so the registry-store plugin lets them through.
_INTERNAL = contextvars.ContextVar("mlflow_hitl_internal_write", default=False)


class GateBlockedError(HitlError):
    """A promotion was refused; ``decision`` lists every unmet requirement."""

    def __init__(self, decision: GateDecision) -> None:
        super().__init__(decision.summary())
        self.decision = decision


@contextlib.contextmanager
def internal_writes() -> Iterator[None]:
    token = _INTERNAL.set(True)
    try:
        yield
    finally:
        _INTERNAL.reset(token)


def is_internal_write() -> bool:
    return _INTERNAL.get()


def target_of(*, alias: str | None = None, stage: str | None = None) -> str:
    """``alias:<name>`` or ``stage:<Stage>``: exactly one of the two must be given."""
    if (alias is None) == (stage is None):
        raise InputError("give exactly one promotion target: an alias (--alias) or a stage (--stage)")
    return f"alias:{alias}" if alias is not None else f"stage:{stage}"


def _client() -> Any:
    import mlflow

    return mlflow.MlflowClient()


def policy_for(store: ReviewStore, model_name: str) -> tuple[Policy, dict[str, Any] | None]:
    """The policy in force for ``model_name`` and its stored record (``None``: the strict default applies)."""
    record = store.policy(model_name)
    if record is None:
        return default_policy(), None
    return parse_policy(record["policy"], source=f"policy of {model_name} v{record['version']}"), record


def set_policy(
    store: ReviewStore, model_name: str, text: str, *, actor: str, source: str = "policy.toml"
) -> dict[str, Any]:
    """Validate ``text`` and make it ``model_name``'s policy (admin only, audited); mirror its hash as a model tag."""
    from mlflow.exceptions import MlflowException

    policy = parse_policy(text, source=source)
    client = _client()
    try:
        client.get_registered_model(model_name)
    except MlflowException as exc:
        raise NotFoundError(f"unknown registered model {model_name!r}") from exc
    record = store.set_policy(model_name, policy=text, policy_hash=policy_hash(policy), actor=actor)
    # A mirror for people browsing the registry; a remote server refuses hitl.* tags from clients.
    with internal_writes(), contextlib.suppress(MlflowException):
        client.set_registered_model_tag(model_name, POLICY_HASH_TAG, record["policy_hash"])
    return record


class _RunArtifacts:
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


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _verify_folder(root: Path, summary_bytes: bytes, snapshots: list[dict[str, Any]]) -> list[str]:
    """Every file the summary and the snapshot manifests name, re-hashed; a list of what no longer matches."""
    problems = []
    manifest = json.loads(summary_bytes).get("manifest", {})
    for relative, digest in sorted(manifest.items()):
        path = root / relative
        if not path.is_file():
            problems.append(f"hitl/{relative} is missing")
        elif _sha256(path) != digest:
            problems.append(f"hitl/{relative} was altered (sha256 differs from hitl/summary.json)")
    for snapshot in snapshots:
        folder = root / "labels" / snapshot["id"]
        manifest_path = folder / "manifest.json"
        if not manifest_path.is_file():
            problems.append(f"hitl/labels/{snapshot['id']}/manifest.json is missing")
            continue
        if _sha256(manifest_path) != snapshot["manifest_sha256"]:
            problems.append(f"hitl/labels/{snapshot['id']}/manifest.json was altered")
            continue
        for name, digest in json.loads(manifest_path.read_bytes()).items():
            path = folder / name
            if not path.is_file() or _sha256(path) != digest:
                problems.append(f"hitl/labels/{snapshot['id']}/{name} was altered or removed")
    return problems


def _verified_metrics(root: Path, summary: dict[str, Any], problems: list[str]) -> dict[str, float]:
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


def _chained_signoffs(store: ReviewStore, run_id: str) -> list[dict[str, Any]]:
    """The run's sign-offs whose audit event is in the chain exactly as the sign-off row says.

    A row written straight into the sign-off table, or edited afterwards, has no matching event
    and is not evidence.
    """
    rows = []
    for row in store.signoffs(run_id).to_dict(orient="records"):
        event = store.audit_event(row["audit_seq"])
        if (
            event is not None
            and event["hash"] == row["audit_hash"]
            and event["actor"] == row["user"]
            and event["action"] == f"signoff.{row['decision']}"
            and event["subject"] == f"run:{row['run_id']}/check:{row['check_name']}"
        ):
            rows.append(row)
    return rows


def _snapshot_alpha(root: Path | None, snapshot_id: str) -> float | None:
    path = None if root is None else root / "labels" / snapshot_id / "snapshot.json"
    if path is None or not path.is_file():
        return None
    agreement = json.loads(path.read_bytes()).get("agreement") or {}
    return agreement.get("krippendorff_alpha")


def collect_evidence(
    model_name: str, version: str | int, target: str, *, store: ReviewStore, actor: str | None = None
) -> Evidence:
    """Everything the gate looks at for ``model_name`` version ``version`` and ``target``."""
    from mlflow.exceptions import MlflowException

    client = _client()
    version = str(version)
    try:
        model_version = client.get_model_version(model_name, version)
    except MlflowException as exc:
        raise NotFoundError(f"unknown model version {model_name!r} version {version}") from exc
    run_id = model_version.run_id
    run = None
    if run_id:
        with contextlib.suppress(MlflowException):
            run = client.get_run(run_id)
    summary, summary_sha, problems, author = None, None, [], None
    metrics: dict[str, float] = {}
    snapshots = store.snapshots() if run is not None else None
    own_snapshots = (
        [] if snapshots is None else snapshots[snapshots["run_id"] == run_id].to_dict(orient="records")
    )
    root = None
    if run is not None:
        author = run.info.user_id
        artifacts = _RunArtifacts(run)
        try:
            root = artifacts.folder()
            summary_path = None if root is None else root / "summary.json"
            if summary_path is not None and summary_path.is_file():
                summary_bytes = summary_path.read_bytes()
                summary = json.loads(summary_bytes)
                summary_sha = hashlib.sha256(summary_bytes).hexdigest()
                problems = _verify_folder(root, summary_bytes, own_snapshots)
                metrics = _verified_metrics(root, summary, problems)
            snapshot_rows = tuple(
                {
                    "id": s["id"],
                    "queue": s["queue"],
                    "n_items": int(s["n_items"]),
                    "krippendorff_alpha": _snapshot_alpha(root, s["id"]),
                }
                for s in own_snapshots
            )
        finally:
            artifacts.close()
    else:
        snapshot_rows = ()
    verification = store.verify_audit()
    signoffs = () if not run_id else tuple(_chained_signoffs(store, run_id))
    return Evidence(
        model_name=model_name,
        version=version,
        target=target,
        run_id=run_id if run is not None else None,
        run_author=author,
        version_run_id=model_version.run_id,
        summary=summary,
        summary_sha256=summary_sha,
        artifact_problems=tuple(problems),
        metrics=metrics,
        signoffs=signoffs,
        snapshots=snapshot_rows,
        audit={
            "ok": verification.ok,
            "head_seq": verification.head_seq,
            "head_hash": verification.head_hash,
            "problem": verification.problem,
        },
        actor=actor,
    )


def check_gate(
    model_name: str,
    version: str | int,
    target: str,
    *,
    store: ReviewStore,
    actor: str | None = None,
    record: bool = True,
) -> GateDecision:
    """Decide the gate for a version and target; record it as an audit event and a model-version tag."""
    policy, _ = policy_for(store, model_name)
    decision = decide(policy, collect_evidence(model_name, version, target, store=store, actor=actor))
    if record and is_protected(policy, target):
        _record(store, decision, action="gate.check", actor=actor)
    return decision


def _record(store: ReviewStore, decision: GateDecision, *, action: str, actor: str | None) -> None:
    from mlflow.exceptions import MlflowException

    seq, _ = store.record_event(
        actor=actor or "mlflow-hitl",
        action=action,
        subject=f"model:{decision.model_name}/{decision.version}",
        payload={
            "target": decision.target,
            "passed": decision.passed,
            "evidence_hash": decision.evidence_hash,
            "policy_hash": decision.policy_hash,
            "unmet": [r.name for r in decision.unmet()],
        },
    )
    tag = json.dumps({"passed": decision.passed, "evidence_hash": decision.evidence_hash, "audit_seq": seq})
    key = GATE_TAG_PREFIX + decision.target.replace(":", ".")
    # A remote tracking server records its own tags (it refuses hitl.* tags from clients).
    with internal_writes(), contextlib.suppress(MlflowException):
        _client().set_model_version_tag(decision.model_name, decision.version, key, tag)


def enforce(
    model_name: str, version: str | int, target: str, *, store: ReviewStore, actor: str
) -> GateDecision | None:
    """The check every enforcement point makes before an alias or stage change.

    ``None`` when ``target`` is not protected by the model's policy. Otherwise the decision is
    recorded (``promotion.granted`` or ``promotion.refused``, with the actor) and returned when the
    gate passes; :class:`GateBlockedError` is raised when it does not.
    """
    policy, _ = policy_for(store, model_name)
    if not is_protected(policy, target):
        return None
    decision = decide(policy, collect_evidence(model_name, version, target, store=store, actor=actor))
    _record(
        store, decision, action="promotion.granted" if decision.passed else "promotion.refused", actor=actor
    )
    if not decision.passed:
        raise GateBlockedError(decision)
    return decision


def promote(
    model_name: str, version: str | int, *, target: str, store: ReviewStore, actor: str
) -> GateDecision | None:
    """Set the alias or stage if the gate passes (recorded either way); :class:`GateBlockedError` if not."""
    decision = enforce(model_name, version, target, store=store, actor=actor)
    kind, _, name = target.partition(":")
    client = _client()
    with internal_writes():
        if kind == "alias":
            client.set_registered_model_alias(model_name, name, str(version))
        else:
            client.transition_model_version_stage(model_name, str(version), name)
    return decision
