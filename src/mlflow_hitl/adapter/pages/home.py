"""Home: my work. The queues that still need labels, the runs whose evidence waits for a sign-off my roles
allow and I have not given, and my roles. Read through the API's routes; each list is capped at the
source and the page says so (the first 10 queues, the newest 100 evidence registrations read newest
first from the action index), so the page stays quick however large the store grows.
"""

from __future__ import annotations

from typing import Any

from ..._roles import signoff_role
from ...review import EVIDENCE_REGISTERED
from ._web import Page, my_roles, render, run_page, store, user

__all__ = ["PAGES"]

_RECENT_RUNS = 10
_RECENT_REGISTRATIONS = 100  # events read to find the newest runs (a run may be registered more than once)
_QUEUES = 10


def _signable(checks: list[str], held: set[str]) -> list[str]:
    """The checks (and the release) whose sign-off the roles ``held`` allow."""
    return [c for c in (*checks, "release") if "admin" in held or signoff_role(c) in held]


def _waiting_signoffs(held: set[str], me: str) -> list[dict[str, Any]]:
    import mlflow
    from mlflow.exceptions import MlflowException

    client = store()
    events = client.audit_events(action=EVIDENCE_REGISTERED, newest_first=True, limit=_RECENT_REGISTRATIONS)
    runs = list(dict.fromkeys(s.split(":", 1)[1] for s in events["subject"].tolist()))
    waiting = []
    for run_id in runs[:_RECENT_RUNS]:
        try:
            run = mlflow.MlflowClient().get_run(run_id)
        except MlflowException:
            continue
        pairs = [p.split("=", 1) for p in run.data.tags.get("hitl.checks", "").split(",") if "=" in p]
        signed = client.signoffs(run_id)
        done = set(signed["check_name"][signed["user"] == me]) if not signed.empty else set()
        todo = [c for c in _signable([name for name, _ in pairs], held) if c not in done]
        if todo:
            waiting.append({"run": run, "link": run_page(run_id), "checks": todo})
    return waiting


def _home() -> Any:
    me, held = user(), my_roles()
    client = store()
    open_queues = []
    queues = client.queues()
    for queue in queues[:_QUEUES]:
        progress = client.progress(queue.name)
        if progress["labels"] < progress["labels_needed"]:
            open_queues.append((queue, progress))
    return render(
        "home.html",
        roles=sorted(held),
        open_queues=open_queues,
        queues_looked_at=min(len(queues), _QUEUES),
        queues_total=len(queues),
        recent_runs=_RECENT_RUNS,
        waiting=_waiting_signoffs(held, me) if held else [],
    )


PAGES = (Page("", _home, nav="My work"),)
