"""The generator audit's results from the shell: how well people told synthetic rows from real ones."""

from __future__ import annotations

import sys

import click

from .._format import number
from ._common import EXIT_FAILED, emit_json, open_store, output_format, store_option, table, translate_errors


@click.group("generator-audit")
def generator_audit() -> None:
    """People audit the synthetic-data generator: can they tell its rows from real ones, per group?

    Create the blind queue with `queue create --kind generator-audit`, label it like any queue
    (terminal, web page, Label Studio or CSV), then compute and log the results here.

    \b
    Example:
      mlflow-hitl queue create --kind generator-audit --synthetic syn.csv --real real.csv \\
          --sensitive sex,race --per-group 40 --raters 2 --run-id G --name gen-audit-1
      mlflow-hitl generator-audit results gen-audit-1
    """


@generator_audit.command("results")
@click.argument("queue_name", metavar="QUEUE")
@click.option("--run-id", help="Log into this run (default: the queue's run).")
@click.option(
    "--max-human-auc",
    type=click.FloatRange(0, 1),
    help="Fail when people tell synthetic from real better than this AUC (default 0.7).",
)
@click.option(
    "--min-group-items",
    type=click.IntRange(min=1),
    help="Labelled synthetic and real rows a group needs of each (default 10).",
)
@click.option("--no-log", is_flag=True, help="Compute and print only; log nothing.")
@store_option
@output_format
@translate_errors
def generator_audit_results(
    queue_name: str,
    run_id: str | None,
    max_human_auc: float | None,
    min_group_items: int | None,
    no_log: bool,
    store_uri: str | None,
    output_format: str,
) -> None:
    """Human AUC and accuracy (overall and per group, with intervals), flagged rows, agreement.

    Logged as the check generator_audit into the run's evidence (hitl/generator_audit/), beside what
    validate logged there, for a gate policy's [checks.generator_audit] and for sign-offs. Exits 1
    unless the audit passed (failed, needs review, or too few answers to say).

    \b
    Example:
      mlflow-hitl generator-audit results gen-audit-1 --run-id G
    """
    from ..adapter.generator_audit import generator_audit_results as compute

    config = {
        k: v
        for k, v in (("max_human_auc", max_human_auc), ("min_group_items", min_group_items))
        if v is not None
    }
    result = compute(open_store(store_uri), queue_name, run_id=run_id, config=config, log=not no_log)
    if output_format == "json":
        emit_json(result.to_dict())
    else:
        click.echo(f"generator_audit: {result.status.value}: {result.summary}")
        rows = [
            {
                "group": f"{g['feature']}={g['group']}",
                "synthetic": g["synthetic_items"],
                "real": g["real_items"],
                "human_auc": number(g["human_auc"]) if "human_auc" in g else "",
                "interval": f"{number(g['human_auc_ci_low'])}–{number(g['human_auc_ci_high'])}"
                if "human_auc" in g
                else "",
                "status": g["status"],
            }
            for g in result.details["groups"]
        ]
        if rows:
            table(rows, ["group", "synthetic", "real", "human_auc", "interval", "status"])
        for flagged in result.details["flagged"][:5]:
            tags = ", ".join(flagged["tags"]) or "no reason given"
            click.echo(
                f"  item {flagged['item']} ({flagged['truth']}): {flagged['not_realistic']} of "
                f"{flagged['answers']} said not realistic: {tags}"
            )
    if not result.passed:
        sys.exit(EXIT_FAILED)
