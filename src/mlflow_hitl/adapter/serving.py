"""A served model that routes its uncertain requests to people: the pyfunc wrapper and how to log it.

:func:`log_routed_model` logs a pyfunc whose ``predict`` answers exactly what the wrapped model
answers and, beside that, hands the request's rows to a :class:`~mlflow_hitl.review.QueueFeeder`,
which scores them (the wrapped model's class probabilities), applies the
:class:`~mlflow_hitl.review.RoutingRule` and appends the chosen rows to a review queue off the
request path. It runs wherever a pyfunc runs: ``mlflow models serve``, ``mlflow.pyfunc.load_model``
and ``predict`` on a frame (batch scoring), ``mlflow.pyfunc.spark_udf`` (one feeder per worker).

The wrapped model is copied into the new model's artifacts, so the routed model stands alone. Where
the store is is decided where the model runs, not where it was logged: ``$MLFLOW_HITL_STORE_URI``
(a database URL or a ``mlflow server --app-name hitl``), else the review store of the tracking URI;
a ``store_uri`` given at log time is used only if it holds no password. The spool folder is
``spool_dir``, else ``$MLFLOW_HITL_SPOOL_DIR/<queue>``, else ``<temp dir>/mlflow-hitl-spool/<queue>``.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import re
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow.pyfunc
import pandas as pd

from .._identity import acting_user
from ..errors import InputError, ModelError, first_line
from ..review import FeederSettings, QueueFeeder, RoutingRule
from .model import as_classifier
from .review import store_for

if TYPE_CHECKING:
    from mlflow.models.model import ModelInfo

__all__ = ["SPOOL_DIR_ENV", "RoutedModel", "log_routed_model"]

SPOOL_DIR_ENV = "MLFLOW_HITL_SPOOL_DIR"
_MODEL_ARTIFACT = "model"
_SETTINGS = tuple(f.name for f in dataclasses.fields(FeederSettings))
# MLflow asks for an input example beside a signature. Given one, it would serve the example through
# the routed model while logging it, and the example's rows would be queued for review; the wrapped
# model's own example stays in its copy (the routed model's artifacts/model/).
_NO_EXAMPLE_NAG = r"(\x1b\[[0-9;]*m)?An input example was not provided when logging the model"


class RoutedModel(mlflow.pyfunc.PythonModel):
    """The pyfunc :func:`log_routed_model` logs. Its settings are the model's ``model_config``."""

    # Its input is checked against the wrapped model's signature, never against type hints: MLflow
    # is told so (the switch its own chat models use), instead of warning, on import and wherever
    # the model is loaded, that ``predict`` has no type hints.
    _skip_type_hint_validation = True

    def load_context(self, context: Any) -> None:
        config = dict(context.model_config or {})
        self._model = mlflow.pyfunc.load_model(context.artifacts[_MODEL_ARTIFACT])
        self._answer = _validated_once(self._model)
        handle = as_classifier(self._model)
        if not handle.has_proba:
            raise ModelError(f"{handle.description} gives no class probabilities: nothing to route by")
        features = list(handle.feature_names or ())
        self._id_column = config.get("id_column")
        queue = str(config["queue"])
        self._feeder = QueueFeeder(
            queue=queue,
            classes=list(handle.classes or ()),
            score=lambda frame: handle.predict_proba(frame[features] if features else frame),
            open_store=lambda: store_for(store_uri=config.get("store_uri")),
            rule=RoutingRule(
                **{k: config[k] for k in ("strategy", "threshold", "budget", "control_share", "seed")}
            ),
            actor=acting_user(config.get("actor")),
            spool_dir=_spool_dir(config.get("spool_dir"), queue),
            raters_per_item=int(config.get("raters_per_item", 1)),
            blind=bool(config.get("blind", False)),
            run_id=config.get("run_id"),
            settings=FeederSettings(**{k: config[k] for k in _SETTINGS if k in config}),
        )

    def predict(self, context, model_input, params=None):  # noqa: ANN001, ANN201 (MLflow reads hints as a schema)
        """The wrapped model's answer, unchanged; the rows go to the feeder, which never fails this call.

        Unannotated on purpose: MLflow would take type hints here for the model's input schema."""
        request_ids = None
        if self._id_column and isinstance(model_input, pd.DataFrame) and self._id_column in model_input:
            request_ids = model_input[self._id_column].astype(str).to_numpy()
            model_input = model_input.drop(columns=[self._id_column])
        output = self._answer(model_input, params)
        self._feeder.submit(model_input, output, request_ids)
        return output

    def routing_stats(self) -> dict[str, Any]:
        """What happened to the rows this process served: see :meth:`QueueFeeder.stats`."""
        return self._feeder.stats()

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until the rows served so far are appended, spooled or dropped (batch scoring, tests)."""
        return self._feeder.flush(timeout)


def _validated_once(model: Any) -> Callable[[Any, Any], Any]:
    """How to ask the wrapped pyfunc for its answer on input the routed model has already validated.

    The routed model carries the wrapped model's signature, so MLflow has enforced it on the input
    (and params) before :meth:`RoutedModel.predict` runs; the wrapped pyfunc's own ``predict`` would
    enforce the same schema again, about 0.3 ms a request, the largest part of what routing added.
    Where that second pass can only repeat the first (a signature that is not read from type hints
    or an input example), the wrapped flavour's own predict function is called, as
    ``PyFuncModel.predict`` itself does after its check; otherwise the whole ``predict``.
    """
    metadata = getattr(model, "metadata", None)
    fn = getattr(model, "_predict_fn", None)
    try:
        plain = (
            fn is not None
            and metadata.get_input_schema() is not None
            and not metadata._is_signature_from_type_hint()
            and not metadata._is_type_hint_from_example()
        )
    except Exception:  # another MLflow than this was written against: take the public road
        plain = False
    if not plain:
        return lambda data, params: model.predict(data, params=params)
    takes_params = "params" in inspect.signature(fn).parameters
    return lambda data, params: fn(data, params=params) if takes_params else fn(data)


def _spool_dir(configured: str | None, queue: str) -> Path:
    if configured:
        return Path(configured)
    base = os.environ.get(SPOOL_DIR_ENV) or str(Path(tempfile.gettempdir()) / "mlflow-hitl-spool")
    return Path(base) / re.sub(r"[^A-Za-z0-9_.-]", "_", queue)


def _check_store_uri(store_uri: str | None) -> str | None:
    """A store URL to keep in the model's files: never one with a password in it."""
    if store_uri is None:
        return None
    from urllib.parse import urlsplit

    if not isinstance(store_uri, str) or "://" not in store_uri:
        raise InputError(f"store_uri must be a database URL or http(s):// server URL, got {store_uri!r}")
    if urlsplit(store_uri).password:
        raise InputError(
            "store_uri holds a password, which would be saved in the model's files; "
            "set MLFLOW_HITL_STORE_URI where the model is served instead"
        )
    return store_uri


