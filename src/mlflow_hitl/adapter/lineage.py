"""Lineage for auditors: a registered model version traced to its data, labels, people and decisions.

version → run → logged model → dataset inputs (synthetic training data, real holdout, verified-label
snapshots) → review queues → raters and agreement → sign-offs → gate decisions → audit verification.
A version trained on verified labels is followed through each snapshot it consumed to the queue that
produced it, in whatever run: the raters, the adjudications and that run's sign-offs.
Rendered as a tree for the terminal, JSON for tools, or one self-contained HTML page (plots included)
that a compliance review can keep.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import json
from typing import Any

from .._format import number
from ..review import ReviewStore, agreement
from .evidence import RunEvidence, chained_signoffs, read_run_evidence, team_mode
from .gate import policy_for
from .registration import version_model_digest
from .review import VERIFIED_LABELS_CONTEXT

__all__ = ["PAGE_STYLE", "badge", "cell", "lineage", "render_body", "render_html", "render_tree", "table"]


def _datasets(run: Any) -> list[dict[str, Any]]:
    rows = []
    for item in run.inputs.dataset_inputs:
        tags = {t.key: t.value for t in item.tags}
        dataset = item.dataset
        rows.append(
            {
                "name": dataset.name,
                "digest": dataset.digest,
                "source_type": dataset.source_type,
                "source": dataset.source,
                "context": tags.get("mlflow.data.context"),
            }
        )
    return rows


def _queues(store: ReviewStore, found: RunEvidence) -> list[dict[str, Any]]:
    out = []
    for queue in store.queues():
        if queue.run_id != found.run_id:
            continue
        published = []
        for record in store.snapshots(queue.name).to_dict(orient="records"):
            meta = found.snapshot_meta.get(record["id"], {})
            published.append(
                {
                    "id": record["id"],
                    "n_items": int(record["n_items"]),
                    "method": record["method"],
                    "published_by": record["created_by"],
                    "published_at": record["created_at"],
                    "audit_seq": int(record["audit_seq"]),
                    "agreement": meta.get("agreement"),
                    "raters": [r.get("rater") for r in meta.get("rater_quality", [])],
                }
            )
        out.append(
            {
                "name": queue.name,
                "raters_per_item": queue.raters_per_item,
                "blind": queue.blind,
                "strategy": queue.strategy,
                "created_by": queue.created_by,
                **store.progress(queue.name),
                "snapshots": published,
            }
        )
    return out


def _training_labels(store: ReviewStore, datasets: list[dict[str, Any]], run_id: str) -> list[dict[str, Any]]:
    """Each verified-label snapshot the run consumed, followed to its queue and the people behind it.

    The dataset input's digest is the snapshot id; what it reaches is read from the review store, so a
    snapshot the store does not know is reported as such, never guessed. Publishing also logs a
    snapshot as an input of its queue's run: one of this run's own queues was labelled after the run
    trained, so it is among the review queues, never among what the run trained on.
    """
    consumed = [d["digest"] for d in datasets if d["context"] == VERIFIED_LABELS_CONTEXT]
    if not consumed:
        return []
    known = {r["id"]: r for r in store.snapshots().to_dict(orient="records")}
    out = []
    for snapshot_id in consumed:
        record = known.get(snapshot_id)
        if record is None:
            out.append({"id": snapshot_id, "queue": None, "problem": "unknown to the review store"})
            continue
        queue = store.queue(record["queue"])
        if queue.run_id == run_id:
            continue
        annotations = store.annotations(queue.name)
        labelled = annotations[annotations["created_at"] <= record["created_at"]]
        adjudications = store.adjudications(queue.name)
        stats = (
            None
            if labelled.empty
            else agreement(labelled[["item", "rater", "label"]], classes=list(queue.classes))
        )
        out.append(
            {
                "id": snapshot_id,
                "queue": queue.name,
                "run_id": queue.run_id,
                "n_items": int(record["n_items"]),
                "method": record["method"],
                "published_by": record["created_by"],
                "audit_seq": int(record["audit_seq"]),
                "raters_per_item": queue.raters_per_item,
                "blind": queue.blind,
                "raters": sorted(map(str, labelled["rater"].unique())),
                "labels": len(labelled),
                "agreement": None if stats is None else dataclasses.asdict(stats),
                "adjudications": [
                    {"item": int(a["item"]), "label": a["label"], "user": a["user"], "note": a["note"]}
                    for a in adjudications.to_dict(orient="records")
                ],
                "signoffs": [
                    {k: row[k] for k in ("check_name", "decision", "user", "role", "note", "audit_seq")}
                    for row in ([] if queue.run_id is None else chained_signoffs(store, queue.run_id))
                ],
            }
        )
    return out


_GATE_ACTIONS = ("gate.", "promotion.")


def _gate_events(store: ReviewStore, model_name: str, version: str) -> list[dict[str, Any]]:
    """The version's gate decisions (its other events, such as who created it, carry no target)."""
    events = store.audit_events(subject=f"model:{model_name}/{version}")
    events = events[events["action"].str.startswith(_GATE_ACTIONS)]
    return [
        {
            "seq": int(e["seq"]),
            "time": e["time"],
            "actor": e["actor"],
            "action": e["action"],
            **json.loads(e["payload"]),
        }
        for e in events.to_dict(orient="records")
    ]


