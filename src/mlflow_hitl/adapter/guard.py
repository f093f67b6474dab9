"""The rules every registry write passes, in the server (``mlflow server --app-name hitl``) and the
``hitl+`` registry plugin alike.

Both enforcement points turn what MLflow is about to do into one :class:`Write` (the server by
parsing the request exactly as MLflow's handler will, see :mod:`.routes`; the plugin from its
method's arguments) and call :func:`check` before MLflow acts and :func:`after` once it has:

- ``hitl.*`` tags (any case, set, deleted or given at creation) are written by mlflow-hitl only;
  the prompt flag ``mlflow.prompt.is_prompt`` is fixed when a model or version is created.
- A protected alias or stage is set only when the version's gate passes (:func:`.gate.enforce`).
  Target names ignore case (``Champion`` is ``champion``).
- Taking a protected alias or stage away (deleting the alias, moving the version out of the stage,
  deleting a version or model that holds one) needs the role that signs off ``release``.
- A model is exempt (a prompt) only if the server recorded it as created with the prompt flag, it
  has no stored policy, no gate record, and the version concerned has no run, no logged model and
  one of MLflow's prompt placeholders as its source (it serves no model files): facts a client cannot flip
  later. Exempted changes are audited too.
- Alias names are ASCII, as MLflow documents them: a look-alike of a protected alias (``ｃhampion``,
  ``champıon``) is refused rather than judged a different alias.
- Renaming a model whose policy would change with the name (the model has a stored policy, or the
  new name has one) needs the ``admin`` role, which sets policies; the policy is then copied to the
  new name, and the model's creation records follow it. Renames and deletions are audited.

Every refusal raises :class:`GuardRefusedError` naming its rule and is audited as ``guard.refused``
with the acting user; a blocked gate is audited by the gate as ``promotion.refused``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from .._roles import signoff_role
from ..errors import HitlError, PermissionDeniedError
from . import identity

if TYPE_CHECKING:  # the gate and the store load only when a write needs them: a plain tag does not
    from ..review import ReviewStore

__all__ = ["KINDS", "PROMPT_FLAG", "GuardRefusedError", "Write", "after", "check", "is_exempt", "is_hitl_key"]

PROMPT_FLAG = "mlflow.prompt.is_prompt"
# Every kind of registry write the rules know; a route that maps to none of them is refused.
KINDS = (
    "create_model",
    "create_version",
    "rename_model",
    "update_model",
    "update_version",
    "delete_model",
    "delete_version",
    "set_model_tag",
    "delete_model_tag",
    "set_version_tag",
    "delete_version_tag",
    "set_alias",
    "delete_alias",
    "transition_stage",
)
_GATE_ACTIONS = ("promotion.", "gate.")
_RELEASE_CHECK = "release"
_RELEASE_RULES = {
    "delete_alias": "alias.delete",
    "transition_stage": "stage.leave",
    "delete_version": "version.delete",
    "delete_model": "model.delete",
}


class GuardRefusedError(PermissionDeniedError):
    """A registry write the rules refuse; ``rule`` names the rule (``tag.hitl``, ``alias.delete`` ...)."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(f"refused by rule {rule}: {message}")
        self.rule = rule


@dataclass(frozen=True)
class Write:
    """One registry write, with the values MLflow will act on.

    ``tags`` are the tags given at creation (the last value of a repeated key wins, as in MLflow);
    ``key`` is the tag key of a tag write; ``archive_existing`` the stage transition's flag.
    """

    kind: str
    name: str
    version: str | None = None
    alias: str | None = None
    stage: str | None = None
    key: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    new_name: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown registry write {self.kind!r}")
        object.__setattr__(self, "version", _version(self.version))
        object.__setattr__(self, "tags", MappingProxyType(dict(self.tags)))

    @property
    def subject(self) -> str:
        return f"model:{self.name}" + (f"/{self.version}" if self.version else "")

    @property
    def prompt(self) -> bool:
        """Whether a create request carries the prompt flag, read as MLflow's handler reads it."""
        return str(self.tags.get(PROMPT_FLAG, "false")).lower() == "true"


