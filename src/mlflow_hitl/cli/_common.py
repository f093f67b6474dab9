"""What every command shares: error translation, exit codes, the store and user options, output."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import TYPE_CHECKING, Any

import click

from .._identity import acting_user
from .._progress import Progress
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
    "progress_bar",
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


@contextmanager
def progress_bar(label: str, output_format: str = "text") -> Iterator[Progress | None]:
    """A :data:`~mlflow_hitl._progress.Progress` for the core that draws click's progress bar on stderr.

    ``None`` (no bar, nothing computed for one) when stderr is not a terminal (a pipe, a log, CI) or
    the output is JSON for a script. click's own bar rather than tqdm or rich: it is already a
    dependency, well kept, hides itself off a terminal, and one bar per long step is all we draw.
    """
    if output_format == "json" or not sys.stderr.isatty():
        yield None
        return
    bar: Any = None

    def report(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = click.progressbar(length=max(total, 1), label=label, file=sys.stderr)
        bar.length = max(total, 1)
        bar.update(done - bar.pos)

    try:
        yield report
    finally:
        if bar is not None:
            bar.render_finish()


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


def _cell(value: Any) -> str:
    """A table cell: numbers as :func:`mlflow_hitl._format.number` shows them (``500,000``, ``0.233``,
    ``n/a`` for NaN and None), everything else as text."""
    from numbers import Number

    from .._format import number

    return number(value) if value is None or isinstance(value, Number) else str(value)


def _is_number(value: Any) -> bool:
    from numbers import Number

    return isinstance(value, Number) and not isinstance(value, bool)


def table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    """An aligned table on stdout: numbers formatted alike and right-aligned, text left-aligned."""
    if not rows:
        click.echo("(none)")
        return
    cells = [{c: _cell(r.get(c, "")) for c in columns} for r in rows]
    widths = {c: max(len(c), *(len(cell[c]) for cell in cells)) for c in columns}
    numeric = {c for c in columns if all(_is_number(r.get(c)) or r.get(c) is None for r in rows)}

    def line(values: dict[str, str]) -> str:
        return "  ".join(
            values[c].rjust(widths[c]) if c in numeric else values[c].ljust(widths[c]) for c in columns
        ).rstrip()

    click.echo(line({c: c for c in columns}))
    for cell in cells:
        click.echo(line(cell))
