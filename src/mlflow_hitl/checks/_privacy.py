"""Privacy part of the generator check: does the synthetic set copy real rows more than chance does?

Copies are counted two ways, both kept from earlier releases with their meaning: exact copies of real
rows (row hashes, every row) and the distance to the closest real record (DCR, seeded samples). Neither
is a verdict on its own: in data with few distinct rows (a handful of categories and small integers)
equal rows happen naturally. The verdict compares them with a **baseline** the data gives:

- **training rows vs unseen rows** when the rows the generator learned from are known (``source``, or
  ``real`` when a ``holdout`` is given): a generator that does not memorise reproduces the rows it saw
  no more often than real rows it never saw. Only rows that no other real row repeats count, because a
  repeated row can be reproduced by chance. Two questions, two 2x2 tables (training / unseen x
  reappears in the synthetic set / does not): an exact copy of the row, and a synthetic row closer to
  it than ``near_copy_quantile`` of real rows sit to their closest other real row.
- **synthetic rows vs real rows among themselves** when neither is given: the share of synthetic rows
  that equal (or nearly equal) a real row against the share of real rows that equal (or nearly equal)
  another real row. It also reacts to a generator that piles onto the most common rows, and equal
  real rows come in groups, so on data full of duplicates its p-value is optimistic; the first
  baseline has neither weakness.

Each table gets Fisher's exact test, one-sided ("copies more than the baseline"), from scipy: it is
exact for these margins, so small data get an honest p-value rather than a normal approximation.

"No excess copying" is only as strong as the test's power at the data's size, so every test also
states its **minimum detectable excess**: the excess it catches with 80 % power (:class:`_Power`).
Where most rows repeat (natural copies are noise) or the data are small (a few copies cannot be told
from a lucky split), that figure is large. Above ``max_undetectable_excess`` a pass would promise more
than the data can support, so the verdict is then insufficient evidence (:func:`_undetectable`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .._format import number, percent
from .._result import Status
from ..errors import InputError
from ._plots import new_figure, to_png
from ._rows import Encoded, Rows

if TYPE_CHECKING:
    from ._generator import GeneratorConfig

__all__ = [
    "CopyCounts",
    "PoolCounts",
    "Privacy",
    "assess_privacy",
    "copy_counts",
    "exact_copy_comparison",
    "plot_dcr",
]

# One-hot width per categorical column in the distance space: the search costs time in proportion to the
# width, so rarer levels share one "other" slot (they look alike to the distance; exact copies are still
# found on the full data by hashing).
_DCR_MAX_LEVELS = 16
# A category mismatch then costs a distance of 1, the same as one standard deviation on a numeric column.
_ONE_HOT_VALUE = 1.0 / np.sqrt(2.0)
# The neighbour search is matrix-product bound and gains from threads from this many reference rows on.
_PARALLEL_MIN_ROWS = 10_000
# The power the minimum detectable excess is stated at, and the quantile points that average the power
# over the baseline's random hits (the power is then within about half a point of the exact sum).
_POWER = 0.8
_QUADRATURE_POINTS = 100


@dataclass(frozen=True)
class Comparison:
    """One one-sided test of copying against the baseline: hits among tested rows vs among baseline rows."""

    kind: str  # "exact" or "near"
    tested: str  # what the tested rows are, for people
    baseline: str  # what the baseline rows are
    tested_hits: int
    tested_rows: int
    baseline_hits: int
    baseline_rows: int
    excess: float  # estimated copies beyond the baseline, as a share of synthetic rows
    p_value: float
    min_detectable_excess: float | None  # the excess caught with 80 % power; None: none at this size
    # Training vs unseen, exact: the share of synthetic rows copied from training rows drawn at random
    # (common ones included) that is caught with 80 % power.
    min_detectable_random_copies: float | None = None

    @property
    def tested_share(self) -> float:
        return self.tested_hits / self.tested_rows

    @property
    def baseline_share(self) -> float:
        return self.baseline_hits / self.baseline_rows

    def to_dict(self) -> dict[str, Any]:
        return {
            "tested": self.tested,
            "baseline": self.baseline,
            "tested_hits": self.tested_hits,
            "tested_rows": self.tested_rows,
            "baseline_hits": self.baseline_hits,
            "baseline_rows": self.baseline_rows,
            "excess": self.excess,
            "p_value": self.p_value,
            "test": "Fisher's exact test, one-sided (tested share greater than baseline share)",
            "min_detectable_excess": self.min_detectable_excess,
            "min_detectable_random_copies": self.min_detectable_random_copies,
            "power": _POWER,
        }


@dataclass(frozen=True)
class Baseline:
    """How the copies were judged: the design, its sizes, the two tests (or why there are none)."""

    design: str  # "training_vs_unseen" or "real_vs_itself"
    description: str
    sizes: dict[str, int]
    exact: Comparison | None
    near: Comparison | None
    near_distance: float | None
    insufficient: str | None  # too few rows for the tests: they were not run
    # The tests ran but an excess above max_undetectable_excess could pass them: why, with the sizes.
    undetectable: str | None = None

    @property
    def insufficient_evidence(self) -> str | None:
        """Why the data cannot support a privacy pass (too few rows, or too little power); ``None``: they can."""
        return self.insufficient or self.undetectable


@dataclass(frozen=True)
class Privacy:
    """Copies of real rows, with the baseline that judges them."""

    exact_share: float
    real_dup_share: float
    dcr_syn: np.ndarray
    dcr_real: np.ndarray
    reference_rows: int
    near_threshold: float
    near_share: float
    baseline: Baseline
    source_copies: int | None  # synthetic rows equal to a row of the generator's source


@dataclass(frozen=True)
class PoolCounts:
    """The training-vs-unseen pool's exact counts: training rows (the source, else real) and unseen rows
    (the holdout, else real), those no other pool row repeats, and of those the ones a synthetic row equals."""

    training_rows: int
    unseen_rows: int
    unique_training: int
    unique_unseen: int
    unique_training_copied: int
    unique_unseen_copied: int
    unseen_outside_training: int  # unseen rows equal to no training row (real vs source, without a holdout)


@dataclass(frozen=True)
class CopyCounts:
    """Every exact-copy count the privacy verdict reads, over every row: from row hashes in pandas
    (:func:`copy_counts`), from hashes joined on the executors on Spark. The formulas read only these."""

    synthetic_rows: int
    real_rows: int
    synthetic_in_real: int  # synthetic rows equal to a real row
    real_duplicated: int  # real rows equal to another real row
    source_copies: int | None  # synthetic rows equal to a row of the source, when given
    pool: PoolCounts | None  # when a source or a holdout is given

    @property
    def exact_share(self) -> float:
        return self.synthetic_in_real / self.synthetic_rows

    @property
    def real_dup_share(self) -> float:
        return self.real_duplicated / self.real_rows


def copy_counts(data: Encoded) -> CopyCounts:
    """:class:`CopyCounts` of the encoded sets, from one 64-bit hash per row."""
    h_syn, h_real = row_hashes(data.synthetic), row_hashes(data.real)
    return _copy_counts(data, h_syn, h_real)


def _copy_counts(data: Encoded, h_syn: np.ndarray, h_real: np.ndarray) -> CopyCounts:
    # pandas' hash-table isin: ten times faster than np.isin's sort at a million rows, same answer.
    synthetic = pd.Series(h_syn)
    pool = None
    if data.source is not None or data.holdout is not None:
        h_train = row_hashes(data.source) if data.source is not None else h_real
        h_unseen = row_hashes(data.holdout) if data.holdout is not None else h_real
        hashes = pd.Series(np.r_[h_train, h_unseen])
        single = ~hashes.duplicated(keep=False).to_numpy()  # rows no other pool row repeats
        is_train = np.r_[np.ones(len(h_train), bool), np.zeros(len(h_unseen), bool)]
        copied = hashes.isin(h_syn).to_numpy()
        pool = PoolCounts(
            training_rows=len(h_train),
            unseen_rows=len(h_unseen),
            unique_training=int((single & is_train).sum()),
            unique_unseen=int((single & ~is_train).sum()),
            unique_training_copied=int((copied & single & is_train).sum()),
            unique_unseen_copied=int((copied & single & ~is_train).sum()),
            unseen_outside_training=int((~pd.Series(h_unseen).isin(h_train)).sum()),
        )
    return CopyCounts(
        synthetic_rows=len(h_syn),
        real_rows=len(h_real),
        synthetic_in_real=int(synthetic.isin(h_real).sum()),
        real_duplicated=int(pd.Series(h_real).duplicated(keep=False).sum()),
        source_copies=None if data.source is None else int(synthetic.isin(row_hashes(data.source)).sum()),
        pool=pool,
    )


def assess_privacy(
    data: Encoded, cfg: GeneratorConfig, rng: np.random.Generator, counts: CopyCounts | None = None
) -> Privacy:
    """Every privacy number and the baseline verdict's tests.

    ``counts``: the exact-copy counts of every row when ``data`` holds only a seeded sample of the sets
    (the Spark path counts them on the executors); the distances to closest records are then measured
    on the sample. Draws the DCR samples first and the baseline's after, so the older metrics keep
    their seeded values.
    """
    h_syn, h_real = row_hashes(data.synthetic), row_hashes(data.real)
    if counts is None:
        counts = _copy_counts(data, h_syn, h_real)
    exact_share, real_dup_share = counts.exact_share, counts.real_dup_share
    space = _Space(data)
    dcr_syn, dcr_real, reference_rows = _distances_to_closest_record(
        data, space, cfg.max_dcr_rows, cfg.max_reference_rows, rng
    )
    near_threshold = float(np.quantile(dcr_real, cfg.near_copy_quantile))
    near_share = float(np.mean(dcr_syn < near_threshold))
    if data.source is not None or data.holdout is not None:
        assert counts.pool is not None
        baseline = _training_vs_unseen(data, space, h_syn, h_real, counts, cfg, rng)
    else:
        sizes = {
            "synthetic_rows": counts.synthetic_rows,
            "real_rows": counts.real_rows,
            "dcr_synthetic_rows": len(dcr_syn),
            "dcr_real_rows": len(dcr_real),
        }
        near_real_share = float(np.mean(dcr_real < near_threshold))
        baseline = _real_vs_itself(
            exact_share, real_dup_share, near_share, near_real_share, sizes, cfg.privacy_alpha
        )
    distance = near_threshold if baseline.near_distance is None else baseline.near_distance
    if baseline.near is not None and distance <= 0:
        # More than near_copy_quantile of real rows equal another: nothing is nearer than 0, the near
        # test can catch no copy whatever its sizes.
        baseline = replace(baseline, near=replace(baseline.near, min_detectable_excess=None))
    if baseline.insufficient is None:
        baseline = replace(
            baseline, undetectable=_undetectable(baseline, distance, cfg.max_undetectable_excess)
        )
    return Privacy(
        exact_share=exact_share,
        real_dup_share=real_dup_share,
        dcr_syn=dcr_syn,
        dcr_real=dcr_real,
        reference_rows=reference_rows,
        near_threshold=near_threshold,
        near_share=near_share,
        baseline=baseline,
        source_copies=counts.source_copies,
    )


# --- metrics, rules, words --------------------------------------------------------------------


def privacy_metrics(privacy: Privacy, n_synthetic: int) -> dict[str, float]:
    """The baseline's metrics (the older ones are placed by the caller, in their historical order)."""
    metrics: dict[str, float] = {}
    for c in (privacy.baseline.exact, privacy.baseline.near):
        if c is not None:
            metrics[f"{c.kind}_copy_excess"] = c.excess
            metrics[f"{c.kind}_copy_p_value"] = c.p_value
            metrics[f"tested_{c.kind}_copy_share"] = c.tested_share
            metrics[f"holdout_{c.kind}_copy_share"] = c.baseline_share
            if c.min_detectable_excess is not None:  # the blind spot a policy may bound
                metrics[f"{c.kind}_copy_min_detectable_excess"] = c.min_detectable_excess
    if privacy.source_copies is not None:
        metrics["source_exact_copy_share"] = privacy.source_copies / n_synthetic
        metrics["source_copied_rows"] = float(privacy.source_copies)
    return metrics


