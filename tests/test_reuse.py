"""validate reuses drift and generator results for identical data, and only for identical data."""

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

import mlflow_hitl
from conftest import ARRESTS_SENSITIVE, ARRESTS_TARGET, FAST
from hitl_support import validate_split
from mlflow_hitl import _reuse
from mlflow_hitl._reuse import Fingerprints


def _validate(model, split, **kwargs):
    kwargs.setdefault("config", FAST)
    return validate_split(model, split, **kwargs)


def test_a_second_model_on_the_same_data_reuses_the_data_only_checks(arrests_model, arrests_split):
    first = _validate(arrests_model, arrests_split)
    assert "reused" not in first.details
    synthetic = arrests_split[0]
    other = clone(arrests_model).set_params(logisticregression__C=0.01)
    other.fit(synthetic.drop(columns=[ARRESTS_TARGET]), synthetic[ARRESTS_TARGET])
    second = _validate(other, arrests_split)
    assert second.details["reused"] == ["drift", "generator"]
    assert second.checks["drift"] is first.checks["drift"]
    assert second.checks["generator"] is first.checks["generator"]
    # The model's own checks are recomputed: a different model gives different predictions.
    assert second.checks["calibration"].metrics["ece"] != first.checks["calibration"].metrics["ece"]


def test_the_reused_result_equals_a_fresh_computation(arrests_model, arrests_split):
    _validate(arrests_model, arrests_split)
    reused = _validate(arrests_model, arrests_split)
    fresh = _validate(arrests_model, arrests_split, reuse=False)
    assert reused.details["reused"] == ["drift", "generator"] and "reused" not in fresh.details
    for name in ("drift", "generator"):
        assert fresh.checks[name] is not reused.checks[name]
        assert fresh.checks[name].to_dict() == reused.checks[name].to_dict()
        assert fresh.checks[name].artifacts.keys() == reused.checks[name].artifacts.keys()


def test_any_change_to_the_data_or_the_settings_recomputes(arrests_model, arrests_split):
    synthetic, real, production = arrests_split
    _validate(arrests_model, arrests_split)

    one_cell = synthetic.copy()
    numeric = one_cell.select_dtypes("number").columns[0]
    one_cell.iloc[0, one_cell.columns.get_loc(numeric)] += 1
    changed = _validate(arrests_model, (one_cell, real, production))
    assert changed.details.get("reused") is None

    new_production = production.iloc[
        ::-1
    ]  # same rows, new order: drift is the same, but it is not the same frame
    assert _validate(arrests_model, (synthetic, real, new_production)).details["reused"] == ["generator"]

    stricter = {**FAST, "generator": {"max_c2st_auc": 0.7}}
    assert _validate(arrests_model, arrests_split, config=stricter).details["reused"] == ["drift"]


def test_object_columns_that_are_not_all_strings_are_never_reused():
    # pandas hashes 1, "1" and True alike, so such a column would make different frames look equal.
    mixed = pd.DataFrame({"code": pd.Series([1, "1", True], dtype=object), "x": [0.0, 1.0, 2.0]})
    strings = pd.DataFrame({"code": pd.Series(["1", "1", "1"], dtype=object), "x": [0.0, 1.0, 2.0]})
    assert Fingerprints(mixed).of(["code", "x"]) is None
    assert Fingerprints(mixed).of(["x"]) == Fingerprints(strings).of(["x"])
    assert Fingerprints(strings).of(["code", "x"]) != Fingerprints(strings).of(["x", "code"])
    as_category = strings.astype({"code": "category"})
    assert Fingerprints(as_category).of(["code"]) != Fingerprints(strings).of(["code"])  # dtype is part of it


def test_the_store_keeps_only_the_most_recent_results():
    computed = []

    def compute(i):
        def run():
            computed.append(i)
            return mlflow_hitl.CheckResult(name="drift", status=mlflow_hitl.Status.PASSED)

        return run

    for i in range(_reuse._MAX_ENTRIES + 1):
        _reuse.reuse_or_compute(("k", i), compute(i))
    assert _reuse.reuse_or_compute(("k", _reuse._MAX_ENTRIES), compute(-1))[1] is True
    assert _reuse.reuse_or_compute(("k", 0), compute(0))[1] is False  # the oldest was dropped
    assert computed == [*range(_reuse._MAX_ENTRIES + 1), 0]
    assert _reuse.reuse_or_compute(None, compute(7))[1] is False  # no key: never stored


@pytest.mark.parametrize("bad", [[1, 2], {"a": 1}])
def test_unhashable_values_are_simply_not_reused(bad):
    frame = pd.DataFrame({"cell": pd.Series([bad, bad], dtype=object), "x": np.arange(2.0)})
    assert Fingerprints(frame).of(["cell"]) is None


def _recipe_fingerprint(frame, columns):
    """The recipe in docs/quickstart.md, written out independently of mlflow_hitl._reuse."""
    import hashlib

    digests = []
    for column in columns:
        series = frame[column]
        row_hashes = pd.util.hash_pandas_object(series, index=False).to_numpy()
        digest = hashlib.sha256(f"{column!r}\0{series.dtype}\0".encode())
        digest.update(row_hashes.astype("<u8").tobytes())
        digests.append(digest.hexdigest())
    return hashlib.sha256("\0".join(digests).encode()).hexdigest()


def test_the_evidence_names_the_data_by_a_digest_anyone_can_recompute(arrests_model, arrests_split):
    synthetic, real, production = arrests_split
    result = _validate(arrests_model, arrests_split, checks=["calibration"], reuse=False)
    fingerprints = result.details["fingerprints"]
    features = result.details["features"]
    read = list(dict.fromkeys([*features, ARRESTS_TARGET, *ARRESTS_SENSITIVE]))
    assert fingerprints["real"] == _recipe_fingerprint(real, read)
    assert fingerprints["synthetic"] == _recipe_fingerprint(synthetic, read)
    assert fingerprints["production"] == _recipe_fingerprint(production, features)

    changed = real.copy()
    changed.loc[0, "colour"] = "White" if changed.loc[0, "colour"] != "White" else "Black"
    again = _validate(arrests_model, (synthetic, changed, production), checks=["calibration"])
    assert again.details["fingerprints"]["real"] != fingerprints["real"]
    assert again.details["fingerprints"]["synthetic"] == fingerprints["synthetic"]
    alone = mlflow_hitl.validate(arrests_model, real=real, target=ARRESTS_TARGET, checks=["calibration"])
    assert alone.details["fingerprints"]["synthetic"] is None
