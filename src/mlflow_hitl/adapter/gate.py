"""Gate decisions for registered model versions: evidence from MLflow and the review store, judged by
the model's policy, recorded, and enforced on promotion.

The decision is computed from evidence only: the version's run, its ``hitl/summary.json`` with the
sha256 of every artifact re-verified and the whole folder judged against its registration in the
audit chain, the version's model files against the evaluated model's digest, its metrics against the
*policy's* thresholds, the review store's sign-offs (of the registered evidence) and verified-label
snapshots for that run, the authors the records name, and an intact audit chain. The tags written on
the model version are a record of the outcome, never an input: ``hitl.gate.<target>`` holds
``{passed, evidence_hash, audit_seq}`` for tools, ``hitl.gate.<target>.summary`` the same verdict for
people (``blocked: 2 unmet — ...``, every unmet requirement and the release page's address).
"""

from __future__ import annotations

import contextlib
import contextvars
import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from .._urls import release_page
from ..errors import HitlError, InputError, NotFoundError, PermissionDeniedError, first_line
from ..gate import (
    Evidence,
    GateDecision,
    Policy,
    decide,
    default_policy,
    is_protected,
    parse_policy,
    policy_hash,
)
from ..review import HttpReviewStore, ReviewStore
from .evidence import RunEvidence, read_run_evidence, team_mode
from .identity import recorded_creator
from .registration import version_model_digest

__all__ = [
    "GateBlockedError",
    "check_gate",
    "collect_evidence",
    "enforce",
    "canonical_target",
    "gate_tag_text",
    "release_page",
    "internal_writes",
    "gate_policies",
    "policy_for",
    "policy_origin",
    "promote",
    "require_registered_model",
    "set_policy",
    "target_of",
]

POLICY_HASH_TAG = "hitl.policy_hash"
GATE_TAG_PREFIX = "hitl.gate."
_TAG_TEXT_CHARS = 4000  # the registry stores tag values of up to 5,000 characters

# Set while mlflow-hitl itself writes hitl.* tags, so the registry-store plugin lets them through.
_INTERNAL = contextvars.ContextVar("mlflow_hitl_internal_write", default=False)


class GateBlockedError(HitlError):
    """A promotion was refused; ``decision`` lists every unmet requirement."""

    def __init__(self, decision: GateDecision) -> None:
        super().__init__(decision.summary())
        self.decision = decision


@contextlib.contextmanager
def internal_writes() -> Iterator[None]:
    token = _INTERNAL.set(True)
    try:
        yield
    finally:
        _INTERNAL.reset(token)


def is_internal_write() -> bool:
    return _INTERNAL.get()


def target_of(*, alias: str | None = None, stage: str | None = None) -> str:
    """``alias:<name>`` or ``stage:<Stage>``: exactly one of the two must be given."""
    if (alias is None) == (stage is None):
        raise InputError("give exactly one promotion target: an alias (--alias) or a stage (--stage)")
    return f"alias:{alias}" if alias is not None else f"stage:{stage}"


def canonical_target(target: str) -> str:
    """One name per target, for the gate's records: aliases in lower case (``Champion`` is ``champion``),
    stages as MLflow spells them (``stage:production`` is ``stage:Production``)."""
    from mlflow.entities.model_registry.model_version_stages import get_canonical_stage
    from mlflow.exceptions import MlflowException

    kind, _, name = target.partition(":")
    name = name.strip()
    if not name:
        return target  # the gate reports the malformed target
    if kind == "alias":
        return f"alias:{name.casefold()}"
    if kind == "stage":
        with contextlib.suppress(MlflowException):
            name = get_canonical_stage(name)
        return f"stage:{name}"
    return target


def _client() -> Any:
    import mlflow

    return mlflow.MlflowClient()


