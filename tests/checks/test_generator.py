"""generator_check: fidelity, classifier two-sample test and privacy, on real data with known answers.

"Synthetic" sets are built from real data so the right answer is known: an independent half of the
real rows (indistinguishable, no leaks), the same with injected copies or jittered copies of real rows
(known leak share), and a shifted or de-noised half (detectable). Fidelity is cross-checked against
``scipy.stats.ks_2samp`` and a pandas TVD; distances against ``scipy.spatial.cKDTree``.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.spatial import cKDTree
from scipy.stats import ks_2samp
from sklearn.datasets import load_breast_cancer
from sklego.datasets import load_arrests

from mlflow_hitl import Status
from mlflow_hitl.checks import generator_check
from mlflow_hitl.config import GeneratorConfig
from mlflow_hitl.errors import ConfigError, InputError


def _halves(frame: pd.DataFrame, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    order = np.random.default_rng(seed).permutation(len(frame))
    half = len(frame) // 2
    return (
        frame.iloc[order[:half]].reset_index(drop=True),
        frame.iloc[order[half:]].reset_index(drop=True),
    )


@pytest.fixture(scope="module")
def cancer() -> pd.DataFrame:
    return load_breast_cancer(as_frame=True).frame


@pytest.fixture(scope="module")
def arrests() -> pd.DataFrame:
    return load_arrests(as_frame=True)


@pytest.fixture(scope="module")
def cancer_halves(cancer) -> tuple[pd.DataFrame, pd.DataFrame]:
    return _halves(cancer)


# These tests are about realism and copy counting. At these sizes (284 or 1,742 rows a half) the privacy
# tests catch an excess copying of 1.8-3.5 % at best, so at the default ``max_undetectable_excess``
# (0.02) an honest set is insufficient evidence (tests/checks/test_privacy.py asserts that); a team
# that accepts a 5 % blind spot says so, as here.
_BLIND_SPOT_5 = {"max_undetectable_excess": 0.05}


@pytest.fixture(scope="module")
def independent_cancer(cancer_halves):
    synthetic, real = cancer_halves
    return generator_check(synthetic, real, config=_BLIND_SPOT_5)


# --- realistic stand-ins pass ------------------------------------------------------------------


def test_independent_half_is_indistinguishable_and_passes(independent_cancer):
    result = independent_cancer
    assert result.status is Status.PASSED, result.summary
    assert abs(result.metrics["c2st_auc"] - 0.5) < 0.15
    assert result.metrics["fidelity"] > 0.9
    assert result.metrics["correlation_similarity"] > 0.9
    assert result.metrics["exact_copy_share"] == 0.0
    assert result.metrics["near_copy_share"] < 0.05
    assert result.details["failed_rules"] == []
    assert "passes" in result.summary


def test_result_shape(independent_cancer, cancer):
    result = independent_cancer
    assert result.name == "generator"
    assert set(result.artifacts) == {"fidelity.png", "dcr.png"}
    assert all(png.startswith(b"\x89PNG") for png in result.artifacts.values())
    assert json.loads(result.to_json())["status"] == "passed"
    per_column = {k for k in result.metrics if k.endswith(".fidelity")}
    assert len(per_column) == cancer.shape[1]
    assert "mean_radius.fidelity" in per_column
    assert result.thresholds["max_c2st_auc"] == GeneratorConfig().max_c2st_auc
    sizes = result.details["sizes"]
    assert sizes["rows_synthetic"] == 284 and sizes["rows_real"] == 285
    assert sizes["c2st_rows_per_set"] == 284 and not sizes["dcr_synthetic_sampled"]
    assert len(result.details["columns"]) == cancer.shape[1]


def test_same_seed_same_numbers(cancer_halves, independent_cancer):
    again = generator_check(*cancer_halves)
    assert dict(again.metrics) == dict(independent_cancer.metrics)


def test_categorical_independent_half(arrests):
    """Low-cardinality data: indistinguishable, but equal rows occur naturally; the baseline says so."""
    synthetic, real = _halves(arrests)
    result = generator_check(synthetic, real, config=_BLIND_SPOT_5)
    assert result.metrics["c2st_auc"] < 0.65
    assert result.metrics["fidelity"] > 0.95
    expected_copies = (
        synthetic.merge(real.drop_duplicates(), how="left", indicator=True)["_merge"].eq("both").mean()
    )
    assert result.metrics["exact_copy_share"] == pytest.approx(expected_copies)
    assert result.metrics["real_duplicate_share"] == pytest.approx(real.duplicated(keep=False).mean())
    # Natural duplicates are judged against the baseline, not an absolute limit: no failure.
    assert result.status is Status.PASSED, result.summary
    assert result.details["failed_rules"] == []
    assert result.metrics["exact_copy_share"] > 0.3  # many equal rows, all natural
    assert result.metrics["exact_copy_p_value"] >= 0.05
    assert "no excess exact copying" in result.summary
    assert "copies can be natural" not in result.summary


# --- fidelity against reference implementations ------------------------------------------------


def test_numeric_fidelity_matches_scipy_ks(cancer_halves):
    synthetic, real = (frame.copy() for frame in cancer_halves)
    rng = np.random.default_rng(3)
    synthetic = synthetic.mask(rng.random(synthetic.shape) < 0.1)  # NaN is left out of KS
    synthetic["mean radius"] = synthetic["mean radius"] * 1.2
    result = generator_check(synthetic, real)
    expected = {
        column: 1.0 - ks_2samp(synthetic[column].dropna(), real[column].dropna()).statistic
        for column in real.columns
    }
    for column, value in expected.items():
        assert result.metrics[f"{column.replace(' ', '_')}.fidelity"] == pytest.approx(value, abs=1e-12)
    assert result.metrics["fidelity"] == pytest.approx(np.mean(list(expected.values())))
    assert result.details["columns"][0]["missing_synthetic"] > 0.05


def _tvd(a: pd.Series, b: pd.Series) -> float:
    p = a.value_counts(normalize=True, dropna=False)
    q = b.value_counts(normalize=True, dropna=False)
    categories = p.index.union(q.index)
    return 0.5 * (p.reindex(categories, fill_value=0) - q.reindex(categories, fill_value=0)).abs().sum()


def test_categorical_fidelity_matches_pandas_tvd(arrests):
    synthetic, real = (frame.copy() for frame in _halves(arrests, seed=1))
    synthetic.loc[synthetic.index[:400], "colour"] = "Other"  # a category real never has
    synthetic.loc[synthetic.index[400:500], "sex"] = np.nan  # missing is a category of its own
    synthetic["citizen"] = synthetic["citizen"].astype("category")  # dtype differences do not matter
    result = generator_check(synthetic, real)
    for column in ["released", "colour", "sex", "employed", "citizen"]:
        assert result.metrics[f"{column.replace(' ', '_')}.fidelity"] == pytest.approx(
            1.0 - _tvd(synthetic[column], real[column])
        )
    assert result.metrics["colour.fidelity"] < 0.9


# --- leaks are caught -------------------------------------------------------------------------


@pytest.mark.parametrize("share", [0.02, 0.1, 0.3])
def test_injected_exact_copies_are_counted_exactly(cancer_halves, share):
    synthetic, real = (frame.copy() for frame in cancer_halves)
    k = round(share * len(synthetic))
    synthetic.iloc[:k] = real.iloc[:k].to_numpy()
    result = generator_check(synthetic, real)
    assert result.metrics["exact_copy_share"] == pytest.approx(k / len(synthetic))
    assert result.metrics["near_copy_share"] >= k / len(synthetic)
    if share > 0.05:  # more than 5% of the distances are zero
        assert result.metrics["dcr_p05"] == pytest.approx(0.0, abs=1e-6)
    assert result.status is Status.FAILED
    failed = {r["metric"]: r for r in result.details["failed_rules"]}
    # Continuous data: real rows never repeat each other, so every copy is excess copying.
    assert result.metrics["real_duplicate_share"] == 0.0
    assert failed["exact_copy_excess"]["value"] == pytest.approx(k / len(synthetic))
    assert failed["exact_copy_excess"]["p_value"] < 0.05


def test_samples_are_capped_but_copies_are_counted_on_every_row(cancer_halves):
    synthetic, real = (frame.copy() for frame in cancer_halves)
    synthetic.iloc[:20] = real.iloc[:20].to_numpy()
    result = generator_check(synthetic, real, config={"max_rows": 100, "max_dcr_rows": 120})
    sizes = result.details["sizes"]
    assert sizes["c2st_rows_per_set"] == 100
    assert sizes["dcr_synthetic_rows"] == 120 and sizes["dcr_synthetic_sampled"]
    assert sizes["dcr_real_baseline_rows"] == 120 and sizes["dcr_real_reference_rows"] == len(real)
    assert result.metrics["exact_copy_share"] == pytest.approx(20 / len(synthetic))


def test_jittered_copies_are_near_copies(cancer_halves):
    synthetic, real = (frame.copy() for frame in cancer_halves)
    k = 57  # 20% of the synthetic rows
    rng = np.random.default_rng(7)
    features = real.columns.drop("target")
    jitter = 1e-3 * real[features].std().to_numpy() * rng.normal(size=(k, len(features)))
    synthetic.loc[: k - 1, features] = real.loc[: k - 1, features].to_numpy() + jitter
    synthetic.loc[: k - 1, "target"] = real.loc[: k - 1, "target"].to_numpy()
    result = generator_check(synthetic, real)
    assert result.metrics["exact_copy_share"] == 0.0
    assert result.metrics["near_copy_share"] >= k / len(synthetic)
    assert result.status is Status.FAILED
    assert "near_copy_excess" in {r["metric"] for r in result.details["failed_rules"]}


def test_distances_match_kdtree(cancer_halves):
    synthetic, real = cancer_halves
    result = generator_check(synthetic, real, config={"near_copy_quantile": 0.05})
    mean, std = real.mean(), real.std(ddof=0)
    tree = cKDTree(((real - mean) / std).to_numpy())
    dcr = tree.query(((synthetic - mean) / std).to_numpy(), k=1)[0]
    baseline = tree.query(((real - mean) / std).to_numpy(), k=2)[0][:, 1]
    assert result.metrics["dcr_median"] == pytest.approx(np.median(dcr), rel=1e-6)
    assert result.metrics["dcr_p05"] == pytest.approx(np.quantile(dcr, 0.05), rel=1e-6)
    threshold = np.quantile(baseline, 0.05)
    assert result.details["near_copy_distance"] == pytest.approx(threshold, rel=1e-6)
    assert result.metrics["near_copy_share"] == pytest.approx(np.mean(dcr < threshold))


# --- unrealistic synthetic sets are detected ---------------------------------------------------


def _denoised(frame: pd.DataFrame) -> pd.DataFrame:
    """Each feature replaced by its projection on the top two principal components: 'too clean'."""
    features = frame.columns.drop("target")
    x = frame[features].to_numpy()
    centre, scale = x.mean(axis=0), x.std(axis=0)
    z = (x - centre) / scale
    u, s, vt = np.linalg.svd(z, full_matrices=False)
    clean = (u[:, :2] * s[:2]) @ vt[:2] * scale + centre
    out = frame.copy()
    out[features] = clean
    return out


def _shifted(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    out["worst area"] = out["worst area"] + out["worst area"].std()
    return out


@pytest.mark.parametrize("make", [_denoised, _shifted], ids=["too-clean", "shifted"])
def test_unrealistic_synthetic_set_is_detected(cancer_halves, make):
    synthetic, real = cancer_halves
    result = generator_check(make(synthetic), real)
    assert result.metrics["c2st_auc"] > 0.8
    assert result.status is Status.FAILED
    assert "c2st_auc" in {r["metric"] for r in result.details["failed_rules"]}
    if make is _shifted:
        assert result.details["c2st_top_features"][0]["column"] == "worst area"
        assert result.metrics["worst_area.fidelity"] < 0.7


# --- sizes, options, bad input -----------------------------------------------------------------


def test_too_few_rows_is_insufficient_evidence(cancer_halves):
    synthetic, real = cancer_halves
    result = generator_check(synthetic.head(30), real)
    assert result.status is Status.INSUFFICIENT_EVIDENCE
    assert "30 synthetic" in result.summary
    assert result.details["sizes"]["rows_synthetic"] == 30
    assert not result.passed


def test_columns_selects_the_compared_subset(cancer_halves):
    synthetic, real = cancer_halves
    synthetic = synthetic.assign(generator_id=1)
    result = generator_check(synthetic, real, columns=["mean radius", "mean texture"])
    assert {k for k in result.metrics if k.endswith(".fidelity")} == {
        "mean_radius.fidelity",
        "mean_texture.fidelity",
    }


def test_metric_keys_are_sanitised():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {"a#b": rng.normal(size=200), "a$b": rng.normal(size=200), "c": rng.normal(size=200)}
    )
    result = generator_check(frame.iloc[:100], frame.iloc[100:])
    assert {"a_b.fidelity", "a_b_2.fidelity", "c.fidelity"} <= set(result.metrics)


@pytest.fixture
def small() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"x": rng.normal(size=100), "y": rng.choice(["a", "b"], size=100)})


@pytest.mark.parametrize(
    ("make_synthetic", "make_real", "columns", "message"),
    [
        (lambda f: f.assign(z=1), lambda f: f, None, r"only in synthetic: z; only in real: -"),
        (lambda f: f, lambda f: f.drop(columns="y"), None, r"only in synthetic: y"),
        (lambda f: f.iloc[:0], lambda f: f, None, r"synthetic has 0 row"),
        (lambda f: f, lambda f: f.assign(x=np.nan), None, r"real column\(s\) x hold only missing values"),
        (lambda f: f.assign(x=f["x"].astype(str)), lambda f: f, None, r"x: synthetic object, real float64"),
        (lambda f: f, lambda f: f.assign(y=1), None, r"y: synthetic object, real int64"),
        (lambda f: f.to_numpy(), lambda f: f, None, r"synthetic must be a pandas DataFrame"),
        (lambda f: f, lambda f: f, ["x", "w"], r"synthetic is missing column\(s\) w"),
    ],
    ids=[
        "extra-column",
        "missing-column",
        "empty",
        "all-nan",
        "dtype-str",
        "dtype-int",
        "not-a-frame",
        "unknown-column",
    ],
)
def test_bad_input(small, make_synthetic, make_real, columns, message):
    with pytest.raises(InputError, match=message):
        generator_check(make_synthetic(small), make_real(small), columns=columns)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"near_copy_quantile": 1.5}, r"near_copy_quantile.*\[0, 1\]"),
        ({"min_rows": 2}, r"min_rows >= 6"),
        ({"max_dcr_rows": 10}, r"max_dcr_rows >= min_rows"),
        ({"max_auc": 0.7}, r"unknown setting 'max_auc'.*max_c2st_auc"),
    ],
)
def test_bad_config(small, config, message):
    with pytest.raises(ConfigError, match=message):
        generator_check(small, small, config=config)


@pytest.mark.parametrize("with_gaps", [False, True])
def test_correlation_similarity_matches_pandas_pairwise_correlations(cancer_halves, with_gaps):
    synthetic, real = (frame.iloc[:, :6].copy() for frame in cancer_halves)
    synthetic["constant"] = real["constant"] = 1.0  # pairs with a constant column are left out
    if with_gaps:  # pairwise-complete rows, as pandas computes them
        synthetic.iloc[::7, 0] = np.nan
        real.iloc[::5, 3] = np.nan
    upper = np.triu_indices(synthetic.shape[1], k=1)
    gaps = np.abs(synthetic.corr().to_numpy()[upper] - real.corr().to_numpy()[upper])
    expected = 1.0 - gaps[np.isfinite(gaps)].mean() / 2.0
    result = generator_check(synthetic, real, config={"min_rows": 20})
    assert result.metrics["correlation_similarity"] == pytest.approx(expected, rel=1e-12)


def test_a_column_of_unhashable_values_is_a_clear_input_error():
    rng = np.random.default_rng(0)

    def frame():
        return pd.DataFrame({"x": rng.normal(size=50), "tags": pd.Series([[1, 2]] * 50, dtype=object)})

    with pytest.raises(InputError, match="column 'tags' holds values that cannot be compared as categories"):
        generator_check(frame(), frame(), config={"min_rows": 20})
