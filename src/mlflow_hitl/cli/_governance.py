"""Who may do what, who approved what, and proof that nobody rewrote the record."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from ..review import ChainVerification

from .._format import number
from .._roles import ROLES
from ._common import (
    EXIT_FAILED,
    BadInput,
    acting_user,
    emit_json,
    open_store,
    output_format,
    progress_bar,
    store_option,
    table,
    translate_errors,
    user_option,
    warn,
)

_ROLE_CHOICE = click.Choice(list(ROLES))
_PAST = {"approve": "approved", "reject": "rejected"}  # a sign-off's decision, as a sentence says it


@click.command()
@click.option("--run-id", required=True, help="The run whose check is signed off.")
@click.option(
    "--check",
    "check_name",
    required=True,
    help="The check, e.g. fairness (needs the fairness-reviewer role).",
)
@click.option("--approve/--reject", required=True)
@click.option("--note", help="Why.")
@click.option(
    "--evidence-sha256",
    metavar="DIGEST",
    help="The evidence digest you read (lineage's registration digest, or the Sign off page's): "
    "refused if the run's evidence was registered again since.",
)
@store_option
@user_option
@output_format
@translate_errors
def signoff(
    run_id: str,
    check_name: str,
    approve: bool,
    note: str | None,
    evidence_sha256: str | None,
    store_uri: str | None,
    user: str | None,
    output_format: str,
) -> None:
    """Approve or reject a check of a run, as a named person with the matching role.

    \b
    Example:
      mlflow-hitl signoff --run-id R --check fairness --approve --user dana --note "groups checked"
    """
    from ..adapter.evidence import run_authors
    from ..adapter.logging import resolve_run_id

    if resolve_run_id(run_id) is None:
        raise BadInput("--run-id is required")
    store = open_store(store_uri)
    record = store.sign_off(
        run_id=run_id,
        check=check_name,
        user=acting_user(user),
        approve=approve,
        note=note,
        evidence_sha256=evidence_sha256,
    )
    if approve and record["user"] in run_authors(store, run_id):
        warn(
            f"{record['user']} is an author of run {run_id}: a gate policy with separate duties "
            "(the default) will not count this approval"
        )
    if output_format == "json":
        emit_json(record)
    else:
        click.echo(
            f"{record['user']} ({record['role']}) {_PAST[record['decision']]} {check_name} of run {run_id} "
            f"at audit event {record['audit_seq']}"
        )


@click.group()
def roles() -> None:
    """Grant, revoke and list roles (granting needs admin; the first admin appoints themselves).

    \b
    Example:
      mlflow-hitl roles grant dana fairness-reviewer --user root
    """


@roles.command("grant")
@click.argument("member")
@click.argument("role", type=_ROLE_CHOICE)
@store_option
@user_option
@output_format
@translate_errors
def roles_grant(member: str, role: str, store_uri: str | None, user: str | None, output_format: str) -> None:
    """Give MEMBER a ROLE.

    \b
    Example:
      mlflow-hitl roles grant carol adjudicator --user root
    """
    open_store(store_uri).grant_role(member, role, actor=acting_user(user))
    _role_changed(member, role, granted=True, output_format=output_format)


def _role_changed(member: str, role: str, *, granted: bool, output_format: str) -> None:
    if output_format == "json":
        emit_json({"user": member, "role": role, "granted": granted})
    else:
        click.echo(f"{member} is {'now' if granted else 'no longer'} {role}")


@roles.command("revoke")
@click.argument("member")
@click.argument("role", type=_ROLE_CHOICE)
@store_option
@user_option
@output_format
@translate_errors
def roles_revoke(member: str, role: str, store_uri: str | None, user: str | None, output_format: str) -> None:
    """Take ROLE away from MEMBER.

    \b
    Example:
      mlflow-hitl roles revoke carol adjudicator --user root
    """
    open_store(store_uri).revoke_role(member, role, actor=acting_user(user))
    _role_changed(member, role, granted=False, output_format=output_format)


@roles.command("list")
@click.argument("member", required=False)
@store_option
@output_format
@translate_errors
def roles_list(member: str | None, store_uri: str | None, output_format: str) -> None:
    """List who holds which role.

    \b
    Example:
      mlflow-hitl roles list --format json
    """
    rows = open_store(store_uri).roles(member).to_dict(orient="records")
    if output_format == "json":
        emit_json(rows)
    else:
        table(rows, ["user", "role", "granted_by", "granted_at"])


@click.group()
def audit() -> None:
    """The tamper-evident audit trail of every human action.

    \b
    Example:
      mlflow-hitl audit verify
    """


@audit.command("verify")
@store_option
@output_format
@translate_errors
def audit_verify(store_uri: str | None, output_format: str) -> None:
    """Re-hash the whole chain; exit 1 naming the first altered, missing or reordered event.

    \b
    Example:
      mlflow-hitl audit verify --format json
    """
    store = open_store(store_uri)
    with progress_bar("audit events", output_format) as progress:
        result = store.verify_audit(progress=progress)
    if output_format == "json":
        emit_json(result.__dict__)
    elif result.ok:
        click.echo(
            f"audit chain intact: {number(result.n_events)} events, head {result.head_seq} {result.head_hash[:16]}"
        )
        click.echo(_protection(result))
    else:
        where = "" if result.first_bad_seq is None else f" at event {result.first_bad_seq}"
        click.echo(f"audit chain BROKEN{where}: {result.problem}")
    if not result.ok:
        sys.exit(EXIT_FAILED)


def _protection(result: ChainVerification) -> str:
    """What an intact result vouches for: a chain without a key can be rewritten by whoever writes the database."""
    if result.n_events and result.unkeyed_events == result.n_events:
        return (
            "not signed with an audit key: this detects naive edits only, not a rewritten chain "
            "(a team server, mlflow server --app-name hitl, keys and anchors its chain by default; "
            "here, set MLFLOW_HITL_AUDIT_KEY and MLFLOW_HITL_ANCHOR_PATH; see docs/security.md)"
        )
    keys = ", ".join(result.key_ids) or "none"
    unsigned = f"; {result.unkeyed_events} older event(s) unsigned" if result.unkeyed_events else ""
    return f"signed with audit key(s) {keys}{unsigned}; {result.anchors_checked} outside anchor(s) matched"


@audit.command("log")
@click.option("--subject", help="A subject or its prefix: queue:NAME, run:ID, user:NAME.")
@click.option("--actor", help="Only this user's actions.")
@click.option("--action", help="An action or its prefix: annotation, signoff.approve, role.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many events.")
@store_option
@output_format
@translate_errors
def audit_log(
    subject: str | None,
    actor: str | None,
    action: str | None,
    limit: int | None,
    store_uri: str | None,
    output_format: str,
) -> None:
    """Show audit events, oldest first.

    \b
    Example:
      mlflow-hitl audit log --subject queue:fraud-al-1 --actor alice
    """
    events = open_store(store_uri).audit_events(subject=subject, actor=actor, action=action, limit=limit)
    rows = events.to_dict(orient="records")
    if output_format == "json":
        emit_json([{**r, "payload": json.loads(r["payload"])} for r in rows])
    else:
        table(rows, ["seq", "time", "actor", "action", "subject", "payload"])


@audit.command("export")
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="JSONL file (default: stdout).")
@click.option("--run-id", help="Also log the export to this run as hitl/audit/audit.jsonl.")
@store_option
@translate_errors
def audit_export(output: str | None, run_id: str | None, store_uri: str | None) -> None:
    """Write every event as JSON lines (with its hashes), for archives and external verification.

    \b
    Example:
      mlflow-hitl audit export -o audit.jsonl --run-id R
    """
    events = open_store(store_uri).audit_events()
    lines = "".join(
        json.dumps({**r, "payload": json.loads(r["payload"])}, sort_keys=True, ensure_ascii=False) + "\n"
        for r in events.to_dict(orient="records")
    )
    if output:
        Path(output).write_text(lines, encoding="utf-8")
    elif not run_id:
        click.echo(lines, nl=False)
    if run_id:
        from ..adapter.logging import log_text_artifact, resolve_run_id

        resolve_run_id(run_id)
        log_text_artifact(run_id, lines, "hitl/audit/audit.jsonl")
        click.echo(
            f"logged {len(events)} events to run {run_id} at hitl/audit/audit.jsonl", err=bool(not output)
        )