def _model_facts(
    model_name: str, version: str, model_version: Any, policy_record: dict[str, Any] | None
) -> dict[str, Any]:
    """The registered version as MLflow holds it, and the policy in force for its model."""
    return {
        "name": model_name,
        "version": version,
        "source": model_version.source,
        "model_id": getattr(model_version, "model_id", None),
        "run_id": model_version.run_id,
        "aliases": list(model_version.aliases),
        "stage": model_version.current_stage,
        "policy": None
        if policy_record is None
        else {
            "version": policy_record["version"],
            "hash": policy_record["policy_hash"],
            "set_by": policy_record["set_by"],
            "set_at": policy_record["set_at"],
        },
    }


def _run_facts(run: Any, found: RunEvidence) -> dict[str, Any]:
    """The version's run: who the records name as its author, and what its evidence says."""
    summary = found.summary
    return {
        "run_id": run.info.run_id,
        "experiment_id": run.info.experiment_id,
        "author": ", ".join(found.authors) or None,
        "author_problem": found.author_problem,
        "status": run.info.status,
        "start_time": run.info.start_time,
        "hitl_status": None if summary is None else summary.get("status"),
        "checks": {} if summary is None else summary.get("checks", {}),
        "validated_on": _validated_on(summary),
    }


def _signoffs(found: RunEvidence) -> list[dict[str, Any]]:
    """Each sign-off with whether it approved the evidence registration now in force."""
    digest = None if found.registration is None else found.registration["digest"]
    return [
        {
            **{k: v for k, v in row.items() if k != "approves"},
            "approves_registered_evidence": digest is not None and row["approves"] == digest,
        }
        for row in found.signoffs
    ]