def policy_for(store: ReviewStore, model_name: str) -> tuple[Policy, dict[str, Any] | None]:
    """The policy in force for ``model_name`` and its stored record (``None``: the strict default applies)."""
    record = store.policy(model_name)
    if record is None:
        return default_policy(), None
    return parse_policy(record["policy"], source=f"policy of {model_name} v{record['version']}"), record


def policy_origin(model_name: str, record: dict[str, Any] | None) -> str:
    """Where ``model_name``'s policy comes from, for people: its stored version, who set it and when, its hash."""
    if record is None:
        return f"the default policy ({model_name} has none of its own)"
    return (
        f"policy of {model_name} v{record['version']}, set by {record['set_by']} "
        f"{str(record.get('set_at') or '')[:16].replace('T', ' ')} (sha256 {str(record['policy_hash'])[:12]})"
    )


def gate_policies(model_names: Iterable[str]) -> dict[str, Policy] | None:
    """The gate policies in force now for ``model_names``, keyed by :func:`policy_origin`: what the
    evidence report shows beside each check's own thresholds. ``None`` when no name is given; ``{}``
    when the review store cannot be read (the report then says the policy was not known)."""
    from .review import open_store

    names = sorted(set(model_names))
    if not names:
        return None
    try:
        store = open_store()
    except Exception:  # no review store that opens: the report says the policy was not known
        return {}
    try:
        found = {}
        for name in names:
            policy, record = policy_for(store, name)
            found[policy_origin(name, record)] = policy
        return found
    except HitlError:
        return {}
    finally:
        store.close()


def require_registered_model(name: str) -> None:
    """Refuse a registered model name the registry does not know: a policy set for it, or a report
    showing its gate, would concern a model that does not exist (a typo would say nothing)."""
    from mlflow.exceptions import MlflowException

    try:
        _client().get_registered_model(name)
    except MlflowException as exc:
        raise NotFoundError(f"unknown registered model {name!r}") from exc


def set_policy(
    store: ReviewStore, model_name: str, text: str, *, actor: str, source: str = "policy.toml"
) -> dict[str, Any]:
    """Validate ``text`` and make it ``model_name``'s policy (admin only, audited); mirror its hash as a model tag."""
    from mlflow.exceptions import MlflowException

    policy = parse_policy(text, source=source)
    client = _client()
    require_registered_model(model_name)
    record = store.set_policy(model_name, policy=text, policy_hash=policy_hash(policy), actor=actor)
    # A mirror for people browsing the registry; a remote server refuses hitl.* tags from clients.
    with internal_writes(), contextlib.suppress(MlflowException):
        client.set_registered_model_tag(model_name, POLICY_HASH_TAG, record["policy_hash"])
    return record


def _authors(
    store: ReviewStore, found: RunEvidence | None, model_name: str, version: str, *, team: bool
) -> tuple[tuple[str, ...], str | None]:
    """Who the records name as authors of the version: the run's, plus the version's recorded creator.

    In team mode a version without a creator recorded by the server has no author anyone can rely on.
    """
    if found is None:
        return (), "the version has no run, so its author is unknown"
    creator = recorded_creator(store, f"model:{model_name}/{version}")
    if creator is not None:
        return tuple(sorted({*found.authors, creator})), found.author_problem
    if team:
        return (), f"the server recorded no authenticated creator of {model_name} version {version}"
    return found.authors, found.author_problem


def _snapshot_rows(found: RunEvidence) -> tuple[dict[str, Any], ...]:
    """The run's own verified-label snapshots as the policy's review requirements read them."""
    return tuple(
        {
            "id": s["id"],
            "queue": s["queue"],
            "n_items": int(s["n_items"]),
            "krippendorff_alpha": (found.snapshot_meta.get(s["id"], {}).get("agreement") or {}).get(
                "krippendorff_alpha"
            ),
        }
        for s in found.own_snapshots
    )


