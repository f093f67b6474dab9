"""Which rows go to human review: the most uncertain, a random control share, and named edge cases.

Humans can label a few hundred of a model's production rows, so the queue is built in three parts, in
this order, never picking a row twice:

1. **edge cases** — rows in caller-named boolean masks (a rare class, a new category), always wanted;
2. **random control** — a uniform, seeded draw from the rows not yet taken. Its rows carry their
   inclusion probability, so an accuracy measured on them can be reweighted (Horvitz–Thompson) into an
   unbiased estimate for the whole population; the uncertain rows alone would paint the model too badly;
3. **uncertainty** — the rest, highest score first, optionally split equally across groups so every
   group (e.g. every value of a sensitive attribute) gets reviewed.

Active-learning libraries (modAL, small-text) score uncertainty but have no control share, edge-case
slices, stratification or per-row reason, and would bring a learner API we do not need; the scores are
three lines of numpy, so they are written here. Top-k uses ``np.partition`` (linear time), not a full
sort, so a million rows take well under a second.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from .._review_options import STRATEGIES
from .._validation import check_probabilities
from ..errors import InputError

__all__ = ["STRATEGIES", "control_rows", "select_among", "select_for_review", "uncertainty_scores"]

RANDOM_CONTROL = "random-control"
MISSING_GROUP = "missing"


# --------------------------------------------------------------------------- scores


def _least_confidence(prob: np.ndarray) -> np.ndarray:
    return 1.0 - prob.max(axis=1)


def _margin(prob: np.ndarray) -> np.ndarray:
    top_two = np.partition(prob, -2, axis=1)[:, -2:]  # [second, first] per row, in O(k)
    return 1.0 - (top_two[:, 1] - top_two[:, 0])


def _entropy(prob: np.ndarray) -> np.ndarray:
    from scipy.special import entr  # here, not at import: the review store loads this module without scipy

    # entr(p) = -p log p with entr(0) = 0. Dividing by log k puts every problem on [0, 1];
    # the clip only removes float noise above 1 on exactly uniform rows.
    return np.minimum(entr(prob).sum(axis=1) / np.log(prob.shape[1]), 1.0)


_SCORERS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "least-confidence": _least_confidence,
    "margin": _margin,
    "entropy": _entropy,
}


def _check_strategy(strategy: Any) -> str:
    if strategy not in STRATEGIES:
        raise InputError(f"strategy {strategy!r} is unknown; use one of {', '.join(STRATEGIES)}")
    return strategy


def _check_prob(y_prob: Any) -> np.ndarray:
    prob = check_probabilities(y_prob, "y_prob")
    if prob.shape[1] < 2:
        raise InputError(
            "y_prob has one column; pass one column per class (or a 1-D positive-class probability)"
        )
    return prob


def uncertainty_scores(y_prob: np.ndarray, *, strategy: str) -> np.ndarray:
    """How unsure the model is about each row; higher means more uncertain, all on [0, 1].

    ``y_prob`` is ``(n, k)`` class probabilities (or 1-D positive-class probabilities):

    - ``least-confidence``: ``1 - max p``
    - ``margin``: ``1 - (p(1) - p(2))``, the two largest probabilities
    - ``entropy``: ``-sum p log p / log k`` (``0 log 0 = 0``)

    ``random`` is a sampling strategy, not a score, and is refused here.
    """
    if _check_strategy(strategy) == "random":
        raise InputError(
            "strategy 'random' has no uncertainty score; use least-confidence, margin or entropy"
        )
    return _SCORERS[strategy](_check_prob(y_prob))


# --------------------------------------------------------------------------- input checks


def _check_count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InputError(f"{name} must be an integer, got {value!r}")
    return int(value)


def _check_share(random_share: Any) -> float:
    try:
        share = float(random_share)
    except (TypeError, ValueError):
        share = np.nan
    if isinstance(random_share, bool) or not 0.0 <= share <= 1.0:  # NaN fails the comparison too
        raise InputError(f"random_share must be a number in [0, 1], got {random_share!r}")
    return share


def _one_dimensional(values: Any, name: str, n: int) -> np.ndarray:
    arr = values.to_numpy() if isinstance(values, (pd.Series, pd.Index)) else np.asarray(values)
    if arr.ndim != 1:
        raise InputError(f"{name} must be one-dimensional (one value per row), got shape {arr.shape}")
    if len(arr) != n:
        raise InputError(f"{name} has {len(arr)} entries but y_prob has {n} rows; pass one per row")
    return arr


def _check_groups(groups: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(code per row, label per code); missing values become the group ``"missing"``."""
    labels = pd.Series(_one_dimensional(groups, "groups", n), dtype=object)
    codes, uniques = pd.factorize(labels.where(labels.notna(), MISSING_GROUP))
    return codes, np.asarray(uniques, dtype=object)


