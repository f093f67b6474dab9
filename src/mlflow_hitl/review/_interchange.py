"""Review queues out to Label Studio and spreadsheets, and their labels back in.

The one thing that survives a round trip is the item's position in its queue, so every exported item
carries it: ``data.hitl_item`` (with ``hitl_queue``) in a Label Studio task, the ``item`` column in a
sheet. Label Studio's own task ids cannot do that job: it assigns new ones on import and ignores any
given (HumanSignal/label-studio#3509), so the tasks we write have no ``id``.

The readers only *extract* :class:`AnnotationRecord` s and count what they skip (cancelled or empty
Label Studio annotations, sheet rows without a label). Validation of positions, labels and raters stays
in :meth:`ReviewStore.import_annotations`, which takes a whole file or nothing. Labels keep the type
they were written with: a choice or a cell ``"1"`` stays a string, and the store matches it to the
class ``1``.

A blind queue's items already hold no prediction (:class:`Item`), and the writers leave the prediction
fields out altogether rather than writing them empty.

A generator-audit queue also asks for reason tags (:data:`AUDIT_TAGS`): a second, multiple choice named
``tags`` in the Label Studio config, a ``tags`` column in the sheet. The readers fold the tags into the
annotation's comment (:func:`audit_comment`), where the results read them back.

The formats are a few documented dicts, one XML element tree and the standard ``csv`` module, so they
are written here: ``label-studio-sdk`` would build the same dicts but pulls in lxml, OpenCV and a numpy
pin.
"""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ..errors import InputError
from ._generator_audit import AUDIT_TAGS, audit_comment, is_generator_audit
from ._store import AnnotationRecord, Item, Queue

__all__ = [
    "csv_tasks",
    "label_studio_config",
    "label_studio_tasks",
    "read_annotations_csv",
    "read_label_studio_export",
]

_LS = "Label Studio export"
_CSV = "annotations CSV"
# Keys of a task's data that belong to us; a payload column with one of these names is renamed.
_HITL_KEYS = ("hitl_queue", "hitl_item", "hitl_row_key", "hitl_payload")
_COMMENT = "comment"  # the name of the free-text note's TextArea in our labelling config
_TAGS = "tags"  # a generator audit's reason tags: the Choices tag in Label Studio, the column in a sheet
_CSV_ITEM = ("item", "row_key", "reason", "score")
_CSV_MODEL = ("prediction", "confidence")  # left out for blind queues
_CSV_ANSWER = ("label", "comment")


def _check_tag_names(from_name: str, to_name: str, queue: Queue) -> None:
    for what, name in (("from_name", from_name), ("to_name", to_name)):
        if not isinstance(name, str) or not name.strip():
            raise InputError(f"{what} must be a non-empty Label Studio tag name, got {name!r}")
    ours = (_COMMENT, _TAGS) if is_generator_audit(queue) else (_COMMENT,)
    if len({from_name, to_name, *ours}) != 2 + len(ours):
        raise InputError(
            f"from_name ({from_name!r}) and to_name ({to_name!r}) must differ from each other "
            f"and from {' and '.join(map(repr, ours))}, the note's{' and the reasons' if len(ours) > 1 else ''} tag"
        )


def _check_items(queue: Queue, items: Sequence[Item]) -> None:
    strays = sorted({item.queue for item in items} - {queue.name})
    if strays:
        raise InputError(
            f"items of queue {', '.join(map(repr, strays))} were passed with queue {queue.name!r}; "
            f"pass store.items({queue.name!r})"
        )


def _renamed(columns: Sequence[str], reserved: Sequence[str]) -> dict[str, str]:
    """Payload column → its exported name; a column that would pass for one of ours gets a ``row.`` prefix.

    The comparison ignores case and spaces because the CSV reader matches headers that way.
    """
    taken = {name.lower() for name in reserved}
    return {c: f"row.{c}" if c.strip().lower() in taken else c for c in columns}


def _choice(label: Any) -> str:
    """A class as a Label Studio choice: always text; the store maps the text back onto the class."""
    return str(label)


# -- Label Studio ---------------------------------------------------------------------------------


