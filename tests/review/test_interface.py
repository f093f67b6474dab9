"""The review store's interface: the SQL store is a ReviewStoreProtocol, reads that must agree agree,
one query where one serves, and opening a store loads none of the heavy analysis stack."""

import inspect
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from mlflow_hitl.errors import InputError
from mlflow_hitl.review import (
    AuditStore,
    GovernanceStore,
    QueueStore,
    ReviewStore,
    ReviewStoreProtocol,
    build_snapshot,
    queue_consensus,
)

CLASSES = ["No", "Yes"]
PROTOCOLS = [QueueStore, GovernanceStore, AuditStore, ReviewStoreProtocol]


def _protocol_methods(protocol):
    return {
        name: member
        for name, member in inspect.getmembers(protocol, inspect.isfunction)
        if not name.startswith("_")
    }


@pytest.fixture
def store(store_url):
    store = ReviewStore(store_url)
    yield store
    store.close()


def _queue(store, name="q", n=4, k=2):
    rows = pd.DataFrame({"x": np.arange(float(n))})
    selection = pd.DataFrame({"row": np.arange(n), "reason": ["least-confidence"] * n})
    return store.create_queue(
        name, rows=rows, selection=selection, classes=CLASSES, actor="eve", raters_per_item=k
    )


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=lambda p: p.__name__)
def test_the_sql_store_implements_every_protocol_method_with_its_signature(protocol, tmp_path):
    methods = _protocol_methods(protocol)
    assert methods, f"{protocol.__name__} declares no methods"
    for name, declared in methods.items():
        implemented = getattr(ReviewStore, name, None)
        assert implemented is not None, f"ReviewStore lacks {name}"
        assert inspect.signature(implemented) == inspect.signature(declared), name
    assert isinstance(ReviewStore(f"sqlite:///{tmp_path / 'hitl.db'}"), protocol)


def test_every_public_store_method_is_in_the_protocol():
    # What the HTTP store must implement is exactly what the rest of the code may call.
    public = {n for n, m in inspect.getmembers(ReviewStore, inspect.isfunction) if not n.startswith("_")}
    assert public == set(_protocol_methods(ReviewStoreProtocol))


def test_an_object_missing_a_method_is_not_a_store():
    class Partial:
        def queue(self, name):
            return None

    assert not isinstance(Partial(), QueueStore)


def test_queue_labels_reads_one_snapshot_while_a_reviewer_labels(store):
    # A label committed between the read of the items and the read of the annotations belongs to
    # neither: consensus and the published annotations must be computed on the same labels.
    _queue(store)
    other = ReviewStore(store.url)
    written = []

    def label_once(conn, cursor, statement, *args):
        if "FROM hitl_items" in statement and not written:
            other.annotate("q", position=0, user="bob", label="Yes")
            written.append(True)

    sa.event.listen(store._engine, "after_cursor_execute", label_once)
    try:
        labels = store.queue_labels("q")
    finally:
        sa.event.remove(store._engine, "after_cursor_execute", label_once)
    assert written
    assert labels.annotations.empty and all(item.n_labels == 0 for item in labels.items)
    again = store.queue_labels("q")
    assert list(again.annotations["rater"]) == ["bob"] and again.items[0].n_labels == 1
    other.close()


def test_queue_labels_holds_what_the_separate_reads_return(store):
    _queue(store, n=3, k=1)
    store.annotate("q", position=1, user="ann", label="No")
    store.grant_role("root", "admin", actor="root")
    store.adjudicate("q", position=2, user="root", label="Yes")
    labels = store.queue_labels("q")
    assert labels.queue == store.queue("q") and list(labels.items) == store.items("q")
    pd.testing.assert_frame_equal(labels.annotations, store.annotations("q"))
    pd.testing.assert_frame_equal(labels.adjudications, store.adjudications("q"))
    assert dict(labels.gold) == store.gold("q")
    state = queue_consensus(store, "q")
    assert list(state.labels.index) == [1, 2] and list(state.labels["source"]) == ["consensus", "adjudicated"]


def test_a_snapshot_is_built_from_the_labels_alone(store):
    _queue(store, n=2, k=1)
    store.annotate("q", position=0, user="ann", label="Yes")
    snapshot = build_snapshot(store.queue_labels("q"), label_column="truth")
    assert list(snapshot.rows["truth"]) == ["Yes"] and list(snapshot.rows["hitl_item"]) == [0]
    assert snapshot.files["labels.csv"].startswith(b"x,truth,hitl_item,")
    assert build_snapshot(store.queue_labels("q"), label_column="truth").id == snapshot.id
    files = snapshot.describe(run_id="r1", audit_head=store.audit_head(), actor="eve")
    assert list(files) == ["labels.csv", "annotations.csv", "snapshot.json", "manifest.json"]


def test_queues_is_one_query_whatever_the_number_of_queues(store):
    for i in range(5):
        _queue(store, name=f"q{i}", n=1)
    statements = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    sa.event.listen(store._engine, "after_cursor_execute", count)
    try:
        queues = store.queues()
    finally:
        sa.event.remove(store._engine, "after_cursor_execute", count)
    assert [q.name for q in queues] == [f"q{i}" for i in range(5)]
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 1


def test_snapshots_filter_by_run(store):
    for name, run_id in (("a", "run1"), ("b", "run2")):
        _queue(store, name=name, n=1)
        store.record_snapshot(
            name,
            snapshot_id=f"snap-{name}",
            run_id=run_id,
            method="majority",
            n_items=1,
            labels_sha256="0" * 64,
            manifest_sha256="1" * 64,
            actor="eve",
        )
    assert list(store.snapshots(run_id="run2")["id"]) == ["snap-b"]
    assert list(store.snapshots("a", run_id="run2")["id"]) == []
    assert list(store.snapshots()["id"]) == ["snap-a", "snap-b"]


HEAVY = ("sklearn", "fairlearn", "scipy", "matplotlib", "evidently", "mlflow")


def test_the_review_store_opens_without_the_analysis_stack(tmp_path):
    script = textwrap.dedent(f"""
        import sys
        import mlflow_hitl.review
        store = mlflow_hitl.review.ReviewStore({f"sqlite:///{tmp_path / 'hitl.db'}"!r})
        store.roles()
        print(sorted(m for m in {HEAVY!r} if m in sys.modules))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_head_revision_a_store_opens_at_is_alembic_head():
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from mlflow_hitl.review import _engine

    config = Config()
    config.set_main_option("script_location", str(Path(_engine.__file__).with_name("migrations")))
    assert ScriptDirectory.from_config(config).get_current_head() == _engine.HEAD_REVISION


def test_a_store_behind_the_head_is_upgraded_when_opened(tmp_path):
    from alembic import command

    from mlflow_hitl.review import _engine

    url = f"sqlite:///{tmp_path / 'hitl.db'}"
    ReviewStore(url).close()
    engine = sa.create_engine(url)
    config = _engine._migrations_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0002")

    def revision():
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT version_num FROM hitl_alembic_version")).scalar()

    assert revision() == "0002"
    store = ReviewStore(url)
    assert revision() == _engine.HEAD_REVISION and store.verify_audit().ok
    store.close()
    engine.dispose()


def test_a_store_from_a_newer_version_is_one_clear_line(tmp_path):
    url = f"sqlite:///{tmp_path / 'hitl.db'}"
    ReviewStore(url).close()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE hitl_alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(InputError, match="9999.*upgrade it"):
        ReviewStore(url)


def test_the_cli_offers_the_review_choices_without_loading_the_store():
    script = (
        "import sys, mlflow_hitl.cli; print(sorted(m for m in ('pandas', 'sqlalchemy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
