"""How long work says how far it got, without knowing who shows it.

The core (``checks/``, ``review/``) never imports click or a progress library: a long operation takes
``progress``, a :data:`Progress` callable or ``None``, and calls ``progress(done, total)`` as it goes
(``done`` of ``total`` steps, ``0 <= done <= total``; the total may grow). The CLI passes one that draws
a bar on a terminal; scripts pass nothing.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["Progress", "or_silent"]

Progress = Callable[[int, int], None]
"""``progress(done, total)``: ``done`` of ``total`` steps finished."""


def _silent(done: int, total: int) -> None:
    """Shows nothing."""


def or_silent(progress: Progress | None) -> Progress:
    """``progress``, or one that shows nothing: code that reports its stages calls it unconditionally."""
    return _silent if progress is None else progress
