"""The one result shape every check returns, and the validation result that gathers them."""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = ["CheckResult", "ScoredRows", "SparkScoredRows", "Status", "ValidationResult", "worst_status"]


class Status(str, enum.Enum):
    """Outcome of a check.

    ``insufficient_evidence`` is a real outcome (a tiny group, too few rows) and never
    counts as a pass: only ``passed`` does.
    """

    PASSED = "passed"
    FAILED = "failed"
    NEEDS_REVIEW = "needs_review"
    INSUFFICIENT_EVIDENCE = "insufficient_evidence"

    def __str__(self) -> str:
        return self.value


# Most severe first: the overall status is the most severe status of any check.
_SEVERITY = (Status.FAILED, Status.NEEDS_REVIEW, Status.INSUFFICIENT_EVIDENCE, Status.PASSED)


def worst_status(statuses: Any) -> Status:
    """The most severe of ``statuses`` (``passed`` when there are none)."""
    found = {Status(s) for s in statuses}
    return next((s for s in _SEVERITY if s in found), Status.PASSED)


def frozen_mapping(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """A read-only copy: results, policies and configs hand out views nobody can change."""
    return MappingProxyType(dict(mapping or {}))


def _json_safe(value: Any) -> Any:
    """Turn numpy scalars, tuples and non-finite floats into plain JSON values."""
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_json_safe(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 0) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


@dataclass(frozen=True)
class CheckResult:
    """What one check found.

    Attributes
    ----------
    name : the check's name (``drift``, ``calibration``, ``adversarial``, ``fairness``, ``generator``).
    status : the verdict under ``thresholds``.
    metrics : flat ``{name: float}``; these become MLflow metrics ``hitl.<check>.<name>``.
    thresholds : the thresholds the verdict used, after any ``config`` override.
    details : JSON-serialisable explanation: per-column / per-group tables, reasons, sizes.
    artifacts : ``{file name: bytes}`` the check rendered (PNG plots, HTML); the MLflow adapter
        writes them under ``hitl/<check>/``. Checks never write files themselves.
    summary : one sentence a person reads first.
    """

    name: str
    status: Status
    metrics: Mapping[str, float] = field(default_factory=dict)
    thresholds: Mapping[str, float] = field(default_factory=dict)
    details: Mapping[str, Any] = field(default_factory=dict)
    artifacts: Mapping[str, bytes] = field(default_factory=dict, repr=False)
    summary: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", Status(self.status))
        object.__setattr__(
            self, "metrics", frozen_mapping({k: float(v) for k, v in (self.metrics or {}).items()})
        )
        object.__setattr__(self, "thresholds", frozen_mapping(self.thresholds))
        object.__setattr__(self, "details", frozen_mapping(self.details))
        object.__setattr__(self, "artifacts", frozen_mapping(self.artifacts))

    @property
    def passed(self) -> bool:
        return self.status is Status.PASSED

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form; artifacts are listed by name, not inlined."""
        return _json_safe(
            {
                "name": self.name,
                "status": self.status.value,
                "summary": self.summary,
                "metrics": dict(self.metrics),
                "thresholds": dict(self.thresholds),
                "details": dict(self.details),
                "artifacts": sorted(self.artifacts),
            }
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, allow_nan=False)

    def __repr__(self) -> str:
        return f"CheckResult(name={self.name!r}, status={self.status.value!r}, metrics={len(self.metrics)})"


@dataclass(frozen=True)
class ScoredRows:
    """The real rows ``validate`` scored and the model's probabilities for them, kept in memory only.

    They let a review queue be built straight from a validation (``queue_from_validation``) without
    asking the model again; they are never logged.
    """

    rows: Any
    y_prob: Any
    classes: tuple[Any, ...]

    def __repr__(self) -> str:
        return f"ScoredRows(rows={len(self.rows)}, classes={list(self.classes)})"


@dataclass(frozen=True)
class SparkScoredRows:
    """The real rows a Spark ``validate`` scored, left on the executors: what it takes to score them again there.

    ``rows`` is the checked real Spark DataFrame (the model's features, the target and the sensitive
    columns), lazy and not cached: keeping the probabilities would hold every row's on the cluster
    for as long as the result lives. ``queue_from_validation`` hands ``rows``, ``predict_proba`` and
    ``features`` to the Spark review queue, which scores and ranks them in one pass on the executors
    and fetches only the chosen rows; nothing here is proportional to the row count.
    """

    rows: Any
    predict_proba: Callable[[Any], Any]
    features: tuple[str, ...]
    classes: tuple[Any, ...]

    def __repr__(self) -> str:
        return f"SparkScoredRows(columns={len(self.rows.columns)}, classes={list(self.classes)})"


@dataclass(frozen=True)
class ValidationResult:
    """Every check ``validate`` ran, the checks it skipped and why, and the overall status.

    ``status`` is the most severe check status; a run where every check was skipped is
    ``insufficient_evidence``, never ``passed``.

    ``scored`` (never logged, not part of ``to_dict``): the real rows the model scored, for
    ``queue_from_validation``; :class:`ScoredRows` (in memory) on the pandas path,
    :class:`SparkScoredRows` (left on the executors) on the Spark path, ``None`` when the model gave
    no class probabilities.
    """

    checks: Mapping[str, CheckResult]
    skipped: Mapping[str, str] = field(default_factory=dict)
    details: Mapping[str, Any] = field(default_factory=dict)
    run_id: str | None = None
    scored: ScoredRows | SparkScoredRows | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "checks", frozen_mapping(self.checks))
        object.__setattr__(self, "skipped", frozen_mapping(self.skipped))
        object.__setattr__(self, "details", frozen_mapping(self.details))

    @property
    def status(self) -> Status:
        if not self.checks:
            return Status.INSUFFICIENT_EVIDENCE
        return worst_status(c.status for c in self.checks.values())

    @property
    def passed(self) -> bool:
        return self.status is Status.PASSED

    def metrics(self) -> dict[str, float]:
        """Every check's metrics, flattened as ``<check>.<metric>``."""
        return {f"{name}.{k}": v for name, check in self.checks.items() for k, v in check.metrics.items()}

    def to_dict(self) -> dict[str, Any]:
        return _json_safe(
            {
                "status": self.status.value,
                "run_id": self.run_id,
                "checks": {name: check.to_dict() for name, check in self.checks.items()},
                "skipped": dict(self.skipped),
                "details": dict(self.details),
            }
        )

    def __repr__(self) -> str:
        statuses = ", ".join(f"{n}={c.status.value}" for n, c in self.checks.items())
        return f"ValidationResult(status={self.status.value!r}, checks={{{statuses}}})"
