"""The generator check's privacy baseline, on real data with known answers (seeded).

Synthetic sets are made of real rows, so the truth is known: rows of the same population the
generator never saw (an honest, perfect generator), plus copies or jittered copies of its training rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import hypergeom
from sklearn.datasets import load_breast_cancer, load_wine
from sklego.datasets import load_arrests

from mlflow_hitl import Status
from mlflow_hitl.checks import generator_check
from mlflow_hitl.errors import ConfigError, InputError


def _thirds(frame: pd.DataFrame, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(source the generator learned from, holdout it never saw, fresh rows an honest generator makes)."""
    order = np.random.default_rng(seed).permutation(len(frame))
    third = len(frame) // 3
    parts = (order[:third], order[third : 2 * third], order[2 * third : 3 * third])
    return tuple(frame.iloc[p].reset_index(drop=True) for p in parts)  # type: ignore[return-value]


@pytest.fixture(scope="module")
def arrests() -> pd.DataFrame:
    return load_arrests(as_frame=True)


@pytest.fixture(scope="module")
def cancer() -> pd.DataFrame:
    return load_breast_cancer(as_frame=True).frame


@pytest.fixture(scope="module")
def wine() -> pd.DataFrame:
    return load_wine(as_frame=True).frame


def _with_copies(synthetic: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """``synthetic`` with its first rows replaced by ``rows`` (verbatim copies)."""
    out = synthetic.copy()
    out.iloc[: len(rows)] = rows.to_numpy()
    return out


def _privacy_failures(result) -> set[str]:
    return {r["metric"] for r in result.details["failed_rules"]} & {"exact_copy_excess", "near_copy_excess"}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_honest_generator_on_data_full_of_duplicates_does_not_fail_privacy(arrests, seed):
    source, holdout, fresh = _thirds(arrests, seed)
    result = generator_check(fresh, holdout, source=source)
    assert result.metrics["exact_copy_share"] > 0.3  # many natural copies...
    assert _privacy_failures(result) == set(), result.summary  # ...and no excess over the baseline
    assert result.status is Status.PASSED, result.summary
    assert result.details["privacy_baseline"]["design"] == "training_vs_unseen"
    assert "no excess exact copying" in result.summary


def test_memorised_rows_are_caught_among_natural_duplicates(arrests):
    """2% of synthetic rows copy training rows that no other real row repeats (what a memorising generator leaks)."""
    source, holdout, fresh = _thirds(arrests)
    pool = pd.concat([source, holdout])
    unique_in_source = source[~pool.duplicated(keep=False).to_numpy()[: len(source)]]
    leaked = unique_in_source.sample(n=round(0.02 * len(fresh)), random_state=0)
    result = generator_check(_with_copies(fresh, leaked), holdout, source=source)
    assert result.status is Status.FAILED
    assert "exact_copy_excess" in _privacy_failures(result)
    assert result.metrics["exact_copy_p_value"] < 0.05  # privacy_alpha
    assert result.metrics["source_copied_rows"] >= len(leaked)
    assert "excess exact copying" in result.summary


@pytest.mark.parametrize("data", ["cancer", "wine"])
def test_copies_are_caught_where_real_rows_rarely_repeat(data, request):
    """No source or holdout: the copies are judged against real rows among themselves."""
    frame = request.getfixturevalue(data)
    order = np.random.default_rng(0).permutation(len(frame))
    half = len(frame) // 2
    synthetic, real = frame.iloc[order[:half]].copy(), frame.iloc[order[half:]].reset_index(drop=True)
    k = max(round(0.02 * len(synthetic)), 5)  # wine: 89 rows, so 2% is under two rows; five are needed
    result = generator_check(_with_copies(synthetic, real.iloc[:k]), real, config={"min_rows": 20})
    assert result.details["privacy_baseline"]["design"] == "real_vs_itself"
    assert "exact_copy_excess" in _privacy_failures(result)
    assert result.metrics["exact_copy_excess"] == pytest.approx(k / len(synthetic))


def test_copies_of_the_source_are_caught_on_continuous_data(cancer):
    source, holdout, fresh = _thirds(cancer)
    k = round(0.04 * len(fresh))
    result = generator_check(_with_copies(fresh, source.iloc[:k]), holdout, source=source)
    assert "exact_copy_excess" in _privacy_failures(result)
    assert result.metrics["source_exact_copy_share"] == pytest.approx(k / len(fresh))
    assert result.metrics["source_copied_rows"] == k


def test_jittered_copies_are_caught_by_the_distance_baseline(cancer):
    source, holdout, fresh = _thirds(cancer)
    k = round(0.1 * len(fresh))
    rng = np.random.default_rng(7)
    features = cancer.columns.drop("target")
    jittered = source.iloc[:k].copy()
    jittered[features] += 1e-3 * source[features].std().to_numpy() * rng.normal(size=(k, len(features)))
    result = generator_check(_with_copies(fresh, jittered), holdout, source=source)
    assert result.metrics["source_exact_copy_share"] == 0.0
    assert _privacy_failures(result) == {"near_copy_excess"}
    assert result.metrics["near_copy_p_value"] < 0.01


def test_honest_generator_on_continuous_data_passes(cancer):
    source, holdout, fresh = _thirds(cancer)
    result = generator_check(fresh, holdout, source=source)
    assert result.status is Status.PASSED, result.summary


def test_small_baseline_is_insufficient_evidence_with_the_sizes(arrests):
    source, holdout, fresh = _thirds(arrests)
    result = generator_check(fresh, holdout, source=source.head(30))
    assert result.status is Status.INSUFFICIENT_EVIDENCE
    assert not result.passed
    assert "30 training rows" in result.summary
    assert "exact_copy_p_value" not in result.metrics
    assert result.details["privacy_baseline"]["sizes"]["training_rows"] == 30


def test_the_exact_test_matches_an_independent_computation(arrests):
    """Counts recomputed with pandas merges; the p-value with scipy's hypergeometric distribution."""
    source, holdout, fresh = _thirds(arrests, seed=3)
    result = generator_check(fresh, holdout, source=source)
    table = result.details["privacy_baseline"]["exact"]
    pool = pd.concat([source, holdout], ignore_index=True)
    unique = pool[~pool.duplicated(keep=False)]
    reproduced = unique.merge(fresh.drop_duplicates(), how="left", indicator=True)["_merge"].eq("both")
    is_source = unique.index < len(source)
    assert table["tested_rows"] == is_source.sum() and table["baseline_rows"] == (~is_source).sum()
    assert table["tested_hits"] == reproduced[is_source].sum()
    assert table["baseline_hits"] == reproduced[~is_source].sum()
    n, hits = len(unique), reproduced.sum()
    expected = hypergeom.sf(table["tested_hits"] - 1, n, hits, table["tested_rows"])
    assert result.metrics["exact_copy_p_value"] == pytest.approx(expected, rel=1e-9)
    assert result.metrics["tested_exact_copy_share"] == pytest.approx(
        table["tested_hits"] / table["tested_rows"]
    )


@pytest.mark.parametrize(
    ("argument", "make", "message"),
    [
        ("holdout", lambda f: f.drop(columns="age"), r"holdout is missing column\(s\) age"),
        ("source", lambda f: f.assign(age=np.nan), r"source column\(s\) age hold only missing values"),
        ("holdout", lambda f: f.assign(age=f["age"].astype(str)), r"age: holdout object, real int64"),
        ("holdout", lambda f: f.to_numpy(), r"holdout must be a pandas DataFrame"),
    ],
    ids=["missing-column", "all-nan", "kind", "not-a-frame"],
)
def test_bad_holdout_or_source(arrests, argument, make, message):
    source, holdout, fresh = _thirds(arrests)
    with pytest.raises(InputError, match=message):
        generator_check(fresh, holdout, **{argument: make(source)})


def test_real_that_is_the_source_cannot_be_the_baseline(arrests):
    source, _, fresh = _thirds(arrests)
    with pytest.raises(InputError, match="every real row is also in source.*pass holdout="):
        generator_check(fresh, source, source=source)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"privacy_alpha": 0.0}, r"privacy_alpha.*strictly between 0 and 1"),
        ({"max_exact_copy_excess": 1.5}, r"max_exact_copy_excess.*\[0, 1\]"),
        ({"max_near_copy_share": 2}, r"max_near_copy_share.*\[0, 1\]"),
    ],
)
def test_bad_privacy_settings(arrests, config, message):
    with pytest.raises(ConfigError, match=message):
        generator_check(arrests.head(100), arrests.tail(100), config=config)


def test_the_absolute_limit_is_an_explicit_opt_in(arrests):
    source, holdout, fresh = _thirds(arrests)
    result = generator_check(fresh, holdout, source=source, config={"max_exact_copy_share": 0.01})
    assert {r["metric"] for r in result.details["failed_rules"]} == {"exact_copy_share"}
