"""The review store on a real SQLite file and a real PostgreSQL server: queues, labels, roles, audit chain."""

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from mlflow_hitl.errors import InputError, NotFoundError, PermissionDeniedError
from mlflow_hitl.review import queue_consensus, queue_tally
from mlflow_hitl.review._audit import GENESIS_HASH, event_hash
from mlflow_hitl.review._store import AnnotationRecord, ReviewStore

CLASSES = ["No", "Yes"]


def make_queue(store, name="q", *, n=6, k=2, blind=False, gold=None):
    rows = pd.DataFrame({"age": np.arange(20.0, 20.0 + 2 * n), "colour": ["Black", "White"] * n})
    selection = pd.DataFrame(
        {"row": np.arange(n), "reason": ["least-confidence"] * n, "score": np.linspace(0.5, 0.1, n)}
    )
    return store.create_queue(
        name,
        rows=rows,
        selection=selection,
        classes=CLASSES,
        actor="eve",
        raters_per_item=k,
        blind=blind,
        predictions=["Yes"] * len(rows),
        confidences=np.full(len(rows), 0.55),
        gold=gold,
    )


@pytest.fixture
def store(store_url):
    store = ReviewStore(store_url)
    yield store
    store.close()


def test_queue_items_keep_their_row_and_reason(store):
    queue = make_queue(store, n=3)
    assert queue.classes == ("No", "Yes") and queue.raters_per_item == 2
    items = store.items("q")
    assert [i.position for i in items] == [0, 1, 2]
    assert items[1].payload == {"age": 21.0, "colour": "White"}
    assert items[1].row_key == "1" and items[1].reason == "least-confidence"
    assert items[0].prediction == "Yes" and items[0].confidence == pytest.approx(0.55)


def test_blind_queue_never_shows_the_prediction(store):
    make_queue(store, blind=True)
    item = store.next_item("q", user="alice")
    assert item.prediction is None and item.confidence is None
    assert all(i.prediction is None for i in store.items("q"))


def test_a_reviewer_never_gets_an_item_twice_and_no_item_gets_more_than_k(store):
    make_queue(store, n=3, k=2)
    seen = []
    while (item := store.next_item("q", user="alice")) is not None:
        seen.append(item.position)
        store.annotate("q", position=item.position, user="alice", label="Yes")
    assert seen == [0, 1, 2]
    for user in ("bob", "carol"):
        while (item := store.next_item("q", user=user)) is not None:
            store.annotate("q", position=item.position, user=user, label="No")
    counts = store.annotations("q").groupby("item")["rater"].nunique()
    assert counts.tolist() == [2, 2, 2]
    assert store.next_item("q", user="dan") is None
    with pytest.raises(InputError, match="item 0 of queue 'q' already has its 2 label"):
        store.annotate("q", position=0, user="dan", label="Yes")
    with pytest.raises(InputError, match="alice has already labelled item 0"):
        store.annotate("q", position=0, user="alice", label="No")


def test_reserved_items_are_spread_over_reviewers_and_released_on_skip(store):
    make_queue(store, n=2, k=1)
    first = store.next_item("q", user="alice")
    second = store.next_item("q", user="bob")
    assert first.position != second.position
    assert store.next_item("q", user="carol") is None  # both slots reserved
    store.release("q", position=first.position, user=" alice ")  # as next_item reads it: stripped
    assert store.next_item("q", user="carol").position == first.position