def privacy_failed_rules(privacy: Privacy, cfg: GeneratorConfig) -> list[dict[str, Any]]:
    """Copying beyond the baseline, significant at ``privacy_alpha`` and above its tolerance; plus the
    absolute share limits, when a user set them below 1."""
    failed = []
    tolerance = {"exact": cfg.max_exact_copy_excess, "near": cfg.max_near_copy_excess}
    for c in (privacy.baseline.exact, privacy.baseline.near):
        if c is not None and c.p_value < cfg.privacy_alpha and c.excess > tolerance[c.kind]:
            failed.append(
                {
                    "metric": f"{c.kind}_copy_excess",
                    "rule": f"{c.kind}_copy_excess > max_{c.kind}_copy_excess at p < privacy_alpha",
                    "value": c.excess,
                    "threshold": tolerance[c.kind],
                    "by": c.excess - tolerance[c.kind],
                    "p_value": c.p_value,
                }
            )
    for metric, value, limit in (
        ("exact_copy_share", privacy.exact_share, cfg.max_exact_copy_share),
        ("near_copy_share", privacy.near_share, cfg.max_near_copy_share),
    ):
        if limit < 1.0 and value > limit:
            failed.append(
                {
                    "metric": metric,
                    "rule": f"{metric} > max_{metric}",
                    "value": value,
                    "threshold": limit,
                    "by": value - limit,
                }
            )
    return failed


