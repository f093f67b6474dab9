"""A generator audit's results, computed from the review queue and logged to an MLflow run.

The queue (:func:`mlflow_hitl.review.queue_generator_audit`) holds people's realism judgements; the
``generator_audit`` check (:func:`mlflow_hitl.checks.generator_audit_check`) turns them into the human
AUC and accuracy overall and per group; this logs the result into the run's evidence beside any check
``validate`` logged there, under ``hitl/generator_audit/`` (``result.json``, ``groups.csv``,
``flagged.csv``), so a gate policy's ``[checks.generator_audit]`` and sign-offs can use it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._result import CheckResult
from ..checks import generator_audit_check
from ..errors import InputError
from ..review import QueueStore, generator_audit_inputs
from .logging import log_check, resolve_run_id

__all__ = ["generator_audit_results"]


def generator_audit_results(
    store: QueueStore,
    queue: str,
    *,
    run_id: str | None = None,
    config: Mapping[str, Any] | None = None,
    log: bool = True,
) -> CheckResult:
    """How well people told synthetic from real rows in generator-audit queue ``queue``; logged to a run.

    ``run_id``: the run to log to (default: the queue's run, e.g. the generator's, or the training run
    whose model versions a gate policy should hold to the audit). ``config``: settings of the
    ``generator_audit`` check (``max_human_auc``, ``min_group_items``, ``n_bootstrap``...).
    ``log=False`` computes without logging. Reading the answers needs a store that shows the truth:
    locally the SQL store; through a server, an adjudicator or admin (the queue is blind).
    """
    labels = store.queue_labels(queue)
    result = generator_audit_check(*generator_audit_inputs(labels), config=config)
    if not log:
        return result
    target = resolve_run_id(run_id or labels.queue.run_id)
    if target is None:
        raise InputError(
            f"queue {queue!r} belongs to no MLflow run; pass run_id (the generator's run) to log the audit"
        )
    log_check(result, run_id=target)
    return result
