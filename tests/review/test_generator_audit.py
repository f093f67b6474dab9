"""The generator audit in the review store: a blind, stratified queue, and what simulated raters reveal.

Raters are simulated: those who cannot tell answer at random whatever the row; those who can spot a tell
(a value the real data never has) flag every row that shows it. The human AUC must come out near 0.5
for a generator whose rows are resampled real ones, and high exactly in the group that leaks a tell.
"""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest

from hitl_support import TELL, answer, leaking, real_rows, resampled
from mlflow_hitl.checks import generator_audit_check
from mlflow_hitl.errors import InputError
from mlflow_hitl.review import (
    AUDIT_CLASSES,
    AUDIT_TAGS,
    NOT_REALISTIC,
    REALISTIC,
    ReviewStore,
    audit_comment,
    csv_tasks,
    generator_audit_inputs,
    label_studio_config,
    label_studio_tasks,
    queue_generator_audit,
    read_annotations_csv,
    read_audit_comment,
    read_label_studio_export,
)

FAST = {"n_bootstrap": 300}


@pytest.fixture
def store(tmp_path):
    store = ReviewStore(f"sqlite:///{tmp_path / 'hitl.db'}")
    yield store
    store.close()


def test_the_queue_is_stratified_blind_and_mixed_with_real_controls(store):
    real = real_rows()
    queue = queue_generator_audit(
        store,
        "audit",
        synthetic=resampled(real),
        real=real,
        sensitive=["sex", "race"],
        per_group=20,
        actor="lead",
    )
    assert queue.blind and queue.classes == AUDIT_CLASSES and queue.raters_per_item == 2
    items = store.items("audit")
    truth = store.gold("audit")
    synthetic = [i for i in items if truth[i.position] == NOT_REALISTIC]
    assert len(items) - len(synthetic) == len(synthetic)  # control_ratio 1: as many real rows
    for sex in "FM":
        for race in "ABC":  # every intersection holds per_group synthetic rows
            assert sum(i.payload["sex"] == sex and i.payload["race"] == race for i in synthetic) >= 20
    # Nothing but the row's own values differs between the two kinds of item.
    assert {i.reason for i in items} == {"generator-audit"} and {i.score for i in items} == {None}
    assert [i.row_key for i in items] == [str(i.position) for i in items]
    assert {type(i.payload["age"]) for i in items} == {int}
    # The truth is in no export: the sheet and the tasks hold the same things for both kinds.
    sheet = csv_tasks(queue, items)
    assert "synthetic" not in sheet and NOT_REALISTIC not in sheet.replace(",not realistic", "")
    assert all("gold" not in json.dumps(task) for task in label_studio_tasks(queue, items))


def test_the_sample_is_seeded_and_the_control_ratio_holds(store):
    real = real_rows()
    kwargs = dict(synthetic=resampled(real), real=real, sensitive="sex", per_group=30, actor="lead")
    first = queue_generator_audit(store, "a", control_ratio=0.5, seed=3, **kwargs)
    again = queue_generator_audit(store, "b", control_ratio=0.5, seed=3, **kwargs)
    assert [i.payload for i in store.items(first.name)] == [i.payload for i in store.items(again.name)]
    kinds = list(store.gold("a").values())
    assert kinds.count(NOT_REALISTIC) == 60 and kinds.count(REALISTIC) == 30


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (dict(sensitive=["sex", "religion"]), "sensitive column 'religion' is not a column of the data"),
        (dict(per_group=500), r"per_group 500 is larger than group sex=F: the synthetic data has \d+ row"),
        (dict(synthetic=pd.DataFrame(columns=["sex", "race", "age", "occupation"])), "synthetic has no rows"),
        (dict(control_ratio=0), "control_ratio"),
        (dict(real=real_rows().drop(columns="age")), "only in synthetic: age"),
    ],
    ids=["unknown-sensitive", "per-group-too-large", "empty-synthetic", "no-controls", "columns-differ"],
)
def test_bad_input_is_one_clear_line(store, change, message):
    real = real_rows()
    kwargs = (
        dict(synthetic=resampled(real), real=real, sensitive=["sex"], per_group=20, actor="lead") | change
    )
    with pytest.raises(InputError, match=message):
        queue_generator_audit(store, "audit", **kwargs)
    assert store.queues() == []


