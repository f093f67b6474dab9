"""The one-page HTML evidence report a person reads first (``hitl/report.html``), and the short
markdown summary that becomes the run's description.

Self-contained: plots are embedded as data URIs, so the page renders inside the MLflow UI's
artifact viewer, in a browser from a downloaded file, or attached to a compliance review. A page to
hand on: it says when and by which version it was made, what model and data (fingerprints) it
judged, where each threshold came from, every finding, and the sign-offs when they are known.
Numbers read the same as everywhere else (:mod:`mlflow_hitl._format`).

Two kinds of threshold meet here, and the page keeps them apart: each check's own settings decide its
logged status (the defaults, or the config given to ``validate``), while the release gate judges the
metrics by the registered model's *policy*, which may bound them differently (the demo's policy holds
``exact_copy_excess`` to 0.02 and ``*.bias_amplification`` to 0.1). When the policies in force are
known at logging time (``policies``), every check shows the gate's bounds on it, met or not, and the
policy each came from; otherwise the header says the gate's policy was not known.
"""

from __future__ import annotations

import base64
import dataclasses
import html
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

from ._format import MISSING, number
from ._result import CheckResult, Status, ValidationResult
from .checks.registry import ALL_CHECKS
from .gate import Policy, bound_requirements

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
details summary{cursor:pointer;color:#0969da} .finding{white-space:pre-line}
"""


def _badge(status: Status) -> str:
    return f'<span class="badge" style="background:{_COLOURS[status]}">{html.escape(status.value)}</span>'


def _e(value: Any) -> str:
    return html.escape(str(value))


def _metric_rows(check: CheckResult, names: Iterable[str]) -> str:
    return "".join(
        f"<tr><td><code>{_e(k)}</code></td><td class=num>{_e(_shown(check, k))}</td></tr>" for k in names
    )


def _shown(check: CheckResult, name: str) -> str:
    """A metric as people read it: counts and yes/no flags as whole numbers, the rest to 3 decimals."""
    spec = ALL_CHECKS.get(check.name)
    value = check.metrics[name]
    if spec is not None and spec.is_count(name) and value == value:
        return number(int(value))
    return number(value)


def _threshold_sources(check: CheckResult, policies: Mapping[str, Policy]) -> list[tuple[str, Any, str]]:
    """``(setting, value, source)``: ``default`` when the value is the setting's default, else ``config``;
    plus, when a gate policy bounds the metric this setting bounds by default, that bound and its policy."""
    spec = ALL_CHECKS.get(check.name)
    defaults: dict[str, Any] = {}
    if spec is not None:
        defaults = {f.name: getattr(spec.settings(), f.name) for f in dataclasses.fields(spec.settings)}
    out = []
    for name, value in check.thresholds.items():
        default = defaults.get(name)
        same = default is not None and not isinstance(default, bool) and _equal(default, value)
        if isinstance(default, int) and not isinstance(default, bool) and float(value).is_integer():
            value = int(value)  # a row count or a seed reads as one, not as 30.000
        source = "default" if same else "config"
        gate = [] if spec is None else _gate_bounds_of(spec, name, value, check.name, policies)
        out.append((name, value, "; ".join([source, *gate])))
    return out


def _gate_bounds_of(
    spec: Any, setting: str, value: Any, check: str, policies: Mapping[str, Policy]
) -> list[str]:
    """``the gate: ece <= 0.05 (policy of ...)`` for each policy bound on a metric ``setting`` bounds by
    default whose limit differs from ``value``: the check passed by one number, the gate will judge by another."""
    out = []
    for kind, op, patterns in (("max", "<=", spec.gate_max), ("min", ">=", spec.gate_min)):
        for pattern, bounded_by in patterns.items():
            for source, policy in policies.items():
                rule = policy.checks.get(check)
                limit = None if rule is None or bounded_by != setting else getattr(rule, kind).get(pattern)
                if limit is not None and not _equal(limit, value):
                    out.append(f"the gate: {pattern} {op} {number(limit)} ({source})")
    return out


def _equal(default: Any, value: Any) -> bool:
    try:
        return float(default) == float(value)
    except (TypeError, ValueError):
        return default == value


def _gate_table(check: CheckResult, policies: Mapping[str, Policy]) -> str:
    """The release gate's bounds on ``check`` (each policy's), judged as the gate judges them."""
    prefix = f"check.{check.name}."
    rows = "".join(
        f"<tr><td><code>{_e(r.name.removeprefix(prefix))}</code></td><td>{_MARKS[_met(r.met)]}</td>"
        f"<td>{_e(r.detail)}</td><td>{_e(source)}</td></tr>"
        for source, policy in policies.items()
        for r in bound_requirements(policy, check.name, check.metrics)
    )
    if not rows:
        return ""
    return (
        f"<table><tr><th>release gate bound</th><th>met</th><th>this run</th><th>from</th></tr>{rows}</table>"
    )


def _met(met: bool) -> Status:
    return Status.PASSED if met else Status.FAILED


def _check_section(check: CheckResult, policies: Mapping[str, Policy]) -> str:
    spec = ALL_CHECKS.get(check.name)
    headline = spec.headline(check.metrics) if spec is not None else list(check.metrics)
    thresholds = "".join(
        f"<tr><td><code>{_e(k)}</code></td><td class=num>{_e(number(v))}</td><td>{_e(source)}</td></tr>"
        for k, v, source in _threshold_sources(check, policies)
    )
    images = "".join(
        f'<figure><img alt="{_e(name)}" src="data:image/png;base64,{base64.b64encode(data).decode()}">'
        f"<figcaption>{_e(name)}</figcaption></figure>"
        for name, data in check.artifacts.items()
        if name.endswith(".png")
    )
    others = [name for name in check.artifacts if not name.endswith(".png")]
    files = (
        "<p>Also in this folder: "
        + ", ".join(f"<code>hitl/{_e(check.name)}/{_e(n)}</code>" for n in others)
        + "</p>"
        if others
        else ""
    )
    return (
        f'<section id="{_e(check.name)}"><h2>{_e(check.name)} {_badge(check.status)}</h2>'
        f"<p class=finding>{_findings(check.summary)}</p>"
        f"{f'<p>{_e(line)}</p>' if (line := _computed_line(check.details)) else ''}"
        f"<table><tr><th>headline metric</th><th>value</th></tr>{_metric_rows(check, headline)}</table>"
        f"{_gate_table(check, policies)}"
        f"<details><summary>Every metric ({len(check.metrics):,}), also in "
        f"<code>hitl/{_e(check.name)}/result.json</code></summary>"
        f"<table><tr><th>metric</th><th>value</th></tr>{_metric_rows(check, check.metrics)}</table></details>"
        "<details><summary>Thresholds of this check's own verdict, and where each came from</summary>"
        f"<table><tr><th>setting</th><th>value</th><th>source</th></tr>{thresholds}</table></details>"
        f"{images}{files}</section>"
    )


def _computed_line(details: Mapping[str, Any]) -> str:
    """How a check's metrics were computed, in one sentence, from ``details["computed"]`` (the Spark path
    writes it; the pandas path computes every metric exactly on the rows it holds and writes none)."""
    computed = details.get("computed") or {}
    if not computed:
        return ""
    kinds: dict[str, list[str]] = {}
    for metric, how in computed.items():
        kinds.setdefault(how.get("how", "exact"), []).append(metric)
    parts = []
    if "exact" in kinds:
        parts.append(f"{len(kinds['exact']):,} metric(s) exact over every row")
    for metric in kinds.get("sketch", []):
        parts.append(f"{metric} from a sketch, within ±{number(computed[metric]['bound'])}")
    if "sample" in kinds:
        how = computed[kinds["sample"][0]]
        rows = ", ".join(
            f"{role} {number(n)} of {number(how['of'].get(role, n))}" for role, n in how["rows"].items()
        )
        parts.append(f"{len(kinds['sample']):,} metric(s) from a seeded sample ({rows} rows)")
    near = details.get("near_threshold") or []
    if near:
        listed = ", ".join(f"{n['metric']} (within ±{number(n['bound'])} of {n['threshold']})" for n in near)
        parts.append(f"near a threshold, so the verdict on it could differ over the exact rows: {listed}")
    return "Computed on Spark: " + "; ".join(parts) + "."


def _findings(summary: str) -> str:
    """The check's summary, with each of several findings (``a; b; c`` after the verdict) on its own line."""
    head, sep, rest = summary.partition(": ")
    parts = [p.strip() for p in rest.split("; ")] if sep else []
    if len(parts) < 2:
        return _e(summary)
    return _e(head) + ":<ul>" + "".join(f"<li>{_e(p.rstrip('.'))}</li>" for p in parts) + "</ul>"