def label_studio_tasks(
    queue: Queue, items: Sequence[Item], *, from_name: str = "label", to_name: str = "item"
) -> list[dict[str, Any]]:
    """One Label Studio task per item, ready for ``json.dump`` and Label Studio's JSON import.

    ``data`` holds the payload columns (so Label Studio's data manager can filter and sort by them),
    ``hitl_queue``/``hitl_item``/``hitl_row_key`` (the way back) and ``hitl_payload``, the same row
    as one object, because Label Studio's ``<Table>`` can show only a single data field. Unless the
    queue is blind, ``predictions`` holds the model's label as a ``choices`` result with
    ``score`` = its confidence; Label Studio pre-selects it for the reviewer.
    """
    _check_tag_names(from_name, to_name, queue)
    _check_items(queue, items)
    names = _renamed(queue.columns, _HITL_KEYS)
    tasks = []
    for item in items:
        payload = dict(item.payload)
        data: dict[str, Any] = {names.get(k, k): v for k, v in payload.items()}
        data.update(
            hitl_queue=queue.name, hitl_item=item.position, hitl_row_key=item.row_key, hitl_payload=payload
        )
        task: dict[str, Any] = {"data": data}
        if not queue.blind and item.prediction is not None:
            prediction: dict[str, Any] = {
                "model_version": queue.run_id or queue.name,
                "result": [
                    {
                        "from_name": from_name,
                        "to_name": to_name,
                        "type": "choices",
                        "value": {"choices": [_choice(item.prediction)]},
                    }
                ],
            }
            if item.confidence is not None:
                prediction["score"] = item.confidence
            task["predictions"] = [prediction]
        tasks.append(task)
    return tasks


def label_studio_config(queue: Queue, *, from_name: str = "label", to_name: str = "item") -> str:
    """The labelling interface to paste into a Label Studio project: the row as a table, one choice per class.

    A single required radio choice (one label per item, as the store expects) and an optional note,
    read back as the annotation's comment; a generator audit adds the reason tags as a multiple choice.
    """
    _check_tag_names(from_name, to_name, queue)
    view = ET.Element("View")
    ET.SubElement(view, "Header", value="Item $hitl_item (row $hitl_row_key)")
    ET.SubElement(view, "Table", name=to_name, value="$hitl_payload")
    choices = ET.SubElement(
        view,
        "Choices",
        name=from_name,
        toName=to_name,
        choice="single-radio",
        required="true",
        showInLine="true",
    )
    for label in queue.classes:
        ET.SubElement(choices, "Choice", value=_choice(label))
    if is_generator_audit(queue):
        ET.SubElement(view, "Header", value="Why? (optional; other: say what in the note)", size="6")
        reasons = ET.SubElement(
            view, "Choices", name=_TAGS, toName=to_name, choice="multiple", showInLine="true"
        )
        for tag in AUDIT_TAGS:
            ET.SubElement(reasons, "Choice", value=tag)
    ET.SubElement(
        view,
        "TextArea",
        name=_COMMENT,
        toName=to_name,
        placeholder="Optional note",
        rows="2",
        maxSubmissions="1",
    )
    ET.indent(view)
    return ET.tostring(view, encoding="unicode") + "\n"


def read_label_studio_export(
    data: bytes | str, *, queue: Queue, from_name: str | None = None
) -> tuple[list[AnnotationRecord], int]:
    """The labels in a Label Studio JSON export of tasks made by :func:`label_studio_tasks`.

    Returns ``(records, ignored)``: ``ignored`` counts cancelled (skipped) annotations and those that
    chose no class. The class is the ``choices`` result (of the ``from_name`` tag when given); the rater
    is ``completed_by``'s email when the export has it, else ``label-studio:<user id>``; the annotation
    id becomes ``external_id`` ``label-studio:<id>``. ``ground_truth``, ``lead_time`` and predictions
    are not read.
    """
    try:
        tasks = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise InputError(f"{_LS}: not JSON ({exc}); export the project as JSON") from exc
    if not isinstance(tasks, list):
        raise InputError(
            f"{_LS}: expected a list of tasks, got a JSON {type(tasks).__name__}; export the project as JSON"
        )
    records: list[AnnotationRecord] = []
    ignored = 0
    for index, task in enumerate(tasks):
        where = f"task {task['id']}" if isinstance(task, dict) and "id" in task else f"task at index {index}"
        if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
            raise InputError(f"{_LS}: {where} has no data object")
        position = task["data"].get("hitl_item")
        if position is None:
            raise InputError(
                f"{_LS}: {where} has no data.hitl_item; import only tasks made by label_studio_tasks"
            )
        if isinstance(position, bool) or not isinstance(position, int):
            raise InputError(f"{_LS}: {where} has data.hitl_item {position!r}, not an item position")
        owner = task["data"].get("hitl_queue", queue.name)
        if owner != queue.name:
            raise InputError(f"{_LS}: {where} belongs to queue {owner!r}, not {queue.name!r}")
        annotations = task.get("annotations", [])
        if not isinstance(annotations, list):
            raise InputError(f"{_LS}: {where} has annotations that are not a list")
        for annotation in annotations:
            record = _ls_record(
                annotation,
                position=position,
                where=where,
                from_name=from_name,
                audit=is_generator_audit(queue),
            )
            if record is None:
                ignored += 1
            else:
                records.append(record)
    return records, ignored


