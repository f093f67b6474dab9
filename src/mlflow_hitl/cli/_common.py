"""What every command shares: error translation, exit codes, the store and user options, output."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING, Any

import click

from .._identity import acting_user
from ..errors import HitlError, first_line

if TYPE_CHECKING:
    from ..review import ReviewStoreProtocol

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_FAILED",
    "BadInput",
    "acting_user",
    "csv_list",
    "emit_json",
    "json_text",
    "open_store",
    "output_format",
    "store_option",
    "table",
    "translate_errors",
    "user_option",
    "warn",
]

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


class BadInput(click.ClickException):
    """A one-line message on stderr and exit code 2."""

    exit_code = EXIT_BAD_INPUT


def translate_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn our errors and MLflow's into one-line messages with exit code 2."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except HitlError as exc:
            raise BadInput(first_line(exc)) from exc
        except Exception as exc:
            # Only a command that loaded MLflow can raise its errors: importing MLflow here to name the
            # class would cost every command, store-only ones too, about a second of start-up.
            mlflow_errors = sys.modules.get("mlflow.exceptions")
            if mlflow_errors is None or not isinstance(exc, mlflow_errors.MlflowException):
                raise
            raise BadInput(f"MLflow: {first_line(exc)}") from exc

    return wrapper


def warn(message: str) -> None:
    """One line on stderr for a request that was honoured differently than asked (clamped, not counted):
    the command still succeeds, and stdout (JSON for scripts) stays clean."""
    click.secho(f"warning: {message}", err=True, fg="yellow")


def csv_list(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def output_format(function: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--format",
        "output_format",
        type=click.Choice(["text", "json"]),
        default="text",
        show_default=True,
        help="json for scripts.",
    )(function)


def store_option(function: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--store-uri",
        envvar="MLFLOW_HITL_STORE_URI",
        help="Review store (sqlite:///hitl.db, postgresql://...). Default: $MLFLOW_HITL_STORE_URI, else beside the MLflow store.",
    )(function)


def user_option(function: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--user",
        envvar="MLFLOW_HITL_USER",
        default=None,
        help="Acting user (default: $MLFLOW_HITL_USER, else the OS user). Identification, not authentication.",
    )(function)


def open_store(store_uri: str | None) -> ReviewStoreProtocol:
    """The review store at ``store_uri`` (default: beside the MLflow store); commands use only its Protocol."""
    from ..adapter.review import open_store as open_review_store

    return open_review_store(store_uri)


def json_text(payload: Any, *, sort_keys: bool = True) -> str:
    """``payload`` as strict JSON text: NaN and infinities become ``null`` (Python's ``NaN`` is not JSON,
    and ``jq`` or a browser refuses it), numpy scalars and timestamps plain values, anything else its str."""
    from .._plain import plain_json

    return json.dumps(plain_json(payload), indent=2, sort_keys=sort_keys, default=str, allow_nan=False)


def emit_json(payload: Any) -> None:
    """What every ``--format json`` prints: :func:`json_text` on stdout."""
    click.echo(json_text(payload))


def table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    """A plain aligned table on stdout."""
    if not rows:
        click.echo("(none)")
        return
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
    click.echo("  ".join(c.ljust(widths[c]) for c in columns).rstrip())
    for row in rows:
        click.echo("  ".join(str(row.get(c, "")).ljust(widths[c]) for c in columns).rstrip())
