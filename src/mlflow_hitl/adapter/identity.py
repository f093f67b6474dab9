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
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..review import AuditKeyring, event_intact

if TYPE_CHECKING:
    from ..review import ReviewStore

__all__ = [
    "MODEL_CREATED",
    "RUN_CREATED",
    "VERSION_CREATED",
    "creation_record",
    "intact",
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


def intact(event: Mapping[str, Any], store: Any = None) -> bool:
    """Whether a stored event still hashes to its stored hash: checked on every event a decision rests
    on, whatever part of the chain the (incremental) verification walked. A signed event needs the
    server's key: the keyring of ``store`` (a store opened with it), else this process's
    (``MLFLOW_HITL_AUDIT_KEY``); without it, it fails closed."""
    return event_intact(event, getattr(store, "keyring", None) or AuditKeyring.from_env())


def creation_record(
    store: ReviewStore, subject: str, *, events: Sequence[Mapping[str, Any]] | None = None
) -> dict[str, Any] | None:
    """The latest intact creation event of ``subject`` (``run:<id>``, ``model:<name>``, ``model:<name>/<v>``):
    its ``seq``, ``actor`` and payload; ``None`` when there is none, or it names nobody.

    ``events``: the subject's events, already read (a run's, for its evidence); else they are read here.
    A version's record counts only when it is newer than its model's own creation record: a model
    deleted and created again under the same name starts its versions at 1, and the old model's
    version 1 must not name the new one's author.
    """
    action = next((a for a in _ACTIONS if _matches(a, subject)), None)
    if action is None:
        return None
    if events is None:
        events = store.audit_events(subject=subject, action=action).to_dict(orient="records")
    own = [e for e in events if e["subject"] == subject and e["action"] == action and intact(e, store)]
    if not own:
        return None
    latest = own[-1]
    if action == VERSION_CREATED:
        root = subject.split("/", 1)[0]
        # The model's creations only: the action filter keeps its versions' events out of the answer.
        models = store.audit_events(subject=root, action=MODEL_CREATED).to_dict(orient="records")
        if any(e["subject"] == root and int(e["seq"]) > int(latest["seq"]) for e in models):
            return None
    payload = json.loads(latest["payload"])
    if not isinstance(payload.get("user"), str) or not payload["user"]:
        return None
    return {**payload, "seq": int(latest["seq"]), "actor": latest["actor"]}


def recorded_creator(
    store: ReviewStore, subject: str, *, events: Sequence[Mapping[str, Any]] | None = None
) -> str | None:
    """The authenticated user recorded as creator of ``subject`` (see :func:`creation_record`), or ``None``."""
    record = creation_record(store, subject, events=events)
    return None if record is None else str(record["user"])


def _matches(action: str, subject: str) -> bool:
    if subject.startswith("run:"):
        return action == RUN_CREATED
    if subject.startswith("model:"):
        return action == (VERSION_CREATED if "/" in subject[len("model:") :] else MODEL_CREATED)
    return False
