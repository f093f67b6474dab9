"""Thresholds and settings for every check, with their defaults.

Each check declares its own section (a frozen dataclass with its range rules) in its module;
:class:`ValidationConfig` gathers one section per check of :mod:`mlflow_hitl.checks.registry`.
``validate(config=...)`` takes either a :class:`ValidationConfig` or a plain mapping
``{"calibration": {"max_ece": 0.1}}``; unknown check names, unknown settings and values of the
wrong type are refused with a message that lists what is accepted. ``docs/checks/<check>.md``
explains each default.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from ._settings import Settings, resolve_section, thresholds_of
from .checks.registry import CHECKS
from .errors import ConfigError

# The sections' classes live with their checks; they are imported from here.
AdversarialConfig = CHECKS["adversarial"].settings
CalibrationConfig = CHECKS["calibration"].settings
DriftConfig = CHECKS["drift"].settings
FairnessConfig = CHECKS["fairness"].settings
GeneratorConfig = CHECKS["generator"].settings

__all__ = [
    "AdversarialConfig",
    "CalibrationConfig",
    "DriftConfig",
    "FairnessConfig",
    "GeneratorConfig",
    "ValidationConfig",
    "check_config",
    "resolve_config",
    "thresholds_of",
]

ValidationConfig = dataclasses.make_dataclass(
    "ValidationConfig",
    [
        (name, spec.settings, dataclasses.field(default_factory=spec.settings))
        for name, spec in CHECKS.items()
    ],
    bases=(Settings,),
    frozen=True,
    repr=False,
)
ValidationConfig.__module__ = __name__
ValidationConfig.__doc__ = (
    "One settings section per registered check, named after it: ``config.calibration.max_ece``."
)


def resolve_config(config: ValidationConfig | Mapping[str, Any] | None) -> ValidationConfig:
    """Return a :class:`ValidationConfig` from ``None``, a ``ValidationConfig`` or a nested mapping."""
    if config is None:
        return ValidationConfig()
    if isinstance(config, ValidationConfig):
        for name, spec in CHECKS.items():
            resolve_section(name, spec.settings, getattr(config, name))
        return config
    if not isinstance(config, Mapping):
        raise ConfigError(f"config must be a mapping of check name to settings, got {type(config).__name__}")
    sections = {}
    for check, overrides in config.items():
        if check not in CHECKS:
            raise ConfigError(f"unknown check {check!r} in config; known checks: {', '.join(sorted(CHECKS))}")
        sections[check] = resolve_section(check, CHECKS[check].settings, overrides)
    return ValidationConfig(**sections)


def check_config(check: str, config: Any) -> Any:
    """One check's settings from ``None`` (defaults), its dataclass, or a mapping of overrides."""
    if check not in CHECKS:
        raise ConfigError(f"unknown check {check!r}; known checks: {', '.join(sorted(CHECKS))}")
    return resolve_section(check, CHECKS[check].settings, config)