def _check_edge_cases(edge_cases: Any, n: int) -> tuple[list[str], np.ndarray]:
    """(names, index of the first mask holding each row or -1)."""
    first = np.full(n, -1, dtype=np.intp)
    if edge_cases is None:
        return [], first
    if not isinstance(edge_cases, Mapping):
        raise InputError(
            "edge_cases must map a name to a boolean mask, e.g. {'rare_class': y_pred == 'rare'}; "
            f"got {type(edge_cases).__name__}"
        )
    names = list(edge_cases)
    for i, name in enumerate(names):
        if not isinstance(name, str) or not name:
            raise InputError(f"edge_cases names must be non-empty strings, got {name!r}")
        mask = edge_cases[name]
        if isinstance(mask, (pd.Series, pd.Index)) and pd.api.types.is_bool_dtype(mask.dtype):
            if mask.isna().any():  # pandas' nullable "boolean" dtype
                raise InputError(f"edge_cases[{name!r}] has missing values; fill them with True or False")
            mask = mask.to_numpy(dtype=bool)
        arr = _one_dimensional(mask, f"edge_cases[{name!r}]", n)
        if arr.dtype != bool:
            raise InputError(
                f"edge_cases[{name!r}] must be a boolean mask, got dtype {arr.dtype}; "
                "build it from a comparison such as y_pred == 'rare'"
            )
        first[arr & (first < 0)] = i
    return names, first


# --------------------------------------------------------------------------- selection


