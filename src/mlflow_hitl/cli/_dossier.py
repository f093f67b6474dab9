"""The auditor's dossier from the shell: write one per model version, verify one offline later."""

from __future__ import annotations

import sys
from typing import Any

import click

from ._common import EXIT_FAILED, emit_json, open_store, output_format, store_option, translate_errors


class _WriteByDefault(click.Group):
    """``dossier MODEL_URI ...`` means ``dossier write MODEL_URI ...``: the group's own command is the common one."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["write", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_WriteByDefault, subcommand_metavar="MODEL_URI -o DIR | verify DIR")
def dossier() -> None:
    """One self-checking folder per model version for auditors: write it, verify it offline.

    `dossier MODEL_URI -o DIR` is short for `dossier write MODEL_URI -o DIR`.

    \b
    Example:
      mlflow-hitl dossier models:/fraud-model/7 -o dossier-fraud-7
      mlflow-hitl dossier verify dossier-fraud-7
    """


@dossier.command("write")
@click.argument("model_uri")
@click.option(
    "--output", "-o", required=True, type=click.Path(file_okay=False), help="Folder to write (new or empty)."
)
@click.option("--force", is_flag=True, help="Replace an earlier dossier in the folder (never other files).")
@store_option
@output_format
@translate_errors
def dossier_write(
    model_uri: str, output: str, force: bool, store_uri: str | None, output_format: str
) -> None:
    """Write the dossier of MODEL_URI (models:/NAME/VERSION) into a new folder.

    index.html to read and print, dossier.json for tools, the run's evidence files, and manifest.json
    with the sha256 of every file. Exits 1 when the evidence or the audit chain did not verify (the
    dossier is written and says what); 2 for an unknown version or one without HITL evidence.

    \b
    Example:
      mlflow-hitl dossier models:/fraud-model/7 -o dossier-fraud-7
    """
    from ..adapter.dossier import dossier as write

    written = write(model_uri, output, store=open_store(store_uri), force=force)
    if output_format == "json":
        emit_json(_plain(written))
    else:
        click.echo(f"dossier of {model_uri} written to {written.path}: {written.files} files")
        click.echo(f"manifest sha256 {written.manifest_sha256} (keep it to verify with --expect)")
        for problem in written.problems:
            click.echo(f"  did not verify: {problem}")
    if written.problems:
        sys.exit(EXIT_FAILED)


@dossier.command("verify")
@click.argument("path", type=click.Path())
@click.option("--expect", "expected", help="The manifest sha256 kept when the dossier was written.")
@output_format
@translate_errors
def dossier_verify(path: str, expected: str | None, output_format: str) -> None:
    """Re-hash every file of the dossier at PATH against its manifest; exit 1 naming what changed.

    Offline: needs neither MLflow nor the review store. Exit 2 when PATH is no dossier.

    \b
    Example:
      mlflow-hitl dossier verify dossier-fraud-7 --expect 3f2a...
    """
    from ..adapter.dossier import verify_dossier

    found = verify_dossier(path, expected_sha256=expected)
    if output_format == "json":
        emit_json({**_plain(found), "ok": found.ok})
    elif found.ok:
        click.echo(f"dossier intact: {found.files} files match manifest sha256 {found.manifest_sha256}")
    else:
        click.echo(f"dossier {path} does NOT verify:")
        for problem in found.problems():
            click.echo(f"  {problem}")
    if not found.ok:
        sys.exit(EXIT_FAILED)


def _plain(record: Any) -> dict[str, Any]:
    import dataclasses

    return {k: str(v) if k in ("path", "folder") else v for k, v in dataclasses.asdict(record).items()}