def privacy_status(privacy: Privacy, failed: Sequence[Mapping[str, Any]]) -> Status:
    """The verdict given the failed rules: any failure fails; else data too small, or tests too weak
    for ``max_undetectable_excess``, are insufficient evidence (never a pass); else passed."""
    if failed:
        return Status.FAILED
    if privacy.baseline.insufficient_evidence:
        return Status.INSUFFICIENT_EVIDENCE
    return Status.PASSED


def privacy_statement(privacy: Privacy, cfg: GeneratorConfig, *, caught: bool) -> str:
    """The copies beside their baseline, in words: what a reviewer reads in the summary and the report.
    ``caught``: a privacy rule failed (:func:`privacy_failed_rules`), so the data were judged after all."""
    baseline = privacy.baseline
    parts = []
    if baseline.insufficient:
        parts.append(f"privacy cannot be judged against a baseline: {baseline.insufficient}")
    if baseline.undetectable and not caught:
        parts.append(f"privacy cannot be judged: {baseline.undetectable}")
    tolerance = {"exact": cfg.max_exact_copy_excess, "near": cfg.max_near_copy_excess}
    for c in (baseline.exact, baseline.near):
        if c is None:
            continue
        test = f"one-sided p = {number(c.p_value)}"
        if c.p_value >= cfg.privacy_alpha:
            verdict = f"no excess {c.kind} copying"
            test += f"; {_detectable(c)}"
        elif c.excess > tolerance[c.kind]:
            verdict = f"excess {c.kind} copying, about {percent(c.excess)} of synthetic rows"
        else:
            verdict = f"an excess of {percent(c.excess)} of synthetic rows, within max_{c.kind}_copy_excess"
        parts.append(
            f"{c.kind} copies: {percent(c.tested_share)} of {c.tested} vs {percent(c.baseline_share)} of "
            f"{c.baseline}: {verdict} ({test})"
        )
    if privacy.source_copies is not None:
        parts.append(f"{number(privacy.source_copies)} synthetic rows equal a row of the generator's source")
    return "; ".join(parts)


