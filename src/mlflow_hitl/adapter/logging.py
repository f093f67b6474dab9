"""A :class:`~mlflow_hitl.ValidationResult` as MLflow run metrics, artifacts and tags.

Layout in the run (the contract other tools read):

- metrics ``hitl.<check>.<metric>``: each check's headline metrics (its spec's ``key_metrics``), in
  that order; every metric with ``log_all_metrics``. Counts and yes/no flags are never MLflow metrics,
  and no metric is lost: each check's ``result.json`` holds them all;
- artifacts ``hitl/<check>/result.json`` plus each check's PNG/HTML files, ``hitl/report.html``
  (the page a person reads first) and ``hitl/summary.json``: status per check, skipped checks and a
  manifest of every other artifact with its sha256, so a later gate can re-verify the evidence (files
  an earlier, wider validation of the run left are kept and listed under ``details.earlier``, see
  :mod:`~mlflow_hitl.adapter.earlier`);
- tags ``hitl.status`` (overall), ``hitl.checks`` (``check=status`` pairs, comma separated) and the
  run's description (``mlflow.note.content``): a short markdown summary with each check's status and
  finding, in a section of its own so a description people wrote is kept; when the run is logged to a
  server, with a link to the run's evidence page there (``/hitl/signoff?run_id=...``).
"""

from __future__ import annotations

import dataclasses
import json
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._hashing import sha256_file
from .._result import CheckResult, ValidationResult
from .._urls import page_url
from ..checks.registry import ALL_CHECKS
from ..errors import InputError, NotFoundError
from ..gate import Policy
from ..report import render_report, render_summary_markdown

__all__ = [
    "ARTIFACT_ROOT",
    "evidence_page",
    "log_check",
    "log_text_artifact",
    "log_validation",
    "logged_metrics",
    "metric_key",
    "resolve_run_id",
    "sha256_file",
]

ARTIFACT_ROOT = "hitl"
# MLflow accepts letters, digits, underscores, dashes, periods, spaces, colons and slashes in keys.
_BAD_KEY_CHARS = re.compile(r"[^\w\-. :/]")
_MAX_KEY = 250
_BATCH = 1000  # MLflow's log_batch limit on metrics per call
_NOTE = "mlflow.note.content"  # the run's description in the MLflow UI
_NOTE_START, _NOTE_END = "<!-- mlflow-hitl -->", "<!-- /mlflow-hitl -->"


def metric_key(check: str, name: str) -> str:
    """``hitl.<check>.<name>`` with characters MLflow refuses replaced by ``_``."""
    key = _BAD_KEY_CHARS.sub("_", f"{ARTIFACT_ROOT}.{check}.{name}").replace("//", "/")
    return key[:_MAX_KEY]


def logged_metrics(result: ValidationResult, *, all_metrics: bool = False) -> dict[str, float]:
    """The MLflow metrics ``result`` becomes, in the order they are logged.

    Each check's headline metrics first (its spec's ``key_metrics``, in their declared order), then,
    with ``all_metrics``, the rest. A run page of a handful of charts per check reads at a glance;
    hundreds of single-value charts do not, and every value is in ``hitl/<check>/result.json``.
    Counts and yes/no flags (the spec's ``counts``) and NaN (MLflow cannot chart it) are left out.
    """
    out: dict[str, float] = {}
    for check_name, check in result.checks.items():
        spec = ALL_CHECKS.get(check_name)
        names = spec.headline(check.metrics) if spec is not None else list(check.metrics)
        if all_metrics:
            names += [n for n in check.metrics if n not in set(names)]
        for name in names:
            value = check.metrics[name]
            if value == value and not (spec is not None and spec.is_count(name)):
                out[metric_key(check_name, name)] = value
    return out


def evidence_page(run_id: str) -> str | None:
    """The run's evidence page on the tracking server (``None`` when runs are not logged to a server):
    where reviewers read the evidence and sign it off."""
    from urllib.parse import urlsplit, urlunsplit

    import mlflow

    uri = urlsplit(mlflow.get_tracking_uri())
    if uri.scheme not in ("http", "https") or not uri.hostname:
        return None
    host = f"[{uri.hostname}]" if ":" in uri.hostname else uri.hostname  # never the credentials
    host = host if uri.port is None else f"{host}:{uri.port}"
    base = urlunsplit((uri.scheme, host, uri.path.rstrip("/"), "", ""))
    return base + page_url("signoff", run_id=run_id)


def _description(
    existing: str | None,
    result: ValidationResult,
    policies: Mapping[str, Policy] | None = None,
    page: str | None = None,
) -> str:
    """The run's description with our section (between markers) written or replaced, the rest kept."""
    link = "" if page is None else f"\n\nEvidence and sign-off: [{page}]({page})"
    section = f"{_NOTE_START}\n{render_summary_markdown(result, policies=policies)}{link}\n{_NOTE_END}"
    from mlflow.utils.validation import MAX_TAG_VAL_LENGTH

    existing = existing or ""
    start, end = existing.find(_NOTE_START), existing.find(_NOTE_END)
    if start != -1 and end > start:
        before, after = existing[:start], existing[end + len(_NOTE_END) :]
    else:
        before, after = (existing.rstrip() + "\n\n" if existing.strip() else ""), ""
    room = MAX_TAG_VAL_LENGTH - len(section) - len(after)
    return before[: max(room, 0)] + section + after


