"""The ``hitl`` evaluator: ``mlflow.models.evaluate(..., evaluators=["hitl"])``.

MLflow builds evaluators with no arguments, asks ``can_evaluate`` first, then calls ``evaluate``
with the evaluation dataset (features and labels of the real rows) and this evaluator's slice of
``evaluator_config``. Everything else ``validate`` takes comes through that config::

    evaluator_config={"hitl": {"synthetic": synthetic_df, "production": prod_df,
                               "sensitive_features": ["sex"], "checks": None, "config": {...}}}
"""

from __future__ import annotations

from typing import Any

from mlflow.models.evaluation import EvaluationResult, ModelEvaluator
from mlflow.models.evaluation.artifacts import JsonEvaluationArtifact

from ..errors import ConfigError

__all__ = ["HitlEvaluator"]

_CONFIG_KEYS = (
    "synthetic",
    "production",
    "holdout",
    "source",
    "sensitive_features",
    "features",
    "checks",
    "config",
    "reuse",
)


class HitlEvaluator(ModelEvaluator):
    """Runs :func:`mlflow_hitl.validate` on the evaluation dataset and logs the evidence to the run."""

    @classmethod
    def can_evaluate(cls, *, model_type: str, evaluator_config: dict[str, Any] | None, **kwargs: Any) -> bool:
        return model_type == "classifier"

    def evaluate(
        self,
        *,
        model_type: str,
        dataset: Any,
        run_id: str,
        evaluator_config: dict[str, Any] | None,
        model: Any = None,
        **kwargs: Any,
    ) -> EvaluationResult:
        from .logging import ARTIFACT_ROOT, metric_key
        from .validation import validate

        options = dict(evaluator_config or {})
        unknown = sorted(set(options) - set(_CONFIG_KEYS))
        if unknown:
            raise ConfigError(
                f"unknown hitl evaluator_config key(s) {', '.join(unknown)}; known: {', '.join(_CONFIG_KEYS)}"
            )
        if model is None:
            raise ConfigError(
                "the hitl evaluator needs a model: pass model=<uri or pyfunc> to mlflow.models.evaluate"
            )
        target = dataset.targets_name or "target"
        real = dataset.features_data.copy()
        real[target] = dataset.labels_data
        result = validate(model, real=real, target=target, run_id=run_id, **options)

        import mlflow

        summary_uri = (
            f"{mlflow.MlflowClient().get_run(run_id).info.artifact_uri}/{ARTIFACT_ROOT}/summary.json"
        )
        metrics = {
            metric_key(check_name, name): value
            for check_name, check in result.checks.items()
            for name, value in check.metrics.items()
        }
        artifacts = {"hitl_summary": JsonEvaluationArtifact(uri=summary_uri, content=result.to_dict())}
        return EvaluationResult(metrics=metrics, artifacts=artifacts, run_id=run_id)