def test_a_missing_timestamp_in_a_row_is_shown_as_missing(store):
    rows = pd.DataFrame({"seen": pd.to_datetime(["2024-05-01", None]), "colour": ["Black", "White"]})
    selection = pd.DataFrame({"row": [0, 1], "reason": ["random"] * 2, "score": [0.5, 0.4]})
    store.create_queue("dated", rows=rows, selection=selection, classes=CLASSES, actor="eve")
    assert [item.payload["seen"] for item in store.items("dated")] == ["2024-05-01T00:00:00", None]


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (
            lambda s: s.annotate("q", position=0, user="a", label="Maybe"),
            InputError,
            "not one of the queue's classes",
        ),
        (
            lambda s: s.annotate("nope", position=0, user="a", label="Yes"),
            NotFoundError,
            "unknown queue 'nope'; known queues: q",
        ),
        (lambda s: s.annotate("q", position=99, user="a", label="Yes"), NotFoundError, "has no item 99"),
        (
            lambda s: s.annotate("q", position=0, user=" ", label="Yes"),
            InputError,
            "user must be a non-empty name",
        ),
        (lambda s: make_queue(s), InputError, "queue 'q' already exists"),
        (lambda s: s.grant_role("bob", "wizard", actor="eve"), InputError, "unknown role 'wizard'"),
        (lambda s: s.items("q", offset=-1), InputError, "offset must be a whole number ≥ 0, got -1"),
        (lambda s: s.annotations("q", limit=0), InputError, "limit must be a whole number ≥ 1, got 0"),
        (lambda s: s.audit_events(after_seq="3"), InputError, "after_seq must be a whole number ≥ 0"),
    ],
)
def test_bad_requests_are_refused_clearly(store, call, error, match):
    make_queue(store)
    with pytest.raises(error, match=match):
        call(store)


@pytest.mark.parametrize("columns", [["age", "age"], [1, "1"]], ids=["repeated", "equal as text"])
def test_rows_with_repeated_column_names_are_refused_before_anything_is_written(store, columns):
    """An item's payload is keyed by column name: a repeated name would keep one value and drop the other."""
    rows = pd.DataFrame([[20.0, 30.0], [21.0, 31.0]], columns=columns)
    selection = pd.DataFrame({"row": [0, 1], "reason": ["least-confidence"] * 2})
    with pytest.raises(InputError, match=f"rows has duplicate column names: {columns[0]}$"):
        store.create_queue("dup", rows=rows, selection=selection, classes=CLASSES, actor="eve")
    assert store.queues() == []


def test_pages_read_by_the_store_are_slices_of_the_whole(store):
    make_queue(store, n=7, k=2)
    for position in range(5):
        store.annotate("q", position=position, user="ann", label="Yes")
        store.annotate("q", position=position, user="bob", label="No")
    items, labels, events = store.items("q"), store.annotations("q"), store.audit_events()
    assert store.items("q", offset=2, limit=3) == items[2:5]
    assert store.items("q", offset=5) == items[5:] and store.items("q", offset=7) == []
    pd.testing.assert_frame_equal(
        store.annotations("q", offset=3, limit=4), labels[3:7].reset_index(drop=True)
    )
    window = labels[(labels["item"] >= 2) & (labels["item"] < 4)].reset_index(drop=True)
    pd.testing.assert_frame_equal(store.annotations("q", from_position=2, to_position=4), window)
    pd.testing.assert_frame_equal(
        store.annotations("q", from_position=2, to_position=4, offset=1, limit=2),
        window[1:3].reset_index(drop=True),
    )
    assert store.annotations("q", from_position=5).empty and len(store.annotations("q", to_position=1)) == 2
    pd.testing.assert_frame_equal(
        store.audit_events(after_seq=4, limit=3), events[events["seq"] > 4].head(3).reset_index(drop=True)
    )
    bobs = store.audit_events(actor="bob", after_seq=int(events["seq"].iloc[-3]))
    assert bobs["seq"].tolist() == events[events["actor"] == "bob"]["seq"].tolist()[-1:]


def test_pages_of_a_subject_are_its_events_in_order_whether_it_has_few_or_many(store):
    # Over 5,000 events the page is read in key order, under it from the subject's index: same answer.
    with store._write() as tx:
        for seq in range(5_200):
            subject = f"queue:big/item:{seq}" if seq % 4 else f"run:r{seq % 3}"
            tx.event(actor="ann", action="annotation.create", subject=subject, payload={"n": seq})
    events = store.audit_events()
    for subject in ("queue:big", "queue:big/item:7", "run:r1", "run"):
        mine = events[(events["subject"] == subject) | events["subject"].str.startswith(subject + "/")]
        for after in (0, 2_000, 5_199):
            page = store.audit_events(subject=subject, after_seq=after, limit=300)
            assert page["seq"].tolist() == mine[mine["seq"] > after]["seq"].head(300).tolist(), (
                subject,
                after,
            )