def lineage(
    model_name: str,
    version: str | int,
    *,
    store: ReviewStore,
    incremental_audit: bool = False,
    plots: bool = True,
) -> dict[str, Any]:
    """Everything an auditor follows from ``model_name`` version ``version``, as plain JSON data.

    ``incremental_audit``: verify the audit chain as the gates do (from this process's last full
    walk, see ``verify_audit``), for pages that must answer quickly; by default the whole chain.
    ``plots``: read the evidence's PNG files into ``_plots`` (base64) for the one-page HTML; the
    dossier, which copies the files beside its page, leaves them unread.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    from ..errors import NotFoundError

    client = mlflow.MlflowClient()
    version = str(version)
    try:
        model_version = client.get_model_version(model_name, version)
    except MlflowException as exc:
        raise NotFoundError(f"unknown model version {model_name!r} version {version}") from exc
    _, policy_record = policy_for(store, model_name)
    result: dict[str, Any] = {
        "model": _model_facts(model_name, version, model_version, policy_record),
        "run": None,
        "datasets": [],
        "queues": [],
        "training_labels": [],
        "signoffs": [],
        "evidence_problems": [],
        "registration": None,
    }
    run = None
    if model_version.run_id:
        try:
            run = client.get_run(model_version.run_id)
        except MlflowException:
            result["evidence_problems"].append(f"run {model_version.run_id} no longer exists")
    encoded: dict[str, str] = {}
    if run is not None:
        found = read_run_evidence(store, run, team=team_mode(), plots=plots)
        summary = found.summary
        result["run"] = _run_facts(run, found)
        result["datasets"] = _datasets(run)
        result["training_labels"] = _training_labels(store, result["datasets"], run.info.run_id)
        result["queues"] = _queues(store, found)
        if summary is None:
            result["evidence_problems"].append("no HITL evidence logged (hitl/summary.json missing)")
        else:
            result["evidence_problems"] = list(found.artifact_problems or ())
        result["registration"] = _registration(found, model_version)
        result["evidence_problems"] += result["registration"]["problems"]
        encoded = {name: base64.b64encode(data).decode() for name, data in found.plots.items()}
        result["signoffs"] = _signoffs(found)
    result["gate_decisions"] = _gate_events(store, model_name, version)
    verification = store.verify_audit(incremental=incremental_audit)
    result["audit"] = {
        "ok": verification.ok,
        "events": verification.n_events,
        "head_seq": verification.head_seq,
        "head_hash": verification.head_hash,
        "first_bad_seq": verification.first_bad_seq,
        "problem": verification.problem,
        "unkeyed_events": verification.unkeyed_events,
        "key_ids": list(verification.key_ids),
        "anchors_checked": verification.anchors_checked,
    }
    result["_plots"] = encoded
    return result


def _registration(found: RunEvidence, model_version: Any) -> dict[str, Any]:
    """The evidence registration in force and how the run's files and the version's model compare with it."""
    import mlflow

    registration = found.registration
    problems = []
    if registration is None:
        problems.append("the evidence was never registered in the audit chain")
    elif found.changes:
        problems.append(f"evidence changed after registration: {'; '.join(found.changes)}")
    model_sha256, model_problem = version_model_digest(mlflow.MlflowClient(), model_version)
    evaluated = None if registration is None else registration.get("model_sha256")
    if registration is not None and evaluated is None:
        problems.append(f"the evaluated model is unknown: {registration.get('model_problem')}")
    elif model_problem is not None:
        problems.append(model_problem)
    elif registration is not None and model_sha256 != evaluated:
        problems.append("model files differ from the evaluated model")
    return {
        "seq": None if registration is None else registration["seq"],
        "digest": None if registration is None else registration["digest"],
        "registered_by": None if registration is None else registration["actor"],
        "registered_at": None if registration is None else registration["time"],
        "model_sha256": model_sha256,
        "evaluated_model_sha256": evaluated,
        "evaluated_model_uri": None if registration is None else registration.get("model_uri"),
        "fingerprints": None if registration is None else registration.get("fingerprints"),
        "problems": problems,
    }


def _validated_on(summary: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Each input the evidence was computed on: its rows and content fingerprint (from summary.json)."""
    details = (summary or {}).get("details") or {}
    rows, prints = details.get("rows") or {}, details.get("fingerprints") or {}
    return {
        role: {"rows": rows.get(role), "fingerprint": prints.get(role)}
        for role in ("real", "synthetic", "production")
        if rows.get(role) is not None
    }


