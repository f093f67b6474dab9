"""The server's check of a verified-label snapshot a client says it published (``POST /hitl/api/snapshots/create``).

The gate counts a run's snapshots by the store's record (``n_items``) and the snapshot's own
``snapshot.json`` in the run (the agreement), pinned by the ``manifest_sha256`` the record holds. A
client that could record any numbers, or pin files it wrote itself, could satisfy a policy's
``[review]`` requirements (``min_verified_items``, ``min_krippendorff_alpha``) without one human label.
So before the server records a snapshot, it rebuilds it from its own review store (the queue's labels,
with the method, agreement threshold and label column the snapshot names) and reads the files the
client logged to the run from its own artifact store: every claim must be what the rebuild gives.
A review-store ``admin`` may record a snapshot unchecked (vouching for it, as for labels imported on
others' behalf); an admin sets the policies these requirements come from anyway.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .._hashing import sha256_file, sha256_hex
from ..errors import InputError, PermissionDeniedError
from ..review import SNAPSHOT_FILES, ReviewStore, build_snapshot

__all__ = ["check_published_snapshot"]


def check_published_snapshot(store: ReviewStore, queue_name: str, claim: Mapping[str, Any]) -> None:
    """Refuse a snapshot claim (the fields of ``record_snapshot``: ``snapshot_id``, ``run_id``, ``method``,
    ``n_items``, ``labels_sha256``, ``manifest_sha256``) that the server's own store and the run's files do
    not bear out (:class:`~mlflow_hitl.errors.PermissionDeniedError` naming the first mismatch;
    ``InputError`` when the run or its files are missing)."""
    snapshot_id, run_id = claim["snapshot_id"], claim["run_id"]
    if run_id is None:
        raise InputError("a snapshot is published into a run: give run_id")
    files = _snapshot_files(run_id, snapshot_id, claim["manifest_sha256"])
    meta = json.loads(files["snapshot.json"])
    labels = store.queue_labels(queue_name)
    try:
        rebuilt = build_snapshot(
            labels,
            method=claim["method"],
            min_agreement=float(meta["min_agreement"]),
            label_column=str(meta["label_column"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(
            f"hitl/labels/{snapshot_id}/snapshot.json does not describe a snapshot: {exc}"
        ) from exc
    expected: dict[str, Any] = {
        "snapshot_id": (snapshot_id, rebuilt.id),
        "n_items": (claim["n_items"], len(rebuilt.rows)),
        "labels_sha256": (claim["labels_sha256"], sha256_hex(rebuilt.files["labels.csv"])),
        "labels.csv": (files["labels.csv"], rebuilt.files["labels.csv"]),
        "annotations.csv": (files["annotations.csv"], rebuilt.files["annotations.csv"]),
        "snapshot.json snapshot": (meta.get("snapshot"), rebuilt.id),
        "snapshot.json run_id": (meta.get("run_id"), run_id),
    }
    # The counts and agreement statistics, as snapshot.json serialises them.
    summary = json.loads(json.dumps(rebuilt.consensus.summary(), sort_keys=True, default=str))
    expected.update({f"snapshot.json {key}": (meta.get(key), value) for key, value in summary.items()})
    for what, (claimed, actual) in expected.items():
        if claimed != actual:
            raise PermissionDeniedError(
                f"the snapshot of queue {queue_name!r} does not match the server's own labels ({what} differs): "
                "publish it again from the current labels"
            )


def _snapshot_files(run_id: str, snapshot_id: str, manifest_sha256: str) -> dict[str, bytes]:
    """The snapshot's files as the run holds them, each checked against its manifest, and the manifest
    against the claimed digest (:class:`~mlflow_hitl.errors.PermissionDeniedError` at the first mismatch)."""
    import mlflow

    from .evidence import RunArtifacts

    artifacts = RunArtifacts(mlflow.MlflowClient().get_run(run_id))
    try:
        root = artifacts.folder()
        folder = None if root is None else root / "labels" / snapshot_id
        if folder is None or not (folder / "manifest.json").is_file():
            raise InputError(
                f"run {run_id} has no hitl/labels/{snapshot_id}/manifest.json: log the files first"
            )
        if sha256_file(folder / "manifest.json") != manifest_sha256:
            raise PermissionDeniedError(
                f"manifest_sha256 is not the sha256 of hitl/labels/{snapshot_id}/manifest.json"
            )
        manifest = json.loads((folder / "manifest.json").read_bytes())
        files = {}
        for name in SNAPSHOT_FILES:
            path = folder / name
            if (
                not isinstance(manifest, Mapping)
                or not path.is_file()
                or sha256_file(path) != manifest.get(name)
            ):
                raise PermissionDeniedError(
                    f"hitl/labels/{snapshot_id}/{name} does not match the snapshot's manifest"
                )
            files[name] = path.read_bytes()
    finally:
        artifacts.close()
    return files