def _thresholds_fact(policies: Mapping[str, Policy] | None) -> str:
    own = "each check's own verdict: its defaults, or the config given to validate (each check says which)"
    gate = (
        "the release gate judges by the registered model's policy, which can set other bounds "
        "(mlflow-hitl policy show <model>)"
    )
    if policies is None:
        return f"{own}; {gate}: validate with the registered model's name to show its bounds here"
    if not policies:
        return f"{own}; {gate}: the review store holding it could not be read when this was logged"
    return (
        f"{own}; the release gate's bounds in force when this was logged, shown with each check: "
        + "; ".join(policies)
    )


def _facts(
    result: ValidationResult, created: datetime, policies: Mapping[str, Policy] | None
) -> list[tuple[str, str]]:
    from . import __version__

    details = result.details
    rows = details.get("rows") or {}
    prints = details.get("fingerprints") or {}
    data = [
        f"{role}: {number(n)} rows, sha256 {prints.get(role) or MISSING}"
        for role, n in rows.items()
        if n is not None
    ]
    features = details.get("features", [])
    return [
        ("made", f"{created:%Y-%m-%d %H:%M} UTC by mlflow-hitl {__version__}"),
        ("run", result.run_id or "not logged"),
        ("model", str(details.get("model", MISSING))),
        ("model URI", str(details.get("model_uri") or "none: a model object was validated")),
        (
            "target",
            f"{details.get('target', MISSING)} (classes: {', '.join(map(str, details.get('classes', [])))})",
        ),
        (
            "features",
            f"{len(features)} from {details.get('features_source', MISSING)}: {', '.join(map(str, features))}",
        ),
        ("sensitive features", ", ".join(details.get("sensitive_features", [])) or "none"),
        ("data", "\n".join(data) or MISSING),
        ("thresholds", _thresholds_fact(policies)),
    ]


