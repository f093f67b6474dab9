"""mlflow-hitl: human-in-the-loop validation of models trained on synthetic data, as MLflow plugins.

>>> import mlflow_hitl
>>> result = mlflow_hitl.validate(model, real=real_df, target="label", synthetic=synthetic_df)  # doctest: +SKIP
>>> result.status, result.checks["calibration"].metrics["ece"]  # doctest: +SKIP
"""

from ._result import CheckResult, Status, ValidationResult
from ._validate import validate
from .config import ValidationConfig
from .errors import HitlError

__version__ = "0.1.0.dev0"

__all__ = [
    "CheckResult",
    "HitlError",
    "Status",
    "ValidationConfig",
    "ValidationResult",
    "__version__",
    "validate",
]
