"""The MLflow adapter: the only layer that talks to MLflow.

- :mod:`~mlflow_hitl.adapter.model`: any classifier (scikit-learn, pyfunc, model URI) as probabilities.
- :mod:`~mlflow_hitl.adapter.logging`: a :class:`~mlflow_hitl.ValidationResult` as run metrics, artifacts and tags.
- :mod:`~mlflow_hitl.adapter.evaluator`: the ``hitl`` evaluator for ``mlflow.models.evaluate``.

Modules import MLflow lazily where they can, so a broken MLflow install costs only the plugin
that needs it.
"""

from __future__ import annotations

__all__ = ["use_tracking_uri"]


def use_tracking_uri(uri: str) -> None:
    """Point this process's MLflow client at ``uri`` (the CLI's ``--tracking-uri``)."""
    import mlflow

    mlflow.set_tracking_uri(uri)
