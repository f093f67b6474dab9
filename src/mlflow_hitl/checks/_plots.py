"""Rendering matplotlib figures to PNG bytes without a display or any file I/O."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # headless: checks run on servers and in CI
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

__all__ = ["new_figure", "to_png"]


def new_figure(width: float = 6.0, height: float = 4.0) -> Figure:
    """A figure not registered with pyplot's global state, so nothing leaks between checks."""
    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def to_png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()