def render_tree(data: dict[str, Any]) -> str:
    """An indented outline for the terminal."""
    model, run, audit = data["model"], data["run"], data["audit"]
    policy = model["policy"]
    policy_text = f"v{policy['version']} {policy['hash'][:12]}" if policy else "default"
    header = (
        f"{model['name']} version {model['version']}  aliases={','.join(model['aliases']) or '-'}  "
        f"stage={model['stage']}  policy={policy_text}"
    )
    entries: list[list[str]] = []
    if run is None:
        entries.append(["no run: nothing to trace"])
    else:
        entries.append(_tree_run(data, run))
        datasets = [
            [f"{d['name']} [{d['context'] or '-'}] digest {d['digest']}  {_source_text(d)}"]
            for d in data["datasets"]
        ]
        entries.append([f"datasets ({len(datasets)})", *_branches(datasets)])
        entries += _tree_training_labels(data.get("training_labels", []))
        queues = []
        for q in data["queues"]:
            snapshots = [
                [
                    f"snapshot {s['id']}: {number(s['n_items'])} verified ({s['method']}), alpha "
                    f"{number((s['agreement'] or {}).get('krippendorff_alpha'))}, raters {', '.join(map(str, s['raters']))}"
                ]
                for s in q["snapshots"]
            ]
            queues.append(
                [
                    f"{q['name']}: {number(q['items'])} items × {q['raters_per_item']} raters, "
                    f"{number(q['labels'])}/{number(q['labels_needed'])} labels, {number(q['adjudicated'])} adjudicated",
                    *_branches(snapshots),
                ]
            )
        entries.append([f"review queues ({len(queues)})", *_branches(queues)])
        signoffs = []
        for s in data["signoffs"]:
            mark = "" if s["in_audit_chain"] else "  NOT IN AUDIT CHAIN"
            if not s["approves_registered_evidence"]:
                mark += "  APPROVED OTHER EVIDENCE (does not count)"
            signoffs.append(
                [
                    f"{s['check_name']}: {s['decision']} by {s['user']} ({s['role']}) at event {s['audit_seq']}{mark}"
                ]
            )
        entries.append([f"sign-offs ({len(signoffs)})", *_branches(signoffs)])
    decisions = [
        [
            f"{g['time']} {g['action']} {g['target']} by {g['actor']}: "
            f"{'passed' if g['passed'] else 'blocked: ' + ', '.join(g['unmet'])}"
        ]
        for g in data["gate_decisions"]
    ]
    entries.append([f"gate decisions ({len(decisions)})", *_branches(decisions)])
    state = "intact" if audit["ok"] else f"BROKEN at event {audit['first_bad_seq']}: {audit['problem']}"
    entries.append([f"audit chain: {state} ({audit['events']} events, head {audit['head_hash'][:16]})"])
    return "\n".join([header, *_branches(entries)]) + "\n"


def _source_text(dataset: dict[str, Any]) -> str:
    """Where a dataset came from, in a few words: its URI, or the code that logged it (MLflow records
    a frame logged from code as a JSON object of run tags, which buries the one that says which)."""
    try:
        source = json.loads(dataset["source"])
    except (TypeError, ValueError):
        return str(dataset["source"])
    if not isinstance(source, dict):
        return str(dataset["source"])
    if source.get("uri"):
        return str(source["uri"])
    code = (source.get("tags") or {}).get("mlflow.source.name")
    return f"from code: {code}" if code else str(dataset["source"])


def _branches(entries: list[list[str]]) -> list[str]:
    """Sibling entries of an outline, each ``[its line, *its own outline]``: ├─ before each, └─ before
    the last, and each entry's own lines carried on under │ (under blanks after the last)."""
    lines = []
    for index, (first, *rest) in enumerate(entries):
        last = index == len(entries) - 1
        lines.append(f"{'└─' if last else '├─'} {first}")
        lines += [f"{'   ' if last else '│  '}{line}" for line in rest]
    return lines


def _tree_run(data: dict[str, Any], run: dict[str, Any]) -> list[str]:
    """The run's entry: its checks, what it was validated on, its registration, its evidence."""
    children = [[f"{check}: {status}"] for check, status in run["checks"].items()]
    for role, data_set in run.get("validated_on", {}).items():
        fingerprint = data_set["fingerprint"]
        children.append(
            [
                f"validated on {role}: {number(data_set['rows'])} rows, "
                + (f"sha256 {fingerprint[:16]}" if fingerprint else "no fingerprint")
            ]
        )
    registration = data.get("registration") or {}
    if registration.get("seq") is not None:
        model = registration["model_sha256"]
        children.append(
            [
                f"registered at event {registration['seq']} by {registration['registered_by']} "
                f"(digest {registration['digest'][:16]}), model sha256 "
                + (model[:16] if model else "unreadable")
            ]
        )
    problems = data["evidence_problems"]
    children.append([f"evidence: {'intact' if not problems else '; '.join(problems)}"])
    return [
        f"run {run['run_id']} by {run['author']}: HITL {run['hitl_status'] or 'not validated'}",
        *_branches(children),
    ]


