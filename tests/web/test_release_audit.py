"""Release, Audit and Lineage in the browser: a refused promotion with its reasons, the missing sign-offs
given, the promotion through; the audit log filtered, paged and exported; lineage within 1,400 px."""

from __future__ import annotations

import csv
import io
import json

import mlflow
import pytest
import requests

from hitl_support import LENIENT_POLICY, log_run_with_evidence
from mlflow_hitl.adapter.gate import set_policy

from .conftest import PASSWORDS, XSS, as_engineer

pytestmark = pytest.mark.web

MODEL = "web-release"
# The lenient policy of the other server tests, with a release sign-off too.
POLICY = LENIENT_POLICY + '[[signoffs]]\ncheck = "release"\nrole = "release-manager"\ncount = 1\n'
RELEASE_URL = f"/hitl/release?model={MODEL}&version=1"


@pytest.fixture(scope="module")
def released(site, arrests_model, arrests_split):
    """``eng``'s own run registered as version 1 of ``web-release`` under a policy asking for a fairness
    and a release sign-off; ``rita`` is the release manager. Returns the run id."""
    synthetic, real, _ = arrests_split
    with as_engineer(site):
        mlflow.set_experiment("web-release")
        run_id = log_run_with_evidence(arrests_model, synthetic, real, input_example=False)
        mlflow.register_model(f"runs:/{run_id}/model", MODEL)
        set_policy(site.store, MODEL, POLICY, actor="root")
    return run_id


def _version(site) -> dict:
    """Version 1 as MLflow's registry holds it (its aliases and stage), read over REST as the admin."""
    answer = requests.get(
        f"{site.url}/api/2.0/mlflow/model-versions/get",
        params={"name": MODEL, "version": "1"},
        auth=site.admin,
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["model_version"]


def _sign(site, user: str, run_id: str, check: str) -> None:
    answer = requests.post(
        f"{site.url}/hitl/api/signoffs/create",
        json={"run_id": run_id, "check": check, "approve": True, "note": "looked at it"},
        auth=(user, PASSWORDS[user]),
        timeout=60,
    )
    assert answer.status_code == 200, answer.text


def test_a_release_manager_is_refused_with_reasons_then_promotes_once_signed_off(site, released):
    run_id = released
    page = site.page("rita")
    page.goto(RELEASE_URL)
    assert page.get_by_role("heading", name="Gate for alias:champion: blocked").is_visible()
    unmet = page.locator("tr", has=page.locator(".badge-unmet"))
    names = unmet.locator("th code").all_inner_texts()
    assert names == ["signoff.fairness", "signoff.release"], names
    link = unmet.first.get_by_role("link", name="sign-off page").get_attribute("href")
    assert link == f"/hitl/signoff?run_id={run_id}&check=fairness"
    assert (
        page.get_by_role("link", name="its run in MLflow").get_attribute("href").endswith(f"/runs/{run_id}")
    )
    site.shoot(page, "release-blocked")

    page.get_by_role("button", name="Promote to alias:champion").click()
    refusal = page.get_by_role("alert")
    assert "blocked, 2 of" in refusal.inner_text() and "signoff.release" in refusal.inner_text()
    refused = site.store.audit_events(action="promotion.refused", actor="rita", subject=f"model:{MODEL}")
    assert refused["subject"].tolist() == [f"model:{MODEL}/1"]
    assert json.loads(refused["payload"].iloc[0])["unmet"] == ["signoff.fairness", "signoff.release"]
    assert "champion" not in _version(site).get("aliases", [])

    _sign(site, "fay", run_id, "fairness")  # the missing requirements met, through the API
    _sign(site, "rita", run_id, "release")
    assert sorted(site.store.signoffs(run_id)["check_name"]) == ["fairness", "release"]

    page.goto(RELEASE_URL)
    assert page.get_by_role("heading", name="Gate for alias:champion: passed").is_visible()
    page.get_by_role("button", name="Promote to alias:champion").click()
    page.get_by_text(f"Promoted: {MODEL} version 1 now holds alias:champion.").wait_for()
    assert "champion" in page.get_by_text("Aliases:").inner_text()
    site.shoot(page, "release")
    assert _version(site)["aliases"] == ["champion"]
    granted = site.store.audit_events(action="promotion.granted", subject=f"model:{MODEL}")
    assert granted["actor"].tolist() == ["rita"]
    assert site.store.verify_audit().ok


def test_the_audit_log_filters_pages_exports_and_shows_script_as_text(site):
    for n in range(5):
        site.store.record_event(
            actor="web-auditor", action="test.paged", subject=f"queue:web-log/item:{n}", payload={"n": n}
        )
    site.store.record_event(actor=XSS, action="test.xss", subject=f"queue:{XSS}", payload={"note": XSS})
    page = site.page("nora")
    page.goto("/hitl/audit?actor=web-auditor&limit=2")
    assert page.get_by_role("heading", name="The chain: intact").is_visible()
    seen = []
    for expected in (2, 2, 1):
        rows = page.locator("tbody tr")
        assert rows.count() == expected
        seen += rows.locator("td:nth-child(5)").all_inner_texts()
        if expected == 2:
            page.get_by_role("link", name="next").click()
    assert seen == [f"queue:web-log/item:{n}" for n in range(5)]
    assert page.get_by_role("link", name="next").count() == 0

    page.goto("/hitl/audit?queue=web-log&action=test.")
    assert page.locator("tbody tr").count() == 5
    page.goto("/hitl/audit?since=2999-01-01")
    assert page.get_by_text("No events match these filters").is_visible()
    first = site.store.audit_events(actor="web-auditor")["time"].tolist()[2]
    page.goto(f"/hitl/audit?actor=web-auditor&since={first}")
    assert page.locator("tbody tr").count() == 3

    page.goto("/hitl/audit?action=test.xss")
    assert page.evaluate("window.__xss") is None
    assert page.get_by_text(XSS).first.is_visible()
    assert XSS not in page.content()
    site.shoot(page, "audit")

    auth = ("nora", PASSWORDS["nora"])
    exported = requests.get(
        f"{site.url}/hitl/audit/export?actor=web-auditor&format=csv", auth=auth, timeout=60
    )
    assert exported.status_code == 200 and "attachment" in exported.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [r["subject"] for r in rows] == [f"queue:web-log/item:{n}" for n in range(5)]
    as_json = requests.get(f"{site.url}/hitl/audit/export?action=test.xss&format=json", auth=auth, timeout=60)
    assert [e["actor"] for e in as_json.json()] == [XSS]
    bad = requests.get(f"{site.url}/hitl/audit?since=yesterday", auth=auth, timeout=60)
    assert bad.status_code == 400 and "must be a date or date-time" in bad.text


def test_lineage_reads_at_1400_px_without_horizontal_overflow(site, released):
    page = site.page("nora")
    page.goto(f"/hitl/lineage?model={MODEL}&version=1")
    assert page.get_by_role("heading", name="Agreement").is_visible()
    assert page.locator(".badge-passed, .badge-needs-review, .badge-failed").count() >= 1
    assert page.locator(".badge-intact").count() >= 1
    assert page.evaluate("document.documentElement.scrollWidth") <= 1400
    assert (
        page.get_by_role("link", name="the version in MLflow").get_attribute("href")
        == f"/#/models/{MODEL}/versions/1"
    )
    site.shoot(page, "lineage")
