"""The human loop meets MLflow: where the review store lives, queues built from a run's model,
and verified-label snapshots published to runs with dataset lineage.

Snapshot layout in the queue's run, under ``hitl/labels/<snapshot id>/``:

- ``labels.csv``: one row per verified item: the row's values, the verified label, ``hitl_item``,
  ``hitl_row_key``, ``hitl_source`` (consensus or adjudicated), agreement and raters;
- ``annotations.csv``: every label every rater gave on those items;
- ``snapshot.json``: queue, method, agreement statistics, rater quality, the audit chain head;
- ``manifest.json``: the sha256 of each of the three files above.

The snapshot id is derived from the labels and annotations it holds, so publishing the same
verified labels twice yields the same snapshot; the store refuses to reuse an id for other content.
The labels are also logged as an MLflow dataset input (context ``hitl-verified-labels``) of the
queue's run and, through :func:`verified_labels`, of the run that retrains on them.
"""

from __future__ import annotations

import functools
import io
import json
import os
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._hashing import sha256_hex
from .._progress import Progress, or_silent
from .._validation import check_unique_columns
from ..errors import InputError, NotFoundError
from ..review import (
    DEFAULT_MIN_AGREEMENT,
    HttpReviewStore,
    LabelSnapshot,
    QueueStore,
    ReviewStore,
    ReviewStoreProtocol,
    build_snapshot,
    queue_for_review,
)
from ..spark import is_spark_frame
from .logging import ARTIFACT_ROOT, resolve_run_id
from .model import as_classifier

__all__ = [
    "STORE_URI_ENV",
    "VERIFIED_LABELS_CONTEXT",
    "default_store_uri",
    "open_store",
    "publish_labels",
    "queue_from_model",
    "shared_store",
    "verified_labels",
]

STORE_URI_ENV = "MLFLOW_HITL_STORE_URI"
VERIFIED_LABELS_CONTEXT = "hitl-verified-labels"
_INTEGER_HINT = r"(?s).*Inferred schema contains integer column"


def default_store_uri(tracking_uri: str | None = None) -> str:
    """The review store's URL: ``$MLFLOW_HITL_STORE_URI``, else beside the MLflow store.

    A SQLite tracking store ``sqlite:///dir/mlflow.db`` gets ``sqlite:///dir/hitl.db``; a local
    file store ``./mlruns`` gets ``./mlruns/hitl.db``; a PostgreSQL or MySQL tracking store shares
    its database (every table is prefixed ``hitl_``). A remote tracking server needs an explicit URL.
    """
    if os.environ.get(STORE_URI_ENV):
        return os.environ[STORE_URI_ENV]
    if tracking_uri is None:
        import mlflow

        tracking_uri = mlflow.get_tracking_uri()
    if tracking_uri.startswith("sqlite:///"):
        path = tracking_uri[len("sqlite:///") :]
        if path in ("", ":memory:"):
            raise InputError("an in-memory MLflow store has no place for the review store; pass --store-uri")
        return f"sqlite:///{Path(path).with_name('hitl.db')}"
    if tracking_uri.startswith(("postgresql", "mysql", "mssql")):
        return tracking_uri
    if tracking_uri.startswith(("http://", "https://", "databricks")):
        raise InputError(
            f"the tracking store is remote ({tracking_uri.split('://')[0]}); pass --store-uri or set {STORE_URI_ENV}"
        )
    local = tracking_uri[len("file://") :] if tracking_uri.startswith("file://") else tracking_uri
    return f"sqlite:///{Path(local).resolve() / 'hitl.db'}"


def open_store(store_uri: str | None = None) -> ReviewStoreProtocol:
    """The review store a command or a script uses: see :func:`store_for`."""
    return store_for(store_uri=store_uri)