def _wrapped_model(model: Any, folder: Path) -> str:
    """A model URI for ``model``: a URI as given; a fitted scikit-learn model saved under ``folder``."""
    if isinstance(model, str):
        return model
    if not callable(getattr(model, "predict_proba", None)):
        raise InputError(
            f"model must be a model URI (models:/name/3, runs:/id/model) or a fitted classifier with "
            f"predict_proba, got {type(model).__name__}"
        )
    import mlflow.sklearn
    import sklearn

    path = folder / "model"
    mlflow.sklearn.save_model(model, path, pip_requirements=[f"scikit-learn=={sklearn.__version__}"])
    return str(path)


def _signature(info: Any, id_column: str | None) -> Any:
    """The wrapped model's signature, plus ``id_column`` as an optional string input."""
    signature = info.signature
    if id_column is None or signature is None:
        return signature
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    inputs = signature.inputs
    if not inputs.has_input_names():
        raise InputError("id_column needs a model whose signature names its input columns")
    if id_column in inputs.input_names():
        raise InputError(f"id_column {id_column!r} is one of the model's own inputs; choose another name")
    columns = [*inputs.inputs, ColSpec("string", id_column, required=False)]
    return ModelSignature(inputs=Schema(columns), outputs=signature.outputs, params=signature.params)


