"""Serving from the shell: wrap a model so that serving it routes its uncertain requests to people."""

from __future__ import annotations

import click

from .._review_options import ROUTING_STRATEGIES
from ._common import emit_json, output_format, translate_errors


@click.group()
def serve() -> None:
    """Serve models that route their uncertain requests to review queues.

    \b
    Example:
      mlflow-hitl serve wrap models:/fraud/3 --queue prod-uncertain --threshold 0.6 --budget 500/day
      mlflow models serve -m models:/<printed model id> --env-manager local
    """


@serve.command("wrap")
@click.argument("model_uri")
@click.option("--queue", required=True, help="Review queue the uncertain requests go to (made on first use).")
@click.option(
    "--strategy", type=click.Choice(list(ROUTING_STRATEGIES)), default="least-confidence", show_default=True
)
@click.option(
    "--threshold",
    type=click.FloatRange(0, 1),
    default=0.6,
    show_default=True,
    help="Route a row whose confidence under the strategy is below this.",
)
@click.option(
    "--budget",
    default="500/day",
    show_default=True,
    help="At most N routed rows per second|minute|hour|day|week; 'none' for no cap.",
)
@click.option(
    "--control-share",
    type=click.FloatRange(0, 1),
    default=0.02,
    show_default=True,
    help="Share of all rows drawn at random as controls.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the control draw.")
@click.option("--id-column", help="Input column holding a request id (a retried request is queued once).")
@click.option(
    "--raters", type=click.IntRange(min=1), default=1, show_default=True, help="Independent labels per item."
)
@click.option("--blind", is_flag=True, help="Never show reviewers the model's prediction.")
@click.option("--name", default="routed_model", show_default=True, help="Name of the logged model.")
@click.option("--registered-model-name", help="Also register the routed model under this name.")
@click.option(
    "--store-uri",
    help="Review store saved in the model (no passwords). Default: decided where it is served, "
    "$MLFLOW_HITL_STORE_URI, else beside the tracking store.",
)
@click.option(
    "--spool-dir",
    help="Where routed rows wait while the store is down (default: $MLFLOW_HITL_SPOOL_DIR/<queue>, else a temp dir).",
)
@output_format
@translate_errors
def serve_wrap(
    model_uri: str,
    queue: str,
    strategy: str,
    threshold: float,
    budget: str,
    control_share: float,
    seed: int,
    id_column: str | None,
    raters: int,
    blind: bool,
    name: str,
    registered_model_name: str | None,
    store_uri: str | None,
    spool_dir: str | None,
    output_format: str,
) -> None:
    """Log MODEL_URI wrapped: it answers as before and routes uncertain rows to --queue.

    The routed model is logged to a new run (or $MLFLOW_RUN_ID's) and printed as a model URI
    for `mlflow models serve -m`.

    \b
    Example:
      mlflow-hitl serve wrap models:/fraud/3 --queue prod-uncertain --strategy least-confidence \\
        --threshold 0.6 --budget 500/day
    """
    from ..adapter.serving import log_routed_model

    info = log_routed_model(
        model_uri,
        queue=queue,
        strategy=strategy,
        threshold=threshold,
        budget=None if budget.strip().lower() == "none" else budget,
        control_share=control_share,
        seed=seed,
        id_column=id_column,
        raters_per_item=raters,
        blind=blind,
        name=name,
        registered_model_name=registered_model_name,
        store_uri=store_uri,
        spool_dir=spool_dir,
    )
    answer = {
        "model_uri": info.model_uri,
        "run_id": info.run_id,
        "queue": queue,
        "registered_model_version": getattr(info, "registered_model_version", None),
    }
    if output_format == "json":
        emit_json(answer)
        return
    click.echo(f"logged the routed model {info.model_uri} (run {info.run_id}), routing to queue {queue!r}")
    click.echo(f"serve it: mlflow models serve -m {info.model_uri} --env-manager local")
