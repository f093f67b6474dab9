"""The server's route table: which MLflow handler a request reaches, and what it will write.

The guard must read a request exactly as MLflow will, or a request can say one thing to the guard
and another to the handler. So nothing here looks at paths or bodies by itself:

- the handler is the view function Flask routed the request to (``/api/`` and ``/ajax-api/``,
  2.0 and 3.0 prefixes, a static prefix, slashes: whatever Flask resolves, we see the same);
- the request is parsed by MLflow's own ``_get_request_message`` into the same protobuf message the
  handler parses (a JSON string holding the object, proto field aliases such as ``newName``, query
  arguments versus body, as MLflow decides); a body protobuf refuses to parse is refused here,
  where MLflow would carry on with whatever part of it parsed.

Every handler of MLflow's ``ModelRegistryService`` is classified as a read or as a :class:`Write`;
one this module does not know (a route a newer MLflow adds) is refused until it is classified.
Handlers outside the registry service that write the registry in-process, around its routes and so
around the guard (:data:`INDIRECT`), are refused.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .guard import GuardRefusedError, Write

__all__ = ["INDIRECT", "READS", "WRITES", "RouteTable", "registry_request_classes"]


def _tags(message: Any) -> dict[str, str]:
    return {t.key: t.value for t in message.tags}


# Request message name -> the Write it makes. Names, not classes: this module imports no MLflow at import time.
WRITES: Mapping[str, Callable[[Any], Write]] = {
    "CreateRegisteredModel": lambda m: Write("create_model", m.name, tags=_tags(m)),
    "RenameRegisteredModel": lambda m: Write("rename_model", m.name, new_name=m.new_name),
    "UpdateRegisteredModel": lambda m: Write("update_model", m.name),
    "DeleteRegisteredModel": lambda m: Write("delete_model", m.name),
    "CreateModelVersion": lambda m: Write("create_version", m.name, tags=_tags(m)),
    "UpdateModelVersion": lambda m: Write("update_version", m.name, version=m.version),
    "TransitionModelVersionStage": lambda m: Write(
        "transition_stage", m.name, version=m.version, stage=m.stage
    ),
    "DeleteModelVersion": lambda m: Write("delete_version", m.name, version=m.version),
    "SetRegisteredModelTag": lambda m: Write("set_model_tag", m.name, key=m.key),
    "DeleteRegisteredModelTag": lambda m: Write("delete_model_tag", m.name, key=m.key),
    "SetModelVersionTag": lambda m: Write("set_version_tag", m.name, version=m.version, key=m.key),
    "DeleteModelVersionTag": lambda m: Write("delete_version_tag", m.name, version=m.version, key=m.key),
    "SetRegisteredModelAlias": lambda m: Write("set_alias", m.name, version=m.version, alias=m.alias),
    "DeleteRegisteredModelAlias": lambda m: Write("delete_alias", m.name, alias=m.alias),
}
READS = frozenset(
    {
        "GetRegisteredModel",
        "SearchRegisteredModels",
        "GetLatestVersions",
        "GetModelVersion",
        "SearchModelVersions",
        "GetModelVersionDownloadUri",
        "GetModelVersionByAlias",
    }
)

# MLflow handlers (of mlflow.server.handlers) that write registered models through MLflow's client in the
# server's own process: the UI's demo data registers prompts and sets their ``production`` alias, and
# deletes prompts with their aliases, none of it through a registry route.
INDIRECT = frozenset({"_generate_demo", "_delete_demo"})


def registry_request_classes() -> list[type]:
    """The request message class of every method of MLflow's model registry service."""
    from mlflow.protos.model_registry_pb2 import ModelRegistryService

    service = ModelRegistryService()
    return [service.GetRequestClass(m) for m in ModelRegistryService.DESCRIPTOR.methods]


class RouteTable:
    """MLflow's registry handlers, keyed by the handler function, each with its request class."""

    def __init__(self) -> None:
        from mlflow.protos.service_pb2 import CreateRun
        from mlflow.server.handlers import get_handler

        self._classes: dict[Any, type] = {get_handler(c): c for c in registry_request_classes()}
        self._create_run = get_handler(CreateRun)

    def creates_run(self, handler: Any) -> bool:
        """Whether ``handler`` is MLflow's ``runs/create`` (whose author the server records)."""
        return handler is not None and handler is self._create_run

    def write_of(self, handler: Any) -> Write | None:
        """The write the current Flask request makes through ``handler`` (``None``: not a registry write).

        Raises :class:`.guard.GuardRefusedError` for a registry route that is not classified, or whose
        request cannot be parsed as MLflow will parse it.
        """
        if getattr(handler, "__module__", None) == "mlflow.server.handlers" and handler.__name__ in INDIRECT:
            raise GuardRefusedError(
                "route.indirect",
                f"MLflow's {handler.__name__} writes the model registry around its routes; "
                "it is not served behind the HITL gate",
            )
        request_class = self._classes.get(handler)
        if request_class is None:
            return None
        name = request_class.__name__
        if name in READS:
            return None
        make = WRITES.get(name)
        if make is None:
            raise GuardRefusedError(
                "route.unclassified",
                f"MLflow's {name} is a registry route mlflow-hitl has not classified; it is refused until it is",
            )
        return make(_parse(request_class))


def _parse(request_class: type) -> Any:
    """The message MLflow's handler will read, or a refusal when MLflow could not parse all of it."""
    from flask import request
    from mlflow.server.handlers import _get_normalized_request_json, _get_request_message
    from mlflow.utils.proto_json_utils import parse_dict

    try:
        message = _get_request_message(request_class(), flask_request=request)
        if request.method != "GET":  # MLflow ignores a ParseError and goes on with a partial message
            parse_dict(_get_normalized_request_json(request), request_class())
    except Exception as exc:  # whatever MLflow would fail on, or half-parse
        raise GuardRefusedError(
            "request.unparsable",
            f"the {request_class.__name__} request cannot be read as MLflow reads it: {exc}",
        ) from exc
    return message