def test_pages_of_an_action_prefix_are_its_events_in_order_oldest_or_newest_first(store):
    # Each action's page comes from the (action, seq) index and the pages are merged: same answer as a filter.
    actions = ("annotation.create", "annotation.withdraw", "evidence.registered", "annotation")
    with store._write() as tx:
        for seq in range(3_000):
            action = "rare.one" if seq == 1_500 else actions[seq % len(actions)]
            tx.event(actor="ann", action=action, subject=f"queue:q/item:{seq}", payload={})
    events = store.audit_events()
    for prefix in (
        "annotation",
        "annotation.",
        "evidence.registered",
        "rare",
        "a",
        "nothing",
        "annotation.c",
    ):
        mine = events[events["action"].str.startswith(prefix)]
        for after in (0, 1_000, 2_999):
            page = store.audit_events(action=prefix, after_seq=after, limit=40)
            assert page["seq"].tolist() == mine[mine["seq"] > after]["seq"].head(40).tolist(), (prefix, after)
            newest = store.audit_events(action=prefix, after_seq=after, limit=40, newest_first=True)
            assert newest["seq"].tolist() == mine[mine["seq"] > after]["seq"].tolist()[::-1][:40], (
                prefix,
                after,
            )
        assert store.audit_events(action=prefix)["seq"].tolist() == mine["seq"].tolist()
    both = store.audit_events(action="annotation", actor="ann", subject="queue:q/item:9", limit=5)
    assert both["seq"].tolist() == [10]


def test_a_tally_from_label_counts_says_what_the_consensus_of_every_label_says(store):
    make_queue(store, n=7, k=3)
    given = {
        0: ["Yes", "Yes", "Yes"],  # verified
        1: ["Yes", "Yes", "No"],  # verified: 2/3 agree
        2: ["Yes", "No"],  # a tie: pending
        3: ["No"],  # incomplete
        4: ["Yes", "No"],  # a tie, then adjudicated: verified
        5: [],  # adjudicated without labels: verified
    }
    for position, labels in given.items():
        for rater, label in zip(("ann", "bob", "cid"), labels, strict=False):
            store.annotate("q", position=position, user=rater, label=label)
    store.grant_role("root", "admin", actor="root")
    for position in (4, 5):
        store.adjudicate("q", position=position, user="root", label="No")
    state, tally = queue_consensus(store, "q"), queue_tally(store, "q")
    assert (tally.labelled, tally.verified, tally.pending, tally.incomplete, tally.adjudicated) == (
        6,
        4,
        1,
        1,
        2,
    )
    assert tally.labelled == len(state.labels) and tally.verified == len(state.verified)
    assert (tally.pending, tally.incomplete) == (len(state.pending), len(state.incomplete))
    assert tally.krippendorff_alpha == pytest.approx(state.agreement.krippendorff_alpha)
    counts = store.label_counts("q")
    assert counts.values.tolist()[:3] == [[0, "Yes", 3], [1, "No", 1], [1, "Yes", 2]]
    make_queue(store, "empty")
    assert queue_tally(store, "empty") == type(tally)(0, 0, 0, 0, 0, None)


def test_labels_typed_as_text_match_integer_classes(store):
    rows = pd.DataFrame({"x": [1.0, 2.0]})
    selection = pd.DataFrame({"row": [0, 1], "reason": ["random-control"] * 2})
    store.create_queue("ints", rows=rows, selection=selection, classes=[0, 1], actor="eve")
    store.annotate("ints", position=0, user="alice", label="1")
    assert store.annotations("ints")["label"].tolist() == [1]


def test_import_is_atomic_and_idempotent(store):
    make_queue(store, n=3, k=2)
    good = [AnnotationRecord(0, "alice", "Yes"), AnnotationRecord(1, "alice", "No")]
    with pytest.raises(InputError, match="item 7, which queue 'q' does not have"):
        store.import_annotations("q", [*good, AnnotationRecord(7, "bob", "Yes")], actor="eve", source="csv")
    assert store.annotations("q").empty
    head_before = store.audit_head()
    assert store.import_annotations("q", good, actor="eve", source="csv").added == 2
    report = store.import_annotations("q", good, actor="eve", source="csv")
    assert (report.added, report.unchanged) == (0, 2)
    assert len(store.annotations("q")) == 2
    assert store.audit_head()[0] == head_before[0] + 3  # two annotations and one import event
    with pytest.raises(InputError, match="alice already labelled item 0 as 'Yes'; the import says 'No'"):
        store.import_annotations("q", [AnnotationRecord(0, "alice", "No")], actor="eve", source="csv")
    with pytest.raises(InputError, match="already has its 2 label"):
        store.import_annotations(
            "q", [AnnotationRecord(2, u, "No") for u in ("b", "c", "d")], actor="eve", source="csv"
        )
    assert len(store.annotations("q")) == 2