def _ls_record(
    annotation: Any, *, position: int, where: str, from_name: str | None, audit: bool
) -> AnnotationRecord | None:
    """One annotation as a record, or ``None`` when it was cancelled or chose nothing.

    ``audit``: the queue is a generator audit, whose ``tags`` choices are reasons, not the label.
    """
    if not isinstance(annotation, dict):
        raise InputError(f"{_LS}: {where} has an annotation that is not an object")
    annotation_id = annotation.get("id")
    if annotation_id is not None:
        where = f"{where}, annotation {annotation_id}"
    if annotation.get("was_cancelled"):
        return None
    result = annotation.get("result")
    if not isinstance(result, list):
        raise InputError(f"{_LS}: {where} has no result list")
    results = [r for r in result if isinstance(r, dict)]
    reasons = [r for r in results if audit and r.get("type") == "choices" and r.get("from_name") == _TAGS]
    every_choice = [r for r in results if r.get("type") == "choices" and not any(r is t for t in reasons)]
    answers = [r for r in every_choice if from_name is None or r.get("from_name") == from_name]
    if every_choice and not answers:  # a from_name that matches nothing would silently ignore everything
        tags = sorted({str(r.get("from_name")) for r in every_choice})
        raise InputError(
            f"{_LS}: {where} has no choices result named {from_name!r} (found: {', '.join(tags)})"
        )
    if len(answers) > 1:
        tags = sorted({str(r.get("from_name")) for r in answers})
        raise InputError(
            f"{_LS}: {where} has {len(answers)} choices results ({', '.join(tags)}); "
            "pass from_name to say which one holds the label"
        )
    value = answers[0].get("value") if answers else {}
    chosen = value.get("choices", []) if isinstance(value, dict) else None
    if not isinstance(chosen, list):
        raise InputError(f"{_LS}: {where} has a choices result without a value.choices list")
    if not chosen:
        return None
    if len(chosen) > 1:
        raise InputError(
            f"{_LS}: {where} chose {len(chosen)} classes {chosen}; a queue takes one label per item "
            "(use label_studio_config's single choice)"
        )
    notes = [
        text
        for r in results
        if r.get("type") == "textarea" and r.get("from_name") == _COMMENT and isinstance(r.get("value"), dict)
        for text in r["value"].get("text", [])
        if isinstance(text, str) and text.strip()
    ]
    comment = "\n".join(notes) or None
    if reasons:
        tags = [t for r in reasons if isinstance(r.get("value"), dict) for t in r["value"].get("choices", [])]
        try:
            comment = audit_comment(tags, comment)
        except InputError as exc:
            raise InputError(f"{_LS}: {where}: {exc}") from None
    return AnnotationRecord(
        position=position,
        user=_ls_rater(annotation.get("completed_by"), where),
        label=chosen[0],
        comment=comment,
        external_id=None if annotation_id is None else f"label-studio:{annotation_id}",
    )


def _ls_rater(completed_by: Any, where: str) -> str:
    """The rater: the email of an exported user object, else the user id (all that API exports give)."""
    if isinstance(completed_by, dict):
        email = completed_by.get("email")
        if isinstance(email, str) and email.strip():
            return email.strip()
        completed_by = completed_by.get("id")
    if isinstance(completed_by, int) and not isinstance(completed_by, bool):
        return f"label-studio:{completed_by}"
    raise InputError(f"{_LS}: {where} has no completed_by user (a user id, or an object with email or id)")


# -- CSV --------------------------------------------------------------------------------------------


def csv_tasks(queue: Queue, items: Sequence[Item]) -> str:
    """A sheet to label in a spreadsheet: one row per item, ``label`` and ``comment`` left empty.

    Columns: ``item``, ``row_key``, ``reason``, ``score``, then ``prediction`` and ``confidence``
    unless the queue is blind, then the payload columns (a payload column named like one of these,
    or ``user``, is written as ``row.<name>``), then ``label`` and ``comment``; a generator audit
    has ``tags`` between them (reason tags, separated by ``;``).
    """
    _check_items(queue, items)
    answer = _sheet_answer(queue)
    names = _renamed(queue.columns, (*_CSV_ITEM, *_CSV_MODEL, *answer, "user"))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([*_CSV_ITEM, *(() if queue.blind else _CSV_MODEL), *names.values(), *answer])
    for item in items:
        model = () if queue.blind else (item.prediction, item.confidence)
        payload = (item.payload.get(c) for c in queue.columns)
        writer.writerow(
            [item.position, item.row_key, item.reason, item.score, *model, *payload, *("" for _ in answer)]
        )  # csv writes None as an empty cell
    return out.getvalue()


def _sheet_answer(queue: Queue) -> tuple[str, ...]:
    """The columns a reviewer fills in: the label and a comment, and a generator audit's reason tags."""
    return ("label", _TAGS, "comment") if is_generator_audit(queue) else _CSV_ANSWER


