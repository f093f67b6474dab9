"""How numbers read to people, the same in the report, lineage, the CLI and the web pages.

One place so a reader never sees ``0.233`` beside ``0.3781``, ``2e+04`` for a threshold, ``500000`` for
half a million rows, or ``nan`` in one output and ``n/a`` in the next.
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any

__all__ = ["MISSING", "number", "percent"]

MISSING = "n/a"
"""What any output shows for a number that is absent or not a number."""


def number(value: Any, *, decimals: int = 3) -> str:
    """``value`` for people: integers with thousands separators, other numbers with ``decimals`` decimals.

    Integers (and whole floats of 1,000 or more, such as a threshold of ``20000.0``) read ``20,000``;
    a non-zero number too small for ``decimals`` keeps two significant digits (``3.1e-05``) rather than
    reading as zero; ``None`` and NaN read :data:`MISSING`; infinities ``inf``/``-inf``; booleans
    ``yes``/``no``. Anything else is shown with ``str``.
    """
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Integral):
        return f"{int(value):,}"
    if not isinstance(value, Real):
        return str(value)
    x = float(value)
    if math.isnan(x):
        return MISSING
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x.is_integer() and abs(x) >= 1000:
        return f"{int(x):,}"
    if x != 0 and abs(x) < 0.5 * 10**-decimals:
        return f"{x:.1e}"
    return f"{x:,.{decimals}f}"


def percent(value: Any, *, decimals: int = 1) -> str:
    """A share in ``[0, 1]`` as a percentage (``0.434`` -> ``43.4%``); missing reads :data:`MISSING`."""
    if value is None or isinstance(value, bool) or not isinstance(value, Real) or math.isnan(float(value)):
        return MISSING
    return f"{float(value):.{decimals}%}"
