"""A verified-label snapshot's files, built from one read of a queue: pure, no MLflow, no database.

``labels.csv`` holds one row per verified item (the row's values, the verified label, ``hitl_item``,
``hitl_row_key``, ``hitl_source``, ``hitl_agreement``, ``hitl_raters``); ``annotations.csv`` every
label given on those items. The snapshot id is derived from those two files, so publishing the same
verified labels twice yields the same id. ``snapshot.json`` describes the queue, the method, the
agreement, rater quality and the audit head; ``manifest.json`` holds the sha256 of the three.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .._hashing import sha256_hex
from ..errors import InputError
from ._audit import utc_now
from ._records import Queue, QueueLabels
from ._verified import DEFAULT_MIN_AGREEMENT, QueueConsensus, consensus_of

__all__ = ["LabelSnapshot", "SNAPSHOT_FILES", "build_snapshot"]

SNAPSHOT_FILES = ("labels.csv", "annotations.csv", "snapshot.json")


@dataclass(frozen=True)
class LabelSnapshot:
    """The verified rows of a queue and the files that publish them (``manifest.json`` comes last,
    from :meth:`describe`, once the run and the audit head are known)."""

    id: str
    queue: Queue
    label_column: str
    rows: pd.DataFrame
    consensus: QueueConsensus
    files: Mapping[str, bytes]  # labels.csv and annotations.csv

    def describe(self, *, run_id: str, audit_head: tuple[int, str], actor: str) -> dict[str, bytes]:
        """All four files: the two CSVs, ``snapshot.json`` for ``run_id`` at ``audit_head``, and the manifest."""
        queue, state = self.queue, self.consensus
        quality = state.rater_quality.reset_index().replace({np.nan: None}).to_dict(orient="records")
        files = dict(self.files)
        files["snapshot.json"] = json.dumps(
            {
                "snapshot": self.id,
                "queue": queue.name,
                "run_id": run_id,
                "label_column": self.label_column,
                "classes": list(queue.classes),
                "raters_per_item": queue.raters_per_item,
                "blind": queue.blind,
                **state.summary(),
                "rater_quality": quality,
                "audit_head": {"seq": audit_head[0], "hash": audit_head[1]},
                "published_by": actor,
                "published_at": utc_now(),
            },
            indent=2,
            sort_keys=True,
            default=str,
        ).encode("utf-8")
        manifest = {name: sha256_hex(files[name]) for name in SNAPSHOT_FILES}
        files["manifest.json"] = json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8")
        return files


def build_snapshot(
    labels: QueueLabels,
    *,
    method: str = "majority",
    min_agreement: float = DEFAULT_MIN_AGREEMENT,
    label_column: str = "label",
) -> LabelSnapshot:
    """The queue's verified labels as rows and CSV files, with the id they name; refuses an empty one."""
    queue = labels.queue
    if label_column in queue.columns:
        raise InputError(
            f"label column {label_column!r} is already a column of the queue's rows; choose another name"
        )
    state = consensus_of(labels, method=method, min_agreement=min_agreement)
    verified = state.verified
    if verified.empty:
        raise InputError(
            f"queue {queue.name!r} has no verified labels yet: {len(state.incomplete)} item(s) still need raters, "
            f"{len(state.pending)} need adjudication"
        )
    rows = _verified_rows(labels, verified, label_column)
    annotations = labels.annotations[labels.annotations["item"].isin(verified.index)]
    files = {"labels.csv": _csv_bytes(rows), "annotations.csv": _csv_bytes(annotations)}
    snapshot_id = sha256_hex(files["labels.csv"] + b"\0" + files["annotations.csv"])[:16]
    return LabelSnapshot(
        id=snapshot_id,
        queue=queue,
        label_column=label_column,
        rows=rows,
        consensus=state,
        files=files,
    )


def _verified_rows(labels: QueueLabels, verified: pd.DataFrame, label_column: str) -> pd.DataFrame:
    payloads = {item.position: item.payload for item in labels.items}
    rows = pd.DataFrame([payloads[int(i)] for i in verified.index], columns=list(labels.queue.columns))
    rows[label_column] = verified["label"].to_numpy()
    rows["hitl_item"] = verified.index.to_numpy()
    rows["hitl_row_key"] = verified["row_key"].to_numpy()
    rows["hitl_source"] = verified["source"].to_numpy()
    rows["hitl_agreement"] = verified["agreement"].to_numpy()
    rows["hitl_raters"] = verified["raters"].to_numpy()
    return rows


def _csv_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, lineterminator="\n")
    return buffer.getvalue().encode("utf-8")