def _detectable(c: Comparison) -> str:
    """What "no excess" can mean at this size: the excess the test catches with 80 % power."""
    if c.min_detectable_excess is None:
        return f"it cannot catch any excess with {percent(_POWER, decimals=0)} power here"
    said = (
        f"it catches an excess of {percent(c.min_detectable_excess)} of synthetic rows "
        f"with {percent(_POWER, decimals=0)} power"
    )
    if c.min_detectable_random_copies is not None:
        said += f", a leak of {percent(c.min_detectable_random_copies)} of synthetic rows copied from random training rows"
    return said


def privacy_details(privacy: Privacy) -> dict[str, Any]:
    baseline = privacy.baseline
    return {
        "design": baseline.design,
        "description": baseline.description,
        "sizes": baseline.sizes,
        "exact": None if baseline.exact is None else baseline.exact.to_dict(),
        "near": None if baseline.near is None else baseline.near.to_dict(),
        "near_copy_distance": baseline.near_distance,
        "insufficient_evidence": baseline.insufficient_evidence,
    }


def _undetectable(baseline: Baseline, near_distance: float, limit: float) -> str | None:
    """Why a pass here could leave an excess larger than ``limit`` (``max_undetectable_excess``) unseen,
    with the sizes; ``None`` when every test catches such an excess with 80 % power, or when ``limit``
    is 1 (off).

    Every test, in either design, is read at its minimum detectable excess: the quantity
    ``max_exact_copy_excess`` / ``max_near_copy_excess`` bound, so one data set gets one verdict
    whether or not a source is given. (The random-copies leak of training vs unseen also counts the
    copies that land on common rows, which chance reproduces too; it stays in the summary as
    information.) At a near-copy distance of 0 the near test is left out: more than
    ``near_copy_quantile`` of real rows equal another, so "nearer than real rows sit to each other" is
    no measurable excess, and copies are judged by the exact test alone.
    """
    if limit >= 1.0:
        return None
    short = []
    for c in (baseline.exact, baseline.near):
        if c is None or (c.kind == "near" and near_distance <= 0):
            continue
        figure = c.min_detectable_excess
        if figure is not None and figure <= limit:
            continue
        short.append(
            f"the {c.kind} test catches no excess of any size"
            if figure is None
            else f"the {c.kind} test catches only an excess of {percent(figure)} of synthetic rows"
        )
    if not short:
        return None
    sizes = baseline.sizes
    if baseline.design == "training_vs_unseen":
        at = (
            f"at {number(sizes['training_rows'])} training and {number(sizes['unseen_rows'])} unseen rows "
            f"({number(sizes['unique_training_rows'])} and {number(sizes['unique_unseen_rows'])} that no "
            "other real row repeats)"
        )
    else:
        at = f"at {number(sizes['synthetic_rows'])} synthetic and {number(sizes['real_rows'])} real rows"
    return (
        f"{at}, {' and '.join(short)} with {percent(_POWER, decimals=0)} power "
        f"(max_undetectable_excess {limit:g})"
    )


# --- the baseline -----------------------------------------------------------------------------