def read_annotations_csv(
    data: bytes | str, *, queue: Queue, user: str | None = None
) -> tuple[list[AnnotationRecord], int]:
    """The labels in a filled-in sheet: ``item``, ``label``, ``user`` (or the ``user`` argument), ``comment``.

    Returns ``(records, ignored)``: rows with an empty label are ignored and counted, so a half-done
    sheet can be imported as it stands (and again later: the store counts repeats as unchanged). A row
    with more cells than the header, or too few to reach the label, is refused with its row number:
    its cells have shifted, so it is neither labelled nor safely "not labelled yet". The
    ``user`` argument names the rater of a single-rater sheet and fills empty ``user`` cells. Headers
    match ignoring case and surrounding spaces; comma, semicolon (Excel in many locales) and tab
    separated files are read, and so is the UTF-8 byte-order mark Excel writes.
    """
    rows, delimiter = _sheet_rows(data)
    header = next(rows, None)
    if not header:
        raise InputError(f"{_CSV} for queue {queue.name!r} is empty; expected a header with item and label")
    column = _sheet_columns(header, user, _sheet_answer(queue))
    records: list[AnnotationRecord] = []
    ignored = 0
    for number, row in enumerate(rows, start=2):  # row 1 is the header, as a spreadsheet counts
        if not any(value.strip() for value in row):  # a blank line, not an item
            continue
        if len(row) > len(header) or column["label"] >= len(row):
            # Cells shifted by a stray or missing separator: whatever the label column holds is not
            # the label, and an unlabelled-looking row would be counted as "not labelled yet".
            raise InputError(
                f"{_CSV}: row {number} has {len(row)} cell(s) where the header has {len(header)} "
                f"(a stray or missing {delimiter!r} separator, or an unquoted one inside a cell?)"
            )
        record = _sheet_record(number, row, column, user, audit=is_generator_audit(queue))
        if record is None:
            ignored += 1
        else:
            records.append(record)
    return records, ignored


def _sheet_rows(data: bytes | str) -> tuple[Iterator[list[str]], str]:
    """The sheet's rows and their separator (comma, semicolon or tab), from UTF-8 text with or without a BOM."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InputError(f"{_CSV}: not UTF-8 text ({exc}); save the sheet as 'CSV UTF-8'") from exc
    text = data.removeprefix("\ufeff")
    try:
        delimiter = csv.Sniffer().sniff(text.split("\n", 1)[0], delimiters=",;\t").delimiter
    except csv.Error:  # a single column has no separator to find
        delimiter = ","
    return csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), delimiter


def _sheet_columns(header: list[str], user: str | None, answer: tuple[str, ...]) -> dict[str, int]:
    """Where ``item``, ``label`` and, if present, ``user``, ``comment`` (and a generator audit's ``tags``)
    are, matched ignoring case and spaces."""
    keys = [h.strip().lower() for h in header]
    column: dict[str, int] = {}
    for name in ("item", "user", *answer):
        found = [i for i, key in enumerate(keys) if key == name]
        if len(found) > 1:
            raise InputError(f"{_CSV}: column {name!r} appears {len(found)} times in the header")
        if found:
            column[name] = found[0]
    for name in ("item", "label"):
        if name not in column:
            raise InputError(
                f"{_CSV}: no {name!r} column (header: {', '.join(header)}); start from csv_tasks' sheet"
            )
    if "user" not in column and user is None:
        raise InputError(
            f"{_CSV}: no 'user' column; add one, or name the rater of the whole sheet (user=...)"
        )
    return column


def _sheet_record(
    number: int, row: list[str], column: Mapping[str, int], user: str | None, *, audit: bool
) -> AnnotationRecord | None:
    """Row ``number``'s label as a record; ``None`` when its label cell is empty (not labelled yet).

    ``audit``: the queue is a generator audit, whose ``tags`` cell joins the comment as reason tags.
    """

    def cell(name: str) -> str:
        at = column.get(name)
        return row[at].strip() if at is not None and at < len(row) else ""

    label = cell("label")
    if not label:
        return None
    try:
        position = int(cell("item"))
    except ValueError:
        raise InputError(
            f"{_CSV}: row {number}, column 'item': {cell('item')!r} is not a whole number "
            "(keep the item positions csv_tasks wrote)"
        ) from None
    rater = cell("user") or user
    if not rater:
        raise InputError(f"{_CSV}: row {number}, column 'user' is empty; fill it or pass user=...")
    comment = cell("comment") or None
    if audit:
        try:
            comment = audit_comment(cell(_TAGS), comment)
        except InputError as exc:
            raise InputError(f"{_CSV}: row {number}, column 'tags': {exc}") from None
    return AnnotationRecord(position=position, user=rater, label=label, comment=comment)
