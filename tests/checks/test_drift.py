"""Drift: our vectorised engine must reach evidently 0.7's verdicts, with the same tests and scores.

The reference implementation is evidently's ``Report([DataDriftPreset()])``; each per-column verdict
is read from its snapshot (``ValueDrift`` metrics for the score, the per-column "drift" tests for
the verdict), never from our own output.
"""

from __future__ import annotations

import json
import re
import warnings

import numpy as np
import pandas as pd
import pytest
from evidently import Report
from evidently.presets import DataDriftPreset
from scipy import stats
from sklearn.datasets import load_breast_cancer
from sklego.datasets import load_arrests

from mlflow_hitl import Status
from mlflow_hitl.checks import drift_check, drift_table
from mlflow_hitl.checks._drift_report import evidently_drift_share
from mlflow_hitl.config import DriftConfig
from mlflow_hitl.errors import ConfigError, InputError

# evidently's ValueDrift config names the test by its display name.
_EVIDENTLY_NAMES = {
    "K-S p_value": "ks",
    "chi-square p_value": "chisquare",
    "Z-test p_value": "z",
    "Wasserstein distance (normed)": "wasserstein",
    "Jensen-Shannon distance": "jensenshannon",
}
_NO_HTML = DriftConfig(render_report=False)


def evidently_table(reference: pd.DataFrame, current: pd.DataFrame) -> pd.DataFrame:
    """evidently's per-column test, threshold, score and verdict, indexed by column."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        found = Report([DataDriftPreset()], include_tests=True).run(current, reference).dict()
    rows = {
        m["config"]["column"]: {
            "stattest": _EVIDENTLY_NAMES[m["config"]["method"]],
            "threshold": m["config"]["threshold"],
            "score": float(m["value"]),
        }
        for m in found["metrics"]
        if m["config"]["type"] == "evidently:metric_v2:ValueDrift"
    }
    for test in found["tests"]:
        if test["id"] == "drift":
            rows[test["metric_config"]["params"]["column"]]["drifted"] = test["status"] == "FAIL"
    return pd.DataFrame.from_dict(rows, orient="index")


def assert_agrees_with_evidently(reference: pd.DataFrame, current: pd.DataFrame) -> pd.DataFrame:
    ours = drift_table(reference, current).set_index("column")
    theirs = evidently_table(reference, current)
    assert sorted(theirs.index) == sorted(ours.index)
    theirs = theirs.loc[ours.index]
    assert ours["stattest"].tolist() == theirs["stattest"].tolist()
    np.testing.assert_array_equal(ours["threshold"].to_numpy(), theirs["threshold"].to_numpy())
    # Tiny p-values come from 1 - cdf, which only resolves ~1e-16: compare those absolutely.
    np.testing.assert_allclose(ours["score"], theirs["score"], rtol=1e-6, atol=1e-12)
    assert ours["drifted"].astype(bool).tolist() == theirs["drifted"].tolist()
    return ours


# --------------------------------------------------------------------------- data


def _halves(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    return frame.iloc[::2].reset_index(drop=True), frame.iloc[1::2].reset_index(drop=True)


def _breast_cancer() -> pd.DataFrame:
    return load_breast_cancer(as_frame=True).frame


def _arrests() -> pd.DataFrame:
    return load_arrests(as_frame=True)


def _reweight(frame: pd.DataFrame, column: str, value: str, factor: float, n: int, seed: int) -> pd.DataFrame:
    weights = np.where(frame[column] == value, factor, 1.0)
    return frame.sample(n, replace=True, weights=weights / weights.sum(), random_state=seed).reset_index(
        drop=True
    )


def _mixed(n: int, *, shift: float = 0.0, seed: int = 0) -> pd.DataFrame:
    """Every column type evidently distinguishes, with missing values in three columns."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "normal": rng.normal(shift, 1.0, n),
            "few_floats": rng.choice([0.0, 1.0, 2.5, 4.0], n, p=[0.4 - shift / 4, 0.3, 0.2, 0.1 + shift / 4]),
            "binary_float": (rng.random(n) < 0.3 + shift / 3).astype(float),
            "many_ints": rng.integers(0, 60, n) + int(20 * shift),
            "few_ints": rng.integers(0, 7, n),
            "flag": rng.random(n) < 0.5,
            "colour": rng.choice(
                ["red", "green", "blue", "grey"], n, p=[0.4 - shift / 2, 0.3, 0.2, 0.1 + shift / 2]
            ),
            "constant": np.ones(n),
        }
    )
    frame.loc[rng.random(n) < 0.1, "normal"] = np.nan
    frame.loc[rng.random(n) < 0.05, "few_floats"] = np.nan
    frame.loc[rng.random(n) < 0.05, "colour"] = None
    return frame


