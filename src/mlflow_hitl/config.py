"""Thresholds and settings for every check, with their defaults.

Each check has one frozen dataclass. ``validate(config=...)`` takes either a
:class:`ValidationConfig` or a plain mapping ``{"calibration": {"max_ece": 0.1}}``;
unknown check names, unknown settings and values of the wrong type are refused with a
message that lists what is accepted. ``docs/metrics.md`` explains each default.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError

__all__ = [
    "AdversarialConfig",
    "CalibrationConfig",
    "DriftConfig",
    "FairnessConfig",
    "GeneratorConfig",
    "ValidationConfig",
    "check_config",
    "resolve_config",
]


# The adversarial check's perturbation families (checks/_perturbations.py implements them).
PERTURBATIONS: tuple[str, ...] = ("gaussian_noise", "missingness", "category_swap", "quantization")
# Folds of the generator's classifier two-sample test; it needs a few rows of each set in every fold.
C2ST_FOLDS = 3


class _Settings:
    """Reprs that show only what differs from the defaults, as scikit-learn's estimators do."""

    def __repr__(self) -> str:
        changed = []
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
            value = getattr(self, f.name)
            if value != default:
                changed.append(f"{f.name}={value!r}")
        return f"{type(self).__name__}({', '.join(changed)})"


@dataclass(frozen=True, repr=False)
class DriftConfig(_Settings):
    """Per-column drift uses evidently's default test and threshold for the column's type and size.

    ``max_drifted_share`` (0.1): a pair whose share of drifted columns exceeds it fails. evidently's
    preset passes a dataset while up to half its columns drift; here more than one in ten drifting
    fails, and any drifted (or untestable) column at or below the share sends the check to review.
    ``min_rows`` (30): with fewer rows in either set of a pair, finding no drift is
    insufficient evidence (drift that is found still counts).
    ``report_sample_size`` (5000) and ``seed`` (0): evidently's HTML report is rendered on a seeded
    sample of at most this many rows per set; the verdicts always use every row.
    ``render_report`` (True): False skips the HTML (and evidently's cost) and keeps the PNG chart.
    """

    max_drifted_share: float = 0.1
    min_rows: int = 30
    report_sample_size: int = 5_000
    render_report: bool = True
    seed: int = 0


@dataclass(frozen=True, repr=False)
class CalibrationConfig(_Settings):
    """ECE and overconfidence error (OE) above their maxima fail the check.

    ``n_bins`` (15): equal-width bins of top-label confidence for ECE, MCE and OE, and the number
    of equal-mass bins for adaptive ECE. ``max_ece`` (0.05) and ``max_overconfidence_error``
    (0.05): overall values above them fail; a group above them (with enough rows) needs review.
    ``min_samples`` (50): fewer rows overall is insufficient evidence; a group with fewer rows
    is reported with its count and not judged.
    """

    n_bins: int = 15
    max_ece: float = 0.05
    max_overconfidence_error: float = 0.05
    min_samples: int = 50


@dataclass(frozen=True, repr=False)
class AdversarialConfig(_Settings):
    """Perturbations of real rows at increasing severity.

    Overconfidence rule: under a perturbation, at its highest severity, if accuracy fell by
    ``accuracy_drop`` and mean confidence by ``confidence_drop``, the model is overconfident
    when ``accuracy_drop - confidence_drop > max_confidence_gap`` (confidence did not follow
    accuracy down), or when OE at any severity exceeds ``max_overconfidence_error``.
    ``confident_threshold`` defines a confident prediction for ``confident_error_rate``.

    Defaults: ``perturbations`` all four (``gaussian_noise``, ``missingness``, ``category_swap``,
    ``quantization``); ``severities`` (0.1, 0.3, 0.5), each in [0, 1]: the noise sd and the
    quantization step in units of a column's robust spread, the probability a cell goes missing
    or has its category swapped; ``max_confidence_gap`` 0.05; ``max_overconfidence_error`` 0.1;
    ``confident_threshold`` 0.9; ``n_bins`` 15 (as calibration); ``max_rows`` 20,000 (a seeded
    sample of the real rows when larger); ``min_rows`` 50 (fewer rows: insufficient evidence);
    ``seed`` 0 (sampling and every perturbation draw).
    """

    perturbations: tuple[str, ...] = PERTURBATIONS
    severities: tuple[float, ...] = (0.1, 0.3, 0.5)
    max_confidence_gap: float = 0.05
    max_overconfidence_error: float = 0.1
    confident_threshold: float = 0.9
    n_bins: int = 15
    # Rows used for perturbation (seeded sample of the real set when larger).
    max_rows: int = 20_000
    min_rows: int = 50
    seed: int = 0


