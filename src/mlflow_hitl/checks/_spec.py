"""What a check declares about itself, once, in its own module, and what ``validate`` hands it.

A check module defines its settings (a :class:`~mlflow_hitl._settings.Settings` dataclass with its
range rules), its public function, and one ``SPEC = CheckSpec(...)`` that says how ``validate`` runs
it. :mod:`mlflow_hitl.checks.registry` gathers the specs; ``validate``, the config, the report, the
default gate policy, the CLI and the docs test all read them from there.

Declarations must stay light: a check module imports numpy and pandas at most, and its heavy
libraries (scipy, scikit-learn, fairlearn, matplotlib, evidently) inside the functions that use them,
because the gate reads check names and default bounds on every promotion.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

import numpy as np
import pandas as pd

from .._result import CheckResult
from .._settings import Settings

__all__ = ["BaseCheckSpec", "CheckSpec", "ReviewCheckSpec", "ValidationInputs"]


@dataclass(frozen=True)
class ValidationInputs:
    """Everything ``validate`` prepared once, checked, for the checks to share.

    ``real`` holds the features, the target and the sensitive columns; ``synthetic`` the same columns
    (or ``None``); ``production`` exactly the features (or ``None``). ``holdout`` (real rows the
    generator never saw) and ``source`` (the rows it learned from) are the generator check's, as given
    (or ``None``): that check selects and checks their columns. ``proba`` and ``predict_proba``
    are ``None`` for a model without class probabilities; ``y_pred`` comes from the same model call.
    """

    real: pd.DataFrame
    X_real: pd.DataFrame  # noqa: N815 - the usual name for a feature matrix; real's features, selected once
    synthetic: pd.DataFrame | None
    production: pd.DataFrame | None
    target: str
    features: list[str]
    sensitive: list[str]
    y_true: np.ndarray
    y_pred: np.ndarray
    classes: tuple[Any, ...]
    proba: np.ndarray | None
    predict_proba: Callable[[pd.DataFrame], np.ndarray] | None
    model: str  # how the model describes itself, for skip reasons
    holdout: pd.DataFrame | None = None
    source: pd.DataFrame | None = None

    def frame(self, role: str) -> pd.DataFrame | None:
        """The input called ``role`` (``real``, ``synthetic``, ``production``, ``holdout`` or ``source``)."""
        return {
            "real": self.real,
            "synthetic": self.synthetic,
            "production": self.production,
            "holdout": self.holdout,
            "source": self.source,
        }[role]


# The columns a data-only check reads from each input, by role: its result depends on nothing else.
DataRead = Sequence[tuple[str, Sequence[str]]]


@dataclass(frozen=True)
class BaseCheckSpec:
    """What every check declares, however it is computed (see :class:`CheckSpec` for the fields).

    ``validate`` computes a :class:`CheckSpec`; people's answers in a review queue compute a
    :class:`ReviewCheckSpec`. Both log the same result shape and are held to a gate policy alike.
    """

    name: str
    settings: type[Settings]
    key_metrics: tuple[str, ...]
    counts: tuple[str, ...] = ()
    gate_max: Mapping[str, str] = field(default_factory=dict)
    gate_min: Mapping[str, str] = field(default_factory=dict)
    gate_allow_status: tuple[str, ...] = ("passed",)

    def metric_range(self, pattern: str) -> tuple[float, float] | None:
        """The values a metric matched by ``pattern`` can take (``ece``, ``*.ece``, ``sex.ece``), else None.

        Read from the range of the setting that bounds the same metric by default (``gate_max`` /
        ``gate_min`` and ``settings.RANGES``), matching on the metric's own name, the part after the
        last dot, so a gate policy's bound is held to the range the check's config is held to.
        """
        name = pattern.rsplit(".", 1)[-1]
        for metric, setting in (*self.gate_max.items(), *self.gate_min.items()):
            if metric.rsplit(".", 1)[-1] == name and setting in self.settings.RANGES:
                return self.settings.RANGES[setting]
        return None

    def headline(self, metrics: Mapping[str, float]) -> list[str]:
        """The names in ``metrics`` that ``key_metrics`` matches, in the order it declares them."""
        found: dict[str, None] = {}
        for pattern in self.key_metrics:
            found.update((name, None) for name in metrics if fnmatchcase(name, pattern))
        return list(found)

    def is_count(self, name: str) -> bool:
        """Whether metric ``name`` is a count or a yes/no flag (see ``counts``)."""
        return any(fnmatchcase(name, pattern) for pattern in self.counts)


@dataclass(frozen=True)
class CheckSpec(BaseCheckSpec):
    """One check, declared once.

    - ``name``: the check's name everywhere (``validate(checks=...)``, ``hitl.<name>.*`` metrics,
      ``hitl/<name>/`` artifacts, ``[checks.<name>]`` in a gate policy, ``docs/checks/<name>.md``).
    - ``settings``: its config section; ``ValidationConfig.<name>``; range rules in its ``check_ranges``.
    - ``missing``: why ``validate`` must skip it for these inputs (an input it needs was not given), or None.
    - ``run``: how ``validate`` runs it on the prepared inputs and its resolved settings.
    - ``key_metrics``: the check's headline metrics, as name patterns (``*`` and ``?`` as in
      :func:`fnmatch.fnmatchcase`), most telling first: logged as MLflow metrics by default and shown
      first in the report, in this order. Every metric stays in ``result.json``.
    - ``counts``: patterns of metrics that count rows, columns or group members, or flag yes/no (0/1):
      facts about the data, not measures to chart, so never logged as MLflow metrics (they stay in
      ``result.json`` and the report).
    - ``gate_max`` / ``gate_min``: metric pattern -> the setting whose default is the default gate
      policy's bound on it; ``gate_allow_status``: the statuses the default policy accepts.
    - ``data_read``: for a check that reads data only, never the model, the columns it reads of each
      input: its result is then reused for identical data (``validate(reuse=True)``). None: never reused.
    - ``render``: evidence rendered only when the result is logged (an HTML page, say), added to a
      computed (possibly reused) result; ``validate(log=False)`` never pays for it.
    """

    missing: Callable[[ValidationInputs], str | None] = field(kw_only=True)
    run: Callable[[ValidationInputs, Any], CheckResult] = field(kw_only=True)
    data_read: Callable[[ValidationInputs], DataRead] | None = field(default=None, kw_only=True)
    render: Callable[[CheckResult, ValidationInputs, Any], CheckResult] | None = field(
        default=None, kw_only=True
    )

    @property
    def module(self) -> str:
        """The module that declares and computes the check (and every metric name it logs)."""
        return self.run.__module__


@dataclass(frozen=True)
class ReviewCheckSpec(BaseCheckSpec):
    """A check computed from people's answers in a review queue, not by ``validate``.

    Its own command logs it to a run (``hitl/<name>/``, merged into the run's evidence); a gate policy
    holds it to ``[checks.<name>]`` and people sign it off like any check, but the default policy does
    not require it: not every model has such a queue. ``compute``: the public function computing it.
    """

    compute: Callable[..., CheckResult] = field(kw_only=True)

    @property
    def module(self) -> str:
        """The module that declares and computes the check (and every metric name it logs)."""
        return self.compute.__module__