def test_roles_bootstrap_then_only_admins_grant(store):
    store.grant_role("root", "admin", actor="root")  # the first admin appoints themselves, audited
    with pytest.raises(PermissionDeniedError, match="bob cannot grant roles: needs the 'admin' role"):
        store.grant_role("bob", "adjudicator", actor="bob")
    store.grant_role("carol", "adjudicator", actor="root")
    assert store.roles("carol")["role"].tolist() == ["adjudicator"]
    with pytest.raises(InputError, match="root is the last admin"):
        store.revoke_role("root", "admin", actor="root")
    store.revoke_role("carol", "adjudicator", actor="root")
    assert store.roles("carol").empty
    events = store.audit_events(subject="user:root")
    assert events["action"].tolist() == ["role.grant"]
    assert '"bootstrap":true' in events["payload"].iloc[0]


def test_adjudication_needs_the_role_and_happens_once(store):
    make_queue(store)
    with pytest.raises(PermissionDeniedError, match="needs the 'adjudicator' role"):
        store.adjudicate("q", position=0, user="carol", label="Yes")
    store.grant_role("root", "admin", actor="root")
    store.grant_role("carol", "adjudicator", actor="root")
    store.adjudicate("q", position=0, user="carol", label="Yes", note="photo is clear")
    assert store.adjudications("q")[["item", "label", "user"]].values.tolist() == [[0, "Yes", "carol"]]
    with pytest.raises(InputError, match="already adjudicated"):
        store.adjudicate("q", position=0, user="carol", label="No")


def test_a_reviewer_takes_back_their_own_label_until_it_is_settled_or_published(store):
    make_queue(store)
    store.annotate("q", position=0, user="alice", label="Yes")
    store.annotate("q", position=0, user="bob", label="No")
    with pytest.raises(InputError, match="alice has no label on item 1"):
        store.withdraw("q", position=1, user="alice")
    store.withdraw("q", position=0, user="alice")
    assert store.annotations("q")[["item", "rater"]].values.tolist() == [[0, "bob"]]
    assert store.progress("q")["labels"] == 1
    event = store.audit_events(action="annotation.withdraw").iloc[-1]
    assert (event["actor"], event["subject"], json.loads(event["payload"])) == (
        "alice",
        "queue:q/item:0",
        {"label": "Yes"},
    )
    store.annotate("q", position=0, user="alice", label="No")  # the slot is free again
    store.grant_role("root", "admin", actor="root")
    store.grant_role("carol", "adjudicator", actor="root")
    store.adjudicate("q", position=0, user="carol", label="No")
    with pytest.raises(InputError, match="is adjudicated"):
        store.withdraw("q", position=0, user="bob")
    store.annotate("q", position=1, user="alice", label="Yes")
    store.record_snapshot(
        "q",
        snapshot_id="s1",
        run_id=None,
        method="majority",
        n_items=1,
        labels_sha256="0" * 64,
        manifest_sha256="0" * 64,
        actor="root",
    )
    with pytest.raises(InputError, match="in verified-label snapshot 's1'"):
        store.withdraw("q", position=1, user="alice")
    assert store.verify_audit().ok


def test_signoff_needs_the_matching_role_and_records_the_chain_head(store):
    with pytest.raises(
        PermissionDeniedError, match="dana cannot sign off fairness: needs the 'fairness-reviewer' role"
    ):
        store.sign_off(run_id="r1", check="fairness", user="dana", approve=True)
    store.grant_role("root", "admin", actor="root")
    store.grant_role("dana", "fairness-reviewer", actor="root")
    record = store.sign_off(run_id="r1", check="fairness", user="dana", approve=True, note="checked")
    assert (record["audit_seq"], record["audit_hash"]) == store.audit_head()
    assert store.signoffs("r1")[["user", "decision", "role"]].values.tolist() == [
        ["dana", "approve", "fairness-reviewer"]
    ]


