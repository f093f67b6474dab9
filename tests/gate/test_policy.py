"""Gate policies: parsing with line-precise errors, the strict default, canonical hashing, TOML round trips."""

import dataclasses
import hashlib
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mlflow_hitl.config import ValidationConfig
from mlflow_hitl.errors import ConfigError, InputError
from mlflow_hitl.gate._policy import (
    CheckRule,
    Policy,
    PolicyError,
    SignoffRule,
    _KeyLines,
    default_policy,
    parse_policy,
    policy_hash,
    policy_to_toml,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "policy.toml"
MARK = "# <-"  # marks the line a refused policy's error must name


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


# -- the default ---------------------------------------------------------------------------------------


def test_default_policy_is_the_strict_default_the_docs_describe():
    policy = default_policy()
    assert policy.protect_aliases == ("champion", "production")
    assert policy.protect_stages == ("Production", "Staging")
    assert policy.require_same_version_run is True
    assert set(policy.checks) == {f.name for f in dataclasses.fields(ValidationConfig)}
    assert policy.signoffs == (SignoffRule("fairness", "fairness-reviewer", 1),)
    assert policy.min_verified_items == 0 and policy.min_krippendorff_alpha is None
    assert policy.separate_duties is True
    assert policy.checks["fairness"].allow_status == ("needs_review", "passed")
    assert all(policy.checks[c].allow_status == ("passed",) for c in ("calibration", "drift", "generator"))


def test_default_bounds_are_the_checks_own_default_thresholds():
    config = ValidationConfig()
    checks = default_policy().checks
    assert dict(checks["calibration"].max) == {
        "ece": config.calibration.max_ece,
        "overconfidence_error": config.calibration.max_overconfidence_error,
    }
    assert checks["drift"].max["drifted_share"] == config.drift.max_drifted_share
    assert checks["generator"].min["fidelity"] == config.generator.min_fidelity
    assert checks["generator"].max["c2st_auc"] == config.generator.max_c2st_auc
    assert checks["fairness"].max["*.bias_amplification"] == config.fairness.max_bias_amplification
    assert (
        checks["adversarial"].max["worst_overconfidence_error"] == config.adversarial.max_overconfidence_error
    )


def test_the_example_file_is_the_default_policy_and_an_empty_file_too():
    assert parse_policy(EXAMPLE.read_text(), source=str(EXAMPLE)) == default_policy()
    assert parse_policy("") == default_policy()
    assert parse_policy("# nothing but a comment\n") == default_policy()


def test_sign_off_roles_and_check_names_are_those_of_the_review_store_and_validate():
    # The policy module stays light to import; its roles and check names must be the store's and validate's.
    from mlflow_hitl._validate import CHECK_NAMES
    from mlflow_hitl.gate import _policy
    from mlflow_hitl.review._store import ROLES, SIGNOFF_ROLES

    assert {check: _policy.signoff_role(check) for check in SIGNOFF_ROLES} == dict(SIGNOFF_ROLES)
    assert _policy.signoff_role("calibration") in ROLES
    assert set(_policy.CHECK_NAMES) == set(CHECK_NAMES)


# -- valid policies ----------------------------------------------------------------------------------

VALID = [
    pytest.param(
        '[protect]\naliases = ["champion"]\n',
        lambda p: p.protect_aliases == ("champion",) and p.protect_stages == ("Production", "Staging"),
        id="a written key replaces its default, an unwritten one keeps it",
    ),
    pytest.param(
        '[protect]\naliases = []\nstages = ["production", "STAGING"]\n',
        lambda p: p.protect_aliases == () and p.protect_stages == ("Production", "Staging"),
        id="stage names ignore case and are stored as MLflow spells them",
    ),
    pytest.param("signoffs = []\n", lambda p: p.signoffs == (), id="no sign-offs"),
    pytest.param("[checks]\n", lambda p: dict(p.checks) == {}, id="an empty checks table requires no check"),
    pytest.param(
        "[checks.calibration]\n",
        lambda p: (
            list(p.checks) == ["calibration"]
            and p.checks["calibration"] == default_policy().checks["calibration"]
        ),
        id="a listed check keeps its default bounds",
    ),
    pytest.param(
        "[checks.fairness]\nmax = {}\n",
        lambda p: p.checks["fairness"].allow_status == ("needs_review", "passed"),
        id="a listed check keeps its default allow_status",
    ),
    pytest.param(
        "[checks.calibration]\nmax = {}\n",
        lambda p: (
            dict(p.checks["calibration"].max) == {} and p.checks["calibration"].allow_status == ("passed",)
        ),
        id="max = {} removes the bounds",
    ),
    pytest.param(
        'checks.drift.max.drifted_share = 0.2\nchecks.drift.min."a.b*" = 1\n',
        lambda p: (
            dict(p.checks["drift"].max) == {"drifted_share": 0.2}
            and dict(p.checks["drift"].min) == {"a.b*": 1.0}
        ),
        id="dotted and quoted keys",
    ),
    pytest.param(
        "[checks.calibration]\nmax = { ece = 1 }\n",
        lambda p: (
            p.checks["calibration"].max["ece"] == 1.0
            and isinstance(p.checks["calibration"].max["ece"], float)
        ),
        id="integer limits become floats",
    ),
    pytest.param(
        '[checks.drift]\nallow_status = ["failed", "passed"]\n',
        lambda p: p.checks["drift"].allow_status == ("failed", "passed"),
        id="failed may be accepted when the policy's own bounds decide",
    ),
    pytest.param(
        '[[signoffs]]\ncheck = "release"\ncount = 2\n\n[[signoffs]]\ncheck = "drift"\n',
        lambda p: (
            p.signoffs == (SignoffRule("drift", "reviewer", 1), SignoffRule("release", "release-manager", 2))
        ),
        id="the role defaults to the one the store records",
    ),
    pytest.param(
        'signoffs = [{ check = "fairness", count = 3 }]\n',
        lambda p: p.signoffs == (SignoffRule("fairness", "fairness-reviewer", 3),),
        id="inline array of sign-offs",
    ),
    pytest.param(
        "[review]\nmin_verified_items = 200\nmin_krippendorff_alpha = 0.667\n[duties]\nseparate = false\n",
        lambda p: (p.min_verified_items, p.min_krippendorff_alpha, p.separate_duties) == (200, 0.667, False),
        id="review and duties",
    ),
    pytest.param(
        "[evidence]\r\nrequire_same_version_run = false\r\n",
        lambda p: p.require_same_version_run is False,
        id="CRLF line endings",
    ),
]


@pytest.mark.parametrize(("text", "expect"), VALID)
def test_valid_policies_parse_to_what_they_say(text, expect):
    assert expect(parse_policy(text))


@pytest.mark.parametrize("text", [p.values[0] for p in VALID] + [EXAMPLE.read_text()])
def test_policy_to_toml_round_trips_to_an_equal_policy_with_an_equal_hash(text):
    policy = parse_policy(text)
    again = parse_policy(policy_to_toml(policy), source="written.toml")
    assert again == policy
    assert policy_hash(again) == policy_hash(policy)


def test_round_trip_keeps_awkward_pattern_text():
    patterns = {
        'quote " and \\ back': 1.0,
        "tab\tand\nnewline": 2.0,
        "del\x7f": 3.0,
        "ünï.*": 4.0,
        "a=b[c]": 0.5,
    }
    policy = dataclasses.replace(
        default_policy(),
        checks={"drift": CheckRule("drift", max=patterns, min={"x": 1e-7}, allow_status=("passed",))},
    )
    assert parse_policy(policy_to_toml(policy)) == policy


# -- refused policies, each at its line ----------------------------------------------------------------

INVALID = [
    ('[protect]\naliases = ["a",  # <-\n', r"invalid TOML: .*\(at end of document\)"),
    ("[protect]\naliases =   # <-\n", "invalid TOML: Invalid value"),
    ("[duties]\nseparate = true\nseparate = false  # <-\n", "invalid TOML: Cannot overwrite a value"),
    ("[protect]\naliases = []\n\n[protect]  # <-\n", "invalid TOML"),
    (
        "# a comment\n\n[reveiw]  # <-\nmin_verified_items = 1\n",
        "unknown key 'reveiw' in the top level; known: checks, duties",
    ),
    (
        "[checks.calibration]\nmax = { ece = 0.05 }\n\nmax_eec = 0.05  # <-\n",
        r"unknown key 'max_eec' in \[checks.calibration\]; known: allow_status, max, min",
    ),
    (
        "[checks]\ncalibration.max = {}\ncalibration.maxx = {}  # <-\n",
        "unknown key 'maxx' in \\[checks.calibration\\]",
    ),
    (
        "[checks.calibratoin]  # <-\n",
        "unknown key 'calibratoin' in \\[checks\\]; known: adversarial, calibration",
    ),
    (
        '[protect]\nstages = []\naliases = "champion"  # <-\n',
        "protect.aliases must be a list of strings, got a string",
    ),
    (
        '[protect]\naliases = [  # <-\n  "champion",\n  "the champion",\n]\n',
        "alias 'the champion' is not a valid MLflow alias",
    ),
    ('[protect]\naliases = ["champion", "Champion"]  # <-\n', "same alias twice in different case"),
    ('[protect]\naliases = ["a", "a"]  # <-\n', "protect.aliases lists 'a' twice"),
    (
        '[protect]\nstages = ["Prod"]  # <-\n',
        "'Prod' is not an MLflow stage; stages: None, Staging, Production, Archived",
    ),
    ('[protect]\nstages = ["staging", "Staging"]  # <-\n', "lists the same stage twice"),
    ("protect = 3  # <-\n", "protect must be a table, got a number"),
    (
        '[evidence]\nrequire_same_version_run = "yes"  # <-\n',
        "require_same_version_run must be true or false, got a string",
    ),
    (
        "[checks.drift]\nmax = 0.1  # <-\n",
        "checks.drift.max must be a table of metric pattern = limit, got a number",
    ),
    (
        '[checks.drift]\nmax = { drifted_share = "0.1" }  # <-\n',
        "checks.drift.max.drifted_share must be a number, got a string",
    ),
    ("[checks.drift]\nmax = { drifted_share = true }  # <-\n", "must be a number, got true/false"),
    ("[checks.drift]\nmax = { drifted_share = nan }  # <-\n", "must be finite, got nan"),
    ('[checks.calibration]\nmax = { "hitl.calibration.ece" = 0.1 }  # <-\n', "without 'hitl.'; write 'ece'"),
    (
        '[checks.calibration]\nmin = {}\nmax = { "calibration.ece" = 0.1 }  # <-\n',
        "without 'calibration.'; write 'ece'",
    ),
    (
        "[checks.calibration]\nmax = { sex.bias = 0.1 }  # <-\n",
        'quote metric patterns that contain dots: write "sex.bias"',
    ),
    ('[checks.drift]\nmax = { "" = 0.1 }  # <-\n', "empty metric pattern"),
    (
        "[checks.generator]\nmax = { fidelity = 0.5 }\nmin = { fidelity = 0.9 }  # <-\n",
        "min 0.9 for 'fidelity' is above its max 0.5",
    ),
    (
        '[checks.fairness]\nmax = {}\nallow_status = ["passed", "insufficient_evidence"]  # <-\n',
        "insufficient_evidence is never accepted",
    ),
    (
        '[checks.fairness]\nallow_status = ["passed", "ok"]  # <-\n',
        "unknown status 'ok'; choose from passed, needs_review, failed",
    ),
    ("[checks.fairness]\nallow_status = []  # <-\n", "allow_status is empty"),
    ("signoffs = 1  # <-\n", "signoffs must be \\[\\[signoffs\\]\\] tables"),
    (
        '[[signoffs]]\ncheck = "fairness"\n\n[[signoffs]]  # <-\ncount = 2\n',
        "\\[\\[signoffs\\]\\] entry 2 needs check",
    ),
    (
        '[[signoffs]]\ncheck = "fairnes"  # <-\n',
        "unknown sign-off check 'fairnes'; choose from drift, calibration",
    ),
    (
        '[[signoffs]]\ncheck = "fairness"\n[[signoffs]]\ncheck = "fairness"  # <-\n',
        "already required; raise its count",
    ),
    (
        '[[signoffs]]\ncheck = "drift"\n[[signoffs]]\ncheck = "release"\nrole = "admin"  # <-\n',
        "role 'admin' can never sign off 'release': the review store records release sign-offs with role 'release-manager'",
    ),
    ('[[signoffs]]\ncheck = "release"\ncount = 0  # <-\n', "signoffs.count must be at least 1, got 0"),
    (
        '[[signoffs]]\ncheck = "release"\ncount = 1.5  # <-\n',
        "signoffs.count must be a whole number, got a number 1.5",
    ),
    (
        '[[signoffs]]\ncheck = "release"\nwho = "x"  # <-\n',
        "unknown key 'who' in \\[\\[signoffs\\]\\] entry 1; known: check, count, role",
    ),
    (
        'signoffs = [\n  { check = "release" },\n]\n[review]\nmin_verified_items = -1  # <-\n',
        "at least 0, got -1",
    ),
    ("[review]\nmin_krippendorff_alpha = 1.5  # <-\n", "between -1.0 and 1.0, got 1.5"),
    (
        "[checks.calibration]\nmax = { ece = 1.5 }  # <-\n",
        r"max.ece = 1.5 is outside the values 'ece' can take \(0 to 1\)",
    ),
    (
        '[checks.drift]\nmax = { "*.drifted_share" = 2 }  # <-\n',
        r"outside the values '\*.drifted_share' can take \(0 to 1\)",
    ),
    ("[duties]\nseparate = 1  # <-\n", "duties.separate must be true or false, got a number"),
    ('["quoted key"]  # <-\nx = 1\n', "unknown key 'quoted key' in the top level"),
]


@pytest.mark.parametrize(("text", "message"), INVALID, ids=[m[:40] for _, m in INVALID])
def test_invalid_policies_are_refused_at_their_line(text, message):
    line = next(n for n, row in enumerate(text.splitlines(), start=1) if row.endswith(MARK))
    with pytest.raises(PolicyError, match=rf"^team\.toml line {line}: .*{message}") as caught:
        parse_policy(text, source="team.toml")
    assert caught.value.line == line and caught.value.source == "team.toml"


def test_brackets_and_equals_in_strings_comments_and_multi_line_arrays_do_not_confuse_the_line_scan():
    text = dedent(
        """
        [protect]
        aliases = ["x"]   # a [comment] with = signs
        stages = [
          "Staging",  # ] not the end
          'production'
        ]
        [ checks . "drift" ]
        max = { "a = [b]" = 0.1 }
        min = { drifted_share = "high" }  # <-
        """
    )
    with pytest.raises(
        PolicyError, match=r"^policy\.toml line 9: checks\.drift\.min\.drifted_share must be a number"
    ):
        parse_policy(text)


# A unit test of the helper behind every line number, on TOML no policy error can reach.
TRICKY = "\n".join(
    [
        'title = """',  # 1-4: a multi-line string that looks like a table
        "[fake]",
        "key = 1",
        '"""',
        r'esc = "a \" [b] = c"',  # 5: an escaped quote
        "lit = '''x",  # 6-7: a multi-line literal string, then a comment
        "''' # ''' [c]",
        "arr = [",  # 8-11: nested arrays, one per line
        "  [1, 2],",
        "  [3]",
        "]",
        'cont = """a \\',  # 12-13: a line-ending backslash inside a string
        '  [d] = 2"""',
        "[\ta . 'b.c' ]",  # 14: a tab and a quoted key in a header
        "d.e = 1",
        "[[f]]",
        "g = 1",
        "[[f]]",
        "g = 2",
        "[f.h]",  # 20: a sub-table of the last [[f]] entry
        "i = { j = 1 }",
        "",
    ]
)


def test_the_line_scan_maps_every_header_and_key_of_tricky_toml():
    expected = {
        ("title",): 1,
        ("fake",): None,
        ("key",): None,
        ("esc",): 5,
        ("lit",): 6,
        ("arr",): 8,
        ("cont",): 12,
        ("d",): None,
        ("a",): 14,
        ("a", "b.c"): 14,
        ("a", "b.c", "d", "e"): 15,
        ("f", 0): 16,
        ("f", 0, "g"): 17,
        ("f", 1): 18,
        ("f", 1, "g"): 19,
        ("f", 1, "h"): 20,
        ("f", 1, "h", "i", "j"): 21,
    }
    for text in (TRICKY, TRICKY.replace("\n", "\r\n")):
        lines = _KeyLines(text)
        assert {path: lines.line(path) for path in expected} == expected


def test_policy_error_is_a_config_error_and_a_value_error():
    with pytest.raises(PolicyError) as caught:
        parse_policy("[x]\n")
    assert isinstance(caught.value, ConfigError) and isinstance(caught.value, InputError)
    assert isinstance(caught.value, ValueError)
    with pytest.raises(PolicyError, match="policy text must be a str, got bytes"):
        parse_policy(b"[protect]")


# -- hashing and immutability ---------------------------------------------------------------------------


def test_policy_hash_is_sha256_of_sorted_compact_json_and_ignores_file_order():
    policy = default_policy()
    expected = hashlib.sha256(
        json.dumps(policy.to_dict(), sort_keys=True, separators=(",", ":")).encode("utf-8")
    ).hexdigest()
    assert policy_hash(policy) == expected and re.fullmatch(r"[0-9a-f]{64}", expected)
    reordered = dedent(
        """
        [duties]
        separate = true
        [protect]
        stages = ["Staging", "production"]
        aliases = ["production", "champion"]
        [[signoffs]]
        check = "fairness"
        """
    )
    assert policy_hash(parse_policy(reordered)) == policy_hash(policy)


@pytest.mark.parametrize(
    "change",
    [
        '[protect]\naliases = ["champion"]\n',
        '[protect]\nstages = ["Production"]\n',
        "[evidence]\nrequire_same_version_run = false\n",
        "[checks.calibration]\nmax = { ece = 0.06, overconfidence_error = 0.05 }\n",
        '[checks.calibration]\nallow_status = ["passed", "needs_review"]\n',
        '[[signoffs]]\ncheck = "fairness"\ncount = 2\n',
        "signoffs = []\n",
        "[review]\nmin_verified_items = 1\n",
        "[review]\nmin_krippendorff_alpha = 0.0\n",
        "[duties]\nseparate = false\n",
    ],
)
def test_every_setting_changes_the_hash(change):
    assert policy_hash(parse_policy(change)) != policy_hash(default_policy())


def test_policy_hash_is_the_same_in_a_fresh_interpreter():
    code = "from mlflow_hitl.gate._policy import default_policy, policy_hash; print(policy_hash(default_policy()))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "123"},
    )
    assert out.stdout.strip() == policy_hash(default_policy())


