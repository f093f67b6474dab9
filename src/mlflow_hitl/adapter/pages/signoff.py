"""Sign off: a run's evidence (status per check, key numbers, plots, the digest approved) and the decision.

The evidence is read by the reader the gate and lineage use (:func:`~mlflow_hitl.adapter.evidence.read_run_evidence`:
every file re-hashed, judged against its registration in the audit chain); the decision is the API's
``signoffs/create``. The page says why the user cannot act: the role the check needs, an author of the
run (whose sign-off the gate does not count), evidence never registered or changed since.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any
from urllib.parse import urlencode

from ..._roles import signoff_role
from ...checks.registry import ALL_CHECKS, SIGNOFF_CHECKS
from ...errors import InputError, NotFoundError, PermissionDeniedError
from ..api import may_use_run
from ..evidence import read_run_evidence
from ._web import (
    Page,
    attempt,
    form,
    missing_role,
    my_roles,
    query,
    redirect,
    render,
    run_link,
    store,
    user,
)

__all__ = ["PAGES"]


def _run(run_id: str) -> Any:
    """The run, for a user MLflow lets read it: the page shows its evidence, metrics and signers."""
    import mlflow
    from mlflow.exceptions import MlflowException

    if not may_use_run("read", run_id):
        raise PermissionDeniedError(f"you may not read run {run_id!r} in MLflow: ask its owner for access")
    try:
        return mlflow.MlflowClient().get_run(run_id)
    except MlflowException as exc:
        raise NotFoundError(f"this server has no run {run_id!r}") from exc


def _key_numbers(check: str, metrics: dict[str, float]) -> list[tuple[str, float]]:
    """The check's declared key metrics from the verified result files (all of them for an unknown check)."""
    spec = ALL_CHECKS.get(check)
    prefix = f"{check}."
    own = {k[len(prefix) :]: v for k, v in metrics.items() if k.startswith(prefix)}
    if spec is None:
        return sorted(own.items())
    return sorted((k, v) for k, v in own.items() if any(fnmatchcase(k, p) for p in spec.key_metrics))


def _blockers(check: str, evidence: Any, me: str, held: set[str]) -> list[str]:
    """Why ``me`` cannot sign off ``check`` here (empty: they can), each in one line."""
    found = []
    role = signoff_role(check)
    if not held & {role, "admin"}:
        found.append(missing_role(f"sign off {check}", role, held))
    if me in evidence.authors:
        found.append(
            f"You are an author of this run ({', '.join(evidence.authors)}): the gate does not count an "
            "author's sign-off (separation of duties)."
        )
    if evidence.registration is None:
        found.append("This run's evidence was never registered: there is nothing to approve.")
    elif evidence.changes:
        found.append("The evidence changed after it was registered: it cannot be approved as it is.")
    return found


def _show(refusal: Any = None) -> Any:
    run_id, check = str(query("run_id") or ""), query("check")
    if not run_id:
        raise InputError("which run? open this page as /hitl/signoff?run_id=RUN_ID&check=CHECK")
    if check is not None and check not in SIGNOFF_CHECKS:
        raise InputError(f"unknown sign-off check {check!r}; choose from {', '.join(SIGNOFF_CHECKS)}")
    run = _run(run_id)
    evidence = read_run_evidence(store(), run, team=True)
    summary = evidence.summary or {}
    checks = summary.get("checks", {})
    me = user()
    plots = [
        (name, "/get-artifact?" + urlencode({"path": f"hitl/{name}", "run_uuid": run_id}))
        for name in sorted(summary.get("manifest", {}))
        if name.endswith(".png") and (check is None or name.startswith(f"{check}/"))
    ]
    return render(
        "signoff.html",
        refusal=refusal,
        run=run,
        run_page=run_link(run.info.experiment_id, run_id),
        check=check,
        checks=checks,
        choices=[c for c in SIGNOFF_CHECKS if c in checks or c == "release"],
        numbers={name: _key_numbers(name, evidence.metrics) for name in checks},
        plots=plots,
        evidence=evidence,
        signoffs=[s for s in evidence.signoffs if check is None or s["check_name"] == check],
        role=None if check is None else signoff_role(check),
        blockers=[] if check is None else _blockers(check, evidence, me, my_roles()),
        signed=query("signed"),
    )


def _act() -> Any:
    run_id, check = str(query("run_id") or ""), str(query("check") or "")
    decision = form("decision")
    refusal = attempt(
        lambda: store().sign_off(
            run_id=run_id,
            check=check,
            user="",
            approve=decision == "approve",
            note=form("note"),
            evidence_sha256=form("evidence_sha256"),  # the digest the page showed: refused if it changed
        )
    )
    return _show(refusal) if refusal else redirect("signoff", run_id=run_id, check=check, signed=decision)


def _signoff() -> Any:
    from flask import request

    return _act() if request.method == "POST" else _show()


PAGES = (Page("signoff", _signoff, methods=("GET", "POST")),)