def test_schema_of_the_migrations_matches_the_tables(store):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from mlflow_hitl.review._schema import metadata

    with store._engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": "hitl_alembic_version"})
        differences = [d for d in compare_metadata(context, metadata) if d[0] != "remove_index"]
    assert differences == []


def test_reopening_a_store_keeps_everything(store_url):
    first = ReviewStore(store_url)
    make_queue(first)
    first.annotate("q", position=0, user="alice", label="Yes")
    first.close()
    second = ReviewStore(store_url)
    assert len(second.annotations("q")) == 1 and second.verify_audit().ok


# -- the audit chain under tampering ------------------------------------------------------------


@pytest.fixture
def chain(store):
    make_queue(store, n=4, k=1)
    for position, label in enumerate(["Yes", "No", "Yes", "No"]):
        store.annotate("q", position=position, user="alice", label=label)
    assert store.verify_audit().ok and store.verify_audit().n_events == 5
    return store


def _sql(store, statement, **params):
    with store._engine.begin() as conn:
        conn.execute(sa.text(statement), params)


@pytest.mark.parametrize(
    ("statement", "first_bad", "problem"),
    [
        (
            'UPDATE hitl_audit_events SET payload = \'{"label":"No","source":"python"}\' WHERE seq = 2',
            2,
            "altered",
        ),
        ("UPDATE hitl_audit_events SET actor = 'mallory' WHERE seq = 2", 2, "altered"),
        ("UPDATE hitl_audit_events SET time = '2020-01-01T00:00:00.000000Z' WHERE seq = 4", 4, "altered"),
        ("DELETE FROM hitl_audit_events WHERE seq = 3", 3, "missing"),
        ("DELETE FROM hitl_audit_events WHERE seq = 5", 5, "missing"),
        (
            "UPDATE hitl_audit_events SET seq = -seq WHERE seq IN (2, 3);"
            "UPDATE hitl_audit_events SET seq = seq + 5 WHERE seq IN (-2, -3)",
            2,
            "link",
        ),
    ],
)
@pytest.mark.parametrize("incremental", [False, True], ids=["full", "incremental"])
def test_any_change_to_the_audit_rows_is_detected(chain, statement, first_bad, problem, incremental):
    # The fixture's full walks are remembered, so the incremental walk would start at the head,
    # were it not for the trigger that counted the change.
    for part in statement.split(";"):
        _sql(chain, part)
    result = chain.verify_audit(incremental=incremental)
    assert not result.ok
    assert result.first_bad_seq == first_bad
    assert problem in result.problem


def test_a_forged_event_with_a_correct_hash_still_breaks_the_next_link(chain):
    with chain._engine.connect() as conn:
        row = conn.execute(sa.text("SELECT * FROM hitl_audit_events WHERE seq = 2")).mappings().one()
    payload = '{"label":"No","source":"python"}'  # alice's "Yes" on item 0 rewritten as "No"
    assert row["payload"] != payload
    forged = event_hash(
        seq=2,
        time=row["time"],
        actor=row["actor"],
        action=row["action"],
        subject=row["subject"],
        payload=payload,
        prev_hash=row["prev_hash"],
    )
    _sql(chain, "UPDATE hitl_audit_events SET payload = :p, hash = :h WHERE seq = 2", p=payload, h=forged)
    result = chain.verify_audit(incremental=True)
    assert (result.ok, result.first_bad_seq) == (False, 3)
    assert "does not link" in result.problem


def test_an_incremental_walk_starts_at_the_head_a_full_walk_verified(chain):
    head = chain.audit_head()
    again = chain.verify_audit(incremental=True)
    assert again.ok and (again.walked_from, again.n_events) == (head[0], 1)
    assert (again.head_seq, again.head_hash) == head
    chain.record_event(actor="rita", action="gate.check", subject="model:m/1", payload={"passed": True})
    grown = chain.verify_audit(incremental=True)
    assert grown.ok and (grown.walked_from, grown.n_events, grown.head_seq) == (head[0], 2, head[0] + 1)
    assert chain.verify_audit().walked_from == 1  # the default is always the whole chain


