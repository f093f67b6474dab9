"""The registry-store plugin: ``mlflow.set_registry_uri("hitl+sqlite:///mlflow.db")``.

MLflow's own SQL registry store, with the rules of :mod:`.guard` on every write, as the server
applies them: a protected alias or stage only when the version's gate passes; no ``hitl.*`` tags
except mlflow-hitl's own; the prompt flag fixed at creation; the release role to take a protected
alias or stage away; an admin for renames that change the policy in force. Prompts are exempt when
this plugin recorded them as created with the prompt flag. Refusals are ``PERMISSION_DENIED`` naming
the rule, and audited; creations record their author (:mod:`.identity`).

This is a guard rail for local work, not a security boundary: anyone with the database file can
use a plain ``sqlite://`` URI instead. The tracking-server plugin (``mlflow server --app-name hitl``)
is the boundary. The acting user is ``$MLFLOW_HITL_USER`` or the OS user.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import PERMISSION_DENIED
from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore

__all__ = ["HitlRegistryStore"]

_PREFIX = "hitl+"


def _refuse(message: str) -> MlflowException:
    return MlflowException(message, error_code=PERMISSION_DENIED)


class HitlRegistryStore(SqlAlchemyStore):
    """MLflow's SQL registry store behind the HITL guard. Takes only the URI, as MLflow's plugin loader expects."""

    def __init__(self, store_uri: str, tracking_uri: str | None = None) -> None:
        if not store_uri.startswith(_PREFIX):
            raise MlflowException(f"the hitl registry store needs a hitl+<database> URI, got {store_uri!r}")
        self._database_uri = store_uri[len(_PREFIX) :]
        super().__init__(self._database_uri)

    # -- guarded writes -------------------------------------------------------------------------

    def _review_store(self) -> Any:
        from .review import default_store_uri, shared_store

        return shared_store(default_store_uri(self._database_uri))

    @contextlib.contextmanager
    def _guarded(self, write: Any | None) -> Iterator[dict[str, Any]]:
        """Check ``write`` before MLflow acts, record what it means after (``result``: the created version)."""
        if write is None:  # a plain tag: no need to load the gate (and what it imports)
            yield {}
            return
        from .._identity import acting_user
        from ..errors import HitlError
        from .gate import is_internal_write
        from .guard import after, check

        if is_internal_write():  # mlflow-hitl's own records
            yield {}
            return
        store, actor = self._review_store(), acting_user()
        try:
            check(write, store=store, registry=self, actor=actor, route="hitl+ registry plugin")
        except HitlError as exc:  # a blocked gate (every unmet requirement) or a guard rule
            raise _refuse(str(exc)) from exc
        result: dict[str, Any] = {}
        yield result
        after(write, result, store=store, actor=actor)

    def _write(self, kind: str, name: str, **fields: Any) -> Any:
        """The :class:`.guard.Write`, or ``None`` for a plain tag (not ``hitl.*``, not the prompt flag)."""
        from .guard import PROMPT_FLAG, Write, is_hitl_key

        key = fields.get("key")
        if key is not None and not is_hitl_key(key) and key.strip().casefold() != PROMPT_FLAG:
            return None
        return Write(kind, name, **fields)

    def create_registered_model(self, name: str, tags: Any = None, *args: Any, **kwargs: Any) -> Any:
        write = self._write("create_model", name, tags={t.key: t.value for t in tags or ()})
        with self._guarded(write):
            return super().create_registered_model(name, tags, *args, **kwargs)

    def create_model_version(
        self, name: str, source: str, run_id: Any = None, tags: Any = None, *args: Any, **kwargs: Any
    ) -> Any:
        write = self._write("create_version", name, tags={t.key: t.value for t in tags or ()})
        with self._guarded(write) as result:
            created = super().create_model_version(name, source, run_id, tags, *args, **kwargs)
            result.update(version=created.version, run_id=created.run_id, source=created.source)
            return created

    def rename_registered_model(self, name: str, new_name: str) -> Any:
        with self._guarded(self._write("rename_model", name, new_name=new_name)):
            return super().rename_registered_model(name, new_name)

    def delete_registered_model(self, name: str) -> Any:
        with self._guarded(self._write("delete_model", name)):
            return super().delete_registered_model(name)

    def delete_model_version(self, name: str, version: str) -> Any:
        with self._guarded(self._write("delete_version", name, version=str(version))):
            return super().delete_model_version(name, version)

    def set_registered_model_alias(self, name: str, alias: str, version: str) -> Any:
        with self._guarded(self._write("set_alias", name, version=str(version), alias=alias)):
            return super().set_registered_model_alias(name, alias, version)

    def delete_registered_model_alias(self, name: str, alias: str) -> Any:
        with self._guarded(self._write("delete_alias", name, alias=alias)):
            return super().delete_registered_model_alias(name, alias)

    def transition_model_version_stage(
        self, name: str, version: str, stage: str, archive_existing_versions: bool
    ) -> Any:
        with self._guarded(self._write("transition_stage", name, version=str(version), stage=stage)):
            return super().transition_model_version_stage(name, version, stage, archive_existing_versions)

    def set_registered_model_tag(self, name: str, tag: Any) -> Any:
        with self._guarded(self._write("set_model_tag", name, key=tag.key)):
            return super().set_registered_model_tag(name, tag)

    def delete_registered_model_tag(self, name: str, key: str) -> Any:
        with self._guarded(self._write("delete_model_tag", name, key=key)):
            return super().delete_registered_model_tag(name, key)

    def set_model_version_tag(self, name: str, version: str, tag: Any) -> Any:
        with self._guarded(self._write("set_version_tag", name, version=str(version), key=tag.key)):
            return super().set_model_version_tag(name, version, tag)

    def delete_model_version_tag(self, name: str, version: str, key: str) -> Any:
        with self._guarded(self._write("delete_version_tag", name, version=str(version), key=key)):
            return super().delete_model_version_tag(name, version, key)