def test_tags_round_trip_through_the_comment():
    comment = audit_comment("Stereotyped; looks like a real person", " seen him ")
    assert comment == "[tags: stereotyped, looks-like-a-real-person] seen him"
    assert read_audit_comment(comment) == (("stereotyped", "looks-like-a-real-person"), "seen him")
    assert read_audit_comment("plain note") == ((), "plain note")
    assert audit_comment([], None) is None
    with pytest.raises(InputError, match="unknown reason tag 'weird'"):
        audit_comment(["weird"], None)


def audited(store, synthetic, real, *, spots_tell: bool):
    """The generator_audit result of simulated raters on a queue of ``synthetic`` rows (by sex and race)."""
    queue_generator_audit(
        store, "audit", synthetic=synthetic, real=real, sensitive=["sex", "race"], per_group=20, actor="lead"
    )
    answer(store, "audit", spots_tell=spots_tell)
    return generator_audit_check(*generator_audit_inputs(store.queue_labels("audit")), config=FAST)


def test_people_who_cannot_tell_give_an_auc_near_one_half(store):
    real = real_rows()
    result = audited(store, resampled(real), real, spots_tell=False)
    m = result.metrics
    assert m["human_auc_ci_low"] <= 0.5 <= m["human_auc_ci_high"] and abs(m["human_auc"] - 0.5) < 0.1
    assert m["human_accuracy_ci_low"] <= 0.5 <= m["human_accuracy_ci_high"]
    assert result.status.value == "passed", result.summary
    assert {g["status"] for g in result.details["groups"]} == {"passed"}
    assert abs(m["krippendorff_alpha"]) < 0.2  # random answers agree by chance only


def test_a_tell_in_one_group_shows_in_that_group_only(store):
    real = real_rows()
    result = audited(store, leaking(real), real, spots_tell=True)
    m = result.metrics
    assert m["race.B.human_auc"] > 0.95 and m["race.B.human_auc_ci_low"] > 0.7
    for race in "AC":
        assert m[f"race.{race}.human_auc_ci_low"] <= 0.5 <= m[f"race.{race}.human_auc_ci_high"]
    assert m["worst_group_human_auc"] == max(v for k, v in m.items() if k.endswith(".human_auc"))
    assert result.status.value == "failed"
    failed = {g["key"] for g in result.details["groups"] if g["status"] == "failed"}
    assert "race.B" in failed and not any(k.startswith("race.A") or k.startswith("race.C") for k in failed)
    flagged = result.details["flagged"]
    assert len(flagged) == 20 and all(f["not_realistic"] == 2 for f in flagged)  # the most flagged first
    tells = [f for f in flagged if f["row"]["occupation"] == TELL]
    assert len(tells) > 10 and {f["truth"] for f in tells} == {"synthetic"}
    assert all(f["tags"] == {"implausible-combination": 2} and f["notes"] == ["odd job"] * 2 for f in tells)
    assert b"implausible-combination (2)" in result.artifacts["flagged.csv"]
    assert result.details["tags"]["implausible-combination"]["real"] == 0


