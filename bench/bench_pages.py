"""Time every page under ``/hitl/`` on a real server whose review store holds 100,000 items and 1,000,000 audit events.

    /work/main/.venv/bin/python bench/bench_pages.py                       # 100,000 items, 1,000,000 events, n=20
    /work/main/.venv/bin/python bench/bench_pages.py --items 10000 --events 100000 -n 5   # a quick look
    /work/main/.venv/bin/python bench/bench_pages.py --store-url postgresql+psycopg://postgres@127.0.0.1:5432/empty

Everything lives in a temporary directory removed at the end: MLflow's SQLite store and artifacts, and the
review store (SQLite beside it unless ``--store-url`` names an empty database).

Set-up (timed, not benchmarked):

- **MLflow**: one run trained, logged and validated as the tests do it (``log_run_with_evidence``: the
  arrests model, calibration and fairness evidence registered in the review store, author ``alice``), its
  model registered as ``pages-bench`` version 1 under the tests' lenient policy.
- **Queues**, through the store's API (``ReviewStore.create_queue``): ``--queues`` queues sharing ``--items``
  items, the first (``big``) holding 60 % of them, the others the rest evenly (more queues than the Queues
  page shows at once, so it pages).
- **Labels**, by SQLAlchemy Core in batches of 5,000 rows (the store's API writes one label and one audit
  event per transaction: 180,000 of them would take an hour): three raters on the first 20 % of every
  queue's items (``hitl_annotations`` rows and ``hitl_items.n_labels``); every 20th of those items has only
  two labels that disagree, a tie that waits for adjudication.
- **Audit events**, through the store's own writing transaction (``ReviewStore._write``, ``Writer.event``:
  the chain's hashes as the server computes them), flushed every 50,000 events, until the chain holds
  ``--events`` events: one ``annotation.create`` per label written above, then annotation-shaped events of
  50 raters, with 2,000 ``evidence.registered`` events of runs this server does not know spread through
  them (what Home reads), and one ``bench.rare`` event in the middle (a filter by a rare action).

Then ``mlflow server --app-name hitl`` (one worker, basic auth with its credential cache, as the tests
start it) on that store, and a user ``rev`` holding the reviewer, adjudicator, fairness-reviewer and
release-manager roles. Each page is fetched once untimed (the cold figure: first template compile, and
the audit chain's first full walk in this process unless the server's own walk at start has made it: the
bench prints how long that took), then ``-n`` timed GETs with one keep-alive session: p50
and p95 in ms of the whole request as the client sees it (basic auth, Flask, the page, the HTML sent),
and of the CPU time the server's process spent on it (``/proc/<pid>/task/*/schedstat``; Linux). On a
loaded machine the wall time stretches with every wait for a CPU (a page of 100 small reads waits 100
times); the CPU time is what the page costs. ``--keep DIR`` builds in DIR and reuses it next time.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd

# The set-up of the tests (data, model, evidence, policy, server), so the bench times what they test.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from hitl_support import (  # noqa: E402
    LENIENT_POLICY,
    basic_auth_env,
    create_users,
    log_run_with_evidence,
    make_arrests_model,
    mlflow_hitl_server,
    split_arrests,
)

MODEL, BIG = "pages-bench", "big"
ADMIN, ADMIN_PASSWORD = "admin", "Adm1n-pass-word!"
USER, PASSWORD = "rev", "Rev-pass-word-12"
ROLES = ("reviewer", "adjudicator", "fairness-reviewer", "release-manager")
BATCH, FLUSH = 5_000, 50_000
REGISTRATIONS = 2_000


def log_evidence_run(tmp: Path) -> str:
    """The run with the model and its registered evidence (author ``alice``), registered as ``MODEL`` v1."""
    import mlflow
    from sklego.datasets import load_arrests

    synthetic, real, _ = split_arrests(load_arrests(as_frame=True))
    experiment_id = mlflow.create_experiment("pages-bench", artifact_location=(tmp / "artifacts").as_uri())
    mlflow.set_experiment(experiment_id=experiment_id)
    with mock.patch.dict(os.environ, {"MLFLOW_HITL_USER": "alice"}):
        run_id = log_run_with_evidence(
            make_arrests_model(synthetic), synthetic, real, tags={"mlflow.user": "alice"}
        )
    mlflow.register_model(f"runs:/{run_id}/model", MODEL)
    return run_id


def queue_sizes(items: int, queues: int) -> dict[str, int]:
    """``big`` holds 60 % of the items, ``q01``... the rest evenly."""
    big = items if queues == 1 else int(items * 0.6)
    rest = [(items - big) // (queues - 1)] * (queues - 1)
    return {BIG: big, **{f"q{n + 1:02d}": size for n, size in enumerate(rest)}}


def make_queues(store, sizes: dict[str, int]) -> None:
    for name, size in sizes.items():
        rows = pd.DataFrame(
            {"age": np.arange(float(size)), "text": [f"row {i} of {name}" for i in range(size)]}
        )
        selection = pd.DataFrame({"row": np.arange(size), "reason": "least-confidence", "score": 0.4})
        store.create_queue(
            name,
            rows=rows,
            selection=selection,
            classes=["No", "Yes"],
            actor="eng",
            raters_per_item=3,
            predictions=["Yes"] * size,
            confidences=np.full(size, 0.6),
        )


def labels_of(position: int) -> list[tuple[str, str]]:
    """Three agreeing-enough raters, or (every 20th item) two who disagree: a tie for adjudication."""
    if position % 20 == 0:
        return [("ann", "Yes"), ("bob", "No")]
    return [("ann", "Yes"), ("bob", "Yes"), ("cid", "No" if position % 3 == 0 else "Yes")]


def write_labels(store, sizes: dict[str, int]) -> list[tuple[str, int, str]]:
    """Labels on the first 20 % of each queue's items, by SQLAlchemy Core in batches; returns them."""
    import sqlalchemy as sa

    from mlflow_hitl.review import _schema as t

    written = []
    now = "2026-11-30T00:00:00.000000Z"
    with store._engine.begin() as conn:
        for name, size in sizes.items():
            queue_id = conn.execute(sa.select(t.queues.c.id).where(t.queues.c.name == name)).scalar_one()
            ids = dict(
                conn.execute(
                    sa.select(t.items.c.position, t.items.c.id).where(
                        t.items.c.queue_id == queue_id, t.items.c.position < size // 5
                    )
                ).all()
            )
            rows, counts = [], []
            for position, item_id in sorted(ids.items()):
                given = labels_of(position)
                counts.append({"b_id": item_id, "b_n": len(given)})
                for rater, label in given:
                    rows.append(
                        {
                            "item_id": item_id,
                            "user": rater,
                            "label": json.dumps(label),
                            "comment": None,
                            "source": "bench",
                            "external_id": None,
                            "created_at": now,
                        }
                    )
                    written.append((name, position, rater))
            for start in range(0, len(rows), BATCH):
                conn.execute(sa.insert(t.annotations), rows[start : start + BATCH])
            update = (
                sa.update(t.items)
                .where(t.items.c.id == sa.bindparam("b_id"))
                .values(n_labels=sa.bindparam("b_n"))
            )
            for start in range(0, len(counts), BATCH):
                conn.execute(update, counts[start : start + BATCH])
    return written


