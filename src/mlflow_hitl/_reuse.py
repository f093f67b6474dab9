"""Reuse of the data-only checks' results when ``validate`` sees the same data again.

Some checks read data, never the model (drift and the generator check; each declares the columns
it reads in ``CheckSpec.data_read``): their result is a function of the frames and their settings
alone. A model-selection loop validates many models against the same
real, synthetic and production frames, and at a million rows those two checks are most of what
``validate`` costs beyond the model's own predictions (``docs/performance.md``). So ``validate``
keeps their last few results in this process, keyed by a content fingerprint of every input frame
and the check's settings, and hands back the stored result when all of them match.

A fingerprint is a SHA-256 over each column's name, dtype and pandas' vectorised 64-bit row hashes
(``pd.util.hash_pandas_object``, vectorised, a small part of a check's cost). pandas hashes
object values through their string form, so ``1``, ``"1"`` and ``True`` hash alike; a frame with an
object column that is not all strings therefore gets no fingerprint and its checks always run.
Two different frames share a fingerprint only if all their row hashes collide, which at 64 bits
per row is negligible. The same fingerprints name each input in ``result.details["fingerprints"]``,
so the evidence says which data it is about (``docs/quickstart.md`` gives the recipe).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import pandas as pd

from ._result import CheckResult

__all__ = ["Fingerprints", "clear", "reuse_or_compute"]

# A few entries are enough for a model-selection loop. Results are stored as computed, before any evidence
# rendered only for logging (evidently's pages), so an entry holds plots and numbers, not HTML.
_MAX_ENTRIES = 8

_results: OrderedDict[Hashable, CheckResult] = OrderedDict()
_lock = threading.Lock()


def _hashes_values_faithfully(series: pd.Series) -> bool:
    """True when pandas' row hash tells every two distinct values of ``series`` apart."""
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        categories = dtype.categories
        return not pd.api.types.is_object_dtype(categories.dtype) or pd.api.types.infer_dtype(categories) in (
            "string",
            "empty",
        )
    if pd.api.types.is_object_dtype(dtype):
        return pd.api.types.infer_dtype(series, skipna=True) in ("string", "empty")
    return True


class Fingerprints:
    """Content fingerprints of column selections of one frame; each column is hashed at most once."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self._frame = frame
        self._columns: dict[Any, str | None] = {}

    def _column(self, column: Any) -> str | None:
        if column not in self._columns:
            series = self._frame[column]
            digest = None
            if _hashes_values_faithfully(series):
                # Strings hash twice as fast through a categorical (each distinct value once, then the
                # codes), with the same row hashes; the digest still records the original dtype.
                values = series.astype("category") if pd.api.types.is_object_dtype(series.dtype) else series
                row_hashes = pd.util.hash_pandas_object(values, index=False).to_numpy()
                hasher = hashlib.sha256(f"{column!r}\0{series.dtype}\0".encode())
                # Little-endian on every machine, so the digest is the documented one; no copy on x86 and ARM.
                hasher.update(row_hashes.astype("<u8", copy=False))
                digest = hasher.hexdigest()
            self._columns[column] = digest
        return self._columns[column]

    def of(self, columns: Sequence[Any]) -> str | None:
        """The fingerprint of ``frame[columns]`` (order matters), or ``None`` when it cannot be trusted."""
        digests = [self._column(c) for c in columns]
        if any(d is None for d in digests):
            return None
        return hashlib.sha256("\0".join(digests).encode()).hexdigest()  # type: ignore[arg-type]


def reuse_or_compute(
    key: tuple[Hashable, ...] | None, compute: Callable[[], CheckResult]
) -> tuple[CheckResult, bool]:
    """The stored result for ``key`` if there is one, else ``compute()`` stored under it.

    Returns the result and whether it was reused. ``key`` is ``None`` when some input has no
    fingerprint: the result is then computed and not stored.
    """
    try:
        hash(key)
    except TypeError:  # a setting holding a list: nothing to key on
        key = None
    if key is None:
        return compute(), False
    with _lock:
        if key in _results:
            _results.move_to_end(key)
            return _results[key], True
    result = compute()
    with _lock:
        _results[key] = result
        while len(_results) > _MAX_ENTRIES:
            _results.popitem(last=False)
    return result, False


def clear() -> None:
    """Forget every stored result (frees their memory; the next ``validate`` recomputes)."""
    with _lock:
        _results.clear()
