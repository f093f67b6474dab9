"""Evidence registered once, then frozen, and bound to the model it evaluated.

When :func:`~mlflow_hitl.adapter.logging.log_validation` logs evidence to a run, :func:`register_evidence`
appends one ``evidence.registered`` event to the audit chain (subject ``run:<run_id>``) holding:

- ``summary_sha256``: the sha256 of ``hitl/summary.json`` as written. The summary's manifest pins every
  other file of the evidence, so this one digest pins all of it;
- ``model_sha256``: the content digest of the evaluated model's files (:func:`model_digest`), with
  ``model_uri`` saying where they were read, or ``model_problem`` saying why no digest was taken;
- ``fingerprints``: the data fingerprints of ``result.details["fingerprints"]``.

Which model was evaluated: the model URI ``validate`` was given (a ``PyFuncModel`` names its logged
model); for a model object in memory, the one model the run logged before ``validate`` ran. A run
that logged none, or several, has no evaluated model on record and no version made from it passes.

In team mode the tracking server registers (``POST /hitl/api/evidence/register``, :func:`register_on_server`):
it reads the run's files and the model from its own stores, computes every digest itself and records the
event as the authenticated user, who must be allowed to edit the run; the client only names the run and
the model it evaluated, which must be a model of that run.

The gate judges a run's artifacts against that record, never against the run's own (rewritable)
manifest, and compares the record's model digest with the digest of the version's actual files. A
second ``log_validation`` into the same run registers again: the newest registration is the one in
force, and a sign-off approves the registration current when it was given (see ``adapter/evidence.py``).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from .._hashing import canonical_json, sha256_file, sha256_hex
from .._identity import acting_user
from ..errors import first_line
from ..review import EVIDENCE_REGISTERED

__all__ = [
    "evaluated_model_uri",
    "evidence_payload",
    "local_path",
    "model_digest",
    "model_digest_at",
    "model_location",
    "register_evidence",
    "register_on_server",
    "version_model_digest",
]

_SERVER_ARTIFACTS_ENV = "_MLFLOW_SERVER_ARTIFACT_DESTINATION"
# Written by MLflow itself into a model's folder when it is loaded by a models:/<name>/<version> URI.
_MLFLOW_OWN = frozenset({"registered_model_meta"})


def local_path(uri: str) -> Path | None:
    """Where ``uri``'s files are on this machine: a local path, or, inside the tracking server, the
    proxied ``mlflow-artifacts:`` location under its artifact destination; ``None`` otherwise.

    A proxied location that would leave the destination (``..``, however encoded) is never read in
    place: ``None``, so it goes to MLflow's own artifact repository, which refuses it as its proxy does.
    """
    from mlflow.utils.file_utils import local_file_uri_to_path

    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        # As MLflow's local artifact repository reads it: ``model;x``, ``model?x`` are folders, not ``model``.
        return Path(local_file_uri_to_path(uri))
    if parsed.scheme == "mlflow-artifacts":
        destination = urlparse(os.environ.get(_SERVER_ARTIFACTS_ENV, ""))
        if destination.path and destination.scheme in ("", "file"):
            relative = unquote(parsed.path).lstrip("/")
            if not _dot_segment(relative.split("/")):
                return Path(unquote(destination.path)) / relative
    return None


def _dot_segment(parts: list[str]) -> bool:
    """Whether any path segment is ``.`` or ``..``, or hides a ``/``, once fully percent-decoded."""
    for part in parts:
        while (decoded := unquote(part)) != part:
            part = decoded
        if part in (".", "..") or "/" in part or "\\" in part or "\x00" in part:
            return True
    return False


def model_digest(folder: Path) -> str:
    """sha256 of the canonical JSON ``{relative path: sha256 of the file}`` over every file of an MLflow
    model folder (MLflow's own ``registered_model_meta`` left out): equal exactly when the files are."""
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder")
    files = {
        relative: sha256_file(path)
        for path in sorted(folder.rglob("*"))
        if path.is_file() and (relative := path.relative_to(folder).as_posix()) not in _MLFLOW_OWN
    }
    if not files:
        raise FileNotFoundError(f"{folder} holds no files")
    return sha256_hex(canonical_json(files))


@contextlib.contextmanager
def _files_at(uri: str) -> Iterator[Path]:
    """A local folder holding the files at ``uri``: in place when it is local, else downloaded once."""
    path = local_path(uri)
    if path is not None:
        yield path
        return
    from .downloads import download_quietly

    with tempfile.TemporaryDirectory() as tmp:
        yield Path(download_quietly(artifact_uri=uri, dst_path=tmp))


def model_digest_at(uri: str) -> str:
    """:func:`model_digest` of the model at an artifact location or model URI."""
    with _files_at(uri) as folder:
        return model_digest(folder)


def _download_location(client: Any, model_version: Any) -> str:
    """Where MLflow reads the version's files from: what it stored at creation as the storage location.

    A plain source is its own location and a ``models:/<model_id>`` source stands for that logged
    model's (immutable) artifact location; anything else asks MLflow, which also reads the registered
    model and every one of its versions (a third of a second at 1,000 versions).
    """
    source = model_version.source or ""
    if not source.startswith("models:/"):
        return source
    reference = source[len("models:/") :]
    if reference.startswith("m-") and "/" not in reference:
        return client.get_logged_model(reference).artifact_location
    return client.get_model_version_download_uri(model_version.name, model_version.version)


def version_model_digest(client: Any, model_version: Any) -> tuple[str | None, str | None]:
    """``(digest, None)`` of the files a model version actually serves, or ``(None, why not)``.

    The files are those of MLflow's download location for the version (its ``source``, or the logged
    model that source names), the very files ``mlflow.pyfunc.load_model("models:/name/version")`` loads.
    """
    try:
        return model_digest_at(_download_location(client, model_version)), None
    except Exception as exc:  # any artifact store's own error type
        return None, f"model source {model_version.source!r} cannot be read: {first_line(exc)}"


def evaluated_model_uri(model: Any, run_id: str) -> tuple[str | None, str | None]:
    """``(uri, None)`` of the model ``validate`` evaluated, or ``(None, why it is unknown)``."""
    if isinstance(model, str):
        return model, None
    model_id = getattr(getattr(model, "metadata", None), "model_id", None)
    if type(model).__name__ == "PyFuncModel" and model_id:
        return f"models:/{model_id}", None
    import mlflow

    client = mlflow.MlflowClient()
    run = client.get_run(run_id)
    ids = sorted({output.model_id for output in run.outputs.model_outputs} if run.outputs else set())
    if not ids:
        ids = sorted(
            m.model_id
            for m in client.search_logged_models(
                experiment_ids=[run.info.experiment_id], filter_string=f"source_run_id = '{run_id}'"
            )
        )
    if len(ids) == 1:
        return f"models:/{ids[0]}", None
    if not ids:
        return None, (
            f"validate was given a model object and run {run_id} had logged no model: "
            "log the model first, or pass its URI"
        )
    return None, f"run {run_id} logged {len(ids)} models ({', '.join(ids)}): pass the evaluated model's URI"


def evidence_payload(
    summary_path: Path,
    model_uri: str | None,
    problem: str | None,
    fingerprints: Mapping[str, Any] | None,
    *,
    location: str | None = None,
) -> dict[str, Any]:
    """The ``evidence.registered`` payload: ``summary_path``'s digest, the evaluated model's digest (read
    at ``location``, by default ``model_uri``), or the ``problem`` that kept it from being taken, and the
    data fingerprints."""
    digest = None
    if model_uri is not None and problem is None:
        try:
            digest = model_digest_at(location or model_uri)
        except Exception as exc:  # any artifact store's own error type
            problem = f"the evaluated model {model_uri!r} cannot be read: {first_line(exc)}"
    return {
        "summary_sha256": sha256_file(summary_path),
        "model_sha256": digest,
        "model_uri": model_uri,
        "model_problem": problem,
        "fingerprints": dict(fingerprints or {}),
    }


def register_evidence(
    run_id: str, summary_path: Path, *, model: Any, fingerprints: Mapping[str, Any] | None
) -> tuple[int, str] | None:
    """Append the ``evidence.registered`` event for the evidence just logged to ``run_id``; its ``(seq, hash)``.

    In team mode (the review store is a tracking server's API) the server registers it: it hashes the
    run's files and the evaluated model itself and records the event as the authenticated user
    (:func:`register_on_server`); nothing the client computed is recorded. With no review store to
    record into (an in-memory MLflow store), or a server that refuses, a warning says the evidence stays
    unregistered: the gate then refuses every version made from the run.
    """
    from ..errors import HitlError
    from ..review import HttpReviewStore
    from .review import open_store

    model_uri, problem = evaluated_model_uri(model, run_id)
    try:
        store = open_store()
    except Exception as exc:  # no store configured, or none that opens: the gate will say so too
        _unregistered(run_id, exc)
        return None
    try:
        if isinstance(store, HttpReviewStore):
            return store.register_evidence(run_id, model_uri=model_uri)
        payload = evidence_payload(summary_path, model_uri, problem, fingerprints)
        return store.record_event(
            actor=acting_user(), action=EVIDENCE_REGISTERED, subject=f"run:{run_id}", payload=payload
        )
    except HitlError as exc:
        if not isinstance(store, HttpReviewStore):
            raise
        _unregistered(run_id, exc)
        return None
    finally:
        store.close()


def _unregistered(run_id: str, reason: Exception) -> None:
    warnings.warn(
        f"the evidence of run {run_id} is not registered ({first_line(reason)}): no version made "
        "from this run passes a gate",
        stacklevel=4,
    )


def model_location(client: Any, model_uri: str, run_id: str) -> tuple[str | None, str | None]:
    """``(artifact location, None)`` of a model of run ``run_id`` named by ``model_uri``, or ``(None, why not)``.

    For the server, which reads only its own stores and only models the run itself produced: a logged
    model (``models:/<model id>``), a registered version (``models:/<name>/<version>``) whose files are
    the run's (a version may name the run and serve another model's files) or a path in the run
    (``runs:/<run id>/<path>``). Never a path on the server's disk.
    """
    from mlflow.exceptions import MlflowException

    refused = (
        None,
        f"model URI {model_uri!r} is not a model of run {run_id} the server can read "
        "(models:/<model id>, models:/<name>/<version> or runs:/<run id>/<path>)",
    )
    scheme, _, rest = model_uri.partition(":/")
    parts = rest.strip("/").split("/")
    if scheme not in ("models", "runs") or not all(parts) or _dot_segment(parts):
        return refused  # ``%2e%2e`` is ``..`` to the artifact store: it would leave the run
    try:
        if scheme == "models" and len(parts) == 1 and parts[0].startswith("m-"):
            logged = client.get_logged_model(parts[0])
            return (logged.artifact_location, None) if logged.source_run_id == run_id else refused
        if scheme == "models" and len(parts) == 2 and parts[1].isdigit():
            # A version names its run, but its files may be any model's: they must be the run's own.
            version = client.get_model_version(parts[0], parts[1])
            location = _download_location(client, version)
            return (
                (location, None)
                if version.run_id == run_id and _run_produced(client, location, run_id)
                else refused
            )
        if scheme == "runs" and len(parts) >= 2 and parts[0] == run_id:
            path = "/".join(parts[1:])
            logged = client.search_logged_models(
                experiment_ids=[client.get_run(run_id).info.experiment_id],
                filter_string=f"source_run_id = '{run_id}' AND name = '{path}'",
            )
            if len(logged) == 1:
                return logged[0].artifact_location, None
            return f"{client.get_run(run_id).info.artifact_uri.rstrip('/')}/{path}", None
    except MlflowException as exc:
        return None, f"model {model_uri!r} cannot be found: {first_line(exc)}"
    return refused


def _run_produced(client: Any, location: str, run_id: str) -> bool:
    """Whether the files at ``location`` are run ``run_id``'s: in its artifacts, or a model it logged."""
    run = client.get_run(run_id)
    if location.startswith(run.info.artifact_uri.rstrip("/") + "/"):
        return True
    logged = client.search_logged_models(
        experiment_ids=[run.info.experiment_id], filter_string=f"source_run_id = '{run_id}'"
    )
    return any(model.artifact_location.rstrip("/") == location.rstrip("/") for model in logged)


def register_on_server(
    store: Any, run_id: str, *, model_uri: str | None, actor: str
) -> tuple[tuple[int, str], dict[str, Any]]:
    """Register run ``run_id``'s evidence from the tracking server's own stores: ``((seq, hash), payload)``.

    Team mode's registration (``POST /hitl/api/evidence/register``): the server reads ``hitl/summary.json``
    and every file its manifest names from the run's artifacts, refuses evidence that does not match its
    own manifest, takes the data fingerprints from the summary and hashes the evaluated model's files
    (``model_uri``, checked by :func:`model_location`; ``None``: the one model the run logged).
    """
    import json

    import mlflow

    from ..errors import InputError
    from .evidence import RunArtifacts, verify_folder

    client = mlflow.MlflowClient()
    run = client.get_run(run_id)
    problem = None
    if model_uri is None:
        model_uri, problem = evaluated_model_uri(None, run_id)
    location = None
    if model_uri is not None:
        location, problem = model_location(client, model_uri, run_id)
    artifacts = RunArtifacts(run)
    try:
        root = artifacts.folder()
        summary_path = None if root is None else root / "summary.json"
        if summary_path is None or not summary_path.is_file():
            raise InputError(f"run {run_id} has no hitl/summary.json to register: log the evidence first")
        summary_bytes = summary_path.read_bytes()
        try:
            details = json.loads(summary_bytes).get("details") or {}
        except (ValueError, AttributeError) as exc:
            raise InputError(f"run {run_id}'s hitl/summary.json is not a JSON object") from exc
        snapshots = store.snapshots(run_id=run_id).to_dict(orient="records")
        problems = verify_folder(root, summary_bytes, snapshots)
        if problems:
            raise InputError(
                f"run {run_id}'s hitl/ files do not match its summary.json: {'; '.join(problems[:3])}"
            )
        payload = evidence_payload(
            summary_path, model_uri, problem, details.get("fingerprints"), location=location
        )
    finally:
        artifacts.close()
    event = store.record_event(
        actor=actor, action=EVIDENCE_REGISTERED, subject=f"run:{run_id}", payload=payload
    )
    return event, payload