def _version(version: Any) -> str | None:
    """The version number as MLflow's SQL store reads it (``int()``: `` 01``, ``+1`` and ``1`` are one version)."""
    if version in (None, ""):
        return None
    try:
        return str(int(version))
    except (TypeError, ValueError):
        return str(version)  # MLflow refuses it; the gate names it as given


def is_hitl_key(key: str) -> bool:
    """``hitl.*`` in any case or padding: the tags mlflow-hitl records gate decisions in."""
    return key.strip().casefold().startswith("hitl.")


# -- before MLflow acts --------------------------------------------------------------------------


def check(write: Write, *, store: ReviewStore, registry: Any, actor: str, route: str) -> None:
    """Refuse (``GuardRefusedError``, :class:`.gate.GateBlockedError`) or allow ``write`` by ``actor``.

    ``registry`` is MLflow's registry store the write goes to (read only here); ``route`` names the
    entry point in audit records (``POST /api/2.0/mlflow/registered-models/alias``, ``plugin``).
    """
    try:
        _check(write, store=store, registry=registry, actor=actor)
    except GuardRefusedError as exc:
        store.record_event(
            actor=actor,
            action="guard.refused",
            subject=write.subject,
            payload={"rule": exc.rule, "route": route, "kind": write.kind, "message": str(exc)},
        )
        raise


def _check(write: Write, *, store: ReviewStore, registry: Any, actor: str) -> None:
    from ..gate import is_protected
    from .gate import policy_for

    kind = write.kind
    keys = [write.key] if write.key is not None else list(write.tags)
    forged = [k for k in keys if is_hitl_key(k)]
    if forged:
        raise GuardRefusedError(
            "tag.hitl", f"tag {forged[0]!r} is written by mlflow-hitl only: hitl.* tags record gate decisions"
        )
    if kind in ("set_model_tag", "delete_model_tag", "set_version_tag", "delete_version_tag"):
        if write.key is not None and write.key.strip().casefold() == PROMPT_FLAG:
            raise GuardRefusedError(
                "tag.prompt_flag",
                f"{PROMPT_FLAG} is fixed when a model or version is created; it cannot be set or deleted later",
            )
    elif kind == "set_alias":
        if not str(write.alias).isascii():
            raise GuardRefusedError(
                "alias.name",
                f"alias {write.alias!r} is not plain ASCII (letters, digits, _ and -): "
                "it could pass for a protected alias",
            )
        _promote(write, f"alias:{write.alias}", store=store, registry=registry, actor=actor)
    elif kind == "transition_stage":
        _demote_stage(write, store=store, registry=registry, actor=actor)
        _promote(write, f"stage:{write.stage}", store=store, registry=registry, actor=actor)
    elif kind == "delete_alias":
        policy, _ = policy_for(store, write.name)
        if is_protected(policy, f"alias:{write.alias}"):
            _release(write, f"delete the protected alias {write.alias!r}", store, registry, actor)
    elif kind in ("delete_version", "delete_model"):
        held = _protected_holdings(write, store=store, registry=registry)
        if held:
            what = "version " + write.version if write.version else "model"
            _release(
                write, f"delete {write.name} {what}, which holds {', '.join(held)}", store, registry, actor
            )
    elif kind == "rename_model":
        _check_rename(write, store=store, actor=actor)


def _promote(write: Write, target: str, *, store: ReviewStore, registry: Any, actor: str) -> None:
    from .gate import GateBlockedError, enforce

    def exempt() -> bool:
        return is_exempt(store, registry, write.name, write.version)

    try:
        enforce(write.name, str(write.version), target, store=store, actor=actor, exempt=exempt)
    except GateBlockedError:
        raise
    except HitlError as exc:
        raise GuardRefusedError(
            "gate.unavailable",
            f"the HITL gate of {write.name} version {write.version} could not be evaluated: {exc}",
        ) from exc


