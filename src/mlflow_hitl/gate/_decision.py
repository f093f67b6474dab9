"""The gate decision: may this model version take this alias or stage, and if not, what is missing.

:func:`decide` is a pure function of a :class:`~mlflow_hitl.gate.Policy` and an :class:`Evidence`
that the MLflow side collects from the version's run (its ``hitl/summary.json``, re-verified artifact
hashes, metrics), the review store (sign-offs, snapshots) and the verified audit chain. It never
trusts a single tag: every requirement is recomputed from that evidence and listed, met or not, with
a detail saying why.

``evidence_hash`` is the sha256 of the canonical JSON of the decision without it: what was asked,
the identity of every piece of evidence (run, summary sha256, the evidence registration's digest, the
version's and the evaluated model's digests, artifact problems, a hash of the metrics, sign-off audit
records, snapshots, audit head, policy hash) and every requirement. It holds
no wall-clock time, so the same evidence always hashes the same and a stored decision can be
re-checked with :func:`decision_hash`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from fnmatch import fnmatchcase
from types import MappingProxyType
from typing import Any

from .._format import MISSING, number
from .._hashing import canonical_json, sha256_hex
from ..errors import InputError
from ._policy import CheckRule, Policy, SignoffRule, policy_hash

__all__ = [
    "Evidence",
    "GateDecision",
    "Requirement",
    "bound_requirements",
    "decide",
    "decision_hash",
    "is_protected",
]

_SIGNOFF_KEYS = ("run_id", "check_name", "user", "role", "decision", "audit_seq")
_SNAPSHOT_KEYS = ("id", "queue", "n_items")
_HASHED = ("model_name", "version", "target", "passed", "policy_hash", "requirements", "evidence")
_NEVER_ACCEPTED = "insufficient_evidence"


def _parse_target(target: Any) -> tuple[str, str]:
    kind, _, name = target.partition(":") if isinstance(target, str) else ("", "", "")
    if kind not in ("alias", "stage") or not name:
        raise InputError(f"target {target!r} must be 'alias:<name>' or 'stage:<name>', e.g. 'alias:champion'")
    return kind, name


def is_protected(policy: Policy, target: str) -> bool:
    """Whether ``target`` (``alias:champion``, ``stage:Production``) needs the gate under ``policy``.

    Stage names ignore case, as MLflow's do. Aliases are compared ignoring case too, although MLflow
    keeps their case: ``Champion`` (or `` champion``) must not slip past a rule written for
    ``champion`` (and some database collations would resolve one to the other).
    """
    kind, name = _parse_target(target)
    protected = policy.protect_aliases if kind == "alias" else policy.protect_stages
    return name.strip().casefold() in {p.strip().casefold() for p in protected}


def _float(value: Any, what: str) -> float:
    if isinstance(value, bool):
        raise InputError(f"{what} must be a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{what} must be a number, got {value!r}") from exc


def _alpha(value: Any, what: str) -> float | None:
    if value is None:
        return None
    alpha = _float(value, what)
    return alpha if math.isfinite(alpha) else None  # a DataFrame's missing value arrives as NaN


def _rows(rows: Any, keys: tuple[str, ...], what: str, source: str) -> tuple[Mapping[str, Any], ...]:
    out = []
    for index, row in enumerate(rows or ()):
        if not isinstance(row, Mapping):
            raise InputError(
                f"{what}[{index}] must be a mapping (a row of {source}), got {type(row).__name__}"
            )
        missing = [k for k in keys if k not in row]
        if missing:
            raise InputError(f"{what}[{index}] lacks {', '.join(missing)}; pass the rows of {source}")
        out.append(MappingProxyType(dict(row)))
    return tuple(out)


@dataclass(frozen=True, kw_only=True)
class Evidence:
    """Everything :func:`decide` looks at, collected by the MLflow side for one promotion request.

    Every piece defaults to *absent*, and absent evidence never meets a requirement: no summary, no
    artifact check (``artifact_problems=None``), no audit verification, no sign-offs all leave their
    requirements unmet.

    - ``target``: ``alias:<name>`` or ``stage:<name>``; ``actor``: who asks to promote (``None`` for a
      plain check, which skips ``duties.promoter``).
    - ``run_id``: the run the evidence was read from; ``version_run_id``: the run the model version was
      created from; ``run_author``: that run's user (the model's author).
    - ``authors``: every recorded author of the run and the version (their authenticated creators, the
      evidence's registrants); ``None``: just ``run_author``. ``author_problem``: why none is known.
    - ``registration``: the evidence registration in force, from the audit chain: ``{"seq", "digest",
      "summary_sha256", "model_sha256", "model_problem"}``; ``evidence_changes``: what differs between
      the run's ``hitl/`` files and it (``()`` = nothing, ``None`` = not compared).
    - ``model_sha256``: the content digest of the version's actual model files; ``model_problem``: why
      they could not be read.
    - ``summary``: ``hitl/summary.json`` as logged; ``summary_sha256``: its file's sha256.
    - ``artifact_problems``: one line per manifest entry whose sha256 did not re-verify (``()`` = intact).
    - ``metrics``: ``{"calibration.ece": 0.03, ...}`` (``hitl.`` prefix removed). Best read from the
      manifest-verified ``hitl/<check>/result.json`` files: run metrics can be re-logged by anyone who can
      write to the run.
    - ``signoffs``: rows of ``ReviewStore.signoffs(run_id)``; rows of another run are ignored, and a row
      counts only when its ``approves`` is the registration's ``digest`` (what the signer saw).
    - ``snapshots``: ``{id, queue, n_items, krippendorff_alpha}`` for the queues of this run.
    - ``audit``: ``{"ok", "head_seq", "head_hash", "problem"}`` and optionally ``walked_from`` (the
      first event walked) from ``ReviewStore.verify_audit()``.
    """

    model_name: str
    version: str
    target: str
    run_id: str | None = None
    run_author: str | None = None
    authors: tuple[str, ...] | None = None
    author_problem: str | None = None
    version_run_id: str | None = None
    registration: Mapping[str, Any] | None = None
    evidence_changes: tuple[str, ...] | None = None
    model_sha256: str | None = None
    model_problem: str | None = None
    summary: Mapping[str, Any] | None = None
    summary_sha256: str | None = None
    artifact_problems: tuple[str, ...] | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)
    signoffs: tuple[Mapping[str, Any], ...] = ()
    snapshots: tuple[Mapping[str, Any], ...] = ()
    audit: Mapping[str, Any] | None = None
    actor: str | None = None

    def __post_init__(self) -> None:
        _parse_target(self.target)
        if not self.model_name or not isinstance(self.model_name, str):
            raise InputError(
                f"evidence.model_name must be the registered model's name, got {self.model_name!r}"
            )
        object.__setattr__(self, "version", str(self.version))
        if self.summary is not None and not isinstance(self.summary, Mapping):
            raise InputError(
                f"evidence.summary must be the parsed summary.json (a mapping) or None, got {self.summary!r}"
            )
        for name in ("artifact_problems", "evidence_changes", "authors"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, tuple(str(v) for v in value))
        if self.registration is not None:
            if not isinstance(self.registration, Mapping) or not self.registration.get("digest"):
                raise InputError("evidence.registration must be a mapping with the registration's 'digest'")
            object.__setattr__(self, "registration", MappingProxyType(dict(self.registration)))
        metrics = {str(k): _float(v, f"evidence.metrics[{k!r}]") for k, v in dict(self.metrics).items()}
        object.__setattr__(self, "metrics", MappingProxyType(metrics))
        signoffs = _rows(self.signoffs, _SIGNOFF_KEYS, "evidence.signoffs", "ReviewStore.signoffs(run_id)")
        for index, row in enumerate(signoffs):
            if row["decision"] not in ("approve", "reject"):
                raise InputError(
                    f"evidence.signoffs[{index}] decision must be 'approve' or 'reject', got {row['decision']!r}"
                )
        object.__setattr__(self, "signoffs", signoffs)
        snapshots = _rows(
            self.snapshots, _SNAPSHOT_KEYS, "evidence.snapshots", "the run's published snapshots"
        )
        object.__setattr__(self, "snapshots", snapshots)
        if self.audit is not None:
            if not isinstance(self.audit, Mapping) or not isinstance(self.audit.get("ok"), bool):
                raise InputError(
                    "evidence.audit must be a mapping with a boolean 'ok' (ReviewStore.verify_audit())"
                )
            object.__setattr__(self, "audit", MappingProxyType(dict(self.audit)))


@dataclass(frozen=True)
class Requirement:
    """One thing the gate asked for: ``name`` (``check.calibration``, ``signoff.fairness`` ...), whether it is
    ``met``, and a ``detail`` a person can act on."""

    name: str
    met: bool
    detail: str


@dataclass(frozen=True)
class GateDecision:
    """The outcome for one model version and target: ``passed`` only when every requirement is met.

    ``evidence`` is exactly what was looked at; ``evidence_hash`` covers it, the requirements and the
    outcome (no time), so :func:`decision_hash` of ``to_dict()`` gives it back.
    """

    model_name: str
    version: str
    target: str
    passed: bool
    requirements: tuple[Requirement, ...]
    policy_hash: str
    evidence: Mapping[str, Any]
    evidence_hash: str

    def unmet(self) -> list[Requirement]:
        return [r for r in self.requirements if not r.met]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data: every field, requirements as ``{name, met, detail}``."""
        return {
            "model_name": self.model_name,
            "version": self.version,
            "target": self.target,
            "passed": self.passed,
            "policy_hash": self.policy_hash,
            "requirements": [asdict(r) for r in self.requirements],
            "evidence": _plain(self.evidence),
            "evidence_hash": self.evidence_hash,
        }

    def summary(self) -> str:
        """One line: the verdict, and every unmet requirement with its reason."""
        head = f"{self.model_name} version {self.version} -> {self.target}"
        if self.passed:
            return f"{head}: allowed ({len(self.requirements)} requirement(s) met)"
        missing = "; ".join(f"{r.name}: {r.detail}" for r in self.unmet())
        return f"{head}: blocked, {len(self.unmet())} of {len(self.requirements)} requirement(s) unmet: {missing}"

    def __repr__(self) -> str:
        return (
            f"GateDecision({self.model_name!r}, version={self.version!r}, target={self.target!r}, "
            f"passed={self.passed}, unmet={[r.name for r in self.unmet()]})"
        )


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def decision_hash(record: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of a decision's ``to_dict()`` without ``evidence_hash``.

    Recompute it on a stored decision to confirm nothing in it was changed.
    """
    missing = [k for k in _HASHED if k not in record]
    if missing:
        raise InputError(f"decision record lacks {', '.join(missing)}; pass GateDecision.to_dict()")
    return sha256_hex(canonical_json({k: _plain(record[k]) for k in _HASHED}))


# -- requirements -------------------------------------------------------------------------------------


def _num(value: float) -> str:
    """A limit exactly as the policy wrote it (it is part of the requirement's name)."""
    short = f"{value:.6g}"
    return short if float(short) == value else repr(value)


def _shown(value: float, limit: float) -> str:
    """A measured value as people read numbers (:func:`mlflow_hitl._format.number`), in full where
    rounding would make it look equal to ``limit`` (``0.0496 <= 0.05``, not ``0.050 <= 0.05``)."""
    if math.isnan(value):
        return MISSING
    if value != limit and round(value, 3) == round(limit, 3):
        return _num(value)
    return number(value)


def _summary_table(summary: Mapping[str, Any] | None, key: str) -> Mapping[str, Any]:
    table = summary.get(key) if summary is not None else None
    return table if isinstance(table, Mapping) else {}


def _evidence_requirements(policy: Policy, ev: Evidence) -> list[Requirement]:
    run = f"run {ev.run_id}" if ev.run_id else "no run"
    if ev.summary is None:
        logged = Requirement(
            "evidence.logged", False, f"no hitl/summary.json in {run}: run mlflow-hitl validate on it"
        )
    else:
        sha = f"sha256 {ev.summary_sha256}" if ev.summary_sha256 else "sha256 not recorded"
        logged = Requirement("evidence.logged", True, f"hitl/summary.json in {run} ({sha})")
    out = [logged]
    if policy.require_same_version_run:
        if ev.version_run_id is None:
            same = Requirement("evidence.same_version_run", False, f"version {ev.version} has no source run")
        elif ev.run_id != ev.version_run_id:
            same = Requirement(
                "evidence.same_version_run",
                False,
                f"evidence comes from {run}, but version {ev.version} was created from run {ev.version_run_id}",
            )
        else:
            same = Requirement("evidence.same_version_run", True, f"{run} created version {ev.version}")
        out.append(same)
    manifest = _summary_table(ev.summary, "manifest")
    if ev.summary is None:
        intact = Requirement("evidence.artifacts_intact", False, "no evidence logged to verify")
    elif not manifest:
        intact = Requirement(
            "evidence.artifacts_intact", False, "summary.json has no manifest of artifact hashes"
        )
    elif ev.artifact_problems is None:
        intact = Requirement("evidence.artifacts_intact", False, "the artifacts' sha256 were not re-verified")
    elif ev.artifact_problems:
        problems = sorted(ev.artifact_problems)
        intact = Requirement(
            "evidence.artifacts_intact", False, f"{len(problems)} problem(s): {'; '.join(problems)}"
        )
    else:
        intact = Requirement(
            "evidence.artifacts_intact", True, f"all {len(manifest)} artifacts match their sha256"
        )
    out.append(intact)
    out += [_registered_requirement(ev), _model_requirement(ev)]
    return out


def _registered_requirement(ev: Evidence) -> Requirement:
    """The run's ``hitl/`` files are what was registered in the audit chain when they were logged."""
    name, reg = "evidence.registered", ev.registration
    if reg is None:
        return Requirement(
            name,
            False,
            f"no registration of the evidence of run {ev.run_id} in the audit chain: log it with mlflow-hitl validate",
        )
    changes = list(ev.evidence_changes or ())
    if ev.summary_sha256 != reg.get("summary_sha256") and not changes:
        changes.append("hitl/summary.json differs from the registered one")
    if ev.evidence_changes is None:
        return Requirement(name, False, "the evidence was not compared with its registration")
    if changes:
        return Requirement(
            name,
            False,
            f"evidence changed after registration (event {reg.get('seq')}): {'; '.join(sorted(changes))}",
        )
    return Requirement(
        name, True, f"hitl/ is as registered at event {reg.get('seq')} (digest {str(reg['digest'])[:16]})"
    )


def _model_requirement(ev: Evidence) -> Requirement:
    """The version serves the very model files the evidence was computed on."""
    name, reg = "evidence.model", ev.registration
    evaluated = None if reg is None else reg.get("model_sha256")
    if reg is None:
        return Requirement(name, False, "no evidence registration records the evaluated model")
    if evaluated is None:
        why = reg.get("model_problem") or "no digest was recorded"
        return Requirement(name, False, f"the evaluated model is unknown: {why}")
    if ev.model_sha256 is None:
        return Requirement(name, False, ev.model_problem or "model source cannot be read")
    if ev.model_sha256 != evaluated:
        return Requirement(
            name,
            False,
            f"model files differ from the evaluated model (version {ev.version}: sha256 "
            f"{ev.model_sha256[:16]}, evaluated: {str(evaluated)[:16]})",
        )
    return Requirement(
        name, True, f"version {ev.version} serves the evaluated model (sha256 {evaluated[:16]})"
    )


def _authors(ev: Evidence) -> tuple[str, ...]:
    if ev.authors is not None:
        return ev.authors
    return (ev.run_author,) if ev.run_author else ()


def _unknown_author(ev: Evidence) -> str:
    return ev.author_problem or "the run's author is unknown"


def _status_requirement(rule: CheckRule, ev: Evidence) -> Requirement:
    name = f"check.{rule.name}"
    if ev.summary is None:
        return Requirement(name, False, "no evidence logged")
    statuses = _summary_table(ev.summary, "checks")
    if rule.name not in statuses:
        skipped = _summary_table(ev.summary, "skipped")
        if rule.name in skipped:
            return Requirement(name, False, f"{rule.name} was skipped: {skipped[rule.name]}")
        logged = ", ".join(sorted(statuses)) or "none"
        return Requirement(name, False, f"{rule.name} was not run (checks logged: {logged})")
    status = statuses[rule.name]
    accepted = [s for s in rule.allow_status if s != _NEVER_ACCEPTED]
    if status not in accepted:
        return Requirement(name, False, f"status {status}; the policy accepts {', '.join(accepted)}")
    return Requirement(name, True, f"status {status} (accepted: {', '.join(accepted)})")


def _bound_requirement(
    check: str, pattern: str, limit: float, kind: str, logged: Mapping[str, float]
) -> Requirement:
    op = "<=" if kind == "max" else ">="
    name = f"check.{check}.{pattern} {op} {_num(limit)}"
    matched = {k: v for k, v in logged.items() if fnmatchcase(k, pattern)}
    if not matched:
        some = sorted(logged)
        hint = f"logged: {', '.join(some[:6])}{', ...' if len(some) > 6 else ''}" if some else "none logged"
        return Requirement(name, False, f"no logged metric matches {pattern!r} in {check} ({hint})")

    def badness(key: str) -> tuple[float, str]:  # NaN (not computable) is the worst value of all
        value = matched[key]
        return (math.inf if math.isnan(value) else value if kind == "max" else -value), key

    def meets(value: float) -> bool:
        return value <= limit if kind == "max" else value >= limit

    worst = max(matched, key=badness)
    value = matched[worst]
    failing = sum(not meets(v) for v in matched.values())
    if meets(value):
        return Requirement(
            name,
            True,
            f"worst of {len(matched)} matching: {worst} = {_shown(value, limit)} {op} {_num(limit)}",
        )
    shown = _shown(value, limit)
    share = f" ({failing} of {len(matched)} matching metrics fail)" if len(matched) > 1 else ""
    return Requirement(name, False, f"{worst} = {shown}, limit {op} {_num(limit)}{share}")


def bound_requirements(policy: Policy, check: str, metrics: Mapping[str, float]) -> list[Requirement]:
    """The policy's bounds on ``check`` judged against that check's own ``metrics`` (``{"ece": 0.03}``).

    Exactly the gate's requirements (``check.<check>.<pattern> <= <limit>``), so the evidence report
    can show, at validation time, the bounds a release will be judged by; ``[]`` when the policy
    bounds nothing in ``check``.
    """
    rule = policy.checks.get(check)
    if rule is None:
        return []
    return [
        _bound_requirement(check, pattern, limit, kind, metrics)
        for kind in ("max", "min")
        for pattern, limit in getattr(rule, kind).items()
    ]


def _check_requirements(policy: Policy, ev: Evidence) -> list[Requirement]:
    out = []
    for rule in policy.checks.values():
        prefix = f"{rule.name}."
        logged = {k[len(prefix) :]: v for k, v in ev.metrics.items() if k.startswith(prefix)}
        out += [_status_requirement(rule, ev), *bound_requirements(policy, rule.name, logged)]
    return out


def _signoff_requirement(rule: SignoffRule, policy: Policy, ev: Evidence) -> Requirement:
    name = f"signoff.{rule.check}"
    authors = set(_authors(ev))
    if policy.separate_duties and not authors:
        return Requirement(
            name, False, f"{_unknown_author(ev)}, so sign-offs cannot be kept apart from the author"
        )
    digest = None if ev.registration is None else ev.registration["digest"]
    latest: dict[str, Mapping[str, Any]] = {}
    stale = 0
    for row in ev.signoffs:
        if (row["run_id"], row["check_name"], row["role"]) != (ev.run_id, rule.check, rule.role):
            continue
        if digest is None or row.get("approves") != digest:
            stale += 1  # given for other evidence (or before any registration): it approves nothing here
            continue
        user = row["user"]
        if user not in latest or int(row["audit_seq"]) > int(latest[user]["audit_seq"]):
            latest[user] = row
    rejects = [r for _, r in sorted(latest.items()) if r["decision"] == "reject"]
    if rejects:
        return Requirement(
            name, False, "; ".join(f"rejected by {r['user']}: {r.get('note') or 'no note'}" for r in rejects)
        )
    approvers = sorted(u for u, r in latest.items() if r["decision"] == "approve")
    excluded = sorted(authors & set(approvers)) if policy.separate_duties else []
    counted = [u for u in approvers if u not in excluded]
    note = ""
    for user in excluded:
        note += f"; {user} is the model's author and cannot sign off (separation of duties)"
    if stale:
        note += f"; {stale} sign-off(s) approved other evidence than the registered one and do not count"
    if len(counted) >= rule.count:
        return Requirement(
            name,
            True,
            f"approved by {', '.join(counted)} ({rule.count} {rule.role} approval(s) needed){note}",
        )
    by = f" ({', '.join(counted)})" if counted else ""
    return Requirement(
        name, False, f"{len(counted)} of {rule.count} distinct {rule.role} approval(s){by}{note}"
    )


def _counted_snapshots(ev: Evidence) -> dict[str, Mapping[str, Any]]:
    """Per queue, the snapshot with most verified items (a later publication covers an earlier one's)."""
    best: dict[str, Mapping[str, Any]] = {}
    for snap in ev.snapshots:
        if snap.get("run_id") not in (None, ev.run_id):
            continue  # a snapshot of another run's queue says nothing about this one
        queue = str(snap["queue"])
        if queue not in best or (int(snap["n_items"]), str(snap["id"])) > (
            int(best[queue]["n_items"]),
            str(best[queue]["id"]),
        ):
            best[queue] = snap
    return dict(sorted(best.items()))


def _review_requirements(policy: Policy, ev: Evidence) -> list[Requirement]:
    counted = _counted_snapshots(ev)
    total = sum(int(s["n_items"]) for s in counted.values())
    listing = ", ".join(f"{q}: {int(s['n_items'])} in snapshot {s['id']}" for q, s in counted.items())
    found = f"{total} human-verified item(s)" + (f" ({listing})" if listing else " (no published snapshot)")
    out = [
        Requirement(
            "review.verified_items",
            total >= policy.min_verified_items,
            f"{found}; {policy.min_verified_items} required",
        )
    ]
    minimum = policy.min_krippendorff_alpha
    if minimum is not None:
        if not counted:
            out.append(
                Requirement("review.agreement", False, "no published snapshot to measure agreement on")
            )
        else:
            alphas = {
                q: _alpha(s.get("krippendorff_alpha"), f"snapshot {s['id']} krippendorff_alpha")
                for q, s in counted.items()
            }
            unmeasured = [q for q, a in alphas.items() if a is None]
            if unmeasured:
                detail = f"agreement was not measured for queue(s) {', '.join(unmeasured)}"
                out.append(Requirement("review.agreement", False, detail))
            else:
                queue = min(alphas, key=lambda q: (alphas[q], q))
                lowest = alphas[queue]
                op = ">=" if lowest >= minimum else "<"
                detail = (
                    f"lowest Krippendorff's alpha: {queue} = {_shown(lowest, minimum)} {op} {_num(minimum)}"
                )
                out.append(Requirement("review.agreement", lowest >= minimum, detail))
    return out


def _audit_requirement(ev: Evidence) -> Requirement:
    audit = ev.audit
    if audit is None:
        return Requirement("audit.intact", False, "the audit chain was not verified")
    if audit["ok"]:
        walked_from = audit.get("walked_from") or 1
        how = (
            ""
            if walked_from <= 1
            else f"; walked from seq {walked_from}, the events before it unchanged since the last full walk"
        )
        return Requirement(
            "audit.intact",
            True,
            f"chain intact up to seq {audit.get('head_seq')} (hash {audit.get('head_hash')}{how})",
        )
    at = f" at seq {audit['first_bad_seq']}" if audit.get("first_bad_seq") is not None else ""
    return Requirement(
        "audit.intact", False, f"chain broken{at}: {audit.get('problem') or 'no reason given'}"
    )


def _promoter_requirement(ev: Evidence) -> Requirement:
    authors = _authors(ev)
    if not authors:
        return Requirement(
            "duties.promoter", False, f"{_unknown_author(ev)}, so the promoter cannot be checked"
        )
    if ev.actor in authors:
        return Requirement(
            "duties.promoter",
            False,
            f"{ev.actor} is the model's author (run {ev.run_id}) and may not promote it",
        )
    return Requirement(
        "duties.promoter", True, f"{ev.actor} is not the model's author ({', '.join(authors)})"
    )


def _identity(ev: Evidence, policy_digest: str) -> dict[str, Any]:
    """Exactly which evidence was looked at: ids, hashes and the records that decide sign-offs."""
    metrics = {k: (v if math.isfinite(v) else repr(v)) for k, v in ev.metrics.items()}
    return {
        "actor": ev.actor,
        "run_id": ev.run_id,
        "version_run_id": ev.version_run_id,
        "run_author": ev.run_author,
        "authors": list(_authors(ev)),
        "author_problem": ev.author_problem,
        "summary_sha256": ev.summary_sha256,
        "registration": None
        if ev.registration is None
        else {"seq": ev.registration.get("seq"), "digest": ev.registration["digest"]},
        "evidence_changes": None if ev.evidence_changes is None else sorted(ev.evidence_changes),
        "model_sha256": ev.model_sha256,
        "model_problem": ev.model_problem,
        "evaluated_model_sha256": None if ev.registration is None else ev.registration.get("model_sha256"),
        "artifact_problems": None if ev.artifact_problems is None else sorted(ev.artifact_problems),
        "metrics_sha256": sha256_hex(canonical_json(metrics)),
        "signoffs": sorted(
            (
                {
                    "run_id": r["run_id"],
                    "check": r["check_name"],
                    "user": r["user"],
                    "role": r["role"],
                    "decision": r["decision"],
                    "note": r.get("note"),
                    "audit_seq": int(r["audit_seq"]),
                    "audit_hash": r.get("audit_hash"),
                    "approves": r.get("approves"),
                }
                for r in ev.signoffs
            ),
            key=lambda r: (r["audit_seq"], r["user"]),
        ),
        "snapshots": sorted(
            (
                {
                    "id": str(s["id"]),
                    "queue": str(s["queue"]),
                    "n_items": int(s["n_items"]),
                    "krippendorff_alpha": _alpha(s.get("krippendorff_alpha"), "krippendorff_alpha"),
                }
                for s in ev.snapshots
            ),
            key=lambda s: s["id"],
        ),
        "audit": None
        if ev.audit is None
        else {k: ev.audit.get(k) for k in ("ok", "head_seq", "head_hash", "first_bad_seq", "problem")},
        "policy_hash": policy_digest,
    }


def decide(policy: Policy, evidence: Evidence) -> GateDecision:
    """Every requirement of ``policy`` checked against ``evidence``; passed only if all are met.

    An unprotected target passes with the single requirement ``target.not_protected``. Otherwise, in
    order: ``evidence.logged``, ``evidence.same_version_run`` (when required),
    ``evidence.artifacts_intact``, ``evidence.registered`` (the files are as registered),
    ``evidence.model`` (the version's model files are the evaluated ones), per check ``check.<name>`` then ``check.<name>.<pattern> <= limit``
    (``>=`` for minima), ``signoff.<check>``, ``review.verified_items``, ``review.agreement`` (when
    set), ``audit.intact``, ``duties.promoter`` (when an actor asks and duties are separate).
    """
    digest = policy_hash(policy)
    ev = evidence
    if not is_protected(policy, ev.target):
        protected = [f"alias:{a}" for a in policy.protect_aliases] + [
            f"stage:{s}" for s in policy.protect_stages
        ]
        detail = f"{ev.target} is not protected (protected: {', '.join(protected) or 'nothing'})"
        requirements: tuple[Requirement, ...] = (Requirement("target.not_protected", True, detail),)
    else:
        found = [
            *_evidence_requirements(policy, ev),
            *_check_requirements(policy, ev),
            *(_signoff_requirement(rule, policy, ev) for rule in policy.signoffs),
            *_review_requirements(policy, ev),
            _audit_requirement(ev),
        ]
        if ev.actor is not None and policy.separate_duties:
            found.append(_promoter_requirement(ev))
        requirements = tuple(found)
    record = {
        "model_name": ev.model_name,
        "version": ev.version,
        "target": ev.target,
        "passed": all(r.met for r in requirements),
        "policy_hash": digest,
        "requirements": [asdict(r) for r in requirements],
        "evidence": _identity(ev, digest),
    }
    return GateDecision(
        model_name=ev.model_name,
        version=ev.version,
        target=ev.target,
        passed=record["passed"],
        requirements=requirements,
        policy_hash=digest,
        evidence=MappingProxyType(record["evidence"]),
        evidence_hash=decision_hash(record),
    )
