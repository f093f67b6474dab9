"""The one-page HTML evidence report a person reads first (``hitl/report.html``).

Self-contained: plots are embedded as data URIs, so the page renders inside the MLflow UI's
artifact viewer, in a browser from a downloaded file, or attached to a compliance review.
"""

from __future__ import annotations

import base64
import html
from fnmatch import fnmatchcase

from ._result import CheckResult, Status, ValidationResult
from .checks.registry import CHECKS

__all__ = ["render_report", "render_summary_markdown"]

_COLOURS = {
    Status.PASSED: "#1a7f37",
    Status.FAILED: "#cf222e",
    Status.NEEDS_REVIEW: "#9a6700",
    Status.INSUFFICIENT_EVIDENCE: "#6e7781",
}
_MARKS = {
    Status.PASSED: "✅",
    Status.FAILED: "❌",
    Status.NEEDS_REVIEW: "⚠️",
    Status.INSUFFICIENT_EVIDENCE: "❔",
}
_REASON_CHARS = 300  # a description to read at a glance; the report has every reason
STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;color:#1f2328;padding:0 1rem}
h1{margin-bottom:.2rem} .sub{color:#57606a;margin-top:0}
.badge{display:inline-block;padding:.15rem .6rem;border-radius:1rem;color:#fff;font-weight:600;font-size:.85rem}
table{border-collapse:collapse;margin:.5rem 0 1rem} td,th{border-bottom:1px solid #d0d7de;padding:.3rem .7rem;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums} section{border-top:2px solid #d0d7de;margin-top:1.5rem}
img{max-width:100%;border:1px solid #d0d7de;margin:.3rem 0} code{background:#f6f8fa;padding:0 .2rem}
"""


def _badge(status: Status) -> str:
    return f'<span class="badge" style="background:{_COLOURS[status]}">{html.escape(status.value)}</span>'


def _number(value: float) -> str:
    if value != value:
        return "n/a"
    return f"{value:.4g}"


def _key_metrics(check: CheckResult) -> list[tuple[str, float]]:
    """The numbers shown for a check: its declared key metrics; everything else stays in its result.json."""
    spec = CHECKS.get(check.name)
    if spec is None:
        return list(check.metrics.items())
    return [(k, v) for k, v in check.metrics.items() if any(fnmatchcase(k, p) for p in spec.key_metrics)]


def _check_section(check: CheckResult) -> str:
    rows = "".join(
        f"<tr><td><code>{html.escape(k)}</code></td><td class=num>{_number(v)}</td></tr>"
        for k, v in _key_metrics(check)
    )
    thresholds = ", ".join(f"{html.escape(k)}={_number(v)}" for k, v in check.thresholds.items())
    images = "".join(
        f'<figure><img alt="{html.escape(name)}" src="data:image/png;base64,{base64.b64encode(data).decode()}">'
        f"<figcaption>{html.escape(name)}</figcaption></figure>"
        for name, data in check.artifacts.items()
        if name.endswith(".png")
    )
    others = [name for name in check.artifacts if not name.endswith(".png")]
    files = (
        "<p>Also in this folder: "
        + ", ".join(f"<code>hitl/{check.name}/{html.escape(n)}</code>" for n in others)
        + "</p>"
        if others
        else ""
    )
    return (
        f'<section id="{html.escape(check.name)}"><h2>{html.escape(check.name)} {_badge(check.status)}</h2>'
        f"<p>{html.escape(check.summary)}</p><table><tr><th>metric</th><th>value</th></tr>{rows}</table>"
        f"<p class=sub>Thresholds: {thresholds or 'none'}. Every metric: <code>hitl/{check.name}/result.json</code>.</p>"
        f"{images}{files}</section>"
    )


def render_report(result: ValidationResult) -> str:
    """The report as one HTML string."""
    overview = "".join(
        f'<tr><td><a href="#{html.escape(n)}">{html.escape(n)}</a></td><td>{_badge(c.status)}</td>'
        f"<td>{html.escape(c.summary)}</td></tr>"
        for n, c in result.checks.items()
    ) + "".join(
        f"<tr><td>{html.escape(n)}</td><td>skipped</td><td>{html.escape(reason)}</td></tr>"
        for n, reason in result.skipped.items()
    )
    details = result.details
    facts = [
        ("run", result.run_id or "not logged"),
        ("model", details.get("model", "")),
        ("features", f"{len(details.get('features', []))} ({details.get('features_source', '')})"),
        ("sensitive features", ", ".join(details.get("sensitive_features", [])) or "none"),
        ("rows", ", ".join(f"{k}={v}" for k, v in (details.get("rows") or {}).items() if v is not None)),
    ]
    fact_rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in facts)
    sections = "".join(_check_section(c) for c in result.checks.values())
    return (
        "<!doctype html><html><head><meta charset=utf-8><title>mlflow-hitl evidence report</title>"
        f"<style>{STYLE}</style></head><body>"
        f"<h1>HITL evidence report {_badge(result.status)}</h1>"
        "<p class=sub>Human-in-the-loop validation of a model trained on synthetic data. "
        "<code>insufficient_evidence</code> is never a pass.</p>"
        f"<table>{fact_rows}</table><h2>Checks</h2><table><tr><th>check</th><th>status</th><th>finding</th></tr>"
        f"{overview}</table>{sections}</body></html>"
    )


def _cell(text: str) -> str:
    """``text`` as one markdown table cell: one line, pipes escaped, at most ``_REASON_CHARS``."""
    text = " ".join(text.split()).replace("|", "\\|")
    return text if len(text) <= _REASON_CHARS else text[: _REASON_CHARS - 1].rstrip() + "…"


def render_summary_markdown(result: ValidationResult) -> str:
    """A short markdown summary for the run's description: the status of each check and its finding."""
    rows = [
        f"| {name} | {_MARKS[check.status]} {check.status.value} | {_cell(check.summary)} |"
        for name, check in result.checks.items()
    ] + [f"| {name} | skipped | {_cell(reason)} |" for name, reason in result.skipped.items()]
    counts = {}
    for check in result.checks.values():
        counts[check.status.value] = counts.get(check.status.value, 0) + 1
    tally = ", ".join(f"{n} {status}" for status, n in counts.items())
    return "\n".join(
        [
            f"**mlflow-hitl: {_MARKS[result.status]} {result.status.value}** ({tally or 'no check ran'})",
            "",
            "| check | status | finding |",
            "|---|---|---|",
            *rows,
            "",
            "The full evidence: `hitl/report.html`; every metric: `hitl/<check>/result.json`.",
        ]
    )
