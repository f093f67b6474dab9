"""Any classifier as ``predict`` and (when it has them) ``predict_proba`` over a DataFrame.

Accepted: a fitted scikit-learn-style classifier, a loaded ``mlflow.pyfunc.PyFuncModel``, or a model
URI (``runs:/<id>/model``, ``models:/<name>/<version>``, a local path). Probabilities come the way
MLflow's built-in classifier evaluator gets them: from the raw model behind the pyfunc wrapper for
the scikit-learn, XGBoost and CatBoost flavours. A model without probabilities still gets the checks
that need only labels, and the result says so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ModelError, NotFoundError, first_line

__all__ = ["ClassifierHandle", "as_classifier"]

# Flavours whose raw model MLflow's own evaluator unwraps to reach predict_proba.
_UNWRAPPABLE_FLAVOURS = ("mlflow.sklearn", "mlflow.xgboost", "mlflow.catboost")


@dataclass(frozen=True)
class ClassifierHandle:
    """What the checks need from a model, whatever it was handed to us as."""

    predict: Callable[[pd.DataFrame], np.ndarray]
    predict_proba: Callable[[pd.DataFrame], np.ndarray] | None
    classes: tuple[Any, ...] | None
    feature_names: tuple[str, ...] | None
    feature_source: str | None
    description: str

    @property
    def has_proba(self) -> bool:
        return self.predict_proba is not None


def _as_array(output: Any) -> np.ndarray:
    if isinstance(output, (pd.DataFrame, pd.Series)):
        output = output.to_numpy()
    arr = np.asarray(output)
    return arr.ravel() if arr.ndim == 2 and arr.shape[1] == 1 else arr


def _guarded(fn: Callable[[pd.DataFrame], Any], what: str) -> Callable[[pd.DataFrame], np.ndarray]:
    """Wrap a model call so its failures surface as one ModelError naming the call."""

    def call(frame: pd.DataFrame) -> np.ndarray:
        try:
            return _as_array(fn(frame))
        except Exception as exc:  # any model library's own error types
            raise ModelError(f"{what} failed: {first_line(exc)}") from exc

    return call


def _from_estimator(model: Any, description: str) -> ClassifierHandle:
    if not callable(getattr(model, "predict", None)):
        raise ModelError(
            f"{description} has no predict method; pass a fitted classifier, a pyfunc model or a model URI"
        )
    proba = getattr(model, "predict_proba", None)
    classes = getattr(model, "classes_", None)
    names = getattr(model, "feature_names_in_", None)
    return ClassifierHandle(
        predict=_guarded(model.predict, "model.predict"),
        predict_proba=_guarded(proba, "model.predict_proba")
        if callable(proba) and classes is not None
        else None,
        classes=tuple(classes.tolist() if hasattr(classes, "tolist") else classes)
        if classes is not None
        else None,
        feature_names=tuple(map(str, names)) if names is not None else None,
        feature_source="feature_names_in_" if names is not None else None,
        description=description,
    )


def _signature_inputs(pyfunc_model: Any) -> tuple[str, ...] | None:
    try:
        schema = pyfunc_model.metadata.get_input_schema()
    except Exception:  # a model logged without signature
        return None
    if schema is None or not schema.has_input_names():
        return None
    return tuple(schema.input_names())


def _from_pyfunc(pyfunc_model: Any, description: str) -> ClassifierHandle:
    loader = pyfunc_model.metadata.flavors.get("python_function", {}).get("loader_module")
    signature = _signature_inputs(pyfunc_model)
    if loader in _UNWRAPPABLE_FLAVOURS:
        impl = pyfunc_model._model_impl  # the same route MLflow's classifier evaluator takes
        raw = impl.get_raw_model() if hasattr(impl, "get_raw_model") else impl
        handle = _from_estimator(raw, description)
        if signature is not None:
            return ClassifierHandle(
                **{**handle.__dict__, "feature_names": signature, "feature_source": "signature"}
            )
        return handle
    return ClassifierHandle(
        predict=_guarded(pyfunc_model.predict, "pyfunc predict"),
        predict_proba=None,
        classes=None,
        feature_names=signature,
        feature_source="signature" if signature is not None else None,
        description=description,
    )


def _load_uri(uri: str) -> Any:
    import mlflow.pyfunc
    from mlflow.exceptions import MlflowException

    try:
        return mlflow.pyfunc.load_model(uri)
    except MlflowException as exc:
        raise NotFoundError(f"cannot load model {uri!r}: {first_line(exc)}") from exc
    except OSError as exc:
        raise NotFoundError(f"cannot load model {uri!r}: {exc}") from exc


def as_classifier(model: Any) -> ClassifierHandle:
    """A :class:`ClassifierHandle` for a fitted classifier, a pyfunc model or a model URI."""
    if isinstance(model, str):
        return _from_pyfunc(_load_uri(model), f"model {model!r}")
    if type(model).__name__ == "PyFuncModel" and hasattr(model, "metadata"):
        return _from_pyfunc(model, _describe_pyfunc(model))
    return _from_estimator(model, _describe(model))


def _describe(model: Any) -> str:
    """What a person needs to recognise an estimator: its class and, for a pipeline, its steps."""
    name = type(model).__name__
    steps = getattr(model, "steps", None)
    if isinstance(steps, list) and steps and all(isinstance(s, tuple) and len(s) == 2 for s in steps):
        return f"{name} ({' → '.join(type(step).__name__ for _, step in steps)})"
    return name


def _describe_pyfunc(model: Any) -> str:
    """A pyfunc model by its flavour and the run that logged it, when the metadata says."""
    metadata = model.metadata
    flavour = (metadata.flavors or {}).get("python_function", {}).get("loader_module")
    known = [f"flavour {flavour}" if flavour else None, f"run {metadata.run_id}" if metadata.run_id else None]
    said = ", ".join(k for k in known if k)
    return f"pyfunc model ({said})" if said else "pyfunc model"
