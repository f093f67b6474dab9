"""The ``hitl`` evaluator: ``mlflow.models.evaluate(..., evaluators=["hitl"])``.

MLflow builds evaluators with no arguments, asks ``can_evaluate`` first, then calls ``evaluate``
with the evaluation dataset (features and labels of the real rows) and this evaluator's slice of
``evaluator_config``. Everything else ``validate`` takes comes through that config::

    evaluator_config={"hitl": {"synthetic": synthetic_df, "production": prod_df,
                               "sensitive_features": ["sex"], "checks": None, "config": {...}}}

The result's ``metrics`` are the ones logged to the run (each check's headline metrics, or every one
with ``"log_all_metrics": True``); MLflow logs them again to the evaluated model. Its ``artifacts``
name the report, the summary, each check's ``result.json``, plots and pages.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from mlflow.models.evaluation import EvaluationArtifact, EvaluationResult, ModelEvaluator
from mlflow.models.evaluation.artifacts import (
    ImageEvaluationArtifact,
    JsonEvaluationArtifact,
    TextEvaluationArtifact,
)

from .._result import ValidationResult
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
    "log_all_metrics",
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

        from .logging import logged_metrics

        # What MLflow logs again to the evaluated model (its "Model metrics"): the same set as the run's.
        metrics = logged_metrics(result, all_metrics=bool(options.get("log_all_metrics")))
        return EvaluationResult(metrics=metrics, artifacts=_artifacts(result, run_id), run_id=run_id)


def _artifacts(result: ValidationResult, run_id: str) -> dict[str, EvaluationArtifact]:
    """The logged evidence as MLflow evaluation artifacts, each loaded from the run when first read.

    ``hitl_summary`` (its content at hand), ``hitl_report`` (the HTML page), and per check
    ``hitl_<check>_result`` (every metric) and ``hitl_<check>_<file name>`` for each plot (an image)
    or page (``hitl_calibration_reliability.png``, ``hitl_drift_synthetic_vs_real.html``).
    """
    import mlflow

    from .logging import ARTIFACT_ROOT

    root = f"{mlflow.MlflowClient().get_run(run_id).info.artifact_uri}/{ARTIFACT_ROOT}"
    artifacts: dict[str, EvaluationArtifact] = {
        "hitl_summary": JsonEvaluationArtifact(uri=f"{root}/summary.json", content=result.to_dict()),
        "hitl_report": TextEvaluationArtifact(uri=f"{root}/report.html"),
    }
    for name, check in result.checks.items():
        artifacts[f"hitl_{name}_result"] = JsonEvaluationArtifact(uri=f"{root}/{name}/result.json")
        for filename in (PurePosixPath(f).name for f in check.artifacts):
            kind = ImageEvaluationArtifact if filename.endswith(".png") else TextEvaluationArtifact
            artifacts[f"hitl_{name}_{filename}"] = kind(uri=f"{root}/{name}/{filename}")
    return artifacts