def test_policy_is_immutable():
    policy = default_policy()
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.min_verified_items = 5
    with pytest.raises(TypeError):
        policy.checks["drift"] = CheckRule("drift")
    with pytest.raises(TypeError):
        policy.checks["calibration"].max["ece"] = 1.0
    assert "hash=" in repr(policy) and "alias:champion" in repr(policy)


def test_equal_policies_built_in_any_order_are_equal():
    a = Policy(
        protect_aliases=("b", "a"),
        protect_stages=("Staging",),
        require_same_version_run=True,
        checks={"drift": CheckRule("drift", max={"y": 1, "x": 2}), "calibration": CheckRule("calibration")},
        signoffs=(SignoffRule("release", "release-manager"), SignoffRule("fairness", "fairness-reviewer")),
        min_verified_items=0,
        min_krippendorff_alpha=None,
        separate_duties=True,
    )
    b = dataclasses.replace(
        a,
        protect_aliases=("a", "b"),
        checks={
            "calibration": CheckRule("calibration"),
            "drift": CheckRule("drift", max={"x": 2.0, "y": 1.0}),
        },
        signoffs=tuple(reversed(a.signoffs)),
    )
    assert a == b and policy_hash(a) == policy_hash(b)


# -- docs ----------------------------------------------------------------------------------------------


def test_every_policy_key_is_documented():
    page = (ROOT / "docs" / "gates" / "policy.md").read_text()
    keys = {"protect", "evidence", "checks", "signoffs", "review", "duties"}
    for section in default_policy().to_dict().values():
        if isinstance(section, dict):
            keys |= {k for k in section if k not in default_policy().checks}
    keys |= {"max", "min", "allow_status", "check", "role", "count"}
    for key in sorted(keys):
        assert re.search(rf"`(\[\[?)?{key}\b", page), f"docs/gates/policy.md does not document {key}"
    assert EXAMPLE.read_text().strip() in page, "the docs must show examples/policy.toml verbatim"
