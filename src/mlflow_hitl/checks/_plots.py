"""Rendering matplotlib figures to PNG bytes without a display or any file I/O.

Figures are made directly (``matplotlib.figure.Figure``), never through pyplot: nothing registers
with pyplot's global state, nothing leaks between checks, and the caller's backend (a notebook's
inline one, say) is left as it was. Saving as PNG renders with Agg whatever the backend.

matplotlib is imported when the first figure is made: the checks' declarations import this module,
and the gate reads those on every promotion without drawing anything.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["new_figure", "to_png"]


def new_figure(width: float = 6.0, height: float = 4.0) -> Figure:
    """A figure of its own, with constrained layout."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def to_png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
