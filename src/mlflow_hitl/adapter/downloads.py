"""Artifact downloads mlflow-hitl makes for itself, without MLflow's progress bars.

Reading a run's ``hitl/summary.json`` before logging, or a model's files to hash them, is not the
user's download: a bar drawn for it in their terminal or notebook is noise, and one left at ``0/1``
for a summary not logged yet reads as a failure. MLflow reads its switch from the environment at each
download, so it is turned off for the call and put back after.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["download_quietly"]

_BAR = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"


def download_quietly(**where: Any) -> str:
    """:func:`mlflow.artifacts.download_artifacts` (same keywords, same result), drawing no progress bar."""
    import mlflow

    before = os.environ.get(_BAR)
    os.environ[_BAR] = "false"
    try:
        return mlflow.artifacts.download_artifacts(**where)
    finally:
        if before is None:
            os.environ.pop(_BAR, None)
        else:
            os.environ[_BAR] = before