def write_events(store, labels: list[tuple[str, int, str]], total: int) -> None:
    """The labels' events, then padding, until the chain holds ``total`` events (one transaction)."""
    with store._write() as tx:
        for name, position, rater in labels:
            tx.event(
                actor=rater,
                action="annotation.create",
                subject=f"queue:{name}/item:{position}",
                payload={"label": "Yes", "source": "bench"},
            )
            if tx.seq % FLUSH == 0:
                tx.flush()
        padding = max(total - tx.seq, 0)
        every = max(padding // REGISTRATIONS, 1)
        for n in range(padding):
            if n % every == every - 1:
                tx.event(
                    actor="eng",
                    action="evidence.registered",
                    subject=f"run:{n:032x}",
                    payload={"model_uri": None, "bench": True},
                )
            elif n == padding // 2:
                tx.event(actor="eng", action="bench.rare", subject=f"queue:{BIG}", payload={})
            else:
                tx.event(
                    actor=f"rater{n % 50}@example.org",
                    action="annotation.create",
                    subject=f"queue:{BIG}/item:{n // 3}",
                    payload={"label": "Yes", "source": "label-studio", "external_id": f"label-studio:{n}"},
                )
            if tx.seq % FLUSH == 0:
                tx.flush()


def build(store, run_id: str, args: argparse.Namespace) -> None:
    from mlflow_hitl.adapter.gate import set_policy

    started = time.perf_counter()
    store.grant_role("root", "admin", actor="root")
    for role in ROLES:
        store.grant_role(USER, role, actor="root")
    set_policy(store, MODEL, LENIENT_POLICY, actor="root")
    sizes = queue_sizes(args.items, args.queues)
    make_queues(store, sizes)
    print(
        f"  {len(sizes)} queues, {sum(sizes.values()):,} items (create_queue): {time.perf_counter() - started:.1f} s"
    )
    started = time.perf_counter()
    labels = write_labels(store, sizes)
    print(
        f"  {len(labels):,} labels (SQLAlchemy Core, batches of {BATCH:,}): {time.perf_counter() - started:.1f} s"
    )
    started = time.perf_counter()
    write_events(store, labels, args.events)
    print(
        f"  audit chain of {store.audit_head()[0]:,} events (Writer.event): {time.perf_counter() - started:.1f} s"
    )


def pages(run_id: str, head: int, middle: int) -> list[tuple[str, str]]:
    """(what, path) of every page, as a user opens them."""
    return [
        ("home", "/hitl/"),
        ("queues", "/hitl/queues"),
        ("queues, page 2", "/hitl/queues?offset=25"),
        ("label (an item of big)", f"/hitl/label?queue={BIG}&item={middle}"),
        ("adjudicate big", f"/hitl/adjudicate?queue={BIG}"),
        ("adjudicate q01", "/hitl/adjudicate?queue=q01"),
        ("signoff", f"/hitl/signoff?run_id={run_id}&check=fairness"),
        ("release", f"/hitl/release?model={MODEL}&version=1"),
        ("audit", "/hitl/audit"),
        ("audit, middle page", f"/hitl/audit?after={head // 2}"),
        ("audit, newest page", f"/hitl/audit?after={head - 50}"),
        ("audit actor=rater7", f"/hitl/audit?actor=rater7%40example.org&after={head // 2}"),
        ("audit action=annotation", f"/hitl/audit?action=annotation&after={head // 2}"),
        ("audit action=bench.rare", "/hitl/audit?action=bench.rare"),
        ("audit action=evidence.", "/hitl/audit?action=evidence."),
        ("audit queue=q01", "/hitl/audit?queue=q01"),
        ("audit model", f"/hitl/audit?model={MODEL}"),
        ("audit since (time window)", "/hitl/audit?since=2000-01-01"),
        ("lineage", f"/hitl/lineage?model={MODEL}&version=1"),
    ]


def server_process(url: str) -> int:
    """The process serving ``url``: uvicorn running the app (``--workers 1``: the app runs in it)."""
    port = url.rsplit(":", 1)[1].encode()
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            words = (entry / "cmdline").read_bytes().split(b"\0")
            if any(b"uvicorn" in w for w in words) and port in words:
                return int(entry.name)
    raise RuntimeError(f"no uvicorn process serves {url}")


def cpu_ms(pid: int) -> float:
    """CPU time the process's threads have used (``/proc/<pid>/task/*/schedstat``, in ns), in ms."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError, IndexError):
            total += int((task / "schedstat").read_text().split()[0])
    return total / 1e6


def time_pages(url: str, run_id: str, head: int, middle: int, n: int) -> list[dict]:
    """Each page once (cold), then ``n`` times: wall time at the client and CPU time of the server."""
    import requests

    pid = server_process(url)
    results = []
    with requests.Session() as session:
        session.auth = (USER, PASSWORD)
        print(
            f"\n{'page':<28} {'cold ms':>8} {'p50 ms':>8} {'p95 ms':>8} {'CPU p50':>8} {'CPU p95':>8} {'KB':>7}"
        )
        for what, path in pages(run_id, head, middle):
            started = time.perf_counter()
            answer = session.get(url + path, timeout=600)
            cold = (time.perf_counter() - started) * 1000
            if answer.status_code != 200:
                raise RuntimeError(f"{path}: HTTP {answer.status_code}: {answer.text[:300]}")
            times, cpu = [], []
            for _ in range(n):
                started, used = time.perf_counter(), cpu_ms(pid)
                session.get(url + path, timeout=600).raise_for_status()
                times.append((time.perf_counter() - started) * 1000)
                cpu.append(cpu_ms(pid) - used)
            row = {
                "page": what,
                "path": path,
                "cold": cold,
                "p50": float(np.percentile(times, 50)),
                "p95": float(np.percentile(times, 95)),
                "cpu_p50": float(np.percentile(cpu, 50)),
                "cpu_p95": float(np.percentile(cpu, 95)),
            }
            print(
                f"{what:<28} {cold:8.0f} {row['p50']:8.0f} {row['p95']:8.0f} {row['cpu_p50']:8.0f}"
                f" {row['cpu_p95']:8.0f} {len(answer.content) / 1024:7.1f}",
                flush=True,
            )
            results.append(row)
    return results


def print_start_walk(url: str) -> None:
    """How long the server's own walk of the chain at start took (``GET /hitl/api/audit/status``)."""
    import requests

    answer = requests.get(f"{url}/hitl/api/audit/status", auth=(USER, PASSWORD), timeout=600)
    if answer.status_code != 200:  # a server from before the walk at start refuses the unknown route
        print(f"\nno walk of the chain at start (/hitl/api/audit/status: HTTP {answer.status_code})")
        return
    print(f"\nthe server's walk of the chain at start: {answer.json()['start_walk']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000, help="items in all queues")
    parser.add_argument("--queues", type=int, default=40, help="queues (the first holds 60%% of the items)")
    parser.add_argument("--events", type=int, default=1_000_000, help="audit events in the chain")
    parser.add_argument("-n", type=int, default=20, help="timed GETs per page")
    parser.add_argument("--store-url", default=None, help="an empty review-store database (default: SQLite)")
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    parser.add_argument(
        "--keep",
        default=None,
        help="build in this folder and keep it; a folder built before is reused as it is",
    )
    args = parser.parse_args()

    warnings.filterwarnings("ignore")
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    tmp = Path(args.keep or tempfile.mkdtemp(prefix="hitl-pages-bench-"))
    tmp.mkdir(parents=True, exist_ok=True)
    built = tmp / "built.json"
    backend = f"sqlite:///{tmp / 'mlflow.db'}"
    store_uri = args.store_url or f"sqlite:///{tmp / 'hitl.db'}"
    os.environ.update(MLFLOW_TRACKING_URI=backend, MLFLOW_HITL_STORE_URI=store_uri)
    try:
        import mlflow

        from mlflow_hitl.review import ReviewStore

        mlflow.set_tracking_uri(backend)
        mlflow.set_registry_uri(backend)
        print(f"set-up in {tmp}; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
        reused = built.exists()
        if reused:
            run_id, head, middle = json.loads(built.read_text())
            print(f"  reused: run {run_id}, {head:,} events")
        else:
            started = time.perf_counter()
            run_id = log_evidence_run(tmp)
            print(f"  run with evidence, registered as {MODEL} v1: {time.perf_counter() - started:.1f} s")
            store = ReviewStore(store_uri)
            try:
                build(store, run_id, args)
                head = store.audit_head()[0]
            finally:
                store.close()
            middle = queue_sizes(args.items, args.queues)[BIG] // 2
        env = {
            **os.environ,
            **basic_auth_env(tmp, store_uri, admin=ADMIN, password=ADMIN_PASSWORD, auth_cache_ttl=600),
        }
        env.pop("MLFLOW_TRACKING_URI", None)
        with mlflow_hitl_server(
            backend, artifacts=tmp / "artifacts", env=env, log_path=tmp / "server.log", timeout=300
        ) as url:
            if not reused:
                create_users(url, {USER: PASSWORD}, admin=(ADMIN, ADMIN_PASSWORD))
                if args.keep:
                    built.write_text(json.dumps([run_id, head, middle]))
            results = time_pages(url, run_id, head, middle, args.n)
            print_start_walk(url)
        slow = [r["page"] for r in results if r["p95"] >= 300]
        busy = [r["page"] for r in results if r["cpu_p95"] >= 300]
        print(
            f"\nload average at the end: {os.getloadavg()[0]:.1f}; p95 >= 300 ms: {', '.join(slow) or 'none'};"
            f" server CPU p95 >= 300 ms: {', '.join(busy) or 'none'}"
        )
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1))
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