def _requirements(model_uri: str) -> list[str]:
    """The wrapped model's pip requirements and ours, named (MLflow would infer them by loading the model)."""
    path = mlflow.pyfunc.get_model_dependencies(model_uri, format="pip")
    lines = [line.strip() for line in Path(path).read_text().splitlines()]
    return [line for line in lines if line and not line.startswith("#")] + ["mlflow-hitl"]


def _check_routing_options(queue: Any, raters_per_item: Any, feeder: Any) -> None:
    """Refuse, before the model is read, options the routed model would only fail on when serving."""
    if not isinstance(queue, str) or not queue.strip() or len(queue) > 200:
        raise InputError("queue must be a non-empty name of at most 200 characters")
    if isinstance(raters_per_item, bool) or not isinstance(raters_per_item, int) or raters_per_item < 1:
        raise InputError(f"raters_per_item must be a whole number ≥ 1, got {raters_per_item!r}")
    if feeder is not None and not isinstance(feeder, FeederSettings):
        raise InputError(f"feeder must be a FeederSettings, got {type(feeder).__name__}")


def log_routed_model(
    model: Any,
    *,
    queue: str,
    strategy: str = "least-confidence",
    threshold: float = 0.6,
    budget: str | None = "500/day",
    control_share: float = 0.02,
    seed: int = 0,
    name: str = "routed_model",
    store_uri: str | None = None,
    spool_dir: str | None = None,
    id_column: str | None = None,
    actor: str | None = None,
    raters_per_item: int = 1,
    blind: bool = False,
    registered_model_name: str | None = None,
    feeder: FeederSettings | None = None,
) -> ModelInfo:
    """Log ``model`` wrapped so that serving it also routes its uncertain requests to queue ``queue``.

    ``model`` is a model URI (``models:/fraud/3``, ``runs:/<id>/model``, a path) or a fitted
    scikit-learn classifier. The routed model answers exactly what ``model`` answers; a row goes to
    the queue when its confidence under ``strategy`` is below ``threshold``, or when the seeded random
    control draw (``control_share`` of rows) picks it, at most ``budget`` rows per period (``"500/day"``;
    ``None``: no cap). See :class:`~mlflow_hitl.review.RoutingRule`. Each item carries the model's
    prediction, its confidence and a request id: the value of the input column ``id_column`` when the
    request has it (a client's retry is then queued once), else a fresh id per request and row.

    The queue is created by the first routed batch (``raters_per_item``, ``blind``, the wrapped
    model's run). ``feeder`` tunes batching, bounds and retries (:class:`~mlflow_hitl.review.FeederSettings`).
    Logs to the active run (one is started if none is); returns MLflow's ``ModelInfo``.
    """
    rule = RoutingRule(
        strategy=strategy, threshold=threshold, budget=budget, control_share=control_share, seed=seed
    )
    _check_routing_options(queue, raters_per_item, feeder)
    with tempfile.TemporaryDirectory() as folder:
        model_uri = _wrapped_model(model, Path(folder))
        try:
            info = mlflow.models.get_model_info(model_uri)
        except Exception as exc:
            raise InputError(f"cannot read model {model_uri!r}: {first_line(exc)}") from exc
        config = {
            "queue": queue,
            **rule.to_dict(),
            "store_uri": _check_store_uri(store_uri),
            "spool_dir": spool_dir,
            "id_column": id_column,
            "actor": actor,
            "raters_per_item": raters_per_item,
            "blind": bool(blind),
            "run_id": info.run_id,
            "wrapped_model_uri": model_uri if isinstance(model, str) else None,
            **dataclasses.asdict(feeder or FeederSettings()),
        }
        signature = _signature(info, id_column)
        requirements = _requirements(model_uri)
        started = mlflow.active_run() is None
        if started:
            mlflow.start_run()
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=_NO_EXAMPLE_NAG, category=UserWarning)
                return mlflow.pyfunc.log_model(
                    name=name,
                    python_model=RoutedModel(),
                    artifacts={_MODEL_ARTIFACT: model_uri},
                    model_config=config,
                    signature=signature,
                    pip_requirements=requirements,
                    registered_model_name=registered_model_name,
                )
        finally:
            if started:
                mlflow.end_run()
