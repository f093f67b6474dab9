"""Time a large Label Studio import into a fresh SQLite review store, and audit-chain verification.

    /work/main/.venv/bin/python bench/bench_review.py --items 34000 --raters-per-item 3 --events 1000000

1. **Import.** A queue of ``--items`` items is exported with ``label_studio_tasks``; a Label Studio
   export is simulated from those tasks (``--raters-per-item`` annotators per task, each
   ``completed_by`` a UI-export user object with an email); then ``read_label_studio_export`` (JSON
   parse included) and ``ReviewStore.import_annotations`` are timed separately. ``--profile`` prints
   the import's cProfile hot spots.
2. **Verify.** A second fresh store gets ``--events`` audit events shaped like annotation events,
   appended in one of the store's own write transactions (``_write``; ``record_event`` would commit
   each one); ``ReviewStore.verify_audit`` is then timed over the whole chain.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from mlflow_hitl.review._interchange import label_studio_tasks, read_label_studio_export
from mlflow_hitl.review._store import ReviewStore

CLASSES = ["cat", "dog", "fox"]


def timed(label: str, fn):
    start = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - start
    print(f"{label:<34} {seconds:8.2f} s")
    return out, seconds


def make_export(tasks: list[dict], per_item: int, pool: int, rng: np.random.Generator) -> bytes:
    """A Label Studio JSON export of ``tasks``: ``per_item`` distinct annotators from a pool per task."""
    annotators = np.argsort(rng.random((len(tasks), pool)), axis=1)[:, :per_item]
    labels = rng.integers(0, len(CLASSES), size=(len(tasks), per_item))
    exported, annotation_id = [], 0
    for index, task in enumerate(tasks):
        annotations = []
        for user, label in zip(annotators[index].tolist(), labels[index].tolist(), strict=True):
            annotation_id += 1
            annotations.append(
                {
                    "id": annotation_id,
                    "result": [
                        {
                            "id": f"r{annotation_id}",
                            "from_name": "label",
                            "to_name": "item",
                            "type": "choices",
                            "value": {"choices": [CLASSES[label]]},
                        }
                    ],
                    "was_cancelled": False,
                    "ground_truth": False,
                    "lead_time": 3.5,
                    "task": index + 1,
                    "completed_by": {
                        "id": user,
                        "email": f"rater{user}@example.org",
                        "first_name": "",
                        "last_name": "",
                    },
                }
            )
        exported.append({"id": index + 1, **task, "annotations": annotations})
    return json.dumps(exported).encode()


def bench_import(url: str, items: int, per_item: int, pool: int, profile: bool) -> None:
    rng = np.random.default_rng(0)
    store = ReviewStore(url)
    rows = pd.DataFrame(
        {"age": rng.integers(18, 90, items).astype(float), "colour": rng.choice(["Black", "White"], items)}
    )
    selection = pd.DataFrame(
        {"row": np.arange(items), "reason": "least-confidence", "score": rng.random(items)}
    )
    prob = rng.dirichlet(np.ones(len(CLASSES)), items)
    timed(
        "create queue",
        lambda: store.create_queue(
            "big",
            rows=rows,
            selection=selection,
            classes=CLASSES,
            actor="bench",
            raters_per_item=per_item,
            predictions=np.array(CLASSES)[prob.argmax(axis=1)],
            confidences=prob.max(axis=1),
        ),
    )
    queue = store.queue("big")
    tasks, _ = timed("items + label_studio_tasks", lambda: label_studio_tasks(queue, store.items("big")))
    export = make_export(tasks, per_item, pool, rng)
    print(f"export: {len(export) / 1e6:.1f} MB, {items * per_item} annotations on {items} tasks")
    (records, ignored), parse_s = timed(
        "parse (read_label_studio_export)", lambda: read_label_studio_export(export, queue=queue)
    )
    assert ignored == 0 and len(records) == items * per_item
    profiler = cProfile.Profile() if profile else None
    if profiler:
        profiler.enable()
    report, import_s = timed(
        "import (import_annotations)",
        lambda: store.import_annotations("big", records, actor="bench", source="label-studio"),
    )
    if profiler:
        profiler.disable()
    assert report.added == len(records)
    print(
        f"parse + import                     {parse_s + import_s:8.2f} s ({len(records) / (parse_s + import_s):,.0f} annotations/s)"
    )
    if profiler:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(15)
    store.close()


def bench_verify(url: str, events: int) -> None:
    store = ReviewStore(url)

    def build() -> None:
        # The store's own writer: the same hashing and chain-head update as every real action, in one transaction.
        with store._write() as tx:
            for seq in range(events):
                tx.event(
                    actor=f"rater{seq % 50}@example.org",
                    action="annotation.create",
                    subject=f"queue:big/item:{seq // 3}",
                    payload={
                        "label": CLASSES[seq % 3],
                        "source": "label-studio",
                        "external_id": f"label-studio:{seq}",
                    },
                )

    timed(f"append {events:,} events (one write transaction)", build)
    result, seconds = timed("verify_audit", store.verify_audit)
    assert result.ok and result.n_events == events
    print(f"verify: {events / seconds:,.0f} events/s")
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=34_000, help="items in the queue")
    parser.add_argument("--raters-per-item", type=int, default=3, help="Label Studio annotators per task")
    parser.add_argument("--raters", type=int, default=40, help="size of the annotator pool")
    parser.add_argument("--events", type=int, default=1_000_000, help="audit events to verify (0 skips)")
    parser.add_argument("--profile", action="store_true", help="print cProfile hot spots of the import")
    parser.add_argument(
        "--dir", type=Path, default=None, help="where the SQLite files go (default: a temp dir)"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        bench_import(
            f"sqlite:///{folder}/import.db", args.items, args.raters_per_item, args.raters, args.profile
        )
        if args.events:
            bench_verify(f"sqlite:///{folder}/verify.db", args.events)


if __name__ == "__main__":
    main()
