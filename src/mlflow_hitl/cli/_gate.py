"""Release gates from the shell: policies per registered model, gate checks and promotions."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from ._common import (
    EXIT_FAILED,
    BadInput,
    acting_user,
    emit_json,
    json_text,
    open_store,
    output_format,
    store_option,
    translate_errors,
    user_option,
)


def model_version(uri: str) -> tuple[str, str]:
    """``models:/<name>/<version>`` as (name, version)."""
    if not uri.startswith("models:/"):
        raise BadInput(f"expected models:/<name>/<version>, got {uri!r}")
    name, _, version = uri[len("models:/") :].rpartition("/")
    if not name or not version.isdigit():
        raise BadInput(f"expected models:/<name>/<version> with a version number, got {uri!r}")
    return name, version


_NAME_COLUMN = 44


def _print_decision(decision: Any, output_format: str) -> None:
    if output_format == "json":
        emit_json(decision.to_dict())
        return
    verdict = "PASSES" if decision.passed else "BLOCKED"
    unmet = len(decision.unmet())
    counts = (
        f"{unmet} of {len(decision.requirements)} requirement(s) unmet" if unmet else "every requirement met"
    )
    verdict = click.style(verdict, fg="green" if decision.passed else "red", bold=True)
    click.echo(f"{decision.model_name} version {decision.version} → {decision.target}: {verdict} ({counts})")
    # A name column as wide as the longest name (within reason); a longer name puts its detail below it.
    width = min(max((len(r.name) for r in decision.requirements), default=0), _NAME_COLUMN)
    for requirement in decision.requirements:
        # click drops the colour when stdout is not a terminal
        mark = (
            click.style("met  ", fg="green") if requirement.met else click.style("UNMET", fg="red", bold=True)
        )
        if len(requirement.name) > width:
            click.echo(f"  {mark}  {requirement.name}\n  {'':5}  {'':{width}}  {requirement.detail}")
        else:
            click.echo(f"  {mark}  {requirement.name:<{width}}  {requirement.detail}")
    click.echo(f"evidence {decision.evidence_hash[:16]} (policy {decision.policy_hash[:12]})")


@click.group()
def policy() -> None:
    """Gate policies per registered model (TOML; setting one needs the admin role).

    \b
    Example:
      mlflow-hitl policy set fraud-model policy.toml --user root
    """


@policy.command("set")
@click.argument("model_name")
@click.argument("path", type=click.Path())
@store_option
@user_option
@output_format
@translate_errors
def policy_set(
    model_name: str, path: str, store_uri: str | None, user: str | None, output_format: str
) -> None:
    """Validate PATH and make it MODEL_NAME's gate policy (versioned and audited).

    \b
    Example:
      mlflow-hitl policy set fraud-model policy.toml --user root
    """
    from .._io import read_text_file
    from ..adapter.gate import set_policy

    file = Path(path)
    text = read_text_file(file, "policy file")
    record = set_policy(
        open_store(store_uri),
        model_name,
        text,
        actor=acting_user(user),
        source=file.name,
    )
    if output_format == "json":
        emit_json({k: v for k, v in record.items() if k != "policy"})
    else:
        click.echo(
            f"policy v{record['version']} of {model_name} set by {record['set_by']} ({record['policy_hash'][:12]})"
        )


@policy.command("show")
@click.argument("model_name")
@store_option
@translate_errors
def policy_show(model_name: str, store_uri: str | None) -> None:
    """Print the policy in force for MODEL_NAME (the strict default when none is set).

    \b
    Example:
      mlflow-hitl policy show fraud-model > policy.toml
    """
    from ..adapter.gate import policy_for
    from ..gate import policy_to_toml

    current, record = policy_for(open_store(store_uri), model_name)
    origin = f"version {record['version']}, set by {record['set_by']}" if record else "the default policy"
    click.echo(f"# gate policy of {model_name}: {origin}")
    click.echo(policy_to_toml(current), nl=False)


@click.group()
def gate() -> None:
    """Check and enforce a model version's HITL gate.

    \b
    Example:
      mlflow-hitl gate check models:/fraud-model/7 --target champion
    """


@gate.command("check")
@click.argument("model_uri")
@click.option("--target", required=True, help="An alias (champion) or a stage as stage:Production.")
@store_option
@user_option
@output_format
@translate_errors
def gate_check(
    model_uri: str, target: str, store_uri: str | None, user: str | None, output_format: str
) -> None:
    """List every requirement of the gate for MODEL_URI and TARGET, met or not; exit 1 when blocked.

    \b
    Example:
      mlflow-hitl gate check models:/fraud-model/7 --target champion
    """
    from ..adapter.gate import check_gate

    name, version = model_version(model_uri)
    target = target if target.startswith(("alias:", "stage:")) else f"alias:{target}"
    decision = check_gate(name, version, target, store=open_store(store_uri), actor=acting_user(user))
    _print_decision(decision, output_format)
    if not decision.passed:
        sys.exit(EXIT_FAILED)


@gate.command("promote")
@click.argument("model_name")
@click.argument("version")
@click.option("--alias", help="Set this alias on the version.")
@click.option("--stage", help="Move the version to this stage (deprecated in MLflow, still supported).")
@store_option
@user_option
@output_format
@translate_errors
def gate_promote(
    model_name: str,
    version: str,
    alias: str | None,
    stage: str | None,
    store_uri: str | None,
    user: str | None,
    output_format: str,
) -> None:
    """Promote VERSION of MODEL_NAME only if its gate passes; a refusal is recorded and exits 1.

    \b
    Example:
      mlflow-hitl gate promote fraud-model 7 --alias champion --user rita
    """
    from ..adapter.gate import GateBlockedError, promote, target_of

    target = target_of(alias=alias, stage=stage)
    try:
        decision = promote(
            model_name, version, target=target, store=open_store(store_uri), actor=acting_user(user)
        )
    except GateBlockedError as exc:
        _print_decision(exc.decision, output_format)
        sys.exit(EXIT_FAILED)
    if decision is None:
        click.echo(f"{target} is not protected by {model_name}'s policy; set without a gate")
    else:
        _print_decision(decision, output_format)
        click.echo(f"promoted {model_name} version {version} to {target}")


@click.command()
@click.argument("model_uri")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["tree", "json", "html"]),
    default="tree",
    show_default=True,
)
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="File to write (default: stdout).")
@store_option
@translate_errors
def lineage(model_uri: str, output_format: str, output: str | None, store_uri: str | None) -> None:
    """Trace MODEL_URI to its run, data, verified labels, raters, sign-offs and gate decisions.

    Exits 1 when the evidence or the audit chain no longer verifies.

    \b
    Example:
      mlflow-hitl lineage models:/fraud-model/7 --format html -o fraud-7.html
    """
    from ..adapter.lineage import lineage as trace
    from ..adapter.lineage import render_html, render_tree

    name, version = model_version(model_uri)
    data = trace(name, version, store=open_store(store_uri))
    if output_format == "json":
        text = json_text({k: v for k, v in data.items() if k != "_plots"})
    elif output_format == "html":
        text = render_html(data)
    else:
        text = render_tree(data)
    if output:
        Path(output).write_text(text, encoding="utf-8")
    else:
        click.echo(text, nl=not text.endswith("\n"))
    if data["evidence_problems"] or not data["audit"]["ok"]:
        sys.exit(EXIT_FAILED)
