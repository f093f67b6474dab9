"""Which served requests go to people: the rule a production model routes its inputs by.

A served model sees rows one request at a time, so the batch ranking of :func:`select_for_review`
(top-k of a known set) becomes a per-row rule, with the same scores and the same reasons:

- **uncertain**: the row's confidence under ``strategy`` is below ``threshold``. Confidence is one
  minus the uncertainty score of :func:`uncertainty_scores`: the top probability for
  ``least-confidence``, the gap between the two top probabilities for ``margin``, one minus the
  normalised entropy for ``entropy``;
- **random control**: each row, uncertain or not, is drawn with probability ``control_share`` from a
  seeded generator. Its inclusion probability is that share, stored with the item, so accuracy on the
  control rows can be reweighted (Horvitz–Thompson) into an estimate for all traffic, as for a batch
  queue;
- **budget**: at most ``count`` rows per ``period`` (``"500/day"``) reach the queue, control rows
  first; windows are aligned to the epoch (a day is a UTC day). Rows past the budget are counted,
  not queued: reviewers' time is the scarce resource the budget protects.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .._review_options import ROUTING_STRATEGIES
from ..errors import InputError
from ._sampling import RANDOM_CONTROL, uncertainty_scores

__all__ = ["ROUTING_STRATEGIES", "Budget", "Router", "RoutingRule"]

_PERIODS = {"second": 1, "minute": 60, "hour": 3_600, "day": 86_400, "week": 604_800}


@dataclass(frozen=True)
class Budget:
    """At most ``count`` routed rows per ``period`` (one of second, minute, hour, day, week)."""

    count: int
    period: str

    @classmethod
    def parse(cls, text: str | Budget | None) -> Budget | None:
        """``"500/day"`` as a :class:`Budget`; ``None`` or ``""``: no budget."""
        if text is None or isinstance(text, Budget):
            return text
        count, _, period = str(text).strip().partition("/")
        if not count.strip().isdigit() or int(count) < 1 or period.strip() not in _PERIODS:
            raise InputError(
                f"budget must look like 500/day (a whole number ≥ 1 per {', '.join(_PERIODS)}), got {text!r}"
            )
        return cls(int(count), period.strip())

    @property
    def seconds(self) -> int:
        return _PERIODS[self.period]

    def __str__(self) -> str:
        return f"{self.count}/{self.period}"


@dataclass(frozen=True)
class RoutingRule:
    """What a served model sends to review; see the module docstring. Checked when made."""

    strategy: str = "least-confidence"
    threshold: float = 0.6
    budget: Budget | None = None
    control_share: float = 0.02
    seed: int = 0

    def __post_init__(self) -> None:
        if self.strategy not in ROUTING_STRATEGIES:
            raise InputError(
                f"strategy {self.strategy!r} cannot route single requests; use one of {', '.join(ROUTING_STRATEGIES)}"
            )
        for name in ("threshold", "control_share"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise InputError(f"{name} must be a number in [0, 1], got {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise InputError(f"seed must be an integer, got {self.seed!r}")
        object.__setattr__(self, "budget", Budget.parse(self.budget))

    def to_dict(self) -> dict[str, Any]:
        """Plain values (the budget as text), for a model's config and the docs."""
        return {
            "strategy": self.strategy,
            "threshold": float(self.threshold),
            "budget": None if self.budget is None else str(self.budget),
            "control_share": float(self.control_share),
            "seed": self.seed,
        }


class Router:
    """Applies a :class:`RoutingRule` to rows as they come; safe to share between threads.

    The control draw and the budget window are state: rows are decided in the order they reach
    :meth:`route`, so the same seed and the same sequence of batches give the same decisions.
    """

    def __init__(self, rule: RoutingRule, *, clock: Callable[[], float] = time.time) -> None:
        self.rule = rule
        self._clock = clock
        self._rng = np.random.default_rng(rule.seed)
        self._lock = threading.Lock()
        self._window: int | None = None
        self._used = 0
        self.over_budget = 0

    def route(self, y_prob: Any) -> pd.DataFrame:
        """The rows of ``y_prob`` (``(n, k)`` class probabilities) to queue, in the shape of
        :func:`select_for_review`'s answer: ``row``, ``reason`` (the strategy, or ``random-control``),
        ``score`` (uncertainty) and ``inclusion_probability`` (the control share on control rows)."""
        rule = self.rule
        score = uncertainty_scores(y_prob, strategy=rule.strategy)
        uncertain = (1.0 - score) < rule.threshold
        with self._lock:
            control = self._rng.random(len(score)) < rule.control_share
            rows = np.concatenate([np.flatnonzero(control), np.flatnonzero(uncertain & ~control)])
            rows = rows[: self._room(len(rows))]
        rows.sort(kind="stable")
        is_control = control[rows]
        return pd.DataFrame(
            {
                "row": rows.astype(np.int64),
                "reason": np.where(is_control, RANDOM_CONTROL, rule.strategy).astype(object),
                "score": score[rows],
                "inclusion_probability": np.where(is_control, float(rule.control_share), math.nan),
            }
        )

    def _room(self, wanted: int) -> int:
        """How many of ``wanted`` rows the budget lets through now (the lock is held)."""
        budget = self.rule.budget
        if budget is None:
            return wanted
        window = int(self._clock() // budget.seconds)
        if window != self._window:
            self._window, self._used = window, 0
        room = min(wanted, budget.count - self._used)
        self._used += room
        self.over_budget += wanted - room
        return room