def collect_evidence(
    model_name: str, version: str | int, target: str, *, store: ReviewStore, actor: str | None = None
) -> Evidence:
    """Everything the gate looks at for ``model_name`` version ``version`` and ``target``.

    The run's evidence as :func:`~mlflow_hitl.adapter.evidence.read_run_evidence` reads it (judged
    against its registration), the digest of the version's actual model files, and the recorded
    authors of the run and of the version.
    """
    from mlflow.exceptions import MlflowException

    client = _client()
    version = str(version)
    try:
        model_version = client.get_model_version(model_name, version)
    except MlflowException as exc:
        raise NotFoundError(f"unknown model version {model_name!r} version {version}") from exc
    run_id = model_version.run_id
    run = None
    if run_id:
        with contextlib.suppress(MlflowException):
            run = client.get_run(run_id)
    team = team_mode()
    found = None if run is None else read_run_evidence(store, run, team=team)
    model_sha256, model_problem = version_model_digest(client, model_version)
    # The chain only grows: walk what was appended since this process's last full walk (see review/_walks.py).
    verification = store.verify_audit(incremental=True)
    authors, author_problem = _authors(store, found, model_name, version, team=team)
    return Evidence(
        model_name=model_name,
        version=version,
        target=target,
        run_id=run_id if run is not None else None,
        run_author=authors[0] if len(authors) == 1 else None,
        authors=authors,
        author_problem=author_problem,
        version_run_id=model_version.run_id,
        summary=None if found is None else found.summary,
        summary_sha256=None if found is None else found.summary_sha256,
        artifact_problems=None if found is None else found.artifact_problems,
        registration=None if found is None else found.registration,
        evidence_changes=None if found is None else found.changes,
        model_sha256=model_sha256,
        model_problem=model_problem,
        metrics={} if found is None else found.metrics,
        signoffs=() if found is None else tuple(row for row in found.signoffs if row["in_audit_chain"]),
        snapshots=() if found is None else _snapshot_rows(found),
        audit={
            "ok": verification.ok,
            "head_seq": verification.head_seq,
            "head_hash": verification.head_hash,
            "problem": verification.problem,
            "walked_from": verification.walked_from,
        },
        actor=actor,
    )


def check_gate(
    model_name: str,
    version: str | int,
    target: str,
    *,
    store: ReviewStore,
    actor: str | None = None,
    record: bool = True,
) -> GateDecision:
    """Decide the gate for a version and target; record it as an audit event and a model-version tag.

    In team mode (``store`` is the server's API) the server decides and records, as the authenticated user.
    """
    target = canonical_target(target)
    if isinstance(store, HttpReviewStore):
        from .api import server_decision

        return server_decision(store, model_name, version, target, record=record)
    policy, _ = policy_for(store, model_name)
    decision = decide(policy, collect_evidence(model_name, version, target, store=store, actor=actor))
    if record and is_protected(policy, target):
        _record(store, decision, action="gate.check", actor=actor)
    return decision


def gate_tag_text(decision: GateDecision) -> str:
    """The decision as a person reads it on the version page: the verdict, every unmet requirement
    with its reason, and the release page (kept when the reasons are shortened to fit a tag)."""
    page = f"details: {release_page(decision.model_name, decision.version)}"
    if decision.passed:
        return f"allowed: all {len(decision.requirements)} requirements met — {page}"
    unmet = decision.unmet()
    reasons = "; ".join(f"{r.name} ({r.detail})" for r in unmet)
    room = _TAG_TEXT_CHARS - len(page) - 40
    if len(reasons) > room:
        reasons = reasons[: room - 1].rstrip() + "…"
    return f"blocked: {len(unmet)} unmet — {reasons} — {page}"