def test_the_auc_is_scikit_learns_and_groups_too_small_are_insufficient_evidence(store):
    from sklearn.metrics import roc_auc_score

    real = real_rows()
    queue_generator_audit(
        store, "audit", synthetic=resampled(real), real=real, sensitive=["race"], per_group=12, actor="lead"
    )
    answer(store, "audit", spots_tell=False, raters=("ann",))
    items, judgements = generator_audit_inputs(store.queue_labels("audit"))
    result = generator_audit_check(items, judgements, config={**FAST, "min_group_items": 13})
    truth = items.set_index("item")["synthetic"]
    flags = judgements.set_index("item")["label"].eq(NOT_REALISTIC)
    assert result.metrics["human_auc"] == pytest.approx(roc_auc_score(truth.loc[flags.index], flags))
    groups = {g["key"]: g for g in result.details["groups"]}
    assert (
        groups["race.A"]["status"] == "insufficient_evidence" and "12 synthetic" in groups["race.A"]["reason"]
    )
    assert "race.A.human_auc" not in result.metrics
    assert result.status.value == "insufficient_evidence", result.summary  # never a pass


def test_nothing_labelled_yet_is_insufficient_evidence(store):
    real = real_rows()
    queue_generator_audit(
        store, "audit", synthetic=resampled(real), real=real, sensitive="sex", per_group=15, actor="lead"
    )
    result = generator_audit_check(*generator_audit_inputs(store.queue_labels("audit")), config=FAST)
    assert result.status.value == "insufficient_evidence" and "too few labelled rows" in result.summary


def small_audit(store):
    real = real_rows(300)
    return queue_generator_audit(
        store, "audit", synthetic=resampled(real, 200), real=real, sensitive="sex", per_group=3, actor="lead"
    )


def test_a_sheet_has_a_tags_column_and_its_tags_come_back_in_the_comment(store):
    queue = small_audit(store)
    sheet = pd.read_csv(io.StringIO(csv_tasks(queue, store.items("audit"))))
    assert list(sheet.columns[-3:]) == ["label", "tags", "comment"]
    sheet["label"] = [NOT_REALISTIC, REALISTIC] * (len(sheet) // 2) + [REALISTIC] * (len(sheet) % 2)
    sheet.loc[0, ["tags", "comment"]] = ["Stereotyped; other", "too neat"]
    records, ignored = read_annotations_csv(sheet.to_csv(index=False), queue=queue, user="ann")
    assert ignored == 0 and records[0].comment == "[tags: stereotyped, other] too neat"
    assert records[1].comment is None
    store.import_annotations("audit", records, actor="lead", source="csv")
    _, judgements = generator_audit_inputs(store.queue_labels("audit"))
    assert judgements.loc[0, "tags"] == ("stereotyped", "other") and judgements.loc[0, "note"] == "too neat"
    sheet.loc[1, "tags"] = "weird"
    with pytest.raises(InputError, match="row 3, column 'tags': unknown reason tag 'weird'"):
        read_annotations_csv(sheet.to_csv(index=False), queue=queue, user="ann")


def test_label_studio_offers_the_reasons_and_reads_them_back(store):
    queue = small_audit(store)
    config = label_studio_config(queue)
    assert '<Choices name="tags" toName="item" choice="multiple"' in config
    assert all(f'<Choice value="{tag}" />' in config for tag in AUDIT_TAGS)
    assert all(f'<Choice value="{c}" />' in config for c in AUDIT_CLASSES)
    tasks = label_studio_tasks(queue, store.items("audit"))
    assert all("predictions" not in task for task in tasks)
    tasks[0]["annotations"] = [
        {
            "id": 7,
            "completed_by": {"email": "ann@example.org"},
            "result": [
                {
                    "from_name": "label",
                    "to_name": "item",
                    "type": "choices",
                    "value": {"choices": [NOT_REALISTIC]},
                },
                {"from_name": "tags", "to_name": "item", "type": "choices", "value": {"choices": ["other"]}},
                {
                    "from_name": "comment",
                    "to_name": "item",
                    "type": "textarea",
                    "value": {"text": ["a 9-year-old CEO"]},
                },
            ],
        }
    ]
    records, _ = read_label_studio_export(json.dumps(tasks), queue=queue)
    assert [(r.label, r.comment) for r in records] == [(NOT_REALISTIC, "[tags: other] a 9-year-old CEO")]