@dataclass(frozen=True, repr=False)
class FairnessConfig(_Settings):
    """Group disparities; a group smaller than ``min_group_size`` is insufficient evidence.

    A disparity fails only when its whole bootstrap interval lies above the maximum; a point
    estimate above the maximum with an interval that straddles it needs human review.

    - ``max_demographic_parity_difference`` (0.1), ``max_equalized_odds_difference`` (0.1):
      fairlearn's between-groups differences; ten points of selection rate (or TPR/FPR) is the
      usual "look at this" line in fairness reviews.
    - ``max_bias_amplification`` (0.05): how much more the synthetic labels' base rates may differ
      between groups than the real labels' do, before the generator is blamed.
    - ``min_group_size`` (30): fewer real rows than this, and a group's rates are too noisy to
      judge; it is excluded from the disparities and named, never silently passed.
    - ``n_bootstrap`` (200), ``confidence_level`` (0.95), ``seed`` (0): seeded bootstrap intervals
      that bound every pairwise group gap at once (a plain percentile interval of max − min is biased).
    - ``intersections`` (True): also audit the intersection of all sensitive features (``sex&colour``).
    - ``max_groups`` (50): a sensitive feature with more distinct values is refused (bin it first);
      an intersection with more observed groups is skipped and reported.
    """

    max_demographic_parity_difference: float = 0.1
    max_equalized_odds_difference: float = 0.1
    max_bias_amplification: float = 0.05
    min_group_size: int = 30
    n_bootstrap: int = 200
    confidence_level: float = 0.95
    intersections: bool = True
    max_groups: int = 50
    seed: int = 0


@dataclass(frozen=True, repr=False)
class GeneratorConfig(_Settings):
    """Realism and privacy of the synthetic set against the real set.

    ``max_c2st_auc``: a classifier telling synthetic from real with AUC above this fails
    (0.5 = indistinguishable). ``max_exact_copy_share`` / ``max_near_copy_share``: above these shares
    of synthetic rows that equal, or nearly equal, a real row the check fails. ``min_fidelity``: a mean
    per-column fidelity (1 - KS numeric, 1 - TVD categorical) below it fails. ``near_copy_quantile``:
    a synthetic row closer to a real row than this quantile of real-to-real nearest distances counts
    as a near copy. ``min_rows``: fewer rows in either set is insufficient evidence.
    ``max_rows``: rows per set in the classifier test (seeded sample). ``max_dcr_rows``: synthetic
    rows, and real rows, whose closest record is searched (seeded samples). 10,000 rows estimate a
    share of about 5 % within ±0.5 points (95 %). ``max_reference_rows``: the real rows searched
    through; a larger real set is sampled (seeded) so the check's cost does not grow with it, and the
    near-copy baseline is taken from the same sample, so the comparison stays like for like. A near
    copy of an unsampled real row goes unseen: raise it for a stricter privacy audit. Exact copies are
    always counted over every row.
    """

    max_c2st_auc: float = 0.8
    max_exact_copy_share: float = 0.01
    max_near_copy_share: float = 0.05
    min_fidelity: float = 0.8
    near_copy_quantile: float = 0.01
    min_rows: int = 50
    max_rows: int = 20_000
    max_dcr_rows: int = 10_000
    max_reference_rows: int = 100_000
    seed: int = 0


@dataclass(frozen=True, repr=False)
class ValidationConfig(_Settings):
    drift: DriftConfig = field(default_factory=DriftConfig)
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)
    adversarial: AdversarialConfig = field(default_factory=AdversarialConfig)
    fairness: FairnessConfig = field(default_factory=FairnessConfig)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)


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


def _check_calibration(cfg: CalibrationConfig) -> None:
    if cfg.n_bins < 1:
        raise ConfigError(f"n_bins must be a whole number of at least 1, got {cfg.n_bins!r}")


def _check_adversarial(cfg: AdversarialConfig) -> None:
    unknown = [p for p in cfg.perturbations if p not in PERTURBATIONS]
    if unknown:
        raise ConfigError(
            f"unknown perturbation(s) {', '.join(map(repr, unknown))} in config['adversarial']['perturbations']; "
            f"known: {', '.join(PERTURBATIONS)}"
        )
    if not cfg.severities or any(not 0.0 <= float(s) <= 1.0 for s in cfg.severities):
        raise ConfigError(
            f"config['adversarial']['severities'] must be values in [0, 1], got {list(cfg.severities)}"
        )
    if not 0.0 < cfg.confident_threshold <= 1.0:
        raise ConfigError(
            f"config['adversarial']['confident_threshold'] must be in (0, 1], got {cfg.confident_threshold}"
        )
    if cfg.n_bins < 1 or cfg.max_rows < 1:
        raise ConfigError("config['adversarial'] n_bins and max_rows must be at least 1")


