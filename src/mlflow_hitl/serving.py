"""Serving that routes uncertain requests to people: ``mlflow_hitl.serving.log_routed_model(...)``.

>>> import mlflow_hitl.serving  # doctest: +SKIP
>>> info = mlflow_hitl.serving.log_routed_model("models:/fraud/3", queue="prod-uncertain")  # doctest: +SKIP

The routed model answers exactly as the wrapped one and, off the request path, appends the rows it
was unsure about to a review queue. See ``docs/serving.md``.
"""

from .adapter.serving import SPOOL_DIR_ENV, RoutedModel, log_routed_model
from .review import Budget, FeederSettings, RoutingRule

__all__ = ["SPOOL_DIR_ENV", "Budget", "FeederSettings", "RoutedModel", "RoutingRule", "log_routed_model"]
