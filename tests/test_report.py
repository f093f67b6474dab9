"""The evidence report people hand on, and the run description: real results, rendered without MLflow."""

import html
import io
import re
from datetime import datetime, timezone

import pytest
from PIL import Image

import mlflow_hitl
from conftest import FAST
from hitl_support import validate_split
from mlflow_hitl import CheckResult, Status, ValidationResult
from mlflow_hitl.report import render_report, render_summary_markdown

WHEN = datetime(2026, 11, 30, 7, 5, tzinfo=timezone.utc)
# Fairness bounds no model meets: every audit fails, each with its reasons.
STRICT = {
    **FAST,
    "fairness": {
        "n_bootstrap": 50,
        "max_demographic_parity_difference": 0.0,
        "max_equalized_odds_difference": 0.0,
    },
    "calibration": {"max_ece": 0.01},
    # A 5 % blind spot accepted: at the arrests split's sizes no test catches the default's 2 % (the
    # generator check would be insufficient evidence, and this page test is about the passed check's bounds).
    "generator": {"max_undetectable_excess": 0.05},
}


@pytest.fixture(scope="module")
def result(arrests_model, arrests_split):
    return validate_split(arrests_model, arrests_split, config=STRICT, log=False)


@pytest.fixture(scope="module")
def page(result):
    return render_report(result, created=WHEN)


def _text(page: str) -> str:
    """The page's words, without tags, images or styles."""
    page = re.sub(r"<style>.*?</style>|<img[^>]*>", "", page, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))


def test_the_header_says_when_what_and_on_which_data(result, page):
    text = _text(page)
    assert f"made 2026-11-30 07:05 UTC by mlflow-hitl {mlflow_hitl.__version__}" in text
    assert "model Pipeline (ColumnTransformer → LogisticRegression)" in text
    assert "model URI none: a model object was validated" in text
    given = {role: digest for role, digest in result.details["fingerprints"].items() if digest is not None}
    assert set(given) == {"real", "synthetic", "production"}
    for role, digest in given.items():
        assert f"{role}: 1,742 rows, sha256 {digest}" in text
    assert "holdout:" not in text  # an input not given is not listed
    assert "released (classes: No, Yes)" in text


def test_each_threshold_says_where_it_came_from(page):
    section = page[page.index('id="calibration"') : page.index('id="adversarial"')]
    rows = dict(
        re.findall(r"<tr><td><code>(\w+)</code></td><td class=num>[^<]*</td><td>(\w+)</td></tr>", section)
    )
    assert rows == {
        "n_bins": "default",
        "max_ece": "config",
        "max_overconfidence_error": "default",
        "min_samples": "default",
    }
    generator = page[page.index('id="generator"') :]
    assert "<code>max_rows</code></td><td class=num>20,000</td><td>default" in generator


def test_every_failing_fairness_reason_is_listed(result, page):
    fairness = result.checks["fairness"]
    assert fairness.status is Status.FAILED
    reasons = [
        f"{name}: {reason}"
        for name, audit in fairness.details["features"].items()
        if audit["verdict"] == "failed"
        for reason in audit["reasons"]
        if "above the maximum" in reason  # a breach; the other reasons note excluded groups
    ]
    assert len(reasons) >= 3
    assert "more, see details" not in fairness.summary
    section = page[page.index('id="fairness"') : page.index('id="generator"')]
    items = re.findall(r"<li>(.*?)</li>", section)
    assert len(items) == len(reasons)
    for reason in reasons:
        assert reason.rstrip(".").replace("&", "&amp;") in items


def test_numbers_read_the_same_everywhere(page):
    text = _text(page)
    assert not re.search(r"\d[eE][+-]\d", text.replace("sha256", ""))  # no 2e+04
    shown = re.findall(r"<td class=num>([^<]*)</td>", page)
    assert shown and all(re.fullmatch(r"-?[\d,]+(\.\d{3})?|n/a|inf|-inf|\d\.\de-\d\d", v) for v in shown), (
        shown
    )
    assert "count</code></td><td class=num>1,742</td>" in page  # counts as whole numbers


def test_the_headline_comes_first_and_every_metric_is_one_click_away(result, page):
    section = page[page.index('id="calibration"') : page.index('id="adversarial"')]
    headline = section[: section.index("<details>")]
    assert re.findall(r"<code>(\w+)</code>", headline) == [
        "ece",
        "overconfidence_error",
        "adaptive_ece",
        "mce",
        "brier",
        "accuracy",
    ]
    assert f"Every metric ({len(result.checks['calibration'].metrics)})" in section
    assert "<code>log_loss</code>" in section