def _too_small(sizes: dict[str, int], cfg: GeneratorConfig) -> str | None:
    small = {name: n for name, n in sizes.items() if n < cfg.min_rows}
    if not small:
        return None
    listed = ", ".join(f"{number(n)} {name.replace('_', ' ')}" for name, n in small.items())
    return f"{listed} (at least {number(cfg.min_rows)} needed)"


def _training_vs_unseen(
    data: Encoded,
    space: _Space,
    h_syn: np.ndarray,
    h_real: np.ndarray,
    counts: CopyCounts,
    cfg: GeneratorConfig,
    rng: np.random.Generator,
) -> Baseline:
    """Do the rows the generator learned from reappear in the synthetic set more often than unseen rows?

    The exact comparison reads ``counts`` (every row); the near one the rows of ``data``.
    """
    pool_counts = counts.pool
    assert pool_counts is not None
    if data.source is not None:
        train, h_train = data.source, row_hashes(data.source)
        unseen = data.holdout if data.holdout is not None else data.real
        h_unseen = row_hashes(data.holdout) if data.holdout is not None else h_real
        if data.holdout is None and pool_counts.unseen_outside_training == 0:
            raise InputError(
                "every real row is also in source, so real cannot stand for rows the generator never saw; "
                "pass holdout= (real rows kept out of the generator's training)"
            )
        description = (
            "the generator's source (training rows) vs "
            + ("the holdout" if data.holdout is not None else "the real rows")
            + " (rows it never saw)"
        )
    else:
        train, h_train, unseen, h_unseen = data.real, h_real, data.holdout, row_hashes(data.holdout)  # type: ignore[arg-type]
        description = "the real rows (as the generator's training rows) vs the holdout (rows it never saw)"
    assert unseen is not None
    sizes = {
        "synthetic_rows": counts.synthetic_rows,
        "training_rows": pool_counts.training_rows,
        "unseen_rows": pool_counts.unseen_rows,
        "unique_training_rows": pool_counts.unique_training,
        "unique_unseen_rows": pool_counts.unique_unseen,
    }
    insufficient = _too_small(sizes, cfg)
    if insufficient:
        return Baseline("training_vs_unseen", description, sizes, None, None, None, insufficient)
    exact = exact_copy_comparison(pool_counts, counts.synthetic_rows, cfg.privacy_alpha)
    pool = pd.Series(np.r_[h_train, h_unseen])
    single = ~pool.duplicated(keep=False).to_numpy()  # rows no other real row repeats
    is_train = np.r_[np.ones(len(train), bool), np.zeros(len(unseen), bool)]
    near, distance = _near_pool(space, train, unseen, is_train, single, data, cfg, rng)
    return Baseline("training_vs_unseen", description, sizes, exact, near, distance, None)


def exact_copy_comparison(pool: PoolCounts, synthetic_rows: int, alpha: float) -> Comparison:
    """Training rows no other real row repeats, copied exactly, against unseen ones: the one-sided test
    at ``alpha``, with the leaks of random training rows it catches with 80 % power."""
    comparison = _comparison(
        "exact",
        "the generator's training rows that no other real row repeats",
        "unseen real rows",
        pool.unique_training_copied,
        pool.unique_training,
        pool.unique_unseen_copied,
        pool.unique_unseen,
        synthetic_rows,
        rate=1.0,
        alpha=alpha,
    )
    power = _Power(pool.unique_training, pool.unique_unseen, comparison.baseline_share, alpha)
    copies = power.fewest_random(pool.training_rows, synthetic_rows)
    return replace(
        comparison, min_detectable_random_copies=None if copies is None else copies / synthetic_rows
    )


def _near_pool(
    space: _Space,
    train: Rows,
    unseen: Rows,
    is_train: np.ndarray,
    single: np.ndarray,
    data: Encoded,
    cfg: GeneratorConfig,
    rng: np.random.Generator,
) -> tuple[Comparison, float]:
    """Training vs unseen rows hugged by a synthetic row: one whose closest real row it is, nearer than
    ``near_copy_quantile`` of real rows sit to their closest other real row."""
    n_pool = len(is_train)
    rate = min(1.0, cfg.max_reference_rows / n_pool)
    # One shuffled sample of both sets at the same rate, searched in that shuffled order: the search
    # gives a tie to the row first in its index, which must not be a training row more often.
    keep = rng.permutation(n_pool)[: max(2, round(rate * n_pool))]
    n_train = len(train)
    in_train = keep < n_train
    from_train, from_unseen = space(train, keep[in_train]), space(unseen, keep[~in_train] - n_train)
    emb = np.empty((len(keep), from_train.shape[1]))
    emb[in_train], emb[~in_train] = from_train, from_unseen
    index = _Index(emb)
    threshold = index.leave_one_out_quantile(rng, cfg.max_dcr_rows, cfg.near_copy_quantile)
    queries = _sample(rng, len(data.synthetic), cfg.max_dcr_rows)
    dist, nearest = index.nearest(space(data.synthetic, queries))
    hugged = np.zeros(len(keep), bool)
    hugged[nearest[dist < threshold]] = True
    comparison = _fisher(
        "near",
        "the generator's training rows that no other real row repeats",
        "unseen real rows",
        hugged,
        is_train[keep],
        single[keep],
        len(queries),
        rate=rate,
        alpha=cfg.privacy_alpha,
    )
    return comparison, threshold


