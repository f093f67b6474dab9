"""The registry-store plugin: ``mlflow.set_registry_uri("hitl+sqlite:///mlflow.db")``.

MLflow's own SQL registry store, with three refusals:

- setting a protected alias, or moving a version to a protected stage, while the version's gate
  does not pass (``PERMISSION_DENIED``, listing every unmet requirement; the refusal is audited);
- writing or deleting ``hitl.*`` tags, except by mlflow-hitl itself;
- nothing else: prompts share the alias API and are left alone.

This is a guard rail for local work, not a security boundary: anyone with the database file can
use a plain ``sqlite://`` URI instead. The tracking-server plugin (``mlflow server --app-name hitl``)
is the boundary. The acting user is ``$MLFLOW_HITL_USER`` or the OS user.
"""

from __future__ import annotations

from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import PERMISSION_DENIED
from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore

__all__ = ["HitlRegistryStore", "is_prompt"]

_PREFIX = "hitl+"
_PROMPT_TAG = "mlflow.prompt.is_prompt"


def _refuse(message: str) -> MlflowException:
    return MlflowException(message, error_code=PERMISSION_DENIED)


def is_prompt(store: SqlAlchemyStore, name: str) -> bool:
    """Whether registered model ``name`` is a prompt (prompts share the alias API and are not gated).

    MLflow's public entity hides its internal prompt tag, so the tag rows are read from the store.
    """
    with store.ManagedSessionMaker() as session:
        model = store._get_registered_model(session, name)
        return any(
            t.key == _PROMPT_TAG and str(t.value).lower() == "true" for t in model.registered_model_tags
        )


class HitlRegistryStore(SqlAlchemyStore):
    """MLflow's SQL registry store behind the HITL gate. Takes only the URI, as MLflow's plugin loader expects."""

    def __init__(self, store_uri: str, tracking_uri: str | None = None) -> None:
        if not store_uri.startswith(_PREFIX):
            raise MlflowException(f"the hitl registry store needs a hitl+<database> URI, got {store_uri!r}")
        self._database_uri = store_uri[len(_PREFIX) :]
        super().__init__(self._database_uri)

    # -- guarded writes -------------------------------------------------------------------------

    def _is_prompt(self, name: str) -> bool:
        return is_prompt(self, name)

    def _gate(self, name: str, version: str, target: str) -> None:
        from .._identity import acting_user
        from ..errors import HitlError
        from .gate import GateBlockedError, enforce, is_internal_write
        from .review import default_store_uri, shared_store

        if is_internal_write():
            return
        try:
            enforce(
                name,
                version,
                target,
                store=shared_store(default_store_uri(self._database_uri)),
                actor=acting_user(),
                exempt=lambda: self._is_prompt(name),
            )
        except GateBlockedError as exc:
            raise _refuse(str(exc)) from exc
        except HitlError as exc:
            raise _refuse(f"the HITL gate of {name} version {version} could not be evaluated: {exc}") from exc

    def set_registered_model_alias(self, name: str, alias: str, version: str) -> Any:
        self._gate(name, str(version), f"alias:{alias}")
        return super().set_registered_model_alias(name, alias, version)

    def transition_model_version_stage(
        self, name: str, version: str, stage: str, archive_existing_versions: bool
    ) -> Any:
        self._gate(name, str(version), f"stage:{stage}")
        return super().transition_model_version_stage(name, version, stage, archive_existing_versions)

    def _guard_tag(self, key: str) -> None:
        if not key.startswith("hitl."):
            return  # any other tag: no need to load the gate (and the checks it imports)
        from .gate import is_internal_write

        if not is_internal_write():
            raise _refuse(f"tag {key!r} is written by mlflow-hitl only: hitl.* tags record gate decisions")

    def set_registered_model_tag(self, name: str, tag: Any) -> Any:
        self._guard_tag(tag.key)
        return super().set_registered_model_tag(name, tag)

    def delete_registered_model_tag(self, name: str, key: str) -> Any:
        self._guard_tag(key)
        return super().delete_registered_model_tag(name, key)

    def set_model_version_tag(self, name: str, version: str, tag: Any) -> Any:
        self._guard_tag(tag.key)
        return super().set_model_version_tag(name, version, tag)

    def delete_model_version_tag(self, name: str, version: str, key: str) -> Any:
        self._guard_tag(key)
        return super().delete_model_version_tag(name, version, key)