def test_sign_offs_are_shown_when_known(result):
    rows = [
        {"check": "fairness", "decision": "approve", "user": "dana", "time": "2026-11-30 07:00", "note": "ok"}
    ]
    assert "<td>fairness</td><td>approve</td><td>dana</td>" in render_report(result, signoffs=rows)
    assert "Sign-offs</h2><p>None yet." in render_report(result, signoffs=[])
    assert "Not known when this report was written" in render_report(result)


def test_the_adversarial_plot_keeps_two_panels_a_row(result):
    png = result.checks["adversarial"].artifacts["confidence_vs_severity.png"]
    width, height = Image.open(io.BytesIO(png)).size
    assert width / height < 2  # four panels in one row were 4.4 times as wide as high, unreadable


def test_the_summary_markdown_keeps_one_row_per_check():
    long = "x" * 500
    result = ValidationResult(
        checks={
            "drift": CheckResult("drift", Status.PASSED, summary="a | b"),
            "fairness": CheckResult("fairness", Status.FAILED, summary=long),
        },
        skipped={"generator": "needs synthetic data"},
    )
    lines = render_summary_markdown(result).splitlines()
    assert lines[0] == "**mlflow-hitl: ❌ failed** (1 passed, 1 failed)"
    assert "| drift | ✅ passed | a \\| b |" in lines
    fairness = next(line for line in lines if line.startswith("| fairness |"))
    assert fairness.endswith("… |") and len(fairness) < 330
    assert "| generator | skipped | needs synthetic data |" in lines


# The demo's kind of gate: bounds other than the checks' own thresholds.
GATE = """
[checks.calibration]
max = { ece = 0.005 }

[checks.fairness]
max = { "*.bias_amplification" = 0.1 }

[checks.generator]
max = { exact_copy_excess = 0.02 }
"""
ORIGIN = "policy of arrests v3, set by root 2026-11-30 07:00 (sha256 0123456789ab)"


def test_the_gate_policys_bounds_show_beside_each_check_with_where_they_came_from(result):
    from mlflow_hitl.gate import parse_policy

    policy = parse_policy(GATE, source="policy.toml")
    text = html.unescape(_text(render_report(result, created=WHEN, policies={ORIGIN: policy})))
    assert f"the release gate's bounds in force when this was logged, shown with each check: {ORIGIN}" in text
    calibration = text[text.index("calibration failed Miscalibrated") :]
    ece = result.checks["calibration"].metrics["ece"]
    # the gate's own verdict on its bound, in its own words, and the policy it came from
    assert f"ece <= 0.005 ❌ ece = {ece:.3f}, limit <= 0.005 {ORIGIN}" in calibration
    # the setting the check judged by, and the different bound the gate will judge by
    assert f"max_ece 0.010 config; the gate: ece <= 0.005 ({ORIGIN})" in calibration
    fairness = text[text.index("fairness failed Fairness failed") :]
    assert "*.bias_amplification <= 0.1 ✅ worst of 3 matching: " in fairness
    generator = text[text.index("generator passed The synthetic set") :]
    assert "exact_copy_excess <= 0.02 ✅ worst of 1 matching: exact_copy_excess = " in generator
    # a bound the policy left out keeps the strict default, and the page shows it as the gate will judge it
    assert "fidelity >= 0.8 ✅" in generator


def test_without_a_known_policy_the_header_says_where_the_gates_bounds_are(result, page):
    assert "release gate bound" not in page
    assert "(mlflow-hitl policy show &lt;model&gt;)" in page
    assert "validate with the registered model&#x27;s name to show its bounds here" in page
    looked = _text(render_report(result, created=WHEN, policies={}))
    assert "the review store holding it could not be read when this was logged" in looked


def test_the_run_description_counts_the_gates_bounds_and_names_the_unmet(result):
    from mlflow_hitl.gate import parse_policy

    note = render_summary_markdown(result, policies={ORIGIN: parse_policy(GATE, source="policy.toml")})
    line = next(line for line in note.splitlines() if line.startswith("Release gate"))
    assert line.startswith(
        f"Release gate ({ORIGIN}): 5 of 6 bounds met; unmet: calibration.ece <= 0.005: ece = "
    )
    assert "Release gate" not in render_summary_markdown(result)
