"""What a person chooses when reviewing, in one light module: the review code defines its behaviour
by these names and the CLI offers them, without the CLI importing pandas or SQLAlchemy to know them
(``mlflow-hitl --help`` stays a tenth of a second)."""

from __future__ import annotations

__all__ = [
    "DEFAULT_MIN_AGREEMENT",
    "GENERATOR_AUDIT",
    "METHODS",
    "QUEUE_KINDS",
    "ROUTING_STRATEGIES",
    "STRATEGIES",
]

# Consensus methods (mlflow_hitl.review.consensus).
METHODS: tuple[str, ...] = ("majority", "dawid-skene")
# How rows are picked for review (mlflow_hitl.review.select_for_review); the first is the default.
STRATEGIES: tuple[str, ...] = ("least-confidence", "margin", "entropy", "random")
# How a served model decides one request at a time (mlflow_hitl.review.RoutingRule): the scores, not "random".
ROUTING_STRATEGIES: tuple[str, ...] = STRATEGIES[:3]
# A blind audit of the synthetic-data generator (mlflow_hitl.review.queue_generator_audit): the strategy
# its queues are stored with, and the kind `mlflow-hitl queue create --kind` names it by.
GENERATOR_AUDIT = "generator-audit"
# What a queue is for: rows a model is unsure of (the default), or a generator's output to judge.
QUEUE_KINDS: tuple[str, ...] = ("model", GENERATOR_AUDIT)
# With three raters a 2-1 split (agreement 2/3) is accepted; with two, any disagreement is a tie.
DEFAULT_MIN_AGREEMENT = 0.6
