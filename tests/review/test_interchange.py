"""Label Studio JSON and CSV round trips through a real review store (a SQLite file and a PostgreSQL server).

The Label Studio exports are built the way Label Studio writes them (HumanSignal/label-studio
``docs/source/includes/task_format.md`` and ``label_studio/data_export/serializers.py``): its own task
ids, annotations with ``result`` and ``was_cancelled``, ``completed_by`` as a user id (API exports) or
as a user object with ``id`` and ``email`` (UI exports). CSV sheets are read and filled in with
pandas, as a spreadsheet user's tooling would.
"""

import copy
import csv
import io
import json
import re
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest

from mlflow_hitl.errors import InputError
from mlflow_hitl.review._interchange import (
    csv_tasks,
    label_studio_config,
    label_studio_tasks,
    read_annotations_csv,
    read_label_studio_export,
)
from mlflow_hitl.review._store import AnnotationRecord, Item, Queue, ReviewStore

CLASSES = ["cat", "dog"]
CONFIDENCE = 0.6173  # appears nowhere else in a queue's export, so a leak is easy to spot


@pytest.fixture
def store(store_url):
    store = ReviewStore(store_url)
    yield store
    store.close()


def make_queue(store, name="q", *, n=4, k=3, blind=False, classes=CLASSES):
    rows = pd.DataFrame({"age": np.arange(30.0, 30.0 + n), "colour": ["Black", "White"] * (n // 2)})
    selection = pd.DataFrame(
        {"row": np.arange(n), "reason": ["least-confidence"] * n, "score": np.full(n, 0.25)}
    )
    return store.create_queue(
        name,
        rows=rows,
        selection=selection,
        classes=classes,
        actor="eve",
        raters_per_item=k,
        blind=blind,
        run_id="run-1",
        predictions=[classes[1]] * n,
        confidences=np.full(n, CONFIDENCE),
    )


def plain_queue(*, columns=("age",), classes=("cat", "dog")):
    """A queue record without a store, for checks that need no database."""
    return Queue(
        name="q",
        id=1,
        run_id="run-1",
        classes=tuple(classes),
        raters_per_item=2,
        blind=False,
        strategy="least-confidence",
        columns=tuple(columns),
        created_by="eve",
        created_at="2026-01-01T00:00:00.000000Z",
    )


def plain_item(position, payload, *, queue="q", prediction="dog"):
    return Item(
        queue=queue,
        position=position,
        row_key=str(100 + position),
        payload=payload,
        prediction=prediction,
        confidence=0.9,
        score=0.1,
        reason="least-confidence",
        group=None,
        n_labels=0,
    )


# -- Label Studio ---------------------------------------------------------------------------------

ALICE = 7  # an API export gives the user id
BOB = {"id": 8, "email": "bob@example.org", "first_name": "Bob", "last_name": "B"}  # a UI export, the user
CAROL = {"id": 9, "email": "", "first_name": "Carol", "last_name": ""}  # a user object without an email
RATER = {7: "label-studio:7", 8: "bob@example.org", 9: "label-studio:9"}


def ls_annotation(annotation_id, task_id, completed_by, label=None, *, note=None, cancelled=False):
    result = []
    if label is not None:
        result.append(
            {
                "id": f"c{annotation_id}",
                "from_name": "label",
                "to_name": "item",
                "type": "choices",
                "value": {"choices": [label]},
            }
        )
    if note is not None:
        result.append(
            {
                "id": f"t{annotation_id}",
                "from_name": "comment",
                "to_name": "item",
                "type": "textarea",
                "value": {"text": [note]},
            }
        )
    return {
        "id": annotation_id,
        "result": result,
        "was_cancelled": cancelled,
        "ground_truth": False,
        "created_at": "2026-03-09T22:16:08.728353Z",
        "updated_at": "2026-03-09T22:16:08.728378Z",
        "lead_time": 4.288,
        "result_count": 0,
        "task": task_id,
        "completed_by": completed_by,
    }


def label_studio_export(tasks, plan):
    """What Label Studio exports after importing ``tasks``: its own task ids, our data, people's annotations.

    ``plan`` maps a task's index to the keyword arguments of its ``ls_annotation``s.
    """
    exported, annotation_id = [], 1000
    for index, task in enumerate(json.loads(json.dumps(tasks))):  # through JSON, like an upload
        task_id = 500 + index
        annotations = []
        for spec in plan.get(index, []):
            annotation_id += 1
            annotations.append(ls_annotation(annotation_id, task_id, **spec))
        exported.append({"id": task_id, "project": 83, **task, "annotations": annotations, "drafts": []})
    return exported


def test_label_studio_round_trip_through_the_store(store):
    make_queue(store, n=4, k=3)
    queue = store.queue("q")
    tasks = label_studio_tasks(queue, store.items("q"))
    labels = np.random.default_rng(1).choice(CLASSES, size=(4, 3))
    plan = {
        i: [{"completed_by": who, "label": str(labels[i, j])} for j, who in enumerate((ALICE, BOB, CAROL))]
        for i in range(4)
    }
    plan[0].append({"completed_by": 11, "cancelled": True})  # skipped in Label Studio
    plan[1].append({"completed_by": 12})  # submitted without a choice
    plan[2][1]["note"] = "tail hidden behind the sofa"
    export = label_studio_export(tasks, plan)
    expected = pd.DataFrame(
        [
            (i, RATER[who if isinstance(who, int) else who["id"]], str(labels[i, j]), plan[i][j].get("note"))
            for i in range(4)
            for j, who in enumerate((ALICE, BOB, CAROL))
        ],
        columns=["item", "rater", "label", "comment"],
    ).sort_values(["item", "rater"], ignore_index=True)

    # One label outside the classes: the whole import is refused and nothing changes.
    bad = copy.deepcopy(export)
    bad[3]["annotations"][2]["result"][0]["value"]["choices"] = ["horse"]
    head = store.audit_head()
    with pytest.raises(InputError, match="label 'horse' is not one of the queue's classes"):
        store.import_annotations(
            "q", read_label_studio_export(json.dumps(bad), queue=queue)[0], actor="eve", source="label-studio"
        )
    assert store.annotations("q").empty and store.audit_head() == head

    records, ignored = read_label_studio_export(json.dumps(export).encode(), queue=queue)
    assert ignored == 2
    report = store.import_annotations("q", records, actor="eve", source="label-studio")
    assert (report.added, report.unchanged) == (12, 0)
    got = store.annotations("q")[["item", "rater", "label", "comment"]]
    pd.testing.assert_frame_equal(got.sort_values(["item", "rater"], ignore_index=True), expected)
    assert set(store.annotations("q")["source"]) == {"label-studio"}
    stored_ids = sorted(
        json.loads(p)["external_id"] for p in store.audit_events(action="annotation.create")["payload"]
    )
    submitted = [a for t in export for a in t["annotations"] if a["result"] and not a["was_cancelled"]]
    assert stored_ids == sorted(f"label-studio:{a['id']}" for a in submitted)

    again = store.import_annotations(
        "q", read_label_studio_export(json.dumps(export), queue=queue)[0], actor="eve", source="label-studio"
    )
    assert (again.added, again.unchanged) == (0, 12)
    assert len(store.annotations("q")) == 12


@pytest.mark.parametrize("blind", [True, False])
def test_the_prediction_reaches_label_studio_and_the_sheet_only_when_the_queue_is_not_blind(store, blind):
    make_queue(store, blind=blind)
    queue, items = store.queue("q"), store.items("q")
    tasks = label_studio_tasks(queue, items)
    text, sheet = json.dumps(tasks), csv_tasks(queue, items)
    frame = pd.read_csv(io.StringIO(sheet))
    assert [t["data"]["hitl_item"] for t in tasks] == frame["item"].tolist() == [0, 1, 2, 3]
    if blind:
        for leak in ('"dog"', str(CONFIDENCE), "predictions", "run-1"):
            assert leak not in text
        assert "dog" not in sheet and str(CONFIDENCE) not in sheet
        assert not {"prediction", "confidence"} & set(frame.columns)
    else:
        # Label Studio's documented prediction format: a choices result, "score" and "model_version".
        expected = {
            "model_version": "run-1",
            "score": CONFIDENCE,
            "result": [
                {"from_name": "label", "to_name": "item", "type": "choices", "value": {"choices": ["dog"]}}
            ],
        }
        assert all(t["predictions"] == [expected] for t in tasks)
        assert frame["prediction"].tolist() == ["dog"] * 4
        assert frame["confidence"].tolist() == [CONFIDENCE] * 4


def test_config_and_tasks_fit_together_as_label_studio_reads_them():
    queue = plain_queue(columns=("age", "hitl_item"), classes=(0, 1, 'a<b & "c"'))
    items = [plain_item(p, {"age": 30.0 + p, "hitl_item": "x"}, prediction=1) for p in range(3)]
    config = label_studio_config(queue, from_name="animal", to_name="row")
    tasks = label_studio_tasks(queue, items, from_name="animal", to_name="row")

    view = ET.fromstring(config)
    assert view.tag == "View"
    objects = {e.get("name") for e in view.iter() if e.tag in {"Table", "Text"}}
    controls = [e for e in view.iter() if e.get("toName") is not None]
    assert objects == {"row"} and controls and all(c.get("toName") in objects for c in controls)
    [choices] = view.iter("Choices")
    values = [c.get("value") for c in choices]
    assert choices.get("name") == "animal" and values == ["0", "1", 'a<b & "c"']
    # Every $variable of the config (Label Studio's own pattern) must be a key of each task's data.
    variables = {v for e in view.iter() for a in e.attrib.values() for v in re.findall(r"\$([\w[\].{}]+)", a)}
    assert variables == {"hitl_item", "hitl_row_key", "hitl_payload"}
    for position, task in enumerate(tasks):
        assert "id" not in task  # Label Studio assigns its own task ids
        assert variables <= task["data"].keys()
        assert task["data"]["hitl_payload"] == items[position].payload
        assert (task["data"]["hitl_item"], task["data"]["row.hitl_item"]) == (position, "x")
        [result] = task["predictions"][0]["result"]
        assert (result["from_name"], result["to_name"]) == ("animal", "row")
        assert result["value"]["choices"] == ["1"] and "1" in values


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda q: label_studio_config(q, from_name="item"), "must differ from each other"),
        (lambda q: label_studio_tasks(q, [], from_name="comment"), "and from 'comment'"),
        (lambda q: label_studio_config(q, to_name=" "), "to_name must be a non-empty"),
        (
            lambda q: label_studio_tasks(q, [plain_item(0, {"age": 1.0}, queue="other")]),
            "items of queue 'other'",
        ),
        (lambda q: csv_tasks(q, [plain_item(0, {"age": 1.0}, queue="other")]), r"pass store.items\('q'\)"),
    ],
)
def test_writers_refuse_clashing_tag_names_and_items_of_another_queue(call, match):
    with pytest.raises(InputError, match=match):
        call(plain_queue())