def _share_test(
    kind: str, tested: str, baseline: str, a1: int, n1: int, a2: int, n2: int, alpha: float
) -> Comparison:
    """Hits ``a1`` of ``n1`` tested rows against ``a2`` of ``n2`` baseline rows; the excess is the shares' difference."""
    return _comparison(kind, tested, baseline, a1, n1, a2, n2, n1, 1.0, alpha)


def _fisher(
    kind: str,
    tested: str,
    baseline: str,
    hit: np.ndarray,
    is_train: np.ndarray,
    counted: np.ndarray,
    n_queries: int,
    rate: float,
    alpha: float,
) -> Comparison:
    """The training-vs-unseen table among the counted rows, tested one-sided.

    ``excess``: training rows hit beyond the unseen rows' rate, scaled back to every training row
    (``rate``: the share of rows sampled) and divided by the synthetic rows asked: about the share of
    synthetic rows that copy a training row beyond chance.
    """
    a1, n1 = int((hit & counted & is_train).sum()), int((counted & is_train).sum())
    a2, n2 = int((hit & counted & ~is_train).sum()), int((counted & ~is_train).sum())
    return _comparison(kind, tested, baseline, a1, n1, a2, n2, n_queries, rate, alpha)


def _comparison(
    kind: str,
    tested: str,
    baseline: str,
    a1: int,
    n1: int,
    a2: int,
    n2: int,
    n_queries: int,
    rate: float,
    alpha: float,
) -> Comparison:
    """The test, its excess (shares' difference scaled to synthetic rows) and its minimum detectable excess.

    ``k`` tested rows copied beyond chance raise the tested share by ``k (1 - q) / n1`` on average
    (``q``: the baseline share; a row chance copies anyway adds nothing), so the fewest copies the test
    catches, ``k*``, read on the excess's scale are ``(1 - q) k* / n1`` times the same scale factor.
    """
    scale = (n1 / rate) / n_queries
    q = a2 / n2
    fewest = _Power(n1, n2, q, alpha).fewest()
    detectable = None if fewest is None else (1.0 - q) * fewest / n1 * scale
    return Comparison(
        kind,
        tested,
        baseline,
        a1,
        n1,
        a2,
        n2,
        float((a1 / n1 - q) * scale),
        _one_sided_p(a1, n1, a2, n2),
        detectable,
    )


def _one_sided_p(a1: int, n1: int, a2: int, n2: int) -> float:
    """P-value of "share a1/n1 exceeds share a2/n2": Fisher's exact test (scipy), one-sided."""
    from scipy.stats import fisher_exact

    return float(fisher_exact([[a1, n1 - a1], [a2, n2 - a2]], alternative="greater").pvalue)


