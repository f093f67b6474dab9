"""Review queues from a Spark DataFrame hold the very items the pandas path queues from the same rows.

The rows are ranked on the executors and only the chosen ones are fetched; the items (row keys,
order, reasons, scores, groups, payloads, predictions, confidences, gold labels) are compared in a
real SQLite review store against the pandas path's queue of the same rows, whether the rows come
as a frame or as what a validation scored.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

import mlflow_hitl
from conftest import ARRESTS_TARGET
from mlflow_hitl.adapter.model import as_classifier
from mlflow_hitl.adapter.review import queue_from_model
from mlflow_hitl.errors import InputError
from mlflow_hitl.review import ReviewStore, queue_for_review, queue_from_validation
from mlflow_hitl.spark import queue_for_review as spark_queue

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return ReviewStore(f"sqlite:///{tmp_path_factory.mktemp('queue-spark') / 'hitl.db'}")


@pytest.fixture(scope="module")
def production(arrests_split):
    """Production rows with a gold label on every tenth row, and an id that is not their order."""
    _, _, production = arrests_split
    rows = production.copy()
    rows["gold"] = np.where(np.arange(len(rows)) % 10 == 0, "Yes", None)
    rows["id"] = np.random.default_rng(3).permutation(len(rows)) * 7 + 1000
    return rows


def _items(store, name):
    return [dataclasses.replace(item, queue="") for item in store.items(name)], store.gold(name)


@pytest.mark.parametrize(
    ("strategy", "group_column", "random_share"),
    [("least-confidence", None, 0.1), ("margin", "colour", 0.25)],
)
def test_a_spark_frame_queues_the_items_the_pandas_frame_queues(
    spark, store, production, arrests_model, strategy, group_column, random_share
):
    rows = production.drop(columns=["id"])
    options = dict(
        model=arrests_model,
        actor="ana",
        size=60,
        strategy=strategy,
        group_column=group_column,
        random_share=random_share,
        gold_column="gold",
        seed=4,
    )
    name = f"{strategy}-{group_column}"
    expected = queue_from_model(store, f"pandas-{name}", data=rows, **options)
    got = queue_from_model(store, f"spark-{name}", data=spark.createDataFrame(rows), **options)
    assert got.classes == expected.classes
    items, gold = _items(store, f"spark-{name}")
    assert (items, gold) == _items(store, f"pandas-{name}")
    assert len(items) == 60 and gold
    assert {item.reason for item in items} >= {"random-control"}


@pytest.fixture(scope="module")
def keyed_expected(store, production, arrests_model):
    """The pandas queue of the rows in id order, indexed by id, from an already-scored probabilities column."""
    rows = production.drop(columns=["gold"]).sort_values("id").set_index("id")
    model = as_classifier(arrests_model)
    proba = model.predict_proba(rows)
    queue_for_review(
        store,
        "keyed-pandas",
        rows=rows,
        y_prob=proba,
        classes=model.classes,
        size=40,
        actor="ana",
        groups=rows["colour"],
        seed=1,
    )
    return _items(store, "keyed-pandas"), proba, model.classes


def test_with_a_key_the_choice_does_not_depend_on_the_partitioning(spark, store, production, keyed_expected):
    """The rows shuffled into 5 partitions give the queue of the pandas frame sorted by id (one "partition")."""
    (expected, _), proba, classes = keyed_expected
    by_id = production.drop(columns=["gold"]).sort_values("id").assign(proba=list(proba))
    frame = spark.createDataFrame(by_id.sample(frac=1, random_state=5)).repartition(5)
    spark_queue(
        store,
        "keyed-5",
        rows=frame,
        y_prob="proba",
        key="id",
        classes=classes,
        size=40,
        actor="ana",
        group_column="colour",
        seed=1,
    )
    items, _ = _items(store, "keyed-5")
    assert items == expected
    assert {item.row_key for item in items} <= {str(i) for i in production["id"]}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda rows: rows.limit(0), "data must be a non-empty DataFrame of rows to review"),
        (lambda rows: rows.drop("age"), "data is missing the model's input column(s) age"),
        (lambda rows: rows, "group column 'band' is not a column of the data; it has: colour, year"),
    ],
    ids=["empty", "missing feature", "missing group column"],
)
def test_bad_input_gives_the_pandas_paths_errors(spark, store, production, arrests_model, change, message):
    rows = production.drop(columns=["gold", "id"])
    options = dict(
        model=arrests_model, actor="ana", size=5, group_column="band" if "band" in message else None
    )
    pandas_rows = (
        rows.head(0) if "empty" in message else rows.drop(columns=["age"]) if "age" in message else rows
    )
    for data in (pandas_rows, change(spark.createDataFrame(rows))):
        with pytest.raises(InputError) as raised:
            queue_from_model(store, "refused", data=data, **options)
        assert str(raised.value).startswith(message)


def test_repeated_column_names_are_refused_on_both_paths_before_the_model_runs(spark, store, production):
    rows = production.drop(columns=["gold", "id"])
    pandas_rows = pd.concat([rows, rows[["year"]]], axis=1)
    spark_rows = spark.createDataFrame(rows).select("*", "year")
    for data in (pandas_rows, spark_rows):
        with pytest.raises(InputError, match="^data has duplicate column names: year$"):
            queue_from_model(store, "refused", data=data, model="models:/not-loaded/1", actor="ana", size=5)
    assert "refused" not in {queue.name for queue in store.queues()}


def test_bad_probabilities_on_the_executors_give_the_pandas_paths_error(spark, store, production):
    rows = production.drop(columns=["gold", "id"]).head(50)
    proba = np.column_stack([np.full(50, 1.2), np.full(50, -0.2)])
    with pytest.raises(InputError, match=r"y_prob must lie in \[0, 1\]") as pandas_error:
        queue_for_review(store, "bad", rows=rows, y_prob=proba, classes=["No", "Yes"], size=5, actor="ana")
    frame = spark.createDataFrame(rows.assign(p=list(proba))).repartition(3)
    with pytest.raises(InputError) as spark_error:
        queue_for_review(store, "bad", rows=frame, y_prob="p", classes=["No", "Yes"], size=5, actor="ana")
    assert str(spark_error.value) == str(pandas_error.value)


@pytest.fixture(scope="module")
def validations(spark, arrests_model, arrests_split):
    """The pandas path's and the Spark path's validation of the same real rows (Spark's in four partitions,
    in the pandas frame's order), each as if logged to a run.

    The checks are not what is tested: fairness without sensitive features is skipped, so the Spark
    validation costs only its input checks and the model's scoring.
    """
    _, real, _ = arrests_split
    options = dict(target=ARRESTS_TARGET, checks=["fairness"], log=False)
    results = {
        "pandas": mlflow_hitl.validate(arrests_model, real=real, **options),
        "spark": mlflow_hitl.validate(arrests_model, real=spark.createDataFrame(real), **options),
    }
    return real, {engine: dataclasses.replace(r, run_id="run-1") for engine, r in results.items()}


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"strategy": "margin", "random_share": 0.25, "blind": True, "raters_per_item": 2, "groups": "colour"},
    ],
    ids=["least-confidence", "margin by colour, blind"],
)
def test_a_queue_from_a_spark_validation_holds_the_pandas_validations_items(store, validations, options):
    real, results = validations
    assert set(results["spark"].skipped) == {"fairness"} and results["spark"].scored is not None
    name = f"validated-{options.get('strategy', 'least-confidence')}"
    queues = {}
    for engine, result in results.items():
        groups = options.get("groups")
        engine_options = {
            **options,
            **({"groups": real[groups].to_numpy()} if engine == "pandas" and groups else {}),
        }
        queues[engine] = queue_from_validation(
            store, f"{engine}-{name}", result, size=50, actor="ana", seed=2, **engine_options
        )
    items, _ = _items(store, f"spark-{name}")
    assert items == _items(store, f"pandas-{name}")[0]
    assert len(items) == 50 and {item.reason for item in items} >= {"random-control"}
    assert dataclasses.replace(queues["spark"], id=0, name="", created_at="") == dataclasses.replace(
        queues["pandas"], id=0, name="", created_at=""
    )
    assert queues["spark"].run_id == "run-1" and queues["spark"].blind == bool(options.get("blind"))
    # the reviewer sees the real frame's columns the validation read: features, target, sensitive
    assert set(items[0].payload) == set(real.columns)
    # the validation left nothing cached: the queue scored the real rows again
    assert not results["spark"].scored.rows.is_cached


def test_options_of_a_pandas_frame_are_refused_for_a_spark_validation(store, validations):
    _, results = validations
    for options, message in (
        ({"groups": np.zeros(3)}, "with a Spark DataFrame of rows, groups must name one of its columns"),
        ({"gold": {0: "Yes"}}, "edge_cases and gold are per-row arrays of a pandas frame"),
    ):
        with pytest.raises(InputError, match=f"^{message}"):
            queue_from_validation(store, "refused", results["spark"], size=5, actor="ana", **options)


# -- column names Spark parses specially: a dot, a space, a slash, a backtick -----------------------------

ODD_TARGET = "is.benign"
ODD_GROUP = "size.band `cm`"
ODD_GOLD = "gold.label"
ODD_KEY = "row.id"
# The checks that read Spark columns by name (adversarial reads a seeded sample through the pandas path).
ODD_CHECKS = ["drift", "calibration", "fairness", "generator"]


@pytest.fixture(scope="module")
def odd_names():
    """Breast cancer with the UCI names (spaces), one renamed with a dot, one with a slash, one with a
    backtick; a dotted target, a group column with a dot, a space and backticks; and a pipeline fit on them."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame = load_breast_cancer(as_frame=True).frame
    radius = frame["mean radius"]
    frame = frame[[*frame.columns[:8], "target"]].rename(
        columns={
            "mean radius": "mean.radius",
            "mean area": "area/perimeter",
            "mean texture": "mean `texture`",
            "target": ODD_TARGET,
        }
    )
    frame[ODD_TARGET] = np.where(frame[ODD_TARGET] == 1, "benign", "malignant")
    features = [c for c in frame.columns if c != ODD_TARGET]
    frame[ODD_GROUP] = np.where(radius > 14, "large", "small")
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    return frame, model.fit(frame[features].iloc[::2], frame[ODD_TARGET].iloc[::2]), features


def _rounded(items):
    return [dataclasses.replace(item, confidence=round(item.confidence, 12)) for item in items]


def test_odd_column_names_queue_the_items_the_pandas_frame_queues(spark, store, odd_names):
    """Key, group, gold and feature columns whose names hold dots, spaces, slashes and backticks."""
    frame, model, _ = odd_names
    rows = frame.drop(columns=[ODD_TARGET]).assign(
        **{
            ODD_GOLD: np.where(np.arange(len(frame)) % 7 == 0, "benign", None),
            ODD_KEY: np.random.default_rng(8).permutation(len(frame)) * 3 + 10,
        }
    )
    options = {"model": model, "actor": "ana", "size": 40, "seed": 5, "random_share": 0.2}
    options.update(group_column=ODD_GROUP, gold_column=ODD_GOLD)
    queue_from_model(store, "odd-pandas", data=rows.sort_values(ODD_KEY).set_index(ODD_KEY), **options)
    shuffled = spark.createDataFrame(rows.sample(frac=1, random_state=2)).repartition(3)
    queue_from_model(store, "odd-spark", data=shuffled, key=ODD_KEY, **options)
    (items, gold), (expected, expected_gold) = _items(store, "odd-spark"), _items(store, "odd-pandas")
    # the model reads the rows in other batches: its probabilities may differ in the last bit
    assert (_rounded(items), gold) == (_rounded(expected), expected_gold)
    assert len(items) == 40 and gold and {item.group for item in items} == {"large", "small"}
    assert set(items[0].payload) == set(frame.columns) - {ODD_TARGET}


def test_an_odd_probabilities_column_queues_the_items_the_pandas_arrays_queue(spark, store, odd_names):
    frame, model, features = odd_names
    proba = model.predict_proba(frame[features])
    rows = frame.drop(columns=[ODD_TARGET])
    options = dict(classes=list(model.classes_), size=30, actor="ana", strategy="margin", seed=6)
    queue_for_review(
        store, "odd-y-pandas", rows=rows, y_prob=proba, groups=rows[ODD_GROUP].to_numpy(), **options
    )
    with_proba = spark.createDataFrame(rows.assign(**{"p.roba `x`": list(proba)}))
    spark_queue(store, "odd-y-spark", rows=with_proba, y_prob="p.roba `x`", group_column=ODD_GROUP, **options)
    assert _items(store, "odd-y-spark") == _items(store, "odd-y-pandas")


@pytest.fixture(scope="module")
def odd_validations(spark, odd_names):
    """The checks, on the pandas path and on Spark, of the odd-named data: a third each real, synthetic,
    production (its features); the sensitive column and the target named oddly too."""
    frame, model, features = odd_names
    real, synthetic, production = (frame.iloc[k::3].reset_index(drop=True) for k in range(3))
    production = production[features]
    options = dict(
        target=ODD_TARGET,
        sensitive_features=[ODD_GROUP],
        features=features,
        checks=ODD_CHECKS,
        config={"fairness": {"n_bootstrap": 50}, "drift": {"render_report": False}},
        log=False,
    )
    results = {
        "pandas": mlflow_hitl.validate(
            model, real=real, synthetic=synthetic, production=production, **options
        ),
        "spark": mlflow_hitl.validate(
            model,
            real=spark.createDataFrame(real),
            synthetic=spark.createDataFrame(synthetic),
            production=spark.createDataFrame(production),
            **options,
        ),
    }
    return real, {engine: dataclasses.replace(r, run_id="run-odd") for engine, r in results.items()}


def test_odd_column_names_validate_on_spark_as_on_pandas(odd_validations):
    _, results = odd_validations
    ours, theirs = results["spark"], results["pandas"]
    assert set(ours.checks) == set(theirs.checks) == set(ODD_CHECKS)
    assert {n: c.status for n, c in ours.checks.items()} == {n: c.status for n, c in theirs.checks.items()}
    assert dict(ours.checks["fairness"].metrics) == dict(theirs.checks["fairness"].metrics)
    assert ours.checks["drift"].metrics["drifted_share"] == theirs.checks["drift"].metrics["drifted_share"]
    for metric in ("exact_copy_share", "real_duplicate_share"):
        assert ours.checks["generator"].metrics[metric] == theirs.checks["generator"].metrics[metric]
    assert ours.checks["calibration"].metrics["ece"] == pytest.approx(
        theirs.checks["calibration"].metrics["ece"]
    )


def test_a_queue_from_an_odd_named_spark_validation_holds_the_pandas_items(store, odd_validations):
    real, results = odd_validations
    queue_from_validation(
        store, "odd-v-pandas", results["pandas"], size=30, actor="ana", groups=real[ODD_GROUP].to_numpy()
    )
    queue_from_validation(store, "odd-v-spark", results["spark"], size=30, actor="ana", groups=ODD_GROUP)
    items, _ = _items(store, "odd-v-spark")
    assert _rounded(items) == _rounded(_items(store, "odd-v-pandas")[0]) and len(items) == 30
