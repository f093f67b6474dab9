"""mlflow-hitl: human-in-the-loop validation of models trained on synthetic data, as MLflow plugins.

>>> import mlflow_hitl
>>> result = mlflow_hitl.validate(model, real=real_df, target="label", synthetic=synthetic_df)  # doctest: +SKIP
>>> result.status, result.checks["calibration"].metrics["ece"]  # doctest: +SKIP
"""

from typing import TYPE_CHECKING, Any

from ._result import CheckResult, Status, ValidationResult
from .errors import HitlError

if TYPE_CHECKING:
    from .adapter.dossier import dossier, verify_dossier
    from .adapter.generator_audit import generator_audit_results
    from .adapter.review import publish_labels, verified_labels
    from .adapter.validation import validate
    from .config import ValidationConfig

__version__ = "0.1.0.dev0"

__all__ = [
    "CheckResult",
    "HitlError",
    "Status",
    "ValidationConfig",
    "ValidationResult",
    "__version__",
    "dossier",
    "generator_audit_results",
    "publish_labels",
    "validate",
    "verified_labels",
    "verify_dossier",
]


def __getattr__(name: str) -> Any:
    # validate and the label functions reach MLflow through the adapter, and ValidationConfig gathers the
    # checks' declarations (which load pandas); importing them lazily keeps `import mlflow_hitl.review`
    # and the CLI's start-up cheap for processes that never use them.
    if name == "ValidationConfig":
        from .config import ValidationConfig

        return ValidationConfig
    if name == "validate":
        from .adapter.validation import validate

        return validate
    if name in ("dossier", "verify_dossier"):
        from .adapter import dossier

        return getattr(dossier, name)
    if name == "generator_audit_results":
        from .adapter.generator_audit import generator_audit_results

        return generator_audit_results
    if name in ("publish_labels", "verified_labels"):
        from .adapter import review

        return getattr(review, name)
    raise AttributeError(f"module 'mlflow_hitl' has no attribute {name!r}")
