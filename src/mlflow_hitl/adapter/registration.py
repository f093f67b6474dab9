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

__all__ = [
    "REGISTERED",
    "evaluated_model_uri",
    "local_path",
    "model_digest",
    "model_digest_at",
    "register_evidence",
    "version_model_digest",
]

REGISTERED = "evidence.registered"
_SERVER_ARTIFACTS_ENV = "_MLFLOW_SERVER_ARTIFACT_DESTINATION"
# Written by MLflow itself into a model's folder when it is loaded by a models:/<name>/<version> URI.
_MLFLOW_OWN = frozenset({"registered_model_meta"})


def local_path(uri: str) -> Path | None:
    """Where ``uri``'s files are on this machine: a local path, or, inside the tracking server, the
    proxied ``mlflow-artifacts:`` location under its artifact destination; ``None`` otherwise."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return Path(unquote(parsed.path))
    if parsed.scheme == "mlflow-artifacts":
        destination = urlparse(os.environ.get(_SERVER_ARTIFACTS_ENV, ""))
        if destination.path and destination.scheme in ("", "file"):
            return Path(unquote(destination.path)) / unquote(parsed.path).lstrip("/")
    return None


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
    import mlflow

    with tempfile.TemporaryDirectory() as tmp:
        yield Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp))


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


def register_evidence(
    run_id: str, summary_path: Path, *, model: Any, fingerprints: Mapping[str, Any] | None
) -> tuple[int, str] | None:
    """Append the ``evidence.registered`` event for the evidence just logged to ``run_id``; its ``(seq, hash)``.

    With no review store to record into (an in-memory MLflow store, a remote one without
    ``MLFLOW_HITL_STORE_URI``), a warning says the evidence stays unregistered: the gate then refuses
    every version made from the run.
    """
    from .review import open_store

    model_uri, problem = evaluated_model_uri(model, run_id)
    digest = None
    if model_uri is not None:
        try:
            digest = model_digest_at(model_uri)
        except Exception as exc:  # any artifact store's own error type
            problem = f"the evaluated model {model_uri!r} cannot be read: {first_line(exc)}"
    payload = {
        "summary_sha256": sha256_file(summary_path),
        "model_sha256": digest,
        "model_uri": model_uri,
        "model_problem": problem,
        "fingerprints": dict(fingerprints or {}),
    }
    try:
        store = open_store()
    except Exception as exc:  # no store configured, or none that opens: the gate will say so too
        warnings.warn(
            f"the evidence of run {run_id} is not registered ({first_line(exc)}): no version made "
            "from this run passes a gate",
            stacklevel=3,
        )
        return None
    try:
        return store.record_event(
            actor=acting_user(), action=REGISTERED, subject=f"run:{run_id}", payload=payload
        )
    finally:
        store.close()