class _Power:
    """The power of that test at ``alpha`` against ``k`` of the ``n1`` tested rows copied beyond chance.

    The leak model: each row, tested or baseline, is hit by chance with probability ``q`` (the baseline
    share); ``k`` tested rows are hit on purpose. So baseline hits are Binomial(n2, q) and tested hits
    ``k`` + Binomial(n1 - k, q). Fisher's one-sided p-value falls as the tested hits rise with the
    baseline hits fixed, so for each baseline count there is a fewest number of tested hits that is
    significant (found once, by bisection on scipy's hypergeometric tail); the power is the chance of
    reaching it, averaged over quantile points of the baseline's count. Every power read is then one
    vectorised binomial tail.
    """

    def __init__(self, n1: int, n2: int, q: float, alpha: float) -> None:
        from scipy.stats import binom, hypergeom

        self._n1, self._q = n1, q
        points = (np.arange(_QUADRATURE_POINTS) + 0.5) / _QUADRATURE_POINTS
        a2 = binom.ppf(points, n2, q)
        # Invariant: lo tested hits are not significant (0 never is), hi are (n1 + 1: none is).
        lo, hi = np.zeros_like(a2), np.full_like(a2, n1 + 1)
        while np.any(hi - lo > 1):
            mid = (lo + hi) // 2
            significant = hypergeom.sf(mid - 1, n1 + n2, mid + a2, n1) < alpha
            hi, lo = np.where(significant, mid, hi), np.where(significant, lo, mid)
        self._critical = hi

    def __call__(self, k: np.ndarray) -> np.ndarray:
        """The power for each number of rows copied in ``k``."""
        from scipy.stats import binom

        k = np.asarray(k, dtype=float)[..., None]
        return binom.sf(self._critical - k - 1, self._n1 - k, self._q).mean(axis=-1)

    def fewest(self) -> int | None:
        """The fewest tested rows copied that the test catches with 80 % power; ``None`` if even all are not."""
        return _fewest(lambda k: float(self(k)), self._n1)

    def fewest_random(self, training_rows: int, synthetic_rows: int) -> int | None:
        """The fewest synthetic rows copied from training rows drawn at random (without replacement) that
        the test catches with 80 % power: of ``r`` such rows, a hypergeometric number are tested rows
        (the rest are repeated rows, which this test does not count). ``None`` above ``synthetic_rows``."""
        from scipy.stats import hypergeom

        points = (np.arange(_QUADRATURE_POINTS) + 0.5) / _QUADRATURE_POINTS

        def power(r: int) -> float:
            # Quantile points of the tested rows among r, from the probabilities within 10 standard
            # deviations of the mean (scipy's ppf searches point by point, 50x slower).
            share = self._n1 / training_rows
            mean = r * share
            spread = 10 * np.sqrt(r * share * (1 - share)) + 1
            support = np.arange(max(0, int(mean - spread)), int(mean + spread) + 1)
            cdf = np.cumsum(hypergeom.pmf(support, training_rows, self._n1, r))
            picked = support[np.minimum(np.searchsorted(cdf, points * cdf[-1]), len(support) - 1)]
            return float(self(picked).mean())

        return _fewest(power, min(training_rows, synthetic_rows))


def _fewest(power: Callable[[int], float], most: int) -> int | None:
    """The smallest ``k`` in ``[0, most]`` with ``power(k) >= 80 %`` (power rises with ``k``), by bisection."""
    if power(most) < _POWER:
        return None
    if power(0) >= _POWER:  # only with privacy_alpha >= 80 %
        return 0
    lo, hi = 0, most  # power(lo) < 80 % <= power(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if power(mid) >= _POWER else (mid, hi)
    return hi


def _real_vs_itself(
    exact_share: float,
    real_dup_share: float,
    near_share: float,
    near_real_share: float,
    sizes: dict[str, int],
    alpha: float,
) -> Baseline:
    """Synthetic rows as copies of real rows vs real rows as copies of the *other* real rows.

    Every real row serves both as reference and, left out in turn, as baseline: a held-out split
    would halve the copies there are to find and the reference they are found in.
    """
    n_syn, n_real, n_dcr_syn, n_dcr_real = (
        sizes["synthetic_rows"],
        sizes["real_rows"],
        sizes["dcr_synthetic_rows"],
        sizes["dcr_real_rows"],
    )
    tested, base = "synthetic rows", "real rows (each against the other real rows)"
    a1, a2 = round(exact_share * n_syn), round(real_dup_share * n_real)
    b1, b2 = round(near_share * n_dcr_syn), round(near_real_share * n_dcr_real)
    return Baseline(
        "real_vs_itself",
        "every real row against the other real rows (no source or holdout given)",
        sizes,
        _share_test("exact", tested, base, a1, n_syn, a2, n_real, alpha),
        _share_test("near", tested, base, b1, n_dcr_syn, b2, n_dcr_real, alpha),
        None,
        None,
    )


# --- hashing and distances ------------------------------------------------------------------------


def row_hashes(rows: Rows) -> np.ndarray:
    """One 64-bit hash per row over every compared column (pandas' vectorised hashing).

    Numbers are canonicalised first (-0.0 -> 0.0, one NaN bit pattern) so equal rows hash equally; a
    collision between different rows has probability about n_syn * n_real / 2**64, negligible here.
    """
    num = np.where(np.isnan(rows.num), np.nan, rows.num + 0.0)
    # Each block is hashed where it lies (a frame over a 2-D array does not copy it) and the two row
    # hashes are then hashed together: no stacked copy of every column.
    parts = {
        name: pd.util.hash_pandas_object(pd.DataFrame(block), index=False).to_numpy()
        for name, block in (("numbers", num), ("codes", rows.codes))
        if block.shape[1]
    }
    return pd.util.hash_pandas_object(pd.DataFrame(parts), index=False).to_numpy()