def test_from_name_says_which_choices_tag_holds_the_label():
    result = [
        {"from_name": "quality", "to_name": "item", "type": "choices", "value": {"choices": ["blurry"]}},
        {"from_name": "label", "to_name": "item", "type": "choices", "value": {"choices": ["dog"]}},
    ]
    export = [
        {
            "id": 1,
            "data": {"hitl_item": 0, "hitl_queue": "q"},
            "annotations": [{"id": 2, "completed_by": 3, "result": result}],
        }
    ]
    records, ignored = read_label_studio_export(json.dumps(export), queue=plain_queue(), from_name="label")
    assert (records, ignored) == ([AnnotationRecord(0, "label-studio:3", "dog", None, "label-studio:2")], 0)
    with pytest.raises(InputError, match=r"task 1, annotation 2 has 2 choices results \(label, quality\)"):
        read_label_studio_export(json.dumps(export), queue=plain_queue())
    with pytest.raises(InputError, match=r"has no choices result named 'animal' \(found: label, quality\)"):
        read_label_studio_export(json.dumps(export), queue=plain_queue(), from_name="animal")


def _task(annotations=None, **data):
    task = {"id": 5, "data": {"hitl_item": 0, "hitl_queue": "q", **data}}
    if annotations is not None:
        task["annotations"] = annotations
    return json.dumps([task])


