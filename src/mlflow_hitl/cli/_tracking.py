"""When no tracking URI is given: say which store MLflow's default was, and leave no empty one behind.

Without ``--tracking-uri`` or ``$MLFLOW_TRACKING_URI`` MLflow uses ``./mlflow.db`` and creates it on
first use, so a command run in the wrong directory used to create an empty store, then report the
run or model as unknown, and leave the new ``mlflow.db`` (and ``hitl.db`` beside it) behind. A
command that fails on bad input (exit 2) now removes what it created in the working directory, and a
"not found" error names the store it looked in.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import click

from ..errors import NotFoundError

__all__ = ["DefaultStoreGuard"]

# What MLflow's default store (a SQLite file, artifacts in ./mlruns) and the review store beside it create.
_CREATED_IN_CWD = ("mlflow.db", "hitl.db", "mlruns")


class DefaultStoreGuard:
    """Remembers what of MLflow's default store existed before a command, to explain and undo a failure."""

    def __init__(self) -> None:
        self._before = {name for name in _CREATED_IN_CWD if Path(name).exists()}

    def failed(self, error: click.ClickException) -> None:
        """Clean up after a command that failed on bad input, and add the hint to its one line."""
        if error.exit_code != 2:
            return
        new_store = "mlflow.db" not in self._before and Path("mlflow.db").exists()
        if new_store:
            for name in _CREATED_IN_CWD:
                path = Path(name)
                if name not in self._before and path.exists():
                    shutil.rmtree(path) if path.is_dir() else path.unlink()
        if isinstance(error.__cause__, NotFoundError) or new_store:
            error.message += f" ({_hint(error.message, new_store)})"


def _hint(message: str, new_store: bool) -> str:
    mlflow = sys.modules.get("mlflow")
    uri = mlflow.get_tracking_uri() if mlflow is not None else "sqlite:///mlflow.db"
    store = "MLflow's default store" if uri in message else f"MLflow's default store {uri}"
    what = f"no MLflow store was here: {store} was created empty and removed" if new_store else store
    return f"{what}; pass --tracking-uri or set MLFLOW_TRACKING_URI"
