import dataclasses

import pytest

from mlflow_hitl import ValidationConfig
from mlflow_hitl.config import CalibrationConfig, resolve_config, thresholds_of
from mlflow_hitl.errors import ConfigError


def test_defaults_when_none():
    assert resolve_config(None) == ValidationConfig()


def test_mapping_overrides_only_named_settings():
    config = resolve_config(
        {"calibration": {"max_ece": 0.1, "n_bins": 10}, "drift": {"render_report": False}}
    )
    assert config.calibration == CalibrationConfig(max_ece=0.1, n_bins=10)
    assert config.drift.render_report is False
    assert config.fairness == ValidationConfig().fairness


def test_dataclass_section_is_taken_as_is():
    section = CalibrationConfig(max_ece=0.2)
    assert resolve_config({"calibration": section}).calibration is section


def test_tuples_are_coerced_element_wise():
    config = resolve_config({"adversarial": {"severities": [0.2, 1]}})
    assert config.adversarial.severities == (0.2, 1.0)


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({"calibrate": {}}, "unknown check 'calibrate'.*known checks: adversarial, calibration"),
        ({"calibration": {"max_eec": 0.1}}, "unknown setting 'max_eec' for check 'calibration'.*max_ece"),
        ({"calibration": {"max_ece": "high"}}, r"config\['calibration'\]\['max_ece'\] must be a number"),
        ({"calibration": {"max_ece": float("nan")}}, "must be finite"),
        ({"calibration": {"max_ece": -0.1}}, "must not be negative"),
        ({"calibration": {"n_bins": 2.5}}, "must be a whole number"),
        ({"drift": {"render_report": 1}}, "must be true or false"),
        ({"adversarial": {"severities": []}}, "must not be empty"),
        ({"adversarial": {"severities": "0.1"}}, "must be a list"),
        ({"calibration": 0.1}, "must be a mapping of settings"),
        ([("calibration", {})], "config must be a mapping"),
    ],
)
def test_bad_config_is_refused_with_the_culprit_named(config, match):
    with pytest.raises(ConfigError, match=match):
        resolve_config(config)


def test_thresholds_are_the_numeric_settings():
    thresholds = thresholds_of(CalibrationConfig())
    assert thresholds["max_ece"] == 0.05
    assert thresholds["n_bins"] == 15.0


def test_reprs_show_only_what_differs_from_the_defaults():
    assert repr(CalibrationConfig()) == "CalibrationConfig()"
    assert repr(CalibrationConfig(max_ece=0.1)) == "CalibrationConfig(max_ece=0.1)"
    config = resolve_config({"calibration": {"n_bins": 10}})
    assert repr(config) == "ValidationConfig(calibration=CalibrationConfig(n_bins=10))"


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({"calibration": {"n_bins": 0}}, "n_bins must be a whole number"),
        ({"adversarial": {"perturbations": ["nope"]}}, "unknown perturbation"),
        ({"adversarial": {"severities": [2.0]}}, r"values in \[0, 1\]"),
        ({"fairness": {"confidence_level": 1.5}}, "confidence_level"),
        ({"generator": {"min_rows": 2}}, "min_rows >= 6"),
        # A threshold its metric can never reach would switch the check off without a word.
        ({"calibration": {"max_ece": 1.5}}, r"\['max_ece'\] must be between 0 and 1, got 1.5"),
        ({"generator": {"min_fidelity": 2}}, r"\['min_fidelity'\] must be between 0 and 1, got 2"),
        # 0 would refuse every pass; 1 switches the power rule off, above it means nothing more.
        (
            {"generator": {"max_undetectable_excess": 0}},
            r"\['max_undetectable_excess'\] must lie in \(0, 1\]",
        ),
        (
            {"generator": {"max_undetectable_excess": 1.2}},
            r"\['max_undetectable_excess'\] must lie in \(0, 1\]",
        ),
    ],
)
def test_a_setting_out_of_range_is_refused_when_the_config_is_resolved(config, match):
    # Before any check runs: validate resolves its config first, so at scale nothing is computed in vain.
    with pytest.raises(ConfigError, match=match):
        resolve_config(config)
    sections = {name: getattr(ValidationConfig(), name) for name in config}
    with pytest.raises(ConfigError, match=match):  # a ValidationConfig built directly is checked too
        resolve_config(
            ValidationConfig(**{n: dataclasses.replace(s, **config[n]) for n, s in sections.items()})
        )


def test_every_default_gate_bound_has_its_valid_range_declared_once_with_its_setting():
    from mlflow_hitl.checks.registry import CHECKS

    for name, spec in CHECKS.items():
        for metric, setting in (*spec.gate_max.items(), *spec.gate_min.items()):
            assert setting in spec.settings.RANGES, f"{name}.{setting} bounds {metric} but has no range"
            assert spec.metric_range(metric) == spec.settings.RANGES[setting]
            default = getattr(spec.settings(), setting)
            low, high = spec.settings.RANGES[setting]
            assert low <= default <= high


def test_a_thresholds_file_sets_the_generators_max_undetectable_excess(tmp_path):
    """``validate --config``'s TOML reaches the setting; a bad value is one ConfigError line."""
    from mlflow_hitl._io import read_config_file

    path = tmp_path / "privacy.toml"
    path.write_text("[generator]\nmax_undetectable_excess = 0.05\n")
    assert resolve_config(read_config_file(path)).generator.max_undetectable_excess == 0.05
    path.write_text("[generator]\nmax_undetectable_excess = 5\n")
    with pytest.raises(ConfigError) as refused:
        resolve_config(read_config_file(path))
    assert str(refused.value) == (
        "config['generator']['max_undetectable_excess'] must lie in (0, 1] (1 switches the power rule off), got 5.0"
    )
