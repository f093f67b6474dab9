"""The dossier's ``index.html``: what an auditor reads on screen and on paper.

Every value is escaped where it is written (a ``<script>`` in a note shows as text); numbers read as
everywhere else (:func:`mlflow_hitl._format.number`). Plots are the files copied beside the page
(``evidence/...``), so the folder is the whole record. The print styles keep A4 pages free of
sideways overflow: long hashes and paths wrap, tables take the page's width, a plot never splits.
"""

from __future__ import annotations

import html
import json
from typing import Any
from urllib.parse import quote

from .._format import number
from .lineage import PAGE_STYLE, badge, cell, table

__all__ = ["render_dossier"]

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;color:#1f2328;padding:0 1rem;line-height:1.4}
h1{margin-bottom:.2rem} .sub{color:#57606a;margin-top:0}
.badge{display:inline-block;padding:.1rem .55rem;border-radius:1rem;color:#fff;font-weight:600;font-size:.85rem}
table{border-collapse:collapse;margin:.5rem 0 1rem;width:100%} td,th{border-bottom:1px solid #d0d7de;padding:.25rem .5rem;text-align:left;vertical-align:top}
td,th,code,pre{overflow-wrap:anywhere;word-break:break-word} td.num{text-align:right;font-variant-numeric:tabular-nums}
section{border-top:2px solid #d0d7de;margin-top:1.5rem} code{background:#f6f8fa;padding:0 .2rem}
pre{white-space:pre-wrap;background:#f6f8fa;padding:.5rem;font-size:.85rem}
figure{display:inline-block;margin:.3rem;max-width:48%;vertical-align:top} img{max-width:100%;border:1px solid #d0d7de}
.problems{border:2px solid #cf222e;padding:.3rem 1rem} nav a{margin-right:.8rem}
@page{size:A4;margin:14mm}
@media print{
 body{margin:0;max-width:none;padding:0;font-size:9.5pt}
 nav{display:none} a{color:inherit;text-decoration:none}
 section{break-before:auto} h2,h3{break-after:avoid} tr,figure,pre{break-inside:avoid}
 figure{max-width:48%} .badge{print-color-adjust:exact;-webkit-print-color-adjust:exact}
}
"""

_SECTIONS = (
    ("evidence", "Evidence per check"),
    ("generator-audit", "Generator audit"),
    ("policy", "Policy and gate"),
    ("review", "Human review"),
    ("signoffs", "Sign-offs"),
    ("lineage", "Verified labels through retraining"),
    ("audit", "Audit chain"),
)


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _plain(value: Any) -> Any:
    """Lists and mappings as text for a table cell (numbers, booleans and ``None`` stay for ``_cell``)."""
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value)) or "-"
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, default=str)
    return value


def _rows(
    rows: list[dict[str, Any]], columns: list[str], *, badges: tuple[str, ...] = (), empty: str = "none"
) -> str:
    """Lineage's table (escaped, numbers formatted, statuses as badges), saying what ``none`` means here."""
    if not rows:
        return f"<p>{_e(empty)}</p>"
    return table([{c: _plain(r.get(c)) for c in columns} for r in rows], columns, badges)


def _facts(pairs: list[tuple[str, Any]]) -> str:
    return (
        "<table>"
        + "".join(f'<tr><th scope="row">{_e(k)}</th>{cell(_plain(v))}</tr>' for k, v in pairs)
        + "</table>"
    )


def _link(path: str, text: str | None = None) -> str:
    return f'<a href="{_e(quote(path))}"><code>{_e(text or path)}</code></a>'


def _agreement(stats: dict[str, Any] | None) -> dict[str, Any]:
    stats = stats or {}
    return {
        "krippendorff_alpha": stats.get("krippendorff_alpha"),
        "fleiss_kappa": stats.get("fleiss_kappa"),
        "cohen_kappa": stats.get("cohen_kappa"),
        "percent_agreement": stats.get("percent_agreement"),
    }


def _head(data: dict[str, Any], problems: list[str]) -> str:
    model, run, audit = data["model"], data["run"] or {}, data["audit"]
    registration = data.get("registration") or {}
    policy = model["policy"]
    facts = [
        ("model version", f"{model['name']} version {model['version']}"),
        ("source", model["source"]),
        ("model id", model["model_id"]),
        ("aliases / stage", f"{', '.join(model['aliases']) or '-'} / {model['stage']}"),
        ("run", run.get("run_id")),
        ("author (as recorded)", run.get("author") or run.get("author_problem")),
        ("HITL status", run.get("hitl_status")),
        (
            "policy",
            f"v{policy['version']} {policy['hash']} set by {policy['set_by']}" if policy else "default",
        ),
        (
            "evidence registered",
            registration.get("seq")
            and f"event {registration['seq']} by {registration['registered_by']} at {registration['registered_at']}",
        ),
        ("evidence digest", registration.get("digest")),
        ("model files sha256", registration.get("model_sha256")),
        (
            "generated",
            f"{data['generated_at']} by {data['generated_by']} (mlflow-hitl {data['mlflow_hitl_version']})",
        ),
    ]
    verdict = (
        f"{badge('intact')} evidence and audit chain verified"
        if not problems
        else f"{badge('broken')} {len(problems)} problem(s) found"
    )
    listed = (
        '<div class="problems"><h3>What did not verify</h3><ul>'
        + "".join(f"<li>{_e(p)}</li>" for p in problems)
        + "</ul></div>"
        if problems
        else ""
    )
    nav = "<nav>" + "".join(f'<a href="#{k}">{_e(t)}</a>' for k, t in _SECTIONS) + "</nav>"
    chain = "intact" if audit["ok"] else "BROKEN"
    return (
        f"<h1>Dossier: {_e(model['name'])} version {_e(model['version'])}</h1>"
        f"<p class=sub>{verdict} HITL {badge(run.get('hitl_status') or 'not validated')} audit chain {_e(chain)}. "
        f"Every file of this folder is pinned in <code>manifest.json</code>: check it with "
        f"<code>mlflow-hitl dossier verify DIR</code>.</p>{nav}{listed}{_facts(facts)}"
    )


def _evidence(data: dict[str, Any]) -> str:
    parts = [
        f"<section id=evidence><h2>Evidence per check</h2><p>The run's evidence as logged: "
        f"{_link('evidence/report.html', 'evidence/report.html')} (its own report page), "
        f"{_link('evidence/summary.json')} (status per check and the sha256 of every file).</p>"
    ]
    validated = [{"data": role, **d} for role, d in ((data["run"] or {}).get("validated_on") or {}).items()]
    parts.append(_rows(validated, ["data", "rows", "fingerprint"], empty="no data fingerprints recorded"))
    for check in data["checks"]:
        metrics = "".join(
            f"<tr><td><code>{_e(k)}</code></td><td class=num>{_e(number(v))}</td></tr>"
            for k, v in check["key_metrics"].items()
        )
        thresholds = ", ".join(f"{k} = {number(v)}" for k, v in check["thresholds"].items()) or "none"
        plots = "".join(
            f'<figure><img alt="{_e(p)}" src="{_e(quote(p))}"><figcaption>{_e(p)}</figcaption></figure>'
            for p in check["plots"]
        )
        files = ", ".join(_link(f) for f in check["files"])
        parts.append(
            f'<h3 id="check-{_e(check["name"])}">{_e(check["name"])} {badge(check["status"])}</h3>'
            f"<p>{_e(check['summary'])}</p>"
            f"<table><tr><th>key metric</th><th>value</th></tr>{metrics}</table>"
            f"<p class=sub>Thresholds: {_e(thresholds)}. Files: {files or 'none'}</p>{plots}"
        )
    skipped = [{"check": k, "reason": v} for k, v in data["skipped_checks"].items()]
    if skipped:
        parts.append("<h3>Skipped</h3>" + _rows(skipped, ["check", "reason"]))
    parts.append("<h3>Datasets the run logged</h3>")
    parts.append(_rows(data["datasets"], ["name", "context", "digest", "source_type", "source"]))
    return "".join(parts) + "</section>"


def _generator_audit(data: dict[str, Any]) -> str:
    found = [c for c in data["checks"] if c["name"] == "generator_audit"]
    text = (
        f'People audited the generator: see <a href="#check-generator_audit">generator_audit</a> '
        f"({_e(found[0]['status'])})."
        if found
        else "no generator audit recorded"
    )
    return f"<section id=generator-audit><h2>Generator audit</h2><p>{text}</p></section>"


def _policy(data: dict[str, Any]) -> str:
    now = []
    for decision in data["gate_now"]:
        verdict = badge("passed" if decision["passed"] else "blocked")
        now.append(
            f"<h4>{_e(decision['target'])} {verdict}</h4>"
            + _rows(decision["requirements"], ["name", "met", "detail"], badges=("met",))
        )
    recorded = [
        {
            **g,
            "outcome": "passed" if g.get("passed") else "blocked",
            "anchored": g["seq"] in data["anchors"]["gate_events_anchored"],
        }
        for g in data["gate_decisions"]
    ]
    return (
        "<section id=policy><h2>Policy and gate</h2>"
        f"<pre>{_e(data['policy_text'])}</pre>"
        "<h3>The gate now, per protected target</h3>"
        "<p class=sub>Decided from the evidence when this dossier was written (not recorded).</p>"
        + ("".join(now) or "<p>the policy protects no target</p>")
        + "<h3>Every recorded gate decision</h3>"
        + _rows(
            recorded,
            ["seq", "time", "action", "target", "actor", "outcome", "unmet", "evidence_hash", "anchored"],
            badges=("outcome",),
            empty="no gate decision recorded for this version",
        )
        + "</section>"
    )


def _review(data: dict[str, Any]) -> str:
    queues = data["queues"]
    snapshots = [
        {"queue": q["name"], **s, **_agreement(s.get("agreement"))} for q in queues for s in q["snapshots"]
    ]
    return (
        "<section id=review><h2>Human review</h2><h3>Review queues of this run</h3>"
        + _rows(
            queues,
            [
                "name",
                "strategy",
                "items",
                "raters_per_item",
                "blind",
                "labels",
                "labels_needed",
                "adjudicated",
                "created_by",
            ],
            empty="no review queue was made from this run",
        )
        + "<h3>Verified labels published, with rater agreement</h3>"
        + _rows(
            snapshots,
            [
                "queue",
                "id",
                "n_items",
                "method",
                "raters",
                "krippendorff_alpha",
                "fleiss_kappa",
                "percent_agreement",
                "published_by",
                "audit_seq",
            ],
        )
        + "</section>"
    )


def _signoffs(data: dict[str, Any]) -> str:
    return (
        "<section id=signoffs><h2>Sign-offs</h2>"
        + _rows(
            data["signoffs"],
            [
                "check_name",
                "decision",
                "user",
                "role",
                "note",
                "created_at",
                "audit_seq",
                "in_audit_chain",
                "approves_registered_evidence",
            ],
            badges=("decision", "in_audit_chain", "approves_registered_evidence"),
            empty="nobody signed off this run",
        )
        + "</section>"
    )


def _lineage(data: dict[str, Any]) -> str:
    parts = ["<section id=lineage><h2>Verified labels through retraining</h2>"]
    if not data["training_labels"]:
        parts.append("<p>this version was not trained on verified labels</p>")
    for s in data["training_labels"]:
        if s["queue"] is None:
            parts.append(f"<h3>snapshot {_e(s['id'])}</h3><p>{_e(s['problem'])}</p>")
            continue
        parts.append(
            f"<h3>snapshot {_e(s['id'])} from queue {_e(s['queue'])}</h3>"
            + _facts(
                [
                    ("verified items", s["n_items"]),
                    ("consensus method", s["method"]),
                    ("from run", s["run_id"]),
                    ("published by", f"{s['published_by']} at event {s['audit_seq']}"),
                    (
                        "raters",
                        f"{', '.join(s['raters']) or '-'} ({s['labels']} labels, {s['raters_per_item']} per item{', blind' if s['blind'] else ''})",
                    ),
                    *_agreement(s.get("agreement")).items(),
                ]
            )
            + "<h4>Adjudications</h4>"
            + _rows(s["adjudications"], ["item", "label", "user", "note"])
            + f"<h4>Sign-offs of run {_e(s['run_id'])}</h4>"
            + _rows(s["signoffs"], ["check_name", "decision", "user", "role", "note", "audit_seq"])
        )
    return "".join(parts) + "</section>"


def _audit(data: dict[str, Any]) -> str:
    audit, anchors = data["audit"], data["anchors"]
    facts = [
        (
            "verified",
            "intact" if audit["ok"] else f"BROKEN at event {audit['first_bad_seq']}: {audit['problem']}",
        ),
        ("events walked", audit["events"]),
        ("head", f"event {audit['head_seq']} {audit['head_hash']}"),
        ("signed with keys", ", ".join(audit.get("key_ids") or []) or "none"),
        ("unsigned events", audit.get("unkeyed_events")),
        ("outside anchors matched", audit.get("anchors_checked")),
        ("anchor log", anchors["log"] or anchors["note"]),
        ("anchors in the log", anchors["count"]),
        ("last anchor", anchors["last"]),
        ("gate decisions anchored", anchors["gate_events_anchored"]),
    ]
    return f"<section id=audit><h2>Audit chain</h2>{_facts(facts)}</section>"


def render_dossier(data: dict[str, Any]) -> str:
    """The page, from the dossier's data (see :func:`~mlflow_hitl.adapter.dossier.dossier`)."""
    model = data["model"]
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        f"<title>Dossier of {_e(model['name'])} version {_e(model['version'])}</title>"
        f"<style>{_STYLE}{PAGE_STYLE}</style></head><body>"
        + _head(data, data["problems"])
        + _evidence(data)
        + _generator_audit(data)
        + _policy(data)
        + _review(data)
        + _signoffs(data)
        + _lineage(data)
        + _audit(data)
        + "</body></html>\n"
    )