def _choices(*labels):
    return [{"from_name": "label", "to_name": "item", "type": "choices", "value": {"choices": list(labels)}}]


@pytest.mark.parametrize(
    ("export", "match"),
    [
        (b"<html>502 Bad Gateway</html>", "Label Studio export: not JSON"),
        ('{"data": {}}', "expected a list of tasks, got a JSON dict"),
        ('[{"id": 12}]', "task 12 has no data object"),
        ('[{"id": 12, "data": {"age": 3}}]', "task 12 has no data.hitl_item"),
        ('[{"data": {"hitl_item": "3"}}]', "task at index 0 has data.hitl_item '3', not an item position"),
        (_task(hitl_queue="other"), "task 5 belongs to queue 'other', not 'q'"),
        (_task(annotations={"id": 9}), "task 5 has annotations that are not a list"),
        (_task(annotations=[{"id": 9, "completed_by": 1}]), "task 5, annotation 9 has no result list"),
        (
            _task(annotations=[{"id": 9, "completed_by": 1, "result": _choices("cat", "dog")}]),
            "chose 2 classes",
        ),
        (_task(annotations=[{"id": 9, "result": _choices("cat")}]), "annotation 9 has no completed_by user"),
        (
            _task(annotations=[{"id": 9, "completed_by": {"first_name": "Al"}, "result": _choices("cat")}]),
            "annotation 9 has no completed_by user",
        ),
    ],
)
def test_malformed_label_studio_exports_are_refused_naming_the_task(export, match):
    with pytest.raises(InputError, match=match):
        read_label_studio_export(export, queue=plain_queue())


# -- CSV ------------------------------------------------------------------------------------------