def test_a_store_made_again_at_the_same_url_is_walked_in_full(tmp_path):
    url = f"sqlite:///{tmp_path / 'again.db'}"
    first = ReviewStore(url)
    for subject in ("a", "b", "c"):
        first.record_event(actor="ann", action="note.add", subject=subject, payload={})
    assert first.verify_audit().ok
    first.close()
    (tmp_path / "again.db").unlink()
    again = ReviewStore(url)
    for subject in ("x", "y", "z", "w"):
        again.record_event(actor="bob", action="note.add", subject=subject, payload={})
    result = again.verify_audit(incremental=True)  # not checked against the old chain's event 3
    assert result.ok and result.walked_from == 1 and result.n_events == 4


def test_switching_off_the_change_counter_forces_a_full_walk(chain):
    if chain.url.startswith("sqlite"):
        _sql(chain, "DROP TRIGGER hitl_audit_events_updated")
    else:
        _sql(chain, "ALTER TABLE hitl_audit_events DISABLE TRIGGER hitl_audit_events_changed")
    _sql(chain, "UPDATE hitl_audit_events SET actor = 'mallory' WHERE seq = 2")  # not counted now
    result = chain.verify_audit(incremental=True)
    assert (result.ok, result.first_bad_seq, result.walked_from) == (False, 2, 1)


def test_a_change_that_also_resets_the_counter_is_caught_by_the_periodic_full_walk(chain, monkeypatch):
    from mlflow_hitl.review import _walks

    with chain._engine.connect() as conn:
        changes = conn.execute(sa.text("SELECT changes FROM hitl_chain_head")).scalar_one()
    _sql(chain, "UPDATE hitl_audit_events SET actor = 'mallory' WHERE seq = 2")
    _sql(chain, "UPDATE hitl_chain_head SET changes = :c", c=changes)
    # Until the remembered full walk is FULL_WALK_EVERY_SECONDS old, this change goes unseen by
    # incremental walks (the gates'); `audit verify` and every full walk see it at once.
    assert chain.verify_audit(incremental=True).ok
    monkeypatch.setattr(_walks, "FULL_WALK_EVERY_SECONDS", 0.0)
    assert chain.verify_audit(incremental=True).first_bad_seq == 2
    monkeypatch.undo()
    assert chain.verify_audit().first_bad_seq == 2


def test_empty_chain_is_intact(store):
    result = store.verify_audit()
    assert result.ok and result.n_events == 0 and result.head_hash == GENESIS_HASH


# -- many reviewers at once ---------------------------------------------------------------------


def _label_until_done(url: str, user: str) -> int:
    store = ReviewStore(url)
    done = 0
    while (item := store.next_item("busy", user=user)) is not None:
        store.annotate("busy", position=item.position, user=user, label=CLASSES[item.position % 2])
        done += 1
    store.close()
    return done


def _open_and_count_queues(store_url: str, start: Any) -> int:
    start.wait()  # all at once, as a server's workers start
    store = ReviewStore(store_url)
    try:
        return len(store.queues())
    finally:
        store.close()


def test_processes_opening_a_new_store_at_once_migrate_it_once(store_url):
    """A server's workers and a CLI beside them may open an empty database together: none may fail."""
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, context.Pool(8) as pool:
        start = manager.Barrier(8)
        assert pool.starmap(_open_and_count_queues, [(store_url, start)] * 8) == [0] * 8
    store = ReviewStore(store_url)
    assert store.verify_audit().ok