def _record(store: ReviewStore, decision: GateDecision, *, action: str, actor: str | None) -> None:
    from mlflow.exceptions import MlflowException

    seq, _ = store.record_event(
        actor=actor or "mlflow-hitl",
        action=action,
        subject=f"model:{decision.model_name}/{decision.version}",
        payload={
            "target": decision.target,
            "passed": decision.passed,
            "evidence_hash": decision.evidence_hash,
            "policy_hash": decision.policy_hash,
            "unmet": [r.name for r in decision.unmet()],
        },
    )
    tag = json.dumps({"passed": decision.passed, "evidence_hash": decision.evidence_hash, "audit_seq": seq})
    key = GATE_TAG_PREFIX + decision.target.replace(":", ".")
    # A remote tracking server records its own tags (it refuses hitl.* tags from clients).
    with internal_writes(), contextlib.suppress(MlflowException):
        client = _client()
        client.set_model_version_tag(decision.model_name, decision.version, key, tag)
        client.set_model_version_tag(
            decision.model_name, decision.version, f"{key}.summary", gate_tag_text(decision)
        )


def enforce(
    model_name: str,
    version: str | int,
    target: str,
    *,
    store: ReviewStore,
    actor: str,
    exempt: Callable[[], bool] | None = None,
) -> GateDecision | None:
    """The check every enforcement point makes before an alias or stage change.

    ``None`` when ``target`` is not protected by the model's policy, or when ``exempt()`` (asked only
    for protected targets, as it may be costly: prompts are exempt) says so, which is audited as
    ``guard.exempt``. The target is recorded under its :func:`canonical_target`. Otherwise the decision is
    recorded (``promotion.granted`` or ``promotion.refused``, with the actor) and returned when the
    gate passes; :class:`GateBlockedError` is raised when it does not.
    """
    policy, _ = policy_for(store, model_name)
    target = canonical_target(target)
    if not is_protected(policy, target):
        return None
    if exempt is not None and exempt():
        store.record_event(
            actor=actor,
            action="guard.exempt",
            subject=f"model:{model_name}/{version}",
            payload={"target": target},
        )
        return None
    decision = decide(policy, collect_evidence(model_name, version, target, store=store, actor=actor))
    _record(
        store, decision, action="promotion.granted" if decision.passed else "promotion.refused", actor=actor
    )
    if not decision.passed:
        raise GateBlockedError(decision)
    return decision


def promote(
    model_name: str,
    version: str | int,
    *,
    target: str,
    store: ReviewStore,
    actor: str,
    client: Any = None,
) -> GateDecision | None:
    """Set the alias or stage if the gate passes (recorded either way); :class:`GateBlockedError` if not.

    In team mode the change is asked of the server, whose guard decides and records it; ``client``
    (an ``MlflowClient`` by default) is what asks, so the pages ask MLflow's REST API as their user.
    """
    if isinstance(store, HttpReviewStore):
        return _promote_through_server(
            model_name, version, target=canonical_target(target), store=store, client=client or _client()
        )
    decision = enforce(model_name, version, target, store=store, actor=actor)
    kind, _, name = target.partition(":")
    client = _client()
    with internal_writes():
        if kind == "alias":
            client.set_registered_model_alias(model_name, name, str(version))
        else:
            client.transition_model_version_stage(model_name, str(version), name)
    return decision


def _promote_through_server(
    model_name: str, version: str | int, *, target: str, store: HttpReviewStore, client: Any
) -> GateDecision | None:
    """Ask the server for the alias or stage; a refusal comes back with the server's own decision."""
    from mlflow.exceptions import MlflowException

    from .api import server_decision

    kind, _, name = target.partition(":")
    try:
        if kind == "alias":
            client.set_registered_model_alias(model_name, name, str(version))
        else:
            client.transition_model_version_stage(model_name, str(version), name)
    except MlflowException as exc:
        if exc.error_code != "PERMISSION_DENIED":
            raise
        decision = server_decision(store, model_name, version, target, record=False)
        if not decision.passed:
            raise GateBlockedError(decision) from exc
        raise PermissionDeniedError(first_line(exc)) from exc
    return server_decision(store, model_name, version, target, record=False)