def _demote_stage(write: Write, *, store: ReviewStore, registry: Any, actor: str) -> None:
    """Moving a version out of a protected stage takes that stage away: the release role decides."""
    from mlflow.exceptions import MlflowException

    from ..gate import is_protected
    from .gate import policy_for

    try:
        current = registry.get_model_version(write.name, write.version).current_stage
    except MlflowException:
        return  # MLflow answers for an unknown version
    policy, _ = policy_for(store, write.name)
    leaving = (
        is_protected(policy, f"stage:{current}") and str(current).lower() != str(write.stage).strip().lower()
    )
    if leaving:
        _release(
            write,
            f"move version {write.version} out of the protected stage {current}",
            store,
            registry,
            actor,
        )


def _protected_holdings(write: Write, *, store: ReviewStore, registry: Any) -> list[str]:
    """The protected aliases and stages the version (or, without a version, the model) holds."""
    from mlflow.exceptions import MlflowException

    from ..gate import is_protected
    from .gate import policy_for

    policy, _ = policy_for(store, write.name)
    try:
        model = registry.get_registered_model(write.name)
        versions = (
            [registry.get_model_version(write.name, write.version)]
            if write.version
            else registry.get_latest_versions(write.name, stages=list(policy.protect_stages))
        )
    except MlflowException:
        return []
    held = [
        f"alias {alias!r}"
        for alias, version in sorted(dict(model.aliases).items())
        if (write.version is None or str(version) == write.version) and is_protected(policy, f"alias:{alias}")
    ]
    held += [
        f"stage {v.current_stage} (version {v.version})"
        for v in versions
        if v.current_stage and is_protected(policy, f"stage:{v.current_stage}")
    ]
    return held


def _release(write: Write, doing: str, store: ReviewStore, registry: Any, actor: str) -> None:
    """Allow ``doing`` only to holders of the release sign-off role (or admins), audited either way."""
    if all(is_exempt(store, registry, write.name, v) for v in _versions_concerned(write, registry)):
        _audit(store, actor, "guard.exempt", write, {"doing": doing})
        return
    role = signoff_role(_RELEASE_CHECK)
    held = _roles(store, actor)
    if role not in held and "admin" not in held:
        raise GuardRefusedError(
            _RELEASE_RULES[write.kind],
            f"{actor} cannot {doing}: needs the {role!r} role (roles held: {', '.join(sorted(held)) or 'none'})",
        )
    _audit(store, actor, "guard.granted", write, {"doing": doing, "role": role})


def _versions_concerned(write: Write, registry: Any) -> list[str | None]:
    """The versions whose facts decide whether taking something away is exempt: the one the write names,
    the one the alias points to, or every version of the model (``[None]``: none, the model's own facts).

    A model created as a prompt may hold its protected alias on a version serving model files; the
    model's facts alone (which a rename leaves without its gate history) must not exempt that version.
    """
    from mlflow.exceptions import MlflowException

    if write.version:
        return [write.version]
    try:
        if write.kind == "delete_alias":
            held = dict(registry.get_registered_model(write.name).aliases).get(write.alias)
            return [None if held is None else str(held)]
        if "'" in write.name:
            return ["unknown"]  # not a filter MLflow reads as written: no version is exempt
        versions, token = [], None
        while True:
            page = registry.search_model_versions(f"name = '{write.name}'", page_token=token)
            versions += [str(v.version) for v in page]
            token = page.token
            if not token:
                return versions or [None]
    except MlflowException:
        return ["unknown"]  # MLflow answers for the write itself; nothing is exempt on a guess


def _check_rename(write: Write, *, store: ReviewStore, actor: str) -> None:
    """A rename that would change the policy a model is judged by is an admin's decision."""
    own, target = store.policy(write.name), store.policy(str(write.new_name))
    if own is None and target is None:
        return
    if "admin" not in _roles(store, actor):
        raise GuardRefusedError(
            "rename.policy",
            f"{write.name} -> {write.new_name} changes which gate policy applies; renaming needs the 'admin' role",
        )
    if own is None:
        raise GuardRefusedError(
            "rename.policy",
            f"the name {write.new_name!r} holds a policy from an earlier model, and {write.name} has none: "
            f"set {write.name}'s policy first, or choose another name",
        )


