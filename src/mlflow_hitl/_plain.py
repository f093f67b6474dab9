"""Values as plain JSON, for everything that crosses the wire between the server and its clients.

pandas and numpy hand out numpy scalars, ``NaN`` and ``NaT``, timestamps and tuples; JSON has none
of them, and a browser's ``JSON.parse`` refuses the ``NaN`` that Python's encoder writes. One
conversion on each side of ``/hitl/api/`` keeps the answers the same whichever side made them.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["plain_json"]


def plain_json(value: Any) -> Any:
    """``value`` as plain JSON: numpy scalars as Python, NaN/infinity/NaT as null, times as ISO text,
    dataclasses and mappings as objects (string keys), tuples and arrays as lists."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NaT or (isinstance(value, float) and not math.isfinite(value)):
        return None
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): plain_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [plain_json(v) for v in value]
    return value
