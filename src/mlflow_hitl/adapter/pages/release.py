"""Release: a registered model version's gate for one protected target, every requirement met or unmet
with its reason and a link to its evidence, and the promote action.

The decision is the server's own (``gate/decision``, read without recording); "Record a gate check"
is ``gate/check`` (what ``mlflow-hitl gate check`` records). Promoting is :func:`~mlflow_hitl.adapter.gate.promote`
in team mode, its registry write asked of this server's REST API *as the page's user*: MLflow's
basic-auth checks their permission on the model, the HITL guard decides the gate and audits the
attempt (``promotion.granted``/``promotion.refused``), exactly as for the CLI or the MLflow UI's own
"Add alias". The page holds no rule: it shows the server's answer.
"""

from __future__ import annotations

from typing import Any

from ...errors import InputError, NotFoundError, PermissionDeniedError, first_line
from ..gate import GateBlockedError, canonical_target, policy_for, promote
from ._web import (
    Page,
    Refusal,
    attempt,
    call,
    form,
    my_roles,
    page_url,
    query,
    redirect,
    render,
    run_link,
    store,
    user,
)

__all__ = ["PAGES", "evidence_link"]

_REGISTRY_WRITES = {"alias": "registered-models/alias", "stage": "model-versions/transition-stage"}


class _AsUser:
    """The two registry writes a promotion makes, asked of this server's REST API as the request's user.

    Run in-process through the whole server (basic-auth, the HITL guard, MLflow's handler), with the
    credentials the browser sent; a refusal comes back as the ``MlflowException`` a client would get.
    """

    def set_registered_model_alias(self, name: str, alias: str, version: str) -> None:
        self._post("alias", {"name": name, "alias": alias, "version": str(version)})

    def transition_model_version_stage(self, name: str, version: str, stage: str) -> None:
        body = {"name": name, "version": str(version), "stage": stage, "archive_existing_versions": False}
        self._post("stage", body)

    @staticmethod
    def _post(kind: str, body: dict[str, Any]) -> None:
        from flask import current_app, request
        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import ErrorCode

        headers = {k: v for k in ("Authorization", "Cookie") if (v := request.headers.get(k))}
        answer = current_app.test_client().post(
            f"/api/2.0/mlflow/{_REGISTRY_WRITES[kind]}", json=body, headers=headers, base_url=request.host_url
        )
        if answer.status_code == 200:
            return
        data = answer.get_json(silent=True) or {}
        code = data.get("error_code")
        if code not in ErrorCode.keys():  # noqa: SIM118 -- a protobuf enum, not a dict
            code = {401: "PERMISSION_DENIED", 403: "PERMISSION_DENIED"}.get(
                answer.status_code, "INTERNAL_ERROR"
            )
        message = data.get("message") or answer.get_data(as_text=True).strip() or f"HTTP {answer.status_code}"
        raise MlflowException(str(message), error_code=ErrorCode.Value(code))


def evidence_link(requirement: str, *, model: str, version: str, run: Any) -> str | None:
    """Where a person checks what requirement ``requirement`` (``check.fairness``, ``signoff.release`` ...) looked at."""
    kind, _, rest = requirement.partition(".")
    check = rest.split(".", 1)[0].split(" ", 1)[0]
    artifacts = None if run is None else run_link(run.info.experiment_id, run.info.run_id) + "/artifacts/hitl"
    if kind == "signoff" and run is not None:
        return page_url("signoff", run_id=run.info.run_id, check=check)
    if kind == "check" and artifacts:
        return f"{artifacts}/{check}"
    if kind == "evidence" and artifacts:
        return artifacts
    if kind in ("review", "duties"):
        return page_url("lineage", model=model, version=version)
    if kind == "audit":
        return page_url("audit", model=model)
    return None


def _required(key: str) -> str:
    value = query(key)
    if value is None:
        raise InputError(f"the release page needs ?model=NAME&version=N (missing {key!r})")
    return value


def _version(model: str, version: str) -> tuple[Any, Any]:
    """The model version and its run as MLflow holds them (``NotFoundError`` for an unknown version)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    client = mlflow.MlflowClient()
    try:
        found = client.get_model_version(model, version)
    except MlflowException as exc:
        raise NotFoundError(f"unknown model version {model!r} version {version}") from exc
    try:
        run = client.get_run(found.run_id) if found.run_id else None
    except MlflowException:
        run = None
    return found, run


def _targets(model: str) -> list[str]:
    policy, _ = policy_for(store(), model)
    return [f"alias:{a}" for a in policy.protect_aliases] + [f"stage:{s}" for s in policy.protect_stages]


def _show(refusal: Refusal | None = None) -> Any:
    model, version = _required("model"), _required("version")
    model_version, run = _version(model, version)
    targets = _targets(model)
    target = canonical_target(query("target") or (targets[0] if targets else "alias:champion"))
    decision = call("gate/decision", model=model, version=version, target=target)["decision"]
    requirements = [
        {**r, "link": evidence_link(r["name"], model=model, version=version, run=run)}
        for r in decision["requirements"]
    ]
    return render(
        "release.html",
        refusal=refusal,
        model=model,
        version=version,
        model_version=model_version,
        run=run,
        target=target,
        targets=targets if target in targets else [*targets, target],
        decision=decision,
        requirements=requirements,
        unmet=[r for r in requirements if not r["met"]],
        roles=sorted(my_roles()),
        promoted=query("promoted"),
        checked=query("checked"),
    )


def _act() -> Any:
    model, version = _required("model"), _required("version")
    target = canonical_target(form("target") or _required("target"))
    action = form("action")
    if action == "check":
        refusal = attempt(lambda: call("gate/check", model=model, version=version, target=target))
        if refusal is None:
            return redirect("release", model=model, version=version, target=target, checked=1)
        return _show(refusal)
    if action != "promote":
        return _show(Refusal(400, f"unknown action {action!r}"))
    try:
        promote(model, version, target=target, store=store(), actor=user(), client=_AsUser())
    except (GateBlockedError, PermissionDeniedError) as exc:  # the gate's reasons, or MLflow's permission
        return _show(Refusal(403, first_line(exc)))
    return redirect("release", model=model, version=version, target=target, promoted=target)


def _release() -> Any:
    from flask import request

    return _act() if request.method == "POST" else _show()


PAGES = (Page("release", _release, methods=("GET", "POST")),)