def _sample(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """``k`` of ``n`` row positions, sorted (seeded), or all of them when ``n <= k``."""
    return np.sort(rng.choice(n, k, replace=False)) if n > k else np.arange(n)


class _Space:
    """Rows as dense floats for distances: numbers standardised by the whole real set, categories one-hot.

    Missing values are imputed, in every set, with the real set's median (numeric) or most frequent
    category: a row copied together with its gaps stays at distance 0, and a gap costs no more than
    the distance from a typical real value.
    """

    def __init__(self, data: Encoded) -> None:
        real = data.real
        self._median = np.nanmedian(real.num, axis=0)
        self._mean = np.nanmean(real.num, axis=0)
        std = np.nanstd(real.num, axis=0)
        std[~(std > 0)] = 1.0
        self._std = std
        self._columns = []
        for j in range(len(data.categorical)):
            codes = real.codes[:, j]
            counts = np.bincount(codes[codes >= 0], minlength=int(data.n_levels[j]))
            order = np.argsort(-counts, kind="stable")
            kept = min(counts.size, _DCR_MAX_LEVELS)
            slot = np.full(counts.size, kept)
            slot[order[:kept]] = np.arange(kept)
            self._columns.append((slot, int(order[0]), kept + (counts.size > kept)))

    def __call__(self, rows: Rows, pick: np.ndarray) -> np.ndarray:
        x = rows.num[pick]
        blocks = [(np.where(np.isnan(x), self._median, x) - self._mean) / self._std]
        for j, (slot, most_frequent, width) in enumerate(self._columns):
            codes = rows.codes[pick, j]
            filled = np.where(codes < 0, most_frequent, codes)
            block = np.zeros((codes.size, width))
            block[np.arange(codes.size), slot[filled]] = _ONE_HOT_VALUE
            blocks.append(block)
        return np.hstack(blocks)


class _Index:
    """Exact nearest-neighbour search over reference rows (brute force: in ~20+ dimensions trees
    prune little, and sklearn's chunked GEMM search is several times faster)."""

    def __init__(self, reference: np.ndarray) -> None:
        from sklearn.neighbors import NearestNeighbors

        self._reference = reference
        self._index = NearestNeighbors(algorithm="brute").fit(reference)
        self._threads = 1 if len(reference) < _PARALLEL_MIN_ROWS else None

    def _kneighbors(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=self._threads, user_api="openmp"):
            return self._index.kneighbors(queries, n_neighbors=k)

    def nearest(self, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Distance to, and position of, each query's closest reference row."""
        dist, pos = self._kneighbors(queries, 1)
        return dist[:, 0], pos[:, 0]

    def closest_other(self, rng: np.random.Generator, max_rows: int) -> np.ndarray:
        """For (sampled) reference rows, the distance to their closest *other* reference row.

        The closest hit of a reference row is itself (or an identical row); the second is its closest other.
        """
        queries = self._reference[_sample(rng, len(self._reference), max_rows)]
        return self._kneighbors(queries, 2)[0][:, 1]

    def leave_one_out_quantile(self, rng: np.random.Generator, max_rows: int, q: float) -> float:
        return float(np.quantile(self.closest_other(rng, max_rows), q))


def _distances_to_closest_record(
    data: Encoded, space: _Space, max_rows: int, max_reference_rows: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, int]:
    """Euclidean distance from (sampled) synthetic rows to the closest reference row, from sampled
    reference rows to their closest *other* reference row, and the number of reference rows.

    The reference is the real set, sampled to ``max_reference_rows`` when larger so the cost of the
    search does not grow with the real data; the real-to-real baseline comes from the same reference,
    so "near" means the same thing on both sides.
    """
    syn_rows = _sample(rng, len(data.synthetic), max_rows)
    real_rows = _sample(rng, len(data.real), max_reference_rows)
    index = _Index(space(data.real, real_rows))
    dcr_syn = index.nearest(space(data.synthetic, syn_rows))[0]
    return dcr_syn, index.closest_other(rng, max_rows), len(real_rows)


def plot_dcr(privacy: Privacy) -> bytes:
    dcr_syn, dcr_real, near_threshold = privacy.dcr_syn, privacy.dcr_real, privacy.near_threshold
    fig = new_figure()
    ax = fig.add_subplot()
    top = float(np.quantile(np.r_[dcr_syn, dcr_real], 0.995)) or 1.0
    bins = np.linspace(0.0, top, 51)
    ax.hist(
        np.minimum(dcr_syn, top), bins=bins, density=True, alpha=0.6, label="synthetic → closest real row"
    )
    ax.hist(
        np.minimum(dcr_real, top), bins=bins, density=True, alpha=0.6, label="real → closest other real row"
    )
    ax.axvline(
        near_threshold, color="black", linestyle="--", label=f"near-copy distance {near_threshold:.3g}"
    )
    ax.set_xlabel("distance (standardised units; top 0.5% in the last bin)")
    ax.set_ylabel("density")
    ax.set_title("Distance to closest real record")
    ax.legend(fontsize="small")
    return to_png(fig)
