"""Who created a run, a registered model or a model version, as the server (or the local plugin) saw it.

Separation of duties must not read authors from what a client wrote (``mlflow.user``, a run's
``user_id``): those are request fields. The server records the *authenticated* user in the audit
chain once MLflow has created the object, and the gate reads that record back:

- ``identity.run_created``, subject ``run:<run_id>``, payload ``{"user"}``;
- ``identity.registered_model_created``, subject ``model:<name>``, payload ``{"user", "prompt"}``;
- ``identity.model_version_created``, subject ``model:<name>/<version>``, payload
  ``{"user", "run_id", "source"}``.

A rename carries a model's records over to its new name (see :mod:`.guard`), so they follow the model.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..review import ReviewStore

__all__ = [
    "MODEL_CREATED",
    "RUN_CREATED",
    "VERSION_CREATED",
    "creation_record",
    "record_model_created",
    "record_run_created",
    "record_version_created",
    "recorded_creator",
]

RUN_CREATED = "identity.run_created"
MODEL_CREATED = "identity.registered_model_created"
VERSION_CREATED = "identity.model_version_created"
_ACTIONS = (RUN_CREATED, MODEL_CREATED, VERSION_CREATED)


def record_run_created(store: ReviewStore, *, run_id: str, user: str) -> None:
    store.record_event(actor=user, action=RUN_CREATED, subject=f"run:{run_id}", payload={"user": user})


def record_model_created(store: ReviewStore, *, name: str, user: str, prompt: bool) -> None:
    store.record_event(
        actor=user, action=MODEL_CREATED, subject=f"model:{name}", payload={"user": user, "prompt": prompt}
    )


def record_version_created(
    store: ReviewStore, *, name: str, version: str, user: str, run_id: str | None, source: str | None
) -> None:
    store.record_event(
        actor=user,
        action=VERSION_CREATED,
        subject=f"model:{name}/{version}",
        payload={"user": user, "run_id": run_id or None, "source": source},
    )


def creation_record(store: ReviewStore, subject: str) -> dict[str, Any] | None:
    """The latest creation event of ``subject`` (``run:<id>``, ``model:<name>``, ``model:<name>/<v>``), or ``None``.

    A version's record counts only when it is newer than its model's own creation record: a model
    deleted and created again under the same name starts its versions at 1, and the old model's
    version 1 must not name the new one's author.
    """
    action = next((a for a in _ACTIONS if _matches(a, subject)), None)
    if action is None:
        return None
    # One walk of the model's events (the store matches subjects by prefix) finds the version's record
    # and the model's: the audit table has no index on subjects, so each query reads every event.
    root = subject.split("/", 1)[0]
    events = store.audit_events(subject=root, action="identity.")
    own = events[(events["subject"] == subject) & (events["action"] == action)]
    if own.empty:
        return None
    latest = own.iloc[-1]
    if action == VERSION_CREATED:
        models = events[(events["subject"] == root) & (events["action"] == MODEL_CREATED)]
        if not models.empty and int(models.iloc[-1]["seq"]) > int(latest["seq"]):
            return None
    return {"seq": int(latest["seq"]), "actor": latest["actor"], **json.loads(latest["payload"])}


def recorded_creator(store: ReviewStore, subject: str) -> str | None:
    """The authenticated user recorded as creator of ``subject`` (see :func:`creation_record`), or ``None``."""
    record = creation_record(store, subject)
    return None if record is None else str(record["user"])


def _matches(action: str, subject: str) -> bool:
    if subject.startswith("run:"):
        return action == RUN_CREATED
    if subject.startswith("model:"):
        return action == (VERSION_CREATED if "/" in subject[len("model:") :] else MODEL_CREATED)
    return False