def _roles(store: ReviewStore, user: str) -> set[str]:
    return set(store.roles(user)["role"])


def is_exempt(store: ReviewStore, registry: Any, name: str, version: str | None = None) -> bool:
    """Whether ``name`` is a prompt, judged on facts a client cannot flip later (see the module docstring)."""
    from mlflow.exceptions import MlflowException
    from mlflow.prompt.constants import _PROMPT_SOURCE_PLACEHOLDERS

    from .gate import GATE_TAG_PREFIX

    # Cheapest facts first: a gated model (a policy, a version with a run or a gate record) is out at once.
    if store.policy(name) is not None:
        return False
    if version:
        try:
            model_version = registry.get_model_version(name, version)
        except MlflowException:
            return False
        if (
            model_version.run_id
            or getattr(model_version, "model_id", None)
            or model_version.source not in _PROMPT_SOURCE_PLACEHOLDERS  # it serves model files
            or any(k.startswith(GATE_TAG_PREFIX) for k in dict(model_version.tags))
        ):
            return False
    record = identity.creation_record(store, f"model:{name}")
    if record is None or record.get("prompt") is not True:
        return False
    gated = store.audit_events(subject=f"model:{name}")
    return not gated["action"].str.startswith(_GATE_ACTIONS).any()


def _audit(store: ReviewStore, actor: str, action: str, write: Write, payload: Mapping[str, Any]) -> None:
    store.record_event(
        actor=actor, action=action, subject=write.subject, payload={"kind": write.kind, **payload}
    )


# -- after MLflow has acted ----------------------------------------------------------------------


def after(write: Write, result: Mapping[str, Any], *, store: ReviewStore, actor: str) -> None:
    """Record what a write MLflow accepted means; ``result`` is the created object's fields, if any.

    Creations record their authenticated creator (:mod:`.identity`); a rename copies the model's
    policy and creation records to the new name and is audited; deletions are audited.
    """
    if write.kind == "create_model":
        identity.record_model_created(store, name=write.name, user=actor, prompt=write.prompt)
    elif write.kind == "create_version":
        identity.record_version_created(
            store,
            name=write.name,
            version=str(result["version"]),
            user=actor,
            run_id=result.get("run_id") or None,
            source=result.get("source"),
        )
    elif write.kind == "rename_model":
        _follow_rename(write, store=store, actor=actor)
    elif write.kind in ("delete_model", "delete_version"):
        action = "model.deleted" if write.kind == "delete_model" else "model_version.deleted"
        store.record_event(actor=actor, action=action, subject=write.subject, payload={})


def _follow_rename(write: Write, *, store: ReviewStore, actor: str) -> None:
    from .gate import set_policy

    old, new = write.name, str(write.new_name)
    own = store.policy(old)
    copied = None
    if own is not None and (store.policy(new) or {}).get("policy_hash") != own["policy_hash"]:
        copied = set_policy(
            store, new, own["policy"], actor=actor, source=f"policy of {old} v{own['version']}"
        )
    store.record_event(
        actor=actor,
        action="model.renamed",
        subject=f"model:{new}",
        payload={"from": old, "to": new, "policy_version": None if copied is None else copied["version"]},
    )
    # The creation records follow the model, so authors and the prompt flag are found under the new name.
    latest: dict[str, Any] = {}
    for row in store.audit_events(subject=f"model:{old}", action="identity.").itertuples():
        if row.action in (identity.MODEL_CREATED, identity.VERSION_CREATED):
            latest[row.subject] = row
    model = latest.pop(f"model:{old}", None)
    if model is None:
        return
    for row in [model, *sorted(latest.values(), key=lambda r: r.seq)]:
        if row.seq < model.seq:
            continue  # a version of an earlier model of the old name
        store.record_event(
            actor=actor,
            action=row.action,
            subject=f"model:{new}" + row.subject[len(f"model:{old}") :],
            payload={**json.loads(row.payload), "renamed_from": row.subject},
        )
