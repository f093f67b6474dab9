"""The docs are part of the product: these tests fail when they fall behind the code."""

import dataclasses
import re
import sys
from pathlib import Path

import pytest
from cogapp import Cog

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

from mlflow_hitl.checks.registry import ALL_CHECKS
from mlflow_hitl.cli import cli

ROOT = Path(__file__).resolve().parents[1]


def test_cli_reference_is_regenerated_from_help(capsys):
    # cog --check exits non-zero when docs/cli.md differs from what the code would generate.
    status = Cog().main(["cog", "--check", str(ROOT / "docs" / "cli.md")])
    assert status == 0, "docs/cli.md is stale: run .venv/bin/cog -r docs/cli.md"


def test_every_command_is_in_the_cli_reference():
    text = (ROOT / "docs" / "cli.md").read_text()
    for command in cli.commands:
        assert f"## `mlflow-hitl {command}`" in text


@pytest.mark.parametrize("check", list(ALL_CHECKS))
def test_every_setting_and_default_of_every_check_is_documented(check):
    page = (ROOT / "docs" / "checks" / f"{check}.md").read_text()
    for field in dataclasses.fields(ALL_CHECKS[check].settings):
        assert f"`{field.name}`" in page, f"docs/checks/{check}.md does not document {field.name}"


@pytest.mark.parametrize("check", list(ALL_CHECKS))
def test_every_check_page_names_the_module_that_declares_and_computes_it(check):
    page = (ROOT / "docs" / "checks" / f"{check}.md").read_text()
    path = "src/" + ALL_CHECKS[check].module.replace(".", "/") + ".py"
    assert f"`{path}`" in page and (ROOT / path).is_file()


def _metric_name(pattern):
    """``*.equalized_odds_difference_ci_low`` -> ``equalized_odds_difference``: the name a page documents."""
    return re.sub(r"^\*\.|\.\*$|_ci_(low|high)$", "", pattern)


@pytest.mark.parametrize("check", list(ALL_CHECKS))
def test_every_key_metric_and_default_gate_bound_of_every_check_is_documented(check):
    page = (ROOT / "docs" / "checks" / f"{check}.md").read_text()
    spec = ALL_CHECKS[check]
    for pattern in (*spec.key_metrics, *spec.gate_max, *spec.gate_min):
        assert _metric_name(pattern) in page, f"docs/checks/{check}.md does not document {pattern}"


def test_readme_quickstart_has_the_two_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    assert re.search(r"^make test$", (ROOT / ".ci" / "run").read_text(), re.MULTILINE)


def test_entry_points_are_declared():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["mlflow-hitl"] == "mlflow_hitl.cli:cli"
    assert (
        project["entry-points"]["mlflow.model_evaluator"]["hitl"]
        == "mlflow_hitl.adapter.evaluator:HitlEvaluator"
    )
