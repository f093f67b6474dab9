"""``mlflow-hitl validate``: the evidence pack from the shell."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from typing import Any

import click

from ._common import (
    EXIT_FAILED,
    BadInput,
    csv_list,
    emit_json,
    output_format,
    progress_bar,
    translate_errors,
    warn,
)


def _check_names(ctx: click.Context, param: click.Parameter, value: str | None) -> list[str] | None:
    """The --checks list, each name one of the registered checks (a typo is exit 2, not a skipped check)."""
    from ..checks.registry import CHECK_NAMES

    names = csv_list(value)
    unknown = [n for n in names if n not in CHECK_NAMES]
    if unknown:
        raise BadInput(
            f"unknown check(s) {', '.join(map(repr, unknown))}; choose from {', '.join(CHECK_NAMES)}"
        )
    return names or None


def _warn_if_unregistered(name: str) -> None:
    """A model validated before it is registered is fine; a typo in its name would show the default
    policy silently, so say it once."""
    from ..adapter.gate import require_registered_model
    from ..errors import NotFoundError

    try:
        require_registered_model(name)
    except NotFoundError:
        warn(f"no registered model {name!r} yet: the report shows the default policy's bounds")


class _ChecksOption(click.Option):
    """``--checks``, whose help lists the registered checks when help is shown.

    The registry is read then, not when the CLI starts: it loads pandas, which commands that never
    validate (``roles list``) need not pay for.
    """

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        from ..checks.registry import CHECK_NAMES

        self.help = f"Comma-separated subset of {', '.join(CHECK_NAMES)} (default: all)."
        return super().get_help_record(ctx)


def _print_validation(result: Any, output_format: str) -> None:
    if output_format == "json":
        emit_json(result.to_dict())
        return
    click.echo(f"status: {result.status.value}")
    width = max((len(n) for n in [*result.checks, *result.skipped]), default=5)
    for name, check in result.checks.items():
        click.echo(f"  {name:<{width}}  {check.status.value:<21}  {check.summary}")
    for name, reason in result.skipped.items():
        click.echo(f"  {name:<{width}}  {'skipped':<21}  {reason}")
    if result.run_id:
        click.echo(
            f"logged to run {result.run_id}: metrics hitl.*, artifacts hitl/ (start with hitl/report.html)"
        )


def _reader(engine: str) -> Callable[[str, str], Any]:
    """How the inputs are read: into pandas, or as Spark DataFrames of the ambient session."""
    if engine == "pandas":
        from .._io import read_table

        return read_table
    from ..spark import read_table as read_spark_table
    from ..spark import require_pyspark

    require_pyspark("--engine spark")
    return read_spark_table


@click.command()
@click.option(
    "--model-uri", required=True, help="runs:/<run_id>/model, models:/<name>/<version> or a local path."
)
@click.option(
    "--real",
    "real_path",
    required=True,
    type=click.Path(),
    help="Labelled real rows (.csv or .parquet; with --engine spark also a folder of Parquet parts or "
    "table:<name>).",
)
@click.option("--target", required=True, help="The label column.")
@click.option("--synthetic", "synthetic_path", type=click.Path(), help="The synthetic training set.")
@click.option("--production", "production_path", type=click.Path(), help="Unlabelled production rows.")
@click.option(
    "--holdout",
    "holdout_path",
    type=click.Path(),
    help="Real rows the generator never saw: the privacy baseline of the generator check.",
)
@click.option(
    "--source", "source_path", type=click.Path(), help="The rows the generator learned from (privacy check)."
)
@click.option("--sensitive", default="", help="Comma-separated sensitive columns, e.g. sex,race.")
@click.option("--features", default=None, help="Comma-separated model input columns (default: inferred).")
@click.option("--checks", "check_names", cls=_ChecksOption, default=None, callback=_check_names)
@click.option(
    "--config",
    "config_path",
    type=click.Path(),
    help="Thresholds file (TOML or JSON), e.g. [calibration] max_ece = 0.1.",
)
@click.option(
    "--engine",
    type=click.Choice(["pandas", "spark"]),
    default="pandas",
    show_default=True,
    help="spark: read every input with Spark (the active session, else a local one) and validate on "
    "the executors; an input may then be a folder of Parquet parts or table:<name> (pip install "
    "'mlflow-hitl[spark]').",
)
@click.option("--run-id", help="Log to this run (default: the run that produced the model, else a new run).")
@click.option(
    "--registered-model-name",
    help="The registered model this model is a version of: the report shows its gate policy's bounds "
    "on each check (a models:/<name>/<version> URI names it by itself).",
)
@click.option("--no-log", is_flag=True, help="Compute and print only; log nothing to MLflow.")
@click.option(
    "--log-all-metrics",
    is_flag=True,
    help="Log every metric to the run, not only each check's headline metrics (all are in result.json).",
)
@output_format
@translate_errors
def validate(
    model_uri: str,
    real_path: str,
    target: str,
    synthetic_path: str | None,
    production_path: str | None,
    holdout_path: str | None,
    source_path: str | None,
    sensitive: str,
    features: str | None,
    check_names: list[str] | None,
    config_path: str | None,
    run_id: str | None,
    registered_model_name: str | None,
    no_log: bool,
    log_all_metrics: bool,
    engine: str,
    output_format: str,
) -> None:
    """Validate a model against real data and log the evidence to its MLflow run.

    \b
    Example:
      mlflow-hitl validate --model-uri runs:/<id>/model --real real.csv --target label \\
          --synthetic syn.csv --production prod.csv --sensitive sex,race
      mlflow-hitl validate --model-uri models:/loans/3 --engine spark --real table:loans_2025 \\
          --target default --production s3://bucket/scoring_log/ --sensitive sex
    """
    from .._io import read_config_file
    from ..adapter.earlier import EarlierEvidenceWarning, earlier_message
    from ..adapter.validation import validate_model_uri

    read_table = _reader(engine)
    real = read_table(real_path, "--real")
    synthetic = read_table(synthetic_path, "--synthetic") if synthetic_path else None
    production = read_table(production_path, "--production") if production_path else None
    holdout = read_table(holdout_path, "--holdout") if holdout_path else None
    source = read_table(source_path, "--source") if source_path else None
    config = read_config_file(config_path) if config_path else None
    options: dict[str, Any] = {
        "real": real,
        "target": target,
        "synthetic": synthetic,
        "production": production,
        "holdout": holdout,
        "source": source,
        "sensitive_features": csv_list(sensitive),
        "features": csv_list(features) or None,
        "checks": check_names,
        "config": config,
        "log_all_metrics": log_all_metrics,
        "registered_model_name": registered_model_name,
    }
    if registered_model_name and not no_log:
        _warn_if_unregistered(registered_model_name)
    # A check named in --checks that the inputs cannot feed is a usage error (exit 2), not a skip.
    with progress_bar("checks", output_format) as progress, warnings.catch_warnings():
        warnings.simplefilter("ignore", EarlierEvidenceWarning)  # said below, in one line
        result = validate_model_uri(
            model_uri, run_id=run_id, log=not no_log, strict_checks=True, progress=progress, **options
        )
    if result.details.get("earlier"):
        warn(earlier_message(str(result.run_id), result.details["earlier"], list(result.checks)))
    _print_validation(result, output_format)
    sys.exit(0 if result.passed else EXIT_FAILED)
