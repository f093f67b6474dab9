"""One check's settings section: the base class, how overrides are merged in, and the numbers it records.

Each check declares its settings as a frozen dataclass deriving from :class:`Settings` in its own
module, with its range rules in :meth:`Settings.check_ranges`. :func:`resolve_section` turns ``None``,
an instance or a mapping of overrides into a checked instance, with one message per mistake.
``mlflow_hitl.config.ValidationConfig`` gathers the sections of every registered check.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

from .errors import ConfigError

__all__ = ["Settings", "resolve_section", "thresholds_of"]

S = TypeVar("S", bound="Settings")


class Settings:
    """Reprs that show only what differs from the defaults, as scikit-learn's estimators do.

    ``RANGES``: each threshold setting's valid values, inclusive (``{"max_ece": (0.0, 1.0)}``): the
    values the metric it bounds can take. A threshold outside them would never bind and silently
    switch its part of the check off, so it is refused; a gate policy's bound on the same metric is
    held to the same range (:meth:`mlflow_hitl.checks.registry.CheckSpec.metric_range`).
    """

    RANGES: ClassVar[Mapping[str, tuple[float, float]]] = {}

    def check_ranges(self) -> None:
        """Refuse values out of range, or settings that contradict each other (a section overrides this).

        Called when a config is resolved, so a bad setting fails before validate starts any check.
        """

    def __repr__(self) -> str:
        changed = []
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
            value = getattr(self, f.name)
            if value != default:
                changed.append(f"{f.name}={value!r}")
        return f"{type(self).__name__}({', '.join(changed)})"


def _coerce(check: str, name: str, default: Any, value: Any) -> Any:
    """Coerce ``value`` to the type of ``default``, refusing what does not fit."""
    where = f"config[{check!r}][{name!r}]"
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if isinstance(default, (int, float)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        if value != value or value in (float("inf"), float("-inf")):
            raise ConfigError(f"{where} must be finite, got {value!r}")
        if value < 0:
            raise ConfigError(f"{where} must not be negative, got {value!r}")
        if isinstance(default, int) and float(value) != int(value):
            raise ConfigError(f"{where} must be a whole number, got {value!r}")
        return type(default)(value)
    if isinstance(default, tuple):
        if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        items = tuple(value)
        if not items:
            raise ConfigError(f"{where} must not be empty")
        return tuple(_coerce(check, name, default[0], v) for v in items) if default else items
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {value!r}")
        return value
    return value


def _merged(check: str, base: S, overrides: Any) -> S:
    if isinstance(overrides, type(base)):
        return overrides
    if not isinstance(overrides, Mapping):
        raise ConfigError(f"config[{check!r}] must be a mapping of settings, got {type(overrides).__name__}")
    known = {f.name: getattr(base, f.name) for f in dataclasses.fields(base)}  # type: ignore[arg-type]
    changes = {}
    for name, value in overrides.items():
        if name not in known:
            raise ConfigError(
                f"unknown setting {name!r} for check {check!r}; known settings: {', '.join(sorted(known))}"
            )
        changes[name] = _coerce(check, name, known[name], value)
    return dataclasses.replace(base, **changes)  # type: ignore[type-var]


def resolve_section(check: str, section_type: type[S], config: Any, base: S | None = None) -> S:
    """``check``'s settings from ``None`` (``base``, else the defaults), an instance, or a mapping of overrides.

    Every setting is coerced to its default's type, and ``RANGES`` and the section's range rules are applied.
    """
    base = section_type() if base is None else base
    section = base if config is None else _merged(check, base, config)
    for name, (low, high) in section.RANGES.items():
        value = getattr(section, name)
        if not low <= value <= high:
            raise ConfigError(
                f"config[{check!r}][{name!r}] must be between {low:g} and {high:g}, got {value!r}: "
                "a threshold outside the values its metric can take would switch the check off"
            )
    section.check_ranges()
    return section


def thresholds_of(section: Any) -> dict[str, float]:
    """The numeric settings of a config section, as recorded in ``CheckResult.thresholds``."""
    return {
        f.name: float(getattr(section, f.name))
        for f in dataclasses.fields(section)
        if isinstance(getattr(section, f.name), (int, float))
        and not isinstance(getattr(section, f.name), bool)
    }