def _earlier_from(entry: Mapping[str, Any], digest: str) -> str:
    registration = entry.get("registration") or {}
    when = (
        f"registered at audit event {registration['seq']}, {str(registration.get('time', ''))[:16].replace('T', ' ')} UTC; "
        if registration.get("seq") is not None
        else ""
    )
    return f"{when}its summary.json sha256 {digest[:16]}"


def _earlier_section(earlier: Mapping[str, Any] | None) -> str:
    """Files an earlier validation of the run left that this one did not recompute (adapter/earlier.py)."""
    if not earlier:
        return ""
    rows = "".join(
        f"<tr><td>{_e(', '.join(f'{c} ({s})' for c, s in entry.get('checks', {}).items()) or MISSING)}</td>"
        f"<td>{_e(_earlier_from(entry, digest))}</td>"
        f"<td>{'<br>'.join(f'<code>hitl/{_e(f)}</code>' for f in entry.get('files', ()))}</td></tr>"
        for digest, entry in earlier.items()
    )
    return (
        "<h2>Kept from an earlier validation</h2><p class=sub>This validation did not run these checks. "
        "Their files stay in the run, pinned in <code>summary.json</code>'s manifest as that validation "
        "recorded them; the release gate judges only the checks above.</p>"
        f"<table><tr><th>checks (status then)</th><th>from</th><th>files</th></tr>{rows}</table>"
    )


def _signoff_section(signoffs: Iterable[Mapping[str, Any]] | None) -> str:
    if signoffs is None:
        return (
            "<h2>Sign-offs</h2><p class=sub>Not known when this report was written: the release page "
            "(<code>/hitl/release?model=&lt;model&gt;&amp;version=&lt;version&gt;</code>) and <code>mlflow-hitl lineage</code> "
            "show them.</p>"
        )
    rows = "".join(
        f"<tr><td>{_e(s.get('check', MISSING))}</td><td>{_e(s.get('decision', MISSING))}</td>"
        f"<td>{_e(s.get('user', MISSING))}</td><td>{_e(s.get('time', MISSING))}</td>"
        f"<td>{_e(s.get('note') or '')}</td></tr>"
        for s in signoffs
    )
    if not rows:
        return "<h2>Sign-offs</h2><p>None yet.</p>"
    return (
        "<h2>Sign-offs</h2><table><tr><th>check</th><th>decision</th><th>by</th><th>when</th><th>note</th></tr>"
        f"{rows}</table>"
    )


