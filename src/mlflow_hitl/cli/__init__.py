"""The ``mlflow-hitl`` command line: a thin click layer over the Python API.

Exit codes, for every command: 0 ok / all passed, 1 a check failed, needs review, lacks evidence
or an audit found tampering, 2 bad input or usage (one line on stderr, no traceback).
"""

from __future__ import annotations

import os
from typing import Any

import click

from ._dossier import dossier
from ._gate import gate, lineage, policy
from ._generator_audit import generator_audit
from ._governance import audit, roles, signoff
from ._review import consensus, labels, queue, review
from ._serve import serve
from ._tracking import DefaultStoreGuard
from ._validate import validate

__all__ = ["cli"]


class _Cli(click.Group):
    """The group, which explains (and cleans up after) a failure on MLflow's default store."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.ClickException as exc:
            guard = ctx.meta.get(_GUARD)
            if guard is not None:
                guard.failed(exc)
            raise


_GUARD = "mlflow_hitl.default_store_guard"


@click.group(cls=_Cli, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mlflow-hitl")
@click.option(
    "--tracking-uri",
    envvar="MLFLOW_TRACKING_URI",
    help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else MLflow's default, ./mlflow.db).",
)
@click.pass_context
def cli(ctx: click.Context, tracking_uri: str | None) -> None:
    """Human-in-the-loop validation of models trained on synthetic data, for MLflow."""
    # MLflow's download progress bars would bury our one-line messages on stderr.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    if tracking_uri:
        from ..adapter import use_tracking_uri

        use_tracking_uri(tracking_uri)
    else:
        ctx.meta[_GUARD] = DefaultStoreGuard()


for command in (
    validate,
    queue,
    review,
    consensus,
    labels,
    generator_audit,
    signoff,
    roles,
    audit,
    policy,
    gate,
    lineage,
    serve,
):
    cli.add_command(command)
cli.add_command(dossier)