def _tree_training_labels(snapshots: list[dict[str, Any]]) -> list[list[str]]:
    """The verified labels the run trained on, down to the people who gave and judged them."""
    if not snapshots:
        return []
    entries = []
    for s in snapshots:
        if s["queue"] is None:
            entries.append([f"snapshot {s['id']}: {s['problem']}"])
            continue
        judges = sorted({a["user"] for a in s["adjudications"]})
        signoffs = [
            [
                f"{row['check_name']}: {row['decision']} by {row['user']} ({row['role']}) at event {row['audit_seq']}"
            ]
            for row in s["signoffs"]
        ]
        children = [
            [
                f"raters: {', '.join(s['raters']) or '-'} ({s['labels']} labels, "
                f"{s['raters_per_item']} per item{', blind' if s['blind'] else ''})"
            ],
            [f"adjudications: {len(s['adjudications'])}" + (f" by {', '.join(judges)}" if judges else "")],
            [f"sign-offs of run {s['run_id']} ({len(signoffs)})", *_branches(signoffs)],
        ]
        entries.append(
            [
                f"snapshot {s['id']}: {s['n_items']} verified ({s['method']}) from queue {s['queue']} "
                f"of run {s['run_id']}, published by {s['published_by']} at event {s['audit_seq']}",
                *_branches(children),
            ]
        )
    return [[f"trained on verified labels ({len(snapshots)})", *_branches(entries)]]


_AGREEMENT = ("percent_agreement", "cohen_kappa", "fleiss_kappa", "krippendorff_alpha", "n_items", "n_raters")
# The standalone page's own colours for the badges (the pages under /hitl/ colour them in hitl.css).
PAGE_STYLE = (
    ".badge{background:#61707d}.badge-passed,.badge-approve,.badge-intact,.badge-yes{background:#1e7b34}"
    ".badge-failed,.badge-reject,.badge-blocked,.badge-broken,.badge-no{background:#b42318}"
    ".badge-needs-review,.badge-insufficient-evidence{background:#9a6700}"
    "td,th{overflow-wrap:anywhere;vertical-align:top}table{width:100%}"
    ".tree{white-space:pre-wrap;overflow-wrap:anywhere}figure{margin:0}"
)


def badge(status: Any) -> str:
    """A status as a coloured badge: ``passed``, ``needs_review``, ``approve``, ``blocked``, yes/no ..."""
    text = number(status) if isinstance(status, bool) or status is None else str(status)
    kind = text.replace("_", "-").replace(" ", "-")
    return f'<span class="badge badge-{html.escape(kind)}">{html.escape(text.replace("_", " "))}</span>'


def cell(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool) or value is None:
        return f'<td class="num">{html.escape(number(value))}</td>'
    return f"<td>{html.escape(number(value) if isinstance(value, bool) else str(value))}</td>"


def table(rows: list[dict[str, Any]], columns: list[str], badges: tuple[str, ...] = ()) -> str:
    if not rows:
        return "<p>none</p>"
    head = "".join(f'<th scope="col">{html.escape(c)}</th>' for c in columns)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{badge(r.get(c))}</td>" if c in badges else cell(r.get(c)) for c in columns)
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _facts(data: dict[str, Any]) -> str:
    """The version, its run's verdict and checks, and the audit chain, with statuses as badges."""
    model, run, audit = data["model"], data["run"], data["audit"]
    rows = [
        ("aliases", html.escape(", ".join(model["aliases"]) or "none")),
        ("stage", html.escape(str(model["stage"] or "None"))),
    ]
    if run is not None:
        checks = " ".join(f"{html.escape(c)} {badge(status)}" for c, status in run["checks"].items())
        rows += [
            ("run", f"<code>{html.escape(run['run_id'])}</code> by {html.escape(str(run['author']))}"),
            ("HITL verdict", badge(run["hitl_status"] or "not validated")),
            ("checks", checks or "none"),
            (
                "evidence",
                badge("intact")
                if not data["evidence_problems"]
                else html.escape("; ".join(data["evidence_problems"])),
            ),
        ]
    state = "intact" if audit["ok"] else "broken"
    where = (
        ""
        if audit["ok"]
        else f" at event {number(audit['first_bad_seq'])}: {html.escape(str(audit['problem']))}"
    )
    rows.append(
        ("audit chain", f"{badge(state)}{where} ({html.escape(number(audit['events']))} events walked)")
    )
    return "<table>" + "".join(f'<tr><th scope="row">{k}</th><td>{v}</td></tr>' for k, v in rows) + "</table>"