def _check_fairness(cfg: FairnessConfig) -> None:
    if not 0 < cfg.confidence_level < 1:
        raise ConfigError(
            f"config['fairness']['confidence_level'] must lie in (0, 1), got {cfg.confidence_level}"
        )
    if cfg.n_bootstrap < 1:
        raise ConfigError(f"config['fairness']['n_bootstrap'] must be at least 1, got {cfg.n_bootstrap}")
    if cfg.max_groups < 2:
        raise ConfigError(f"config['fairness']['max_groups'] must be at least 2, got {cfg.max_groups}")


def _check_generator(cfg: GeneratorConfig) -> None:
    if not 0.0 <= cfg.near_copy_quantile <= 1.0:
        raise ConfigError(
            f"config['generator']['near_copy_quantile'] must lie in [0, 1], got {cfg.near_copy_quantile}"
        )
    floor = 2 * C2ST_FOLDS
    if cfg.min_rows < floor or min(cfg.max_rows, cfg.max_dcr_rows) < cfg.min_rows:
        raise ConfigError(
            f"config['generator'] needs min_rows >= {floor} and max_rows, max_dcr_rows >= min_rows; got "
            f"min_rows={cfg.min_rows}, max_rows={cfg.max_rows}, max_dcr_rows={cfg.max_dcr_rows}"
        )


# Rules between a section's settings or on their ranges, checked when the config is resolved: a bad
# setting fails before validate starts any check, not after the checks before it have run.
_SECTION_RULES: dict[str, Any] = {
    "calibration": _check_calibration,
    "adversarial": _check_adversarial,
    "fairness": _check_fairness,
    "generator": _check_generator,
}


def _checked(check: str, section: Any) -> Any:
    rule = _SECTION_RULES.get(check)
    if rule is not None:
        rule(section)
    return section


def _resolve_section(check: str, base: Any, overrides: Any) -> Any:
    return _checked(check, _merged_section(check, base, overrides))


def _merged_section(check: str, base: Any, overrides: Any) -> Any:
    if isinstance(overrides, type(base)):
        return overrides
    if not isinstance(overrides, Mapping):
        raise ConfigError(f"config[{check!r}] must be a mapping of settings, got {type(overrides).__name__}")
    known = {f.name: getattr(base, f.name) for f in dataclasses.fields(base)}
    changes = {}
    for name, value in overrides.items():
        if name not in known:
            raise ConfigError(
                f"unknown setting {name!r} for check {check!r}; known settings: {', '.join(sorted(known))}"
            )
        changes[name] = _coerce(check, name, known[name], value)
    return dataclasses.replace(base, **changes)


def resolve_config(config: ValidationConfig | Mapping[str, Any] | None) -> ValidationConfig:
    """Return a :class:`ValidationConfig` from ``None``, a ``ValidationConfig`` or a nested mapping."""
    if config is None:
        return ValidationConfig()
    if isinstance(config, ValidationConfig):
        for section in dataclasses.fields(config):
            _checked(section.name, getattr(config, section.name))
        return config
    if not isinstance(config, Mapping):
        raise ConfigError(f"config must be a mapping of check name to settings, got {type(config).__name__}")
    base = ValidationConfig()
    checks = {f.name for f in dataclasses.fields(base)}
    sections = {}
    for check, overrides in config.items():
        if check not in checks:
            raise ConfigError(f"unknown check {check!r} in config; known checks: {', '.join(sorted(checks))}")
        sections[check] = _resolve_section(check, getattr(base, check), overrides)
    return dataclasses.replace(base, **sections)


def check_config(check: str, config: Any) -> Any:
    """One check's settings from ``None`` (defaults), its dataclass, or a mapping of overrides."""
    return getattr(resolve_config({check: {} if config is None else config}), check)


def thresholds_of(section: Any) -> dict[str, float]:
    """The numeric settings of a config section, as recorded in ``CheckResult.thresholds``."""
    return {
        f.name: float(getattr(section, f.name))
        for f in dataclasses.fields(section)
        if isinstance(getattr(section, f.name), (int, float))
        and not isinstance(getattr(section, f.name), bool)
    }
