"""The gate commands' edges as a person meets them: unreadable policy files, the requirement table."""

import json

from click.testing import CliRunner

from mlflow_hitl.cli import cli
from test_gates import registered  # noqa: F401 (the fixture)


def test_a_policy_file_that_is_not_utf8_is_one_line_and_exit_2(tmp_path):
    policy = tmp_path / "policy.toml"
    policy.write_bytes('[protect]\naliases = ["champion"]\n# r\xe9vis\xe9\n'.encode("latin-1"))
    store_uri = f"sqlite:///{tmp_path / 'hitl.db'}"
    result = CliRunner().invoke(cli, ["policy", "set", "fraud", str(policy), "--store-uri", store_uri])
    assert result.exit_code == 2
    assert "is not UTF-8 text" in result.output and len(result.output.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_a_missing_policy_file_is_one_line_and_exit_2(tmp_path):
    result = CliRunner().invoke(cli, ["policy", "set", "fraud", str(tmp_path / "nope.toml")])
    assert result.exit_code == 2 and "does not exist" in result.output


def test_gate_check_counts_the_unmet_and_keeps_its_columns_apart(registered):  # noqa: F811
    invoke = registered["invoke"]
    result = invoke("gate", "check", "models:/arrests/1", "--target", "champion")
    as_json = json.loads(
        invoke("gate", "check", "models:/arrests/1", "--target", "champion", "--format", "json").stdout
    )
    assert result.exit_code == 1
    lines = result.output.splitlines()
    n_unmet = sum(not r["met"] for r in as_json["requirements"])
    assert f"BLOCKED ({n_unmet} of {len(as_json['requirements'])} requirement(s) unmet)" in lines[0]
    text = "\n".join(lines[1:])
    for requirement in as_json["requirements"]:
        # Every name is followed by two spaces or a line break before its detail: never run together.
        assert f"{requirement['name']}  " in text or f"{requirement['name']}\n" in text, requirement["name"]