def test_eight_reviewer_processes_lose_and_duplicate_nothing(store_url):
    store = ReviewStore(store_url)
    n, k = 40, 3
    rows = pd.DataFrame({"x": np.arange(float(n))})
    selection = pd.DataFrame({"row": np.arange(n), "reason": ["least-confidence"] * n})
    store.create_queue(
        "busy", rows=rows, selection=selection, classes=CLASSES, actor="eve", raters_per_item=k
    )
    users = [f"reviewer{i}" for i in range(8)]
    with multiprocessing.get_context("spawn").Pool(8) as pool:
        done = pool.starmap(_label_until_done, [(store_url, u) for u in users])
    labels = store.annotations("busy")
    assert sum(done) == len(labels) == n * k
    assert not labels.duplicated(["item", "rater"]).any()
    assert (labels.groupby("item")["rater"].nunique() == k).all()
    verification = store.verify_audit()
    assert verification.ok and verification.n_events == 1 + n * k
    assert store.progress("busy")["complete_items"] == n


def test_a_process_killed_mid_import_leaves_the_store_as_before(store_url, tmp_path):
    store = ReviewStore(store_url)
    n = 30_000
    rows = pd.DataFrame({"x": np.arange(float(n))})
    selection = pd.DataFrame({"row": np.arange(n), "reason": ["random-control"] * n})
    store.create_queue("big", rows=rows, selection=selection, classes=CLASSES, actor="eve", raters_per_item=1)
    store.annotate("big", position=0, user="alice", label="Yes")
    head_before = store.audit_head()
    script = textwrap.dedent(f"""
        import sys
        from mlflow_hitl.review._store import AnnotationRecord, ReviewStore
        store = ReviewStore({store_url!r})
        records = [AnnotationRecord(i, "bulk", "No") for i in range(1, {n})]
        print("importing", flush=True)
        store.import_annotations("big", records, actor="eve", source="csv")
        print("done", flush=True)
    """)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "importing"
    import time

    time.sleep(0.5)
    os.kill(child.pid, signal.SIGKILL)
    rest = child.communicate()[0]
    assert "done" not in rest, "the import finished before it could be killed; make it larger"
    reopened = ReviewStore(store_url)
    assert len(reopened.annotations("big")) == 1
    assert reopened.audit_head() == head_before
    assert reopened.verify_audit().ok


def test_an_event_appended_while_the_chain_is_walked_is_not_a_break(chain):
    # Reviewers keep labelling while a gate verifies: the walk reads one snapshot, so an event written
    # between its read of the head and its read of the events is simply not part of this walk.
    other = ReviewStore(chain.url)
    appended = []

    def append_once(conn, cursor, statement, *args):
        if "hitl_chain_head" in statement and not appended:
            appended.append(other.record_event(actor="bob", action="note.add", subject="s", payload={}))

    sa.event.listen(chain._engine, "after_cursor_execute", append_once)
    try:
        result = chain.verify_audit()
    finally:
        sa.event.remove(chain._engine, "after_cursor_execute", append_once)
    assert appended and result.ok, result.problem
    assert result.head_seq == appended[0][0] - 1
    assert chain.verify_audit().head_seq == appended[0][0]


def test_a_signoff_of_an_unknown_check_is_refused_before_it_reaches_the_chain(store):
    store.grant_role("root", "admin", actor="root")
    store.grant_role("dana", "fairness-reviewer", actor="root")
    head = store.audit_head()
    with pytest.raises(
        InputError, match=r"unknown check 'fairnes' to sign off; choose from drift, .*release"
    ):
        store.sign_off(run_id="r1", check="fairnes", user="dana", approve=True)
    assert store.audit_head() == head and store.signoffs("r1").empty


def test_a_verification_during_a_full_walk_waits_for_it_and_walks_only_what_follows(tmp_path):
    import threading
    import time

    store = ReviewStore(f"sqlite:///{tmp_path / 'walks.db'}")
    for subject in "abcde":
        store.record_event(actor="ann", action="note.add", subject=subject, payload={})
    walking, found = threading.Event(), {}

    def slowly(walked, total):  # the first (full) walk lingers once it has begun
        walking.set()
        time.sleep(0.5)

    first = threading.Thread(
        target=lambda: found.setdefault("first", store.verify_audit(incremental=True, progress=slowly))
    )
    first.start()
    assert walking.wait(30)
    second = store.verify_audit(incremental=True)  # arrives during the first: waits, then walks what follows
    first.join()
    assert found["first"].ok and (found["first"].walked_from, found["first"].n_events) == (1, 5)
    assert second.ok and (second.walked_from, second.n_events, second.head_seq) == (5, 1, 5)
