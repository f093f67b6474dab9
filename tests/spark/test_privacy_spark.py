"""The exact-copy counts on Spark (row hashes grouped on the executors) equal the pandas path's hash counts,
and the privacy formulas read from them give the pandas path's figures, for every baseline design.

Real data: the arrests data, with a float column that holds missing values, and synthetic sets that copy
some real rows (one copy with -0.0 where the real row has 0.0: the same row once canonicalised).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlflow_hitl.checks._generator import GeneratorConfig
from mlflow_hitl.checks._privacy import assess_privacy, copy_counts
from mlflow_hitl.checks._rows import encode
from mlflow_hitl.errors import InputError
from mlflow_hitl.spark._privacy import exact_copy_counts_spark

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def sets(arrests_split):
    synthetic, real, production = arrests_split

    def with_rate(frame: pd.DataFrame) -> pd.DataFrame:
        rate = (frame["checks"] - 1.0) / frame["age"]  # 0.0 for checks == 1; missing for a few rows
        return frame.assign(rate=rate.where(frame["age"] % 17 != 0))

    synthetic, real = with_rate(synthetic), with_rate(real)
    source, holdout = real.iloc[:1000], real.iloc[1000:]
    copies = source.iloc[:60].copy()
    copies.loc[copies["rate"] == 0.0, "rate"] = -0.0
    synthetic = pd.concat([synthetic, copies, holdout.iloc[:10]], ignore_index=True)
    return synthetic, real, source, holdout


_CASES = {
    "real_vs_itself": {},
    "source_and_holdout": {"source": 2, "holdout": 3},
    "source_only": {"source": 2},
    "holdout_only": {"holdout": 3},
}


@pytest.fixture(scope="module")
def counted(spark, sets):
    """Each case's counts from Spark, the synthetic set in 1 and in 5 partitions for the first case."""
    frames = [spark.createDataFrame(frame) for frame in sets]
    columns = list(sets[1].columns)
    out = {}
    for case, extra in _CASES.items():
        kwargs = {name: frames[i] for name, i in extra.items()}
        out[case] = exact_copy_counts_spark(frames[0], frames[1], columns=columns, **kwargs)
    out["five_partitions"] = exact_copy_counts_spark(
        frames[0].repartition(5), frames[1].repartition(5), columns=columns
    )
    return out


def _pandas(sets, case):
    synthetic, real, source, holdout = sets
    extra = {name: sets[i] for name, i in _CASES[case].items()}
    return encode(synthetic, real, extra.get("source"), extra.get("holdout"))


@pytest.mark.parametrize("case", list(_CASES))
def test_the_counts_equal_the_pandas_paths(sets, counted, case):
    expected = copy_counts(_pandas(sets, case))
    assert counted[case] == expected
    assert expected.synthetic_in_real >= 70  # the copies (and any rows equal by chance) are found
    if expected.pool is not None:  # (with source only, every source row is also a real row: none unique)
        assert expected.pool.unique_training_copied + expected.pool.unique_unseen_copied > 0


def test_partitioning_does_not_change_the_counts(counted):
    assert counted["five_partitions"] == counted["real_vs_itself"]


def test_a_negative_zero_copy_is_a_copy(sets, counted):
    synthetic = sets[0]
    assert (np.signbit(synthetic["rate"]) & (synthetic["rate"] == 0)).any()
    expected = copy_counts(_pandas(sets, "real_vs_itself"))
    assert counted["real_vs_itself"].synthetic_in_real == expected.synthetic_in_real


@pytest.mark.parametrize("case", ["real_vs_itself", "source_and_holdout"])
def test_the_privacy_figures_from_spark_counts_equal_the_pandas_paths(sets, counted, case):
    data = _pandas(sets, case)
    cfg = GeneratorConfig(max_dcr_rows=500, max_reference_rows=2000)
    ours = assess_privacy(data, cfg, np.random.default_rng(0), counts=counted[case])
    theirs = assess_privacy(data, cfg, np.random.default_rng(0))
    assert ours.exact_share == theirs.exact_share and ours.real_dup_share == theirs.real_dup_share
    assert ours.baseline == theirs.baseline
    assert ours.source_copies == theirs.source_copies


def test_every_real_row_in_source_is_refused_as_in_pandas(spark, sets):
    _, real, _, _ = sets
    data = encode(real, real, real)
    counts = exact_copy_counts_spark(
        spark.createDataFrame(real), spark.createDataFrame(real), columns=list(real.columns), source=real
    )
    cfg = GeneratorConfig(max_dcr_rows=200, max_reference_rows=500)
    for given in (None, counts):
        with pytest.raises(InputError, match="every real row is also in source"):
            assess_privacy(data, cfg, np.random.default_rng(0), counts=given)


def test_a_missing_column_is_named(spark, sets):
    synthetic, real, _, _ = sets
    with pytest.raises(InputError, match=r"synthetic is missing column\(s\) nope"):
        exact_copy_counts_spark(
            spark.createDataFrame(synthetic), spark.createDataFrame(real), columns=["age", "nope"]
        )