def render_report(
    result: ValidationResult,
    *,
    signoffs: Iterable[Mapping[str, Any]] | None = None,
    created: datetime | None = None,
    policies: Mapping[str, Policy] | None = None,
) -> str:
    """The report as one HTML string.

    ``signoffs``: the sign-offs so far (rows with ``check``, ``decision``, ``user``, ``time``,
    ``note``), when the caller knows them; ``None`` says where to find them. ``created``: when the
    report was made (now, by default). ``policies``: the gate policies in force, keyed by where each
    came from (``policy of arrests v2, set by root ...``); each check then lists their bounds on it.
    ``{}``: looked for and none known; ``None``: not looked for.
    """
    overview = "".join(
        f'<tr><td><a href="#{_e(n)}">{_e(n)}</a></td><td>{_badge(c.status)}</td>'
        f"<td class=finding>{_findings(c.summary)}</td></tr>"
        for n, c in result.checks.items()
    ) + "".join(
        f"<tr><td>{_e(n)}</td><td>skipped</td><td>{_e(reason)}</td></tr>"
        for n, reason in result.skipped.items()
    )
    facts = _facts(result, created or datetime.now(timezone.utc), policies)
    fact_rows = "".join(f"<tr><th>{_e(k)}</th><td class=finding>{_e(v)}</td></tr>" for k, v in facts)
    sections = "".join(_check_section(c, policies or {}) for c in result.checks.values())
    return (
        "<!doctype html><html><head><meta charset=utf-8><title>mlflow-hitl evidence report</title>"
        f"<style>{STYLE}</style></head><body>"
        f"<h1>HITL evidence report {_badge(result.status)}</h1>"
        "<p class=sub>Human-in-the-loop validation of a model trained on synthetic data. "
        "<code>insufficient_evidence</code> is never a pass.</p>"
        f"<table>{fact_rows}</table><h2>Checks</h2><table><tr><th>check</th><th>status</th><th>finding</th></tr>"
        f"{overview}</table>{_earlier_section(result.details.get('earlier'))}"
        f"{_signoff_section(signoffs)}{sections}</body></html>"
    )


def _cell(text: str) -> str:
    """``text`` as one markdown table cell: one line, pipes escaped, at most ``_REASON_CHARS``."""
    text = " ".join(text.split()).replace("|", "\\|")
    return text if len(text) <= _REASON_CHARS else text[: _REASON_CHARS - 1].rstrip() + "…"


def _gate_lines(result: ValidationResult, policies: Mapping[str, Policy] | None) -> list[str]:
    """One line per known gate policy: how many of its bounds this evidence meets, and the unmet ones."""
    lines = []
    for source, policy in (policies or {}).items():
        judged = [
            r
            for name, check in result.checks.items()
            for r in bound_requirements(policy, name, check.metrics)
        ]
        unmet = [f"{r.name.removeprefix('check.')}: {r.detail}" for r in judged if not r.met]
        tally = f"{len(judged) - len(unmet)} of {len(judged)} bounds met"
        lines.append(
            _cell(f"Release gate ({source}): {tally}" + (f"; unmet: {'; '.join(unmet)}" if unmet else ""))
        )
    return [*lines, ""] if lines else []


def _earlier_lines(earlier: Mapping[str, Any] | None) -> list[str]:
    checks = [f"{c} ({s})" for entry in (earlier or {}).values() for c, s in entry.get("checks", {}).items()]
    if not earlier:
        return []
    kept = ", ".join(checks) if checks else "files"
    return [
        _cell(f"Kept from an earlier validation, not judged by the gate: {kept} (see hitl/report.html)."),
        "",
    ]


def render_summary_markdown(result: ValidationResult, *, policies: Mapping[str, Policy] | None = None) -> str:
    """A short markdown summary for the run's description: the status of each check and its finding,
    and, when ``policies`` are known (see :func:`render_report`), how the gate's bounds stand."""
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
            *_gate_lines(result, policies),
            *_earlier_lines(result.details.get("earlier")),
            "The full evidence: `hitl/report.html`; every metric: `hitl/<check>/result.json`.",
        ]
    )
