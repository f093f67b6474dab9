"""The check registry: each check declares itself once, and everything that lists checks reads it."""

import dataclasses
import inspect
import re
import subprocess
import sys
from importlib import import_module

import pytest

from mlflow_hitl.checks.registry import CHECK_NAMES, CHECKS
from mlflow_hitl.config import ValidationConfig
from mlflow_hitl.gate import default_policy

HEAVY = ("sklearn", "fairlearn", "scipy", "matplotlib", "evidently")


def test_the_checks_in_the_order_validate_runs_them_are_the_config_sections_and_the_gates_checks():
    assert CHECK_NAMES == ("drift", "calibration", "adversarial", "fairness", "generator")
    assert tuple(f.name for f in dataclasses.fields(ValidationConfig)) == CHECK_NAMES
    assert {f.name: f.type for f in dataclasses.fields(ValidationConfig)} == {
        name: spec.settings for name, spec in CHECKS.items()
    }
    assert set(default_policy().checks) == set(CHECK_NAMES)
    from mlflow_hitl.gate._policy import CHECK_NAMES as gate_names

    assert gate_names == CHECK_NAMES


@pytest.mark.parametrize("name", CHECK_NAMES)
def test_each_default_gate_bound_is_the_default_of_the_setting_its_check_names(name):
    spec, rule = CHECKS[name], default_policy().checks[name]
    defaults = spec.settings()
    assert dict(rule.max) == {p: float(getattr(defaults, s)) for p, s in spec.gate_max.items()}
    assert dict(rule.min) == {p: float(getattr(defaults, s)) for p, s in spec.gate_min.items()}
    assert rule.allow_status == tuple(sorted(spec.gate_allow_status))
    assert spec.gate_max or spec.gate_min  # the default policy bounds every check


@pytest.mark.parametrize("name", CHECK_NAMES)
def test_the_module_a_check_names_is_where_its_metric_names_are_written(name):
    # One step from a logged metric to its code: CHECKS[name].module holds each name as a literal.
    spec = CHECKS[name]
    source = inspect.getsource(import_module(spec.module))
    assert re.search(rf"name=(_NAME|\"{name}\")", source)
    for pattern in (*spec.key_metrics, *spec.gate_max, *spec.gate_min):
        stem = re.sub(r"^\*\.|\.\*$|_ci_(low|high)$", "", pattern)
        assert re.search(rf"[\"'.{{}}]{re.escape(stem)}[\"'.]", source), (
            f"{stem} is not written in {spec.module}"
        )


def test_the_gate_the_config_and_the_registry_import_none_of_the_checks_heavy_libraries():
    # gate/_policy.py and the server's guard read check names and default bounds on every promotion.
    code = (
        "import sys, mlflow_hitl.gate, mlflow_hitl.config, mlflow_hitl.checks.registry, mlflow_hitl.checks; "
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_package_and_the_cli_start_without_reading_the_registry():
    # The declarations load pandas; a store-only command (roles list) need not.
    code = (
        "import sys, mlflow_hitl, mlflow_hitl.cli; "
        "print([m for m in ('mlflow_hitl.checks.registry', 'pandas') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_checks_public_functions_still_import_from_the_package():
    from mlflow_hitl import checks
    from mlflow_hitl.checks import drift_check, generator_check

    assert drift_check.__module__ == CHECKS["drift"].module
    assert generator_check.__module__ == CHECKS["generator"].module
    # every public name resolves: functions and classes are callable, constants (UPPER_CASE) are values
    assert all(callable(getattr(checks, name)) for name in checks.__all__ if not name.isupper())
    assert all(getattr(checks, name) is not None for name in checks.__all__ if name.isupper())
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        checks.nothing  # noqa: B018