def log_text_artifact(run_id: str, text: str, artifact_file: str) -> None:
    """Write ``text`` (UTF-8) to run ``run_id`` as the artifact ``artifact_file`` (e.g. ``hitl/audit/audit.jsonl``)."""
    import mlflow

    mlflow.MlflowClient().log_text(run_id, text, artifact_file)


def resolve_run_id(run_id: str | None) -> str | None:
    """The run to log to: ``run_id`` (checked to exist), else the active run, else ``None``."""
    import mlflow
    from mlflow.exceptions import MlflowException

    if run_id is None:
        active = mlflow.active_run()
        return active.info.run_id if active is not None else None
    try:
        mlflow.MlflowClient().get_run(run_id)
    except MlflowException as exc:
        raise NotFoundError(f"unknown MLflow run {run_id!r} at {mlflow.get_tracking_uri()}") from exc
    return run_id


def _write_check_files(result: ValidationResult, root: Path) -> dict[str, str]:
    """Write every check's files under ``root``; ``{relative path: sha256}`` of what was written."""
    for name, check in result.checks.items():
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "result.json").write_text(check.to_json(), encoding="utf-8")
        for filename, content in check.artifacts.items():
            (folder / Path(filename).name).write_bytes(content)
    return _digests(root)


def _digests(root: Path) -> dict[str, str]:
    return {
        path.relative_to(root).as_posix(): sha256_file(path)
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def _model_names(registered_model_name: str | None, model: Any) -> list[str]:
    """The registered models whose gate the report shows: the one named, and the one a
    ``models:/<name>/<version>`` (or ``@alias``) URI names (not ``models:/<model id>``)."""
    names = [registered_model_name] if registered_model_name else []
    if isinstance(model, str) and model.startswith("models:/"):
        reference = model[len("models:/") :]
        name = reference.split("@", 1)[0] if "@" in reference else reference.split("/", 1)[0]
        if name and name != reference:
            names.append(name)
    return names


def log_validation(
    result: ValidationResult,
    *,
    run_id: str,
    model: Any = None,
    all_metrics: bool = False,
    registered_model_name: str | None = None,
) -> ValidationResult:
    """Log ``result`` to run ``run_id`` and return it with ``run_id`` set.

    ``all_metrics``: log every metric, not only each check's headline metrics (see :func:`logged_metrics`).

    The evidence is then registered in the audit chain, bound to ``model`` (what ``validate`` was
    given; ``None``: the model the run logged), see :mod:`~mlflow_hitl.adapter.registration`.

    Files of checks an earlier validation logged to the run and this one did not run are kept and
    marked as the earlier validation's (``result.details["earlier"]``, with an
    :class:`~mlflow_hitl.adapter.earlier.EarlierEvidenceWarning`): see :mod:`~mlflow_hitl.adapter.earlier`.

    The report and the run's description show the gate policy in force for ``registered_model_name``
    (and for the registered model a ``models:/<name>/<version>`` ``model`` names) beside each check's
    own thresholds. Only what ``validate`` was given decides this, never the registry's state at
    logging time, so the same validation logged again is the same evidence. The name is kept in
    ``result.details["registered_model_name"]``; a result read back from a run (``log_check``) carries it.
    """
    import mlflow

    from .earlier import earlier_evidence, logged_summary, warn_earlier
    from .gate import gate_policies
    from .registration import register_evidence

    client = mlflow.MlflowClient()
    result = dataclasses.replace(result, run_id=run_id)
    # The registered model whose gate the report shows is part of the evidence, so logging the run
    # again (log_check) shows the same gate from what was recorded, without asking the registry.
    registered_model_name = registered_model_name or result.details.get("registered_model_name")
    if registered_model_name:
        details = {**result.details, "registered_model_name": registered_model_name}
        result = dataclasses.replace(result, details=details)
    _log_metrics(client, run_id, logged_metrics(result, all_metrics=all_metrics))

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / ARTIFACT_ROOT
        root.mkdir()
        written = _write_check_files(result, root)
        earlier, kept = earlier_evidence(run_id, logged_summary(run_id, ARTIFACT_ROOT), written)
        # What is earlier is decided here, from the run: never carried over from details read back.
        details = {k: v for k, v in result.details.items() if k != "earlier"}
        result = dataclasses.replace(result, details={**details, **({"earlier": earlier} if earlier else {})})
        if earlier:
            warn_earlier(run_id, earlier, list(result.checks))
        policies = gate_policies(_model_names(registered_model_name, model))
        (root / "report.html").write_text(render_report(result, policies=policies), encoding="utf-8")
        # Files kept from an earlier validation stay pinned at the digest it recorded (see adapter/earlier.py).
        manifest = {**_digests(root), **kept}
        summary = {
            **result.to_dict(),
            "checks": {name: check.status.value for name, check in result.checks.items()},
            "manifest": manifest,
        }
        (root / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True), encoding="utf-8")
        client.log_artifacts(run_id, str(root), artifact_path=ARTIFACT_ROOT)
        register_evidence(
            run_id, root / "summary.json", model=model, fingerprints=result.details.get("fingerprints")
        )

    _log_tags(client, run_id, result, policies)
    return result