def store_for(tracking_uri: str | None = None, store_uri: str | None = None) -> ReviewStore | HttpReviewStore:
    """The review store a command should use: the server's API in team mode, else the SQL store.

    An explicit ``store_uri`` (``--store-uri``, else ``$MLFLOW_HITL_STORE_URI``) wins: ``http(s)://``
    means a server's API, anything else a database URL. Without one, a tracking URI that is a server
    (``http(s)://``) means that server's API; a local tracking store gets the SQLite file beside it.
    """
    from .review import STORE_URI_ENV, default_store_uri

    explicit = store_uri or os.environ.get(STORE_URI_ENV)
    if explicit:
        return HttpReviewStore(explicit) if _is_server(explicit) else ReviewStore(explicit)
    if tracking_uri is None:
        import mlflow

        tracking_uri = mlflow.get_tracking_uri()
    if _is_server(tracking_uri):
        return HttpReviewStore(tracking_uri)
    return ReviewStore(default_store_uri(tracking_uri))


def _is_server(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


@functools.lru_cache(maxsize=8)
def shared_store(store_uri: str) -> ReviewStore:
    """One open store per URL for the life of a long-running process (a tracking server, a registry
    plugin): opening one builds an engine and checks the schema, which each gated write would repeat."""
    return ReviewStore(store_uri)


def _check_data(data: Any, key: str | None) -> None:
    """Rows to queue, checked before the model is loaded: a Spark or pandas frame, not empty."""
    spark = is_spark_frame(data)
    if key is not None and not spark:
        raise InputError("key is for a Spark DataFrame; index a pandas frame by its ids instead")
    if not (spark or isinstance(data, pd.DataFrame)) or (data.isEmpty() if spark else data.empty):
        raise InputError("data must be a non-empty DataFrame of rows to review")
    check_unique_columns([str(c) for c in data.columns], "data")  # items are keyed by the names as text


def _features_to_score(
    data: Any, handle: Any, *, key: str | None, group_column: str | None, gold_column: str | None
) -> list[str]:
    """The model's input columns in ``data``, once the model is known fit to rank rows and the columns named."""
    if not handle.has_proba:
        raise InputError(
            f"{handle.description} gives no class probabilities, so rows cannot be ranked by confidence"
        )
    for column, what in ((group_column, "group column"), (gold_column, "gold column")):
        if column is not None and column not in data.columns:
            raise InputError(
                f"{what} {column!r} is not a column of the data; it has: {', '.join(map(str, data.columns[:20]))}"
            )
    features = (
        list(handle.feature_names)
        if handle.feature_names
        else [c for c in data.columns if c not in (gold_column, key)]
    )
    missing = [c for c in features if c not in data.columns]
    if missing:
        raise InputError(f"data is missing the model's input column(s) {', '.join(missing)}")
    return features


def queue_from_model(
    store: QueueStore,
    name: str,
    *,
    data: pd.DataFrame,
    model: Any,
    actor: str,
    size: int,
    strategy: str = "least-confidence",
    raters_per_item: int = 1,
    blind: bool = False,
    run_id: str | None = None,
    group_column: str | None = None,
    edge_cases: Mapping[str, np.ndarray] | None = None,
    random_share: float = 0.1,
    gold_column: str | None = None,
    seed: int = 0,
    key: str | None = None,
) -> Any:
    """Score ``data`` with ``model``, pick the rows to review, and create queue ``name``.

    ``model`` is anything :func:`mlflow_hitl.validate` takes (a fitted classifier, a pyfunc, a URI).
    The queue shows reviewers every column of ``data`` except ``gold_column`` (known labels of gold
    items, used to measure reviewer accuracy; empty cells are ordinary items).

    ``data`` may be a Spark DataFrame: the model scores it on the executors and only the chosen rows
    reach the driver and the store (:func:`mlflow_hitl.spark.queue_for_review`). ``key`` (Spark only)
    names a column of unique row ids: rows are then ranked in key order and each item is stored under
    its id, whatever the frame's partitioning.
    """
    _check_data(data, key)
    handle = as_classifier(model)
    features = _features_to_score(data, handle, key=key, group_column=group_column, gold_column=gold_column)
    # What both engines' selections take alike.
    common: dict[str, Any] = {
        "classes": list(handle.classes or ()),
        "size": size,
        "actor": actor,
        "strategy": strategy,
        "raters_per_item": raters_per_item,
        "blind": blind,
        "random_share": random_share,
        "run_id": run_id,
        "seed": seed,
    }
    if is_spark_frame(data):
        if edge_cases is not None:
            raise InputError("edge_cases are per-row masks of a pandas frame; a Spark DataFrame takes none")
        from ..spark import queue_for_review as queue_spark_rows

        return queue_spark_rows(
            store,
            name,
            rows=data,
            predict_proba=handle.predict_proba,
            features=features,
            key=key,
            group_column=group_column,
            gold_column=gold_column,
            **common,
        )
    gold, shown = None, data
    if gold_column is not None:
        known = data[gold_column].dropna()
        gold = dict(zip(known.index, known.to_numpy(), strict=True))
        shown = data.drop(columns=[gold_column])
    return queue_for_review(
        store,
        name,
        rows=shown,
        y_prob=handle.predict_proba(data[features]),  # type: ignore[misc]
        groups=None if group_column is None else data[group_column].to_numpy(),
        edge_cases=edge_cases,
        gold=gold,
        **common,
    )


def publish_labels(
    store: ReviewStoreProtocol,
    queue_name: str,
    *,
    actor: str,
    method: str = "majority",
    min_agreement: float = DEFAULT_MIN_AGREEMENT,
    run_id: str | None = None,
    label_column: str = "label",
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Publish the queue's verified labels as an immutable snapshot in run ``run_id`` (default: the queue's run).

    ``progress(done, 4)`` after each stage: the labels read, the consensus built, the files logged, the
    snapshot recorded.
    """
    step = or_silent(progress)
    labels = store.queue_labels(queue_name)
    step(1, 4)
    run_id = resolve_run_id(run_id or labels.queue.run_id)
    if run_id is None:
        raise InputError(f"queue {queue_name!r} belongs to no MLflow run; pass run_id to publish into one")
    snapshot = build_snapshot(labels, method=method, min_agreement=min_agreement, label_column=label_column)
    step(2, 4)
    existing = store.snapshots(queue_name)
    if snapshot.id in set(existing["id"]):
        step(4, 4)
        return existing.set_index("id").loc[snapshot.id].to_dict() | {"id": snapshot.id, "republished": False}

    files = snapshot.describe(run_id=run_id, audit_head=store.audit_head(), actor=actor)
    artifact_path = _log_snapshot(snapshot, files, run_id=run_id)
    step(3, 4)
    record = store.record_snapshot(
        queue_name,
        snapshot_id=snapshot.id,
        run_id=run_id,
        method=method,
        n_items=len(snapshot.rows),
        labels_sha256=sha256_hex(files["labels.csv"]),
        manifest_sha256=sha256_hex(files["manifest.json"]),
        actor=actor,
    )
    import mlflow

    mlflow.MlflowClient().set_tag(run_id, f"hitl.labels.{queue_name}", snapshot.id)
    step(4, 4)
    state = snapshot.consensus
    return {
        **record,
        "artifact_path": artifact_path,
        "pending": list(state.pending),
        "incomplete": list(state.incomplete),
        "republished": True,
    }


def _log_snapshot(snapshot: LabelSnapshot, files: Mapping[str, bytes], *, run_id: str) -> str:
    """Log the snapshot's files to the run and its rows as a dataset input; returns the artifact path."""
    import mlflow

    artifact_path = f"{ARTIFACT_ROOT}/labels/{snapshot.id}"
    client = mlflow.MlflowClient()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name, content in files.items():
            (folder / name).write_bytes(content)
        client.log_artifacts(run_id, str(folder), artifact_path=artifact_path)
    client.log_inputs(
        run_id,
        datasets=[
            _verified_dataset(
                snapshot.rows,
                run_id=run_id,
                snapshot=snapshot.id,
                queue_name=snapshot.queue.name,
                label_column=snapshot.label_column,
            )
        ],
    )
    return artifact_path


def _verified_dataset(
    frame: pd.DataFrame, *, run_id: str, snapshot: str, queue_name: str, label_column: str
) -> Any:
    import mlflow
    from mlflow.entities import DatasetInput, InputTag

    from .artifact_source import artifact_source

    uri = f"{mlflow.MlflowClient().get_run(run_id).info.artifact_uri}/{ARTIFACT_ROOT}/labels/{snapshot}/labels.csv"
    with warnings.catch_warnings():
        # MLflow's hint about integer columns concerns model signatures, not dataset lineage.
        warnings.filterwarnings("ignore", message=_INTEGER_HINT, category=UserWarning)
        dataset = mlflow.data.from_pandas(
            frame,
            source=artifact_source(uri),
            name=f"hitl-verified-{queue_name}",
            targets=label_column,
            digest=snapshot,
        )
        entity = dataset._to_mlflow_entity()  # where MLflow infers the schema, and would hint
    return DatasetInput(entity, tags=[InputTag("mlflow.data.context", VERIFIED_LABELS_CONTEXT)])


def _verified_files(record: Mapping[str, Any]) -> dict[str, bytes]:
    """Download a snapshot's files and check them against its manifest and the store's record."""
    from .downloads import download_quietly

    artifact_path = f"{ARTIFACT_ROOT}/labels/{record['id']}"
    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = Path(download_quietly(run_id=record["run_id"], artifact_path=artifact_path, dst_path=tmp))
        except Exception as exc:  # MLflow raises different types per artifact store
            raise NotFoundError(
                f"snapshot {record['id']} is missing from run {record['run_id']}: {exc}"
            ) from exc
        files = {p.name: p.read_bytes() for p in local.iterdir() if p.is_file()}
    manifest_bytes = files.get("manifest.json", b"")
    if sha256_hex(manifest_bytes) != record["manifest_sha256"]:
        raise InputError(f"snapshot {record['id']}: manifest.json was altered after publication")
    manifest = json.loads(manifest_bytes)
    for name, digest in manifest.items():
        if name not in files or sha256_hex(files[name]) != digest:
            raise InputError(f"snapshot {record['id']}: {name} was altered or removed after publication")
    return files


def verified_labels(
    queue_name: str,
    *,
    store: ReviewStoreProtocol | None = None,
    snapshot: str | None = None,
    log_input: bool = True,
) -> pd.DataFrame:
    """The human-verified rows of a queue's latest (or given) snapshot, checked against its manifest.

    Inside an active MLflow run (and with ``log_input``), the snapshot is logged as an input of that
    run with context ``hitl-verified-labels``: the retrained model's lineage points at these labels.
    """
    import mlflow

    store = store or open_store()
    snapshots = store.snapshots(queue_name)
    if snapshots.empty:
        store.queue(queue_name)  # an unknown queue is reported as such
        raise NotFoundError(
            f"queue {queue_name!r} has no published snapshot; run `mlflow-hitl labels publish` first"
        )
    if snapshot is None:
        record = snapshots.iloc[-1].to_dict()
    elif snapshot in set(snapshots["id"]):
        record = snapshots.set_index("id").loc[snapshot].to_dict() | {"id": snapshot}
    else:
        raise NotFoundError(
            f"queue {queue_name!r} has no snapshot {snapshot!r}; it has: {', '.join(snapshots['id'])}"
        )
    files = _verified_files(record)
    meta = json.loads(files["snapshot.json"])
    frame = pd.read_csv(io.BytesIO(files["labels.csv"]))
    active = mlflow.active_run()
    if log_input and active is not None:
        mlflow.MlflowClient().log_inputs(
            active.info.run_id,
            datasets=[
                _verified_dataset(
                    frame,
                    run_id=record["run_id"],
                    snapshot=record["id"],
                    queue_name=queue_name,
                    label_column=meta["label_column"],
                )
            ],
        )
    frame.attrs["hitl_snapshot"] = record["id"]
    frame.attrs["hitl_label_column"] = meta["label_column"]
    return frame
