"""Reading the tables and config files users point the CLI at, with one-line errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import ConfigError, InputError, first_line

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

__all__ = ["read_config_file", "read_table", "read_text_file"]

_READERS = {".csv": pd.read_csv, ".parquet": pd.read_parquet, ".pq": pd.read_parquet}


def read_table(path: str | Path, input_name: str) -> pd.DataFrame:
    """A DataFrame from a ``.csv`` or ``.parquet`` file."""
    path = Path(path)
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise InputError(f"{input_name}: {path} is not a .csv or .parquet file")
    if not path.is_file():
        raise InputError(f"{input_name}: file {path} does not exist")
    try:
        return reader(path)
    except pd.errors.EmptyDataError as exc:
        raise InputError(f"{input_name}: {path} is empty") from exc
    except (pd.errors.ParserError, ValueError, OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{input_name}: cannot read {path}: {first_line(exc)}") from exc


def read_text_file(path: str | Path, what: str) -> str:
    """A UTF-8 text file's content; a missing, unreadable or non-UTF-8 file is one ``ConfigError`` line."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} {path} does not exist")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{what} {path} is not UTF-8 text (byte {exc.start} cannot be decoded); save it as UTF-8"
        ) from exc
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {first_line(exc)}") from exc


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Check thresholds from a TOML (``[calibration]\\nmax_ece = 0.1``) or JSON file."""
    path = Path(path)
    text = read_text_file(path, "config file")
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"config file {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a table of checks")
    return data