def _with_unseen(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame.loc[: len(frame) // 50, "colour"] = "ultraviolet"
    return frame


def _scenarios():
    bc = _breast_cancer()
    bc_ref, bc_cur = _halves(bc)
    bc_shift = bc_cur.copy()
    bc_shift["mean radius"] += bc["mean radius"].std()
    bc_shift["worst area"] *= 1.3
    arrests = _arrests()
    ar_ref, ar_cur = _halves(arrests)
    ar_shift = _reweight(ar_cur, "colour", "Black", 3.0, 2500, seed=1).assign(age=lambda f: f["age"] + 3)
    return [
        # (id, reference, current, the tests the scenario must exercise, columns that must drift)
        ("breast_cancer-halves", bc_ref, bc_cur, {"ks", "z"}, set()),
        ("breast_cancer-shifted", bc_ref, bc_shift, {"ks", "z"}, {"mean radius", "worst area"}),
        ("arrests-halves-large", ar_ref, ar_cur, {"jensenshannon", "wasserstein"}, set()),
        ("arrests-reweighted-large", ar_ref, ar_shift, {"jensenshannon", "wasserstein"}, {"colour", "age"}),
        (
            "arrests-reweighted-small",
            ar_ref.sample(400, random_state=2),
            ar_shift.sample(600, random_state=3),
            {"ks", "chisquare", "z"},
            {"colour", "age"},
        ),
        ("mixed-nan-small", _mixed(500), _mixed(800, seed=1), {"ks", "chisquare", "z"}, set()),
        (
            "mixed-nan-small-shifted",
            _mixed(500),
            _mixed(800, shift=0.4, seed=1),
            {"ks", "chisquare", "z"},
            {"normal", "few_floats", "binary_float", "many_ints", "colour"},
        ),
        (
            "mixed-nan-large-shifted",
            _mixed(3000),
            _mixed(4000, shift=0.4, seed=1),
            {"wasserstein", "jensenshannon"},
            {"normal", "few_floats", "many_ints", "colour"},
        ),
        ("unseen-category-small", _mixed(600), _with_unseen(_mixed(700, seed=2)), {"chisquare"}, {"colour"}),
        ("unseen-category-large", _mixed(2000), _with_unseen(_mixed(2500, seed=2)), {"jensenshannon"}, set()),
        # KS with a current set too large for scipy's exact p-value: our asymptotic path.
        ("ks-asymptotic", _mixed(800), _mixed(12_000, shift=0.1, seed=3), {"ks"}, {"normal"}),
    ]


@pytest.mark.parametrize(
    ("reference", "current", "tests", "must_drift"),
    [pytest.param(*case[1:], id=case[0]) for case in _scenarios()],
)
def test_verdicts_equal_evidently(reference, current, tests, must_drift):
    ours = assert_agrees_with_evidently(reference, current)
    assert tests <= set(ours["stattest"])
    assert must_drift <= set(ours.index[ours["drifted"].astype(bool)])


def test_evidently_column_kinds():
    """int with <= 10 values, bool and strings are categories; floats stay numeric however few values."""
    kinds = drift_table(_mixed(200), _mixed(300, seed=1)).set_index("column")["kind"].to_dict()
    assert kinds == {
        "normal": "num",
        "few_floats": "num",
        "binary_float": "num",
        "many_ints": "num",
        "few_ints": "cat",
        "flag": "cat",
        "colour": "cat",
        "constant": "num",
    }


# --------------------------------------------------------------------------- the engine on its own


def test_identical_sets_score_no_drift():
    frame = _mixed(3000).dropna()
    small = frame.iloc[:700]
    for reference in (frame, small):
        table = drift_table(reference, reference.copy()).set_index("column")
        p_values = table["stattest"].isin(["ks", "chisquare", "z"])
        np.testing.assert_allclose(table.loc[p_values, "score"], 1.0)
        np.testing.assert_allclose(table.loc[~p_values, "score"], 0.0, atol=1e-12)
        assert not table["drifted"].any()


@pytest.mark.parametrize(("n_ref", "n_cur"), [(50_000, 70_000), (900, 40_000)], ids=["wasserstein", "ks"])
def test_large_numeric_matches_scipy(n_ref, n_cur):
    """Over all rows, against scipy on the raw arrays (evidently's functions, without its engine)."""
    rng = np.random.default_rng(7)
    ref = np.round(rng.gamma(2.0, 1.0, n_ref), 2)  # rounded: many ties
    cur = np.round(rng.gamma(2.0, 1.05, n_cur), 2)
    row = drift_table(pd.DataFrame({"x": ref}), pd.DataFrame({"x": cur})).iloc[0]
    if n_ref > 1000:
        expected = stats.wasserstein_distance(ref, cur) / np.std(ref)
        assert row["stattest"] == "wasserstein"
    else:
        expected = stats.ks_2samp(ref, cur).pvalue
        assert row["stattest"] == "ks"
    assert row["score"] == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize(
    ("nullable", "plain"),
    [
        (pd.array([1.5, 2.5, None, 4.0] * 100, dtype="Float64"), np.array([1.5, 2.5, np.nan, 4.0] * 100)),
        (pd.array(list(range(40)) * 10, dtype="Int64"), np.array(list(range(40)) * 10)),
        (np.array(list(range(40)) * 10, dtype="uint16"), np.array(list(range(40)) * 10)),
        (
            pd.array([True, False, None, True] * 100, dtype="boolean"),
            np.array([True, False, None, True] * 100, dtype=object),
        ),
    ],
    ids=["Float64", "Int64", "uint16", "boolean"],
)
def test_nullable_and_unsigned_columns_follow_their_numpy_rule(nullable, plain):
    """evidently skips these dtypes as "unknown"; we test them as their numpy counterparts."""
    current_rows = np.random.default_rng(0).permutation(len(plain))[:300]
    ours = drift_table(pd.DataFrame({"c": nullable}), pd.DataFrame({"c": nullable[current_rows]}))
    expected = drift_table(pd.DataFrame({"c": plain}), pd.DataFrame({"c": plain[current_rows]}))
    cols = ["kind", "stattest", "score", "drifted", "n_reference", "n_current"]
    pd.testing.assert_frame_equal(ours[cols], expected[cols])


@pytest.mark.parametrize(("column", "kind"), [("normal", "num"), ("colour", "cat")])
def test_all_missing_column_is_reported_untested(column, kind):
    """evidently raises on it; we report it untested, and a person has to look."""
    reference = _mixed(400)
    current = reference.assign(**{column: np.nan})  # float64 NaN, whatever the column held
    row = drift_table(reference, current).set_index("column").loc[column]
    assert row["kind"] == kind
    assert row["stattest"] is None and np.isnan(row["score"]) and pd.isna(row["drifted"])
    assert row["n_current"] == 0 and row["n_reference"] > 0

    result = drift_check({"p": (reference, current)}, config=_NO_HTML)
    assert result.status is Status.NEEDS_REVIEW
    assert result.details["p"]["untested_columns"] == [column]
    assert result.metrics["p.drifted_count"] == 0
    assert np.isnan(result.metrics[f"p.{column}.score"]) and np.isnan(result.metrics[f"p.{column}.drifted"])
    assert "untestable" in result.summary


def test_caller_frames_are_not_modified():
    reference, current = _mixed(300), _mixed(300, seed=1)
    reference.loc[0, "normal"] = np.inf
    before = reference.copy(), current.copy()
    drift_check({"p": (reference, current)}, config=_NO_HTML)
    pd.testing.assert_frame_equal(reference, before[0])
    pd.testing.assert_frame_equal(current, before[1])


# --------------------------------------------------------------------------- the check


def _shift(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    frame = frame.copy()
    for column in columns:
        frame[column] = frame[column] + 2 * frame[column].std()
    return frame


_BC = _breast_cancer().drop(columns="target")
_BC_REF, _BC_CUR = _halves(_BC)


@pytest.mark.parametrize(
    ("current", "config", "status"),
    [
        (_BC_REF.copy(), {"render_report": False}, Status.PASSED),
        (_shift(_BC_REF, ["mean radius"]), {"render_report": False}, Status.NEEDS_REVIEW),
        (_shift(_BC_REF, list(_BC.columns[:6])), {"render_report": False}, Status.FAILED),
        (
            _shift(_BC_REF, list(_BC.columns[:6])),
            {"render_report": False, "max_drifted_share": 0.25},
            Status.NEEDS_REVIEW,
        ),
        (_BC_REF.copy(), {"render_report": False, "min_rows": 1000}, Status.INSUFFICIENT_EVIDENCE),
        # Drift found in a small set is still drift: failed beats insufficient evidence.
        (_shift(_BC_REF, list(_BC.columns[:6])), {"render_report": False, "min_rows": 1000}, Status.FAILED),
    ],
    ids=[
        "same",
        "one-column",
        "six-columns",
        "six-columns-lenient",
        "too-few-rows",
        "too-few-rows-but-drifted",
    ],
)
def test_status_rule(current, config, status):
    result = drift_check({"p": (_BC_REF, current)}, config=config)
    assert result.status is status
    share = result.metrics["p.drifted_share"]
    assert share == result.metrics["p.drifted_count"] / len(_BC.columns)
    assert (share > config.get("max_drifted_share", 0.1)) == (status is Status.FAILED)


def test_metrics_contract_over_two_pairs():
    shifted = _shift(_BC_CUR, ["mean radius", "mean area"])
    result = drift_check(
        {"synthetic_vs_real": (_BC_REF, _BC_CUR), "real_vs_production": (_BC_REF, shifted)}, config=_NO_HTML
    )
    for pair in ("synthetic_vs_real", "real_vs_production"):
        table = drift_table(_BC_REF, _BC_CUR if pair == "synthetic_vs_real" else shifted)
        for row in table.itertuples():
            column = row.column.replace(" ", "_")  # metric keys spell spaces as _
            assert result.metrics[f"{pair}.{column}.score"] == row.score
            assert result.metrics[f"{pair}.{column}.drifted"] == float(row.drifted)
        assert result.metrics[f"{pair}.drifted_count"] == table["drifted"].sum()
        assert result.details[pair]["n_reference"] == len(_BC_REF)
        assert len(result.details[pair]["table"]) == len(_BC.columns)
    for metric in ("drifted_share", "drifted_count"):
        assert result.metrics[metric] == max(result.metrics[f"{p}.{metric}"] for p in result.details)
    assert result.metrics["real_vs_production.drifted_count"] >= 2
    assert {"synthetic_vs_real.png", "real_vs_production.png"} == set(result.artifacts)
    assert all(png.startswith(b"\x89PNG") for png in result.artifacts.values())
    json.loads(result.to_json())  # details are plain JSON


def test_metric_keys_are_sanitised_and_unique():
    reference = pd.DataFrame({"a(b": np.arange(100.0), "a)b": np.arange(100.0), "ok name": np.arange(100.0)})
    result = drift_check({"real vs prod!": (reference, reference.copy())}, config=_NO_HTML)
    assert {"real_vs_prod.a_b.score", "real_vs_prod.a_b_2.score", "real_vs_prod.ok_name.score"} <= set(
        result.metrics
    )


def test_html_report_is_evidently_on_a_seeded_sample():
    reference, current = _halves(_arrests())
    config = {"report_sample_size": 300, "seed": 3}
    first = drift_check({"p": (reference, current)}, config=config)
    page = first.artifacts["p.html"].decode("utf-8")
    assert "<html" in page and "evidently" in page.lower()
    assert "seeded sample of 300 reference and 300 current rows" in page
    assert first.details["p"]["report_sample"] == {
        "reference": 300,
        "current": 300,
        "seed": 3,
        "columns_left_out": [],
        "drift_share": 0.1001,
        "evidently_drifted": 0,
        "evidently_detected": False,
    }
    assert first.thresholds["report_sample_size"] == 300.0


def _dataset_drift_banner(page: str) -> str:
    """evidently's own dataset-drift verdict, as its page shows it."""
    return re.search(r"Dataset Drift is [^\"]*", page).group(0)


def test_evidently_page_flags_dataset_drift_exactly_when_we_fail_it():
    reference, current = _halves(_arrests().drop(columns=["released"]))
    one_of_seven = current.assign(age=current["age"] + 3)  # 14% of columns drift: we fail (> 10%)
    failed = drift_check({"p": (reference, one_of_seven)})
    assert failed.status is Status.FAILED and failed.metrics["p.drifted_share"] == pytest.approx(1 / 7)
    page = failed.artifacts["p.html"].decode("utf-8")
    # evidently's default (drift_share 0.5) would say "NOT detected" here
    assert (
        _dataset_drift_banner(page)
        == "Dataset Drift is detected. Dataset drift detection threshold is 0.1001"
    )
    assert "mlflow-hitl on all rows: 1 of 7 columns drifted, dataset drift detected" in page
    assert "the verdicts agree" in page

    loose = drift_check({"p": (reference, one_of_seven)}, config={"max_drifted_share": 0.2})
    assert loose.status is Status.NEEDS_REVIEW
    page = loose.artifacts["p.html"].decode("utf-8")
    assert _dataset_drift_banner(page).startswith("Dataset Drift is NOT detected")


@pytest.mark.parametrize(
    ("ours", "n_columns", "theirs"),
    [
        (0.1, 7, 0.1001),
        (0.1, 10, 0.1001),
        (0.0, 5, 0.0001),
        (0.25, 4, 0.2501),
        (0.33333, 3, 1 / 3),
        (1.0, 3, 1.0001),
    ],
)
def test_evidently_threshold_flags_exactly_the_shares_we_fail(ours, n_columns, theirs):
    share = evidently_drift_share(ours, n_columns)
    assert share == pytest.approx(theirs)
    for k in range(n_columns + 1):
        assert (k / n_columns >= share) == (k / n_columns > ours), k


def _awkward(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "sparse": np.r_[rng.normal(size=1), np.full(n - 1, np.nan)],  # one value, in row 0
            # Strings first and last (so evidently calls it categorical), ints in between.
            "mixed": np.array(["s" if i % 2 == 0 else i for i in range(n - 1)] + ["t"], dtype=object),
        }
    )


def test_html_leaves_out_columns_whose_sample_is_empty():
    result = drift_check(
        {"p": (_awkward(400, 0), _awkward(400, 1))},
        columns=["x", "sparse"],
        config={"report_sample_size": 20},
    )
    assert result.details["p"]["report_sample"]["columns_left_out"] == ["sparse"]
    assert "Left out (no values in a sample): sparse" in result.artifacts["p.html"].decode("utf-8")
    # The verdict still uses every row: one value per set, two in all, so a Z test.
    assert result.details["p"]["table"][1]["stattest"] == "z"


def test_a_string_column_that_also_holds_numbers_is_shown_as_we_typed_it():
    """Left to infer types, evidently 0.7 fails on such a column; told our kinds, it renders the page."""
    result = drift_check({"p": (_awkward(400, 0), _awkward(400, 1))})  # no sampling
    assert "error" not in result.details["p"]["report_sample"] and "p.html" in result.artifacts
    assert [row["stattest"] for row in result.details["p"]["table"]] == ["ks", "z", "chisquare"]


def test_html_failure_inside_evidently_is_recorded_not_raised():
    """Columns ``1`` and ``"1"`` are distinct to us, one name to evidently, which then fails."""
    rng = np.random.default_rng(0)
    frames = [pd.DataFrame({1: rng.normal(size=300), "1": rng.normal(size=300)}) for _ in range(2)]
    result = drift_check({"p": tuple(frames)})
    assert result.details["p"]["report_sample"]["error"].startswith("evidently could not render the report: ")
    assert "p.html" not in result.artifacts and "p.png" in result.artifacts
    assert [row["stattest"] for row in result.details["p"]["table"]] == ["ks", "ks"]


# --------------------------------------------------------------------------- bad input


_GOOD = _mixed(50)


@pytest.mark.parametrize(
    ("reference", "current", "columns", "match"),
    [
        (_GOOD, _GOOD.drop(columns="flag"), None, r"only in reference: flag"),
        (_GOOD.assign(extra=1.0), _GOOD, None, r"only in reference: extra"),
        (_GOOD, _GOOD.iloc[:0], None, r"current has 0 row"),
        (_GOOD.to_numpy(), _GOOD, None, r"reference must be a pandas DataFrame"),
        (_GOOD, _GOOD, ["normal", "nope"], r"missing column\(s\) nope"),
        (_GOOD, _GOOD, "normal", r"columns must be a list of column names"),
        (
            _GOOD.assign(when=pd.Timestamp("2024-01-01")),
            _GOOD.assign(when=pd.Timestamp("2024-01-01")),
            None,
            r"column 'when' has dtype datetime64",
        ),
        (
            _GOOD.assign(normal="x"),
            _GOOD,
            None,
            r"column 'normal' is numeric in current but object in reference",
        ),
    ],
    ids=[
        "missing-column",
        "extra-column",
        "empty",
        "not-a-frame",
        "unknown-column",
        "columns-string",
        "datetime",
        "mixed-types",
    ],
)
def test_bad_input(reference, current, columns, match):
    with pytest.raises(InputError, match=match):
        drift_table(reference, current, columns=columns)
    with pytest.raises(InputError, match=r"pairs\['p'\]: .*" + match):
        drift_check({"p": (reference, current)}, columns=columns, config=_NO_HTML)


@pytest.mark.parametrize(
    ("pairs", "config", "error", "match"),
    [
        ({}, None, InputError, r"pairs must be a non-empty mapping"),
        ({"p": _GOOD}, None, InputError, r"pairs\['p'\] must be a \(reference, current\) tuple"),
        ({"p": (_GOOD, _GOOD)}, {"max_drift": 0.2}, ConfigError, r"unknown setting 'max_drift'"),
    ],
    ids=["no-pairs", "not-a-pair", "unknown-setting"],
)
def test_bad_pairs_and_config(pairs, config, error, match):
    with pytest.raises(error, match=match):
        drift_check(pairs, config=config)
