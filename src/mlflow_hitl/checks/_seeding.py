"""Seeded random streams named by what they are for, never by a position in a list.

A stream keyed by its name (a perturbation, a fairness grouping) draws the same numbers whatever else
is configured beside it: adding a perturbation or a sensitive feature leaves every other draw as it was.
"""

from __future__ import annotations

import zlib

import numpy as np

__all__ = ["named_rng"]


def named_rng(seed: int, name: str) -> np.random.Generator:
    """The stream for ``name`` under ``seed``: numpy's SeedSequence over the seed and a stable hash of the name.

    CRC-32 is stable across processes and Python versions (``hash(str)`` is salted per process).
    """
    return np.random.default_rng([seed, zlib.crc32(name.encode())])
