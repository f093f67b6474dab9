"""Time the paged reads of ``/hitl/api/`` (what the pages under ``/hitl/`` call) on a large review store.

    /work/main/.venv/bin/python bench/bench_pages.py --items 100000 --events 1000000
    /work/main/.venv/bin/python bench/bench_pages.py --store-url postgresql+psycopg://postgres@127.0.0.1:5432/bench

A fresh review store (SQLite in a temporary directory unless ``--store-url`` names an empty database)
gets one queue of ``--items`` items (``create_queue``; 3 labels on each of the first 1,000 items) and
then ``--events`` more audit events shaped like annotation events (50 raters, ``queue:big/item:N``
subjects), appended in one of the store's own write transactions as ``bench_review.py`` does.

Each read is the route's handler as the server runs it (``ROUTES[...].handler(store, actor, params)``)
followed by the JSON encoding of its answer: the server's time without basic-auth and Flask. ``-n``
calls each, p50 / p95 in ms, for pages of ``--limit`` rows at the start, middle and end of the list:
``items/list`` by ``offset``, ``audit/events`` by ``after_seq`` (unfiltered, by subject prefix, by
actor, by action), ``annotations/list``, and ``queues/progress`` (the total a page shows).

The script uses only the routes and the store's public methods, so the same command times an older
checkout (``PYTHONPATH=<checkout>/src``) for a before/after comparison.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time

import numpy as np
import pandas as pd

from mlflow_hitl._plain import plain_json
from mlflow_hitl.adapter.api import ROUTES
from mlflow_hitl.review import ReviewStore

QUEUE = "big"
HANDLERS = {route.path: route.handler for route in ROUTES}


def build(store: ReviewStore, items: int, events: int) -> None:
    rows = pd.DataFrame({"age": np.arange(float(items)), "text": [f"row {i}" for i in range(items)]})
    selection = pd.DataFrame({"row": np.arange(items), "reason": ["least-confidence"] * items})
    started = time.perf_counter()
    store.create_queue(
        QUEUE,
        rows=rows,
        selection=selection,
        classes=["No", "Yes"],
        actor="bench",
        raters_per_item=3,
        predictions=["Yes"] * items,
        confidences=np.full(items, 0.6),
    )
    for position in range(min(items, 1_000)):
        for rater in ("ann", "bob", "cid"):
            store.annotate(QUEUE, position=position, user=rater, label="Yes")
    print(f"queue of {items:,} items + 3,000 labels: {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    with store._write() as tx:  # one transaction: record_event would commit each event
        for seq in range(events):
            tx.event(
                actor=f"rater{seq % 50}@example.org",
                action="annotation.create",
                subject=f"queue:{QUEUE}/item:{seq // 3}",
                payload={"label": "Yes", "source": "label-studio", "external_id": f"label-studio:{seq}"},
            )
    print(f"{events:,} audit events: {time.perf_counter() - started:.1f} s")


def timed(store: ReviewStore, path: str, params: dict, n: int) -> tuple[float, float, int]:
    times, size = [], 0
    for _ in range(n):
        started = time.perf_counter()
        answer = HANDLERS[path](store, "bench", params)
        size = len(json.dumps(plain_json(answer)))
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), float(np.percentile(times, 95)), size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000, help="items in the queue")
    parser.add_argument("--events", type=int, default=1_000_000, help="extra audit events")
    parser.add_argument("--limit", type=int, default=500, help="rows per page")
    parser.add_argument("-n", type=int, default=20, help="calls per read")
    parser.add_argument("--store-url", default=None, help="an empty database (default: a SQLite temp file)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        store = ReviewStore(args.store_url or f"sqlite:///{folder}/pages.db")
        build(store, args.items, args.events)
        head = store.audit_head()[0]
        limit = str(args.limit)
        reads = [
            ("items/list", {"offset": "0"}),
            ("items/list", {"offset": str(args.items // 2)}),
            ("items/list", {"offset": str(args.items - args.limit)}),
            ("annotations/list", {"offset": "0"}),
            ("annotations/list", {"offset": "2500"}),
            ("queues/progress", {}),
            ("audit/events", {"after_seq": "0"}),
            ("audit/events", {"after_seq": "40000"}),
            ("audit/events", {"after_seq": str(head // 2)}),
            ("audit/events", {"after_seq": str(head - args.limit)}),
            ("audit/events", {"after_seq": str(head // 2), "subject": f"queue:{QUEUE}"}),
            ("audit/events", {"after_seq": str(head // 2), "subject": f"queue:{QUEUE}/item:{head // 6}"}),
            ("audit/events", {"after_seq": str(head // 2), "actor": "rater7@example.org"}),
            ("audit/events", {"after_seq": str(head // 2), "actor": "nobody"}),
            ("audit/events", {"after_seq": str(head // 2), "action": "annotation"}),
            ("audit/events", {"after_seq": "0", "action": "queue.create"}),
        ]
        print(f"\n{'route':<18} {'parameters':<52} {'p50 ms':>8} {'p95 ms':>8} {'bytes':>9}")
        for path, params in reads:
            query = {"queue": QUEUE, **params} if path != "audit/events" else dict(params)
            if path != "queues/progress":
                query["limit"] = limit
            p50, p95, size = timed(store, path, query, args.n)
            shown = ", ".join(f"{k}={v}" for k, v in params.items() if k != "queue")
            print(f"{path:<18} {shown:<52} {p50:8.1f} {p95:8.1f} {size:9,}")
        store.close()


if __name__ == "__main__":
    main()