def render_body(data: dict[str, Any]) -> str:
    """The lineage as an HTML fragment (everything escaped, no inline style or script), for the
    standalone page of :func:`render_html` and the ``/hitl/lineage`` page alike."""
    plots = "".join(
        f'<figure><img alt="{html.escape(n)}" src="data:image/png;base64,{b}"><figcaption>{html.escape(n)}</figcaption></figure>'
        for n, b in data.get("_plots", {}).items()
    )
    snapshots = [
        {"queue": q["name"], **s, "raters": ", ".join(map(str, s["raters"]))}
        for q in data["queues"]
        for s in q["snapshots"]
    ]
    agreement = [{"queue": s["queue"], "snapshot": s["id"], **(s["agreement"] or {})} for s in snapshots]
    trained_on = [
        {
            **s,
            "raters": ", ".join(s.get("raters", [])),
            "adjudications": len(s.get("adjudications", [])),
            "signoffs": "; ".join(
                f"{r['check_name']} {r['decision']} by {r['user']}" for r in s.get("signoffs", [])
            ),
        }
        for s in data.get("training_labels", [])
    ]
    gates = [{**g, "outcome": "passed" if g.get("passed") else "blocked"} for g in data["gate_decisions"]]
    return (
        f"{_facts(data)}"
        f'<h2>Outline</h2><pre class="tree">{html.escape(render_tree(data))}</pre>'
        f"<h2>Datasets</h2>{table(data['datasets'], ['name', 'context', 'digest', 'source_type', 'source'])}"
        f"<h2>Trained on verified labels</h2>{table(trained_on, ['id', 'queue', 'run_id', 'n_items', 'method', 'raters', 'adjudications', 'signoffs'])}"
        f"<h2>Review queues</h2>{table(data['queues'], ['name', 'items', 'raters_per_item', 'blind', 'labels', 'adjudicated', 'created_by'])}"
        f"<h2>Verified-label snapshots</h2>{table(snapshots, ['queue', 'id', 'n_items', 'method', 'raters', 'published_by', 'audit_seq'])}"
        f"<h2>Agreement</h2>{table(agreement, ['queue', 'snapshot', *_AGREEMENT])}"
        f"<h2>Sign-offs</h2>{table(data['signoffs'], ['check_name', 'decision', 'user', 'role', 'note', 'audit_seq', 'in_audit_chain', 'approves_registered_evidence'], ('decision', 'in_audit_chain', 'approves_registered_evidence'))}"
        f"<h2>Gate decisions</h2>{table(gates, ['seq', 'time', 'action', 'target', 'actor', 'outcome', 'evidence_hash'], ('outcome',))}"
        f"<h2>Evidence</h2>{plots or '<p>no plots logged</p>'}"
    )


def render_html(data: dict[str, Any]) -> str:
    """One self-contained page: the facts, the tree, the tables and the evidence plots."""
    from ..report import STYLE

    model = data["model"]
    return (
        "<!doctype html><html><head><meta charset=utf-8>"
        f"<title>Lineage of {html.escape(model['name'])} v{html.escape(model['version'])}</title>"
        f"<style>{STYLE}{PAGE_STYLE}</style></head><body>"
        f"<h1>Lineage: {html.escape(model['name'])} version {html.escape(model['version'])}</h1>"
        f"{render_body(data)}</body></html>"
    )