def _order(score: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Permutation putting ``rows`` highest score first, ties by row position."""
    return np.lexsort((rows, -score[rows]))


def _top_k(score: np.ndarray, rows: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` of ``rows`` (ascending positions) with the highest score, highest first, ties by position.

    ``np.partition`` finds the k-th highest value in linear time; rows tied at that value are taken in
    position order, so the choice is deterministic without sorting every row.
    """
    if k <= 0:
        return rows[:0]
    if k < len(rows):
        values = score[rows]
        kth = np.partition(values, len(values) - k)[len(values) - k]
        above = rows[values > kth]
        rows = np.concatenate([above, rows[values == kth][: k - len(above)]])
    return rows[_order(score, rows)]


def _equal_split(budget: int, capacity: np.ndarray) -> tuple[np.ndarray, int]:
    """Split ``budget`` equally over groups holding ``capacity`` rows; small groups give all they have.

    Returns the allocation and what is left over (fewer than the groups still open), which the
    caller hands out one row at a time.
    """
    alloc = np.zeros_like(capacity)
    while budget:
        share = budget // int((alloc < capacity).sum())
        if share == 0:
            break
        give = np.minimum(capacity - alloc, share)
        alloc += give
        budget -= int(give.sum())
    return alloc, budget


def _stratified_top_k(
    score: np.ndarray, rows: np.ndarray, codes: np.ndarray, n_groups: int, k: int
) -> np.ndarray:
    """``k`` of ``rows`` split equally across groups, each group giving its most uncertain rows.

    When ``k`` does not divide evenly, the leftover rows go to the groups whose next row is the most
    uncertain, so the split stays as equal as possible and the extra picks are the best available.
    """
    counts = np.bincount(codes[rows], minlength=n_groups)
    by_group = np.split(rows[np.argsort(codes[rows], kind="stable")], np.cumsum(counts)[:-1])
    alloc, leftover = _equal_split(k, counts)
    open_groups = np.flatnonzero(alloc < counts) if leftover else np.array([], dtype=np.intp)
    want = alloc.copy()
    want[open_groups] += 1
    tops = [_top_k(score, group_rows, w) for group_rows, w in zip(by_group, want, strict=True)]
    if leftover:
        candidates = np.array([tops[g][alloc[g]] for g in open_groups])
        alloc[open_groups[_order(score, candidates)[:leftover]]] += 1
    picked = np.concatenate([top[:a] for top, a in zip(tops, alloc, strict=True)])
    return picked[_order(score, picked)]


def _uncertain_picks(
    score: np.ndarray, rest: np.ndarray, codes: np.ndarray | None, labels: np.ndarray | None, k: int
) -> np.ndarray:
    """The ``k`` highest-scoring of the ``rest`` rows, split equally across groups when there are groups."""
    if codes is None:
        return _top_k(score, rest, k)
    return _stratified_top_k(score, rest, codes, len(labels), k)


def _control_count(size: int, random_share: float) -> int:
    """``random_share * size`` rounded half up; at least one when there is a share and room for it."""
    count = int(np.floor(random_share * size + 0.5))
    return max(count, 1) if random_share > 0 and size >= 2 else count


def _check_review_inputs(
    y_prob: Any,
    strategy: Any,
    size: Any,
    random_share: Any,
    groups: Any,
    edge_cases: Any,
    seed: Any,
) -> tuple[np.ndarray, int, float, int, np.ndarray | None, np.ndarray | None, list[str], np.ndarray]:
    """Validate every argument of :func:`select_for_review` before any work is done.

    Kept in one place, in the original order, so the first bad argument is the one reported and the
    selection logic can assume clean inputs. Returns ``(prob, size, random_share, seed, codes,
    labels, edge_names, edge_first)``; ``codes`` and ``labels`` are ``None`` without ``groups``.
    """
    _check_strategy(strategy)
    prob = _check_prob(y_prob)
    n = len(prob)
    size = _check_count(size, "size")
    if size <= 0:
        raise InputError(f"size must be at least 1, got {size}")
    random_share = _check_share(random_share)
    seed = _check_count(seed, "seed")
    codes, labels = _check_groups(groups, n) if groups is not None else (None, None)
    edge_names, edge_first = _check_edge_cases(edge_cases, n)
    return prob, size, random_share, seed, codes, labels, edge_names, edge_first


def _pick_edge_cases(
    score: np.ndarray, edge_first: np.ndarray, size: int, is_random: bool, rng: np.random.Generator
) -> np.ndarray:
    """Edge-case rows, capped at ``size``: the most uncertain ones, or a seeded draw for ``random``.

    Edge cases come first because the caller asked for them by name; when they alone exceed the
    budget, the cap must follow the strategy (a random draw has no score to rank by). The draw uses
    the shared ``rng`` before the control draw, so results for a given seed stay the same.
    """
    edge = np.flatnonzero(edge_first >= 0)
    if is_random:
        return np.sort(rng.choice(edge, size, replace=False)) if len(edge) > size else edge
    return _top_k(score, edge, size)


def _pick_control(
    taken: np.ndarray,
    room: int,
    size: int,
    random_share: float,
    is_random: bool,
    rng: np.random.Generator,
) -> tuple[np.ndarray, int]:
    """The random-control rows, drawn uniformly from rows not yet ``taken``, and how many were eligible.

    The eligible count is returned because it is the denominator of each control row's inclusion
    probability, which lets accuracy on the control share be reweighted to the whole population.
    With ``random`` every remaining slot is control. The draw always happens (even of zero rows)
    so the seeded ``rng`` sequence matches earlier releases.
    """
    eligible = np.flatnonzero(~taken)
    n_control = _control_size(room, size, random_share, is_random)
    return eligible[rng.choice(len(eligible), n_control, replace=False)], len(eligible)


def _control_size(room: int, size: int, random_share: float, is_random: bool) -> int:
    """How many of the ``room`` slots left after the edge cases are random control."""
    return room if is_random else min(room, _control_count(size, random_share))


def _review_frame(
    score: np.ndarray,
    edge: np.ndarray,
    control: np.ndarray,
    uncertain: np.ndarray,
    edge_names: list[str],
    edge_first: np.ndarray,
    strategy: str,
    n_eligible: int,
    codes: np.ndarray | None,
    labels: np.ndarray | None,
) -> pd.DataFrame:
    """Assemble the output frame: one row per pick, in selection order, with its reason.

    Separate from the picking so the output contract (column names and order, reason strings,
    ``inclusion_probability`` only on control rows for Horvitz–Thompson reweighting) lives in one
    place. ``n_eligible`` is the number of rows the control share was drawn from.
    """
    rows = np.concatenate([edge, control, uncertain]).astype(np.int64)
    reasons = np.array(
        [f"edge-case:{name}" for name in edge_names] + [RANDOM_CONTROL, strategy], dtype=object
    )
    reason_index = np.concatenate(
        [
            edge_first[edge],
            np.full(len(control), len(edge_names)),
            np.full(len(uncertain), len(edge_names) + 1),
        ]
    )
    n_control = len(control)
    inclusion = np.full(len(rows), np.nan)
    if n_control:
        inclusion[len(edge) : len(edge) + n_control] = n_control / n_eligible

    frame = pd.DataFrame({"row": rows, "reason": reasons[reason_index], "score": score[rows]})
    if codes is not None:
        frame["group"] = labels[codes[rows]]
    frame["inclusion_probability"] = inclusion
    frame["rank"] = np.arange(1, len(rows) + 1, dtype=np.int64)
    return frame


def select_for_review(
    y_prob: np.ndarray,
    *,
    size: int,
    strategy: str = "least-confidence",
    random_share: float = 0.1,
    groups: pd.Series | np.ndarray | None = None,
    edge_cases: Mapping[str, np.ndarray] | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """Pick ``size`` rows of ``y_prob`` for human review, each with the reason it was picked.

    Order: edge-case rows first (the most uncertain of them if they exceed ``size``), then
    ``random_share * size`` random-control rows (rounded half up, at least 1 when ``random_share > 0``
    and ``size >= 2``) drawn uniformly from the rest, then the highest-scoring rows under ``strategy``
    (ties by row position). ``strategy="random"`` makes everything after the edge cases random
    control. With ``groups``, the uncertainty part is split equally across groups (NaN is the group
    ``"missing"``); a group with too few rows gives all of them and the others share the remainder.
    ``size`` larger than the number of rows selects every row.

    Returns one row per selected input row, in selection order, with columns ``row`` (position in
    ``y_prob``), ``reason``, ``score`` (under ``strategy``; NaN for ``random``), ``group`` (only when
    ``groups`` is given), ``inclusion_probability`` (random-control rows: ``n_control / n_eligible``;
    NaN otherwise) and ``rank`` (1 = selected first).
    """
    prob, size, random_share, seed, codes, labels, edge_names, edge_first = _check_review_inputs(
        y_prob, strategy, size, random_share, groups, edge_cases, seed
    )
    n = len(prob)
    rng = np.random.default_rng(seed)
    is_random = strategy == "random"
    score = np.full(n, np.nan) if is_random else _SCORERS[strategy](prob)
    size = min(size, n)

    edge = _pick_edge_cases(score, edge_first, size, is_random, rng)
    taken = np.zeros(n, dtype=bool)
    taken[edge] = True

    room = size - len(edge)
    control, n_eligible = _pick_control(taken, room, size, random_share, is_random, rng)
    taken[control] = True

    uncertain = _uncertain_picks(score, np.flatnonzero(~taken), codes, labels, room - len(control))
    return _review_frame(
        score, edge, control, uncertain, edge_names, edge_first, strategy, n_eligible, codes, labels
    )


# --------------------------------------------------------------------------- rows ranked where they live


def control_rows(
    n_rows: int, *, size: int, strategy: str = "least-confidence", random_share: float = 0.1, seed: int = 0
) -> tuple[np.ndarray, int]:
    """The random-control positions :func:`select_for_review` draws from ``n_rows`` rows, and how many
    uncertainty picks follow them (no edge cases).

    For an engine that ranks rows where they live (a Spark cluster) and must not bring them all to one
    process: it draws the control rows here, fetches them together with the best-scoring other rows
    of each group (:func:`select_among`), and gets the very choice :func:`select_for_review` makes
    over the same rows in the same order. The draw takes memory in the number drawn, not in ``n_rows``.
    """
    _check_strategy(strategy)
    size = _check_count(size, "size")
    if size <= 0:
        raise InputError(f"size must be at least 1, got {size}")
    random_share = _check_share(random_share)
    rng = np.random.default_rng(_check_count(seed, "seed"))
    size = min(size, _check_count(n_rows, "n_rows"))
    n_control = _control_size(size, size, random_share, strategy == "random")
    return rng.choice(n_rows, n_control, replace=False), size - n_control


def select_among(
    candidates: pd.DataFrame,
    *,
    n_rows: int,
    size: int,
    strategy: str = "least-confidence",
    random_share: float = 0.1,
    seed: int = 0,
) -> pd.DataFrame:
    """What :func:`select_for_review` picks from ``n_rows`` rows, given only the rows it can pick.

    ``candidates`` has a ``row`` column (positions among the ``n_rows``), ``score`` (under
    ``strategy``; NaN for ``random``) and, to split the picks across groups, ``group``. It must hold
    the :func:`control_rows` and, of the other rows, each group's ``n`` best by score (ties by
    position), ``n`` being the uncertainty picks :func:`control_rows` returns. More rows do no harm:
    the equal split only needs to know that a group can fill its share. Returns the frame
    :func:`select_for_review` returns, ``row`` being positions among the ``n_rows``.
    """
    control, k = control_rows(n_rows, size=size, strategy=strategy, random_share=random_share, seed=seed)
    order = np.argsort(candidates["row"].to_numpy(dtype=np.int64), kind="stable")
    positions = candidates["row"].to_numpy(dtype=np.int64)[order]
    score = candidates["score"].to_numpy(dtype=float)[order]
    # Candidates keep their position order, so ties broken by candidate index are broken by position.
    control_at = np.searchsorted(positions, control)
    if (control_at >= len(positions)).any() or (positions[control_at] != control).any():
        raise InputError("candidates must include every random-control row that control_rows draws")
    taken = np.zeros(len(positions), dtype=bool)
    taken[control_at] = True
    codes, labels = (
        _check_groups(candidates["group"].to_numpy()[order], len(positions))
        if "group" in candidates.columns
        else (None, None)
    )
    uncertain = _uncertain_picks(score, np.flatnonzero(~taken), codes, labels, k)
    frame = _review_frame(
        score,
        control_at[:0],
        control_at,
        uncertain,
        [],
        np.full(len(positions), -1),
        strategy,
        n_rows,
        codes,
        labels,
    )
    frame["row"] = positions[frame["row"].to_numpy()]
    return frame
