"""Column, group and pair names as parts of MLflow metric keys, the same way in every check.

Keys are structured ``<feature>.<group>.<metric>``, so each run of characters other than letters,
digits, ``_`` and ``-`` (a value's own dots, spaces, brackets) becomes one ``_``, and ``_`` at either
end is dropped: ``(0, 18]`` becomes ``0_18``. A missing value is the group ``missing``. Two values that sanitise to the
same part get ``_2``, ``_3``… so no metric overwrites another.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import pandas as pd

__all__ = ["MISSING_GROUP", "key_part", "unique_key_parts"]

MISSING_GROUP = "missing"
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def key_part(value: Any) -> str:
    if value is None or (not isinstance(value, (list, tuple)) and pd.isna(value)):
        return MISSING_GROUP
    return _UNSAFE.sub("_", str(value)).strip("_") or "_"


def unique_key_parts(values: Iterable[Any]) -> list[str]:
    parts: list[str] = []
    for value in values:
        base = key_part(value)
        part, n = base, 2
        while part in parts:
            part, n = f"{base}_{n}", n + 1
        parts.append(part)
    return parts