def _log_metrics(client: Any, run_id: str, values: Mapping[str, float]) -> None:
    """The metrics, in batches of MLflow's size limit, all with one timestamp."""
    from mlflow.entities import Metric
    from mlflow.utils.time import get_current_time_millis

    now = get_current_time_millis()
    metrics = [Metric(key, value, now, 0) for key, value in values.items()]
    for start in range(0, len(metrics), _BATCH):
        client.log_batch(run_id, metrics=metrics[start : start + _BATCH], synchronous=True)


def _log_tags(
    client: Any, run_id: str, result: ValidationResult, policies: Mapping[str, Policy] | None
) -> None:
    """The runs table's status tags and the run's description (the user's own note kept above ours)."""
    from mlflow.entities import RunTag

    note = client.get_run(run_id).data.tags.get(_NOTE)
    client.log_batch(
        run_id,
        tags=[
            RunTag("hitl.status", result.status.value),
            RunTag("hitl.checks", ",".join(f"{n}={c.status.value}" for n, c in result.checks.items())),
            RunTag(_NOTE, _description(note, result, policies, evidence_page(run_id))),
        ],
        synchronous=True,
    )


def _logged_check(root: Path, name: str) -> CheckResult:
    """Check ``name`` as a run's ``hitl/<name>/`` holds it: its ``result.json`` and the files it lists."""
    data = json.loads((root / name / "result.json").read_bytes())
    return CheckResult(
        name=name,
        status=data["status"],
        metrics={k: float("nan") if v is None else v for k, v in data.get("metrics", {}).items()},
        thresholds=data.get("thresholds", {}),
        details=data.get("details", {}),
        artifacts={f: (root / name / f).read_bytes() for f in data.get("artifacts", [])},
        summary=data.get("summary", ""),
    )


def log_check(check: CheckResult, *, run_id: str) -> ValidationResult:
    """Add ``check`` to run ``run_id``'s evidence, keeping every other check already logged there.

    For a check computed outside ``validate`` (a generator audit from people's answers): the run's
    evidence is read back, checked against its own manifest (evidence that no longer matches it is
    refused, not re-registered as if intact), ``check`` replaces any earlier result of the same name,
    and the whole is logged again by :func:`log_validation`, so the summary, the report, the tags and
    the audit chain's registration cover every check. A later sign-off approves the new registration.
    """
    import mlflow

    from .evidence import RunArtifacts, verify_folder

    artifacts = RunArtifacts(mlflow.MlflowClient().get_run(run_id))
    try:
        root = artifacts.folder()
        summary_path = None if root is None else root / "summary.json"
        if root is None or summary_path is None or not summary_path.is_file():
            return log_validation(ValidationResult(checks={check.name: check}), run_id=run_id)
        summary_bytes = summary_path.read_bytes()
        problems = verify_folder(root, summary_bytes, [])
        if problems:
            raise InputError(
                f"run {run_id}'s evidence does not match its hitl/summary.json ({problems[0]}): "
                f"log it again with validate before adding {check.name}"
            )
        summary = json.loads(summary_bytes)
        kept = {name: _logged_check(root, name) for name in summary.get("checks", {}) if name != check.name}
        merged = ValidationResult(
            checks={**kept, check.name: check},
            skipped={k: v for k, v in summary.get("skipped", {}).items() if k != check.name},
            details=summary.get("details", {}),
        )
    finally:
        artifacts.close()
    return log_validation(merged, run_id=run_id, model=merged.details.get("model_uri"))


def run_id_for_model_uri(model_uri: str) -> str | None:
    """The run that produced the model at ``model_uri`` (``runs:/`` and ``models:/`` URIs), else ``None``.

    Evidence belongs with the run that trained the model, so the CLI logs there by default.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    if model_uri.startswith("runs:/"):
        return model_uri[len("runs:/") :].split("/", 1)[0] or None
    if model_uri.startswith("models:/"):
        name, _, ref = model_uri[len("models:/") :].partition("/")
        client = mlflow.MlflowClient()
        try:
            if ref.isdigit():
                version = client.get_model_version(name, ref)
            elif ref.startswith("@"):
                version = client.get_model_version_by_alias(name, ref[1:])
            else:
                return None
        except MlflowException as exc:
            raise NotFoundError(f"unknown registered model version {model_uri!r}") from exc
        return version.run_id
    return None