def test_csv_round_trip_keeps_labels_as_written_and_counts_unlabelled_rows(store):
    make_queue(store, "ints", n=4, k=3, classes=[0, 1])
    queue = store.queue("ints")
    sheet = pd.read_csv(io.StringIO(csv_tasks(queue, store.items("ints"))), dtype=str, keep_default_na=False)
    assert sheet.columns.tolist() == [
        "item", "row_key", "reason", "score", "prediction", "confidence", "age", "colour", "label", "comment"
    ]  # fmt: skip
    assert sheet["item"].tolist() == ["0", "1", "2", "3"] and (sheet["label"] == "").all()
    assert sheet["colour"].tolist() == ["Black", "White"] * 2 and sheet["prediction"].tolist() == ["1"] * 4

    # Alice fills the whole sheet in Excel (semicolons, byte-order mark) and names herself on import.
    alice = sheet.assign(label=["1", "0", "1", "1"], comment=["", "blurry", "", ""])
    records, ignored = read_annotations_csv(
        alice.to_csv(sep=";", index=False).encode("utf-8-sig"), queue=queue, user="alice"
    )
    assert ignored == 0 and [r.label for r in records] == ["1", "0", "1", "1"]  # text, as written
    # Bob and Carol share one sheet with a user column; Carol stopped half way.
    shared = pd.concat(
        [
            sheet.assign(user="bob", label=["0", "0", "1", "0"]),
            sheet.iloc[:2].assign(user="carol", label=["1", ""]),
        ]
    )
    more, ignored = read_annotations_csv(shared.to_csv(index=False), queue=queue)
    assert ignored == 1

    report = store.import_annotations("ints", records + more, actor="eve", source="csv")
    assert report.added == 9
    filled = pd.concat([alice.assign(user="alice"), shared])
    filled = filled[filled["label"] != ""]
    expected = pd.DataFrame(
        {
            "item": filled["item"].astype(int),
            "rater": filled["user"],
            "label": filled["label"].astype(int),  # the store matched "1" to the class 1
            "comment": filled["comment"].replace("", None),
        }
    ).sort_values(["item", "rater"], ignore_index=True)
    got = store.annotations("ints")[["item", "rater", "label", "comment"]]
    pd.testing.assert_frame_equal(got.sort_values(["item", "rater"], ignore_index=True), expected)


def test_payload_columns_named_like_ours_are_renamed_and_never_read_as_answers():
    queue = plain_queue(columns=("label", "User ", "age"))
    items = [plain_item(p, {"label": "synthetic", "User ": "x", "age": 1.0 + p}) for p in range(2)]
    text = csv_tasks(queue, items)
    assert next(csv.reader(io.StringIO(text))) == [
        "item", "row_key", "reason", "score", "prediction", "confidence", "row.label", "row.User ", "age",
        "label", "comment",
    ]  # fmt: skip
    sheet = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False).assign(label="cat")
    records, ignored = read_annotations_csv(sheet.to_csv(index=False), queue=queue, user="ann")
    assert ignored == 0
    assert records == [AnnotationRecord(0, "ann", "cat"), AnnotationRecord(1, "ann", "cat")]


@pytest.mark.parametrize(
    ("sheet", "user", "match"),
    [
        ("item,comment\n0,x\n", "ann", r"annotations CSV: no 'label' column \(header: item, comment\)"),
        ("label,user\ncat,ann\n", None, "no 'item' column"),
        (
            "item,label,user\n0,cat,ann\nzero,dog,ann\n",
            None,
            "row 3, column 'item': 'zero' is not a whole number",
        ),
        (
            "item,label,user\n0,cat,ann\n1.5,dog,ann\n",
            None,
            "row 3, column 'item': '1.5' is not a whole number",
        ),
        ("item,label\n0,cat\n", None, "no 'user' column; add one, or name the rater"),
        ("item,label,user\n0,cat,ann\n1,dog,\n", None, "row 3, column 'user' is empty"),
        ("", "ann", "annotations CSV for queue 'q' is empty"),
        ("item,label,Label ,user\n", None, "column 'label' appears 2 times"),
        (b"item,label,user\n0,\xe9t\xe9,ann\n", None, "not UTF-8 text"),
        ("item,label,user\n0,cat,ann\n1;dog;ann\n", None, r"row 3 has 1 cell\(s\) where the header has 3"),
        ("item,label,user\n0,cat,ann\n1,a,dog,ann\n", None, r"row 3 has 4 cell\(s\) where the header has 3"),
    ],
)
def test_malformed_sheets_are_refused_naming_row_and_column(sheet, user, match):
    with pytest.raises(InputError, match=match):
        read_annotations_csv(sheet, queue=plain_queue(), user=user)


def test_the_user_argument_fills_only_empty_user_cells_and_blank_lines_are_not_rows():
    sheet = "item,label,user\n0,cat,bob\n\n1,dog,\n2,,\n"
    records, ignored = read_annotations_csv(sheet, queue=plain_queue(), user="ann")
    assert records == [AnnotationRecord(0, "bob", "cat"), AnnotationRecord(1, "ann", "dog")]
    assert ignored == 1
