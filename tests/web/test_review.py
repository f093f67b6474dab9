"""Adjudication, sign-off, queues and home in the browser: who may act, what is recorded, what is escaped."""

from __future__ import annotations

import mlflow
import pandas as pd
import pytest
import requests

from hitl_support import create_users

from .conftest import PASSWORDS, XSS, as_engineer, make_queue

pytestmark = pytest.mark.web


@pytest.fixture(scope="module")
def disputed(site):
    """Queue ``web-agree``: two raters per item; alice and bob disagree on item 0 and agree on item 1."""
    make_queue(site.store, "web-agree", pd.DataFrame({"age": [30, 40], "city": ["Lyon", "Oslo"]}), raters=2)
    site.store.annotate("web-agree", position=0, user="alice", label="Yes", comment="looks fine")
    site.store.annotate("web-agree", position=0, user="bob", label="No", comment=XSS)
    site.store.annotate("web-agree", position=1, user="alice", label="No")
    site.store.annotate("web-agree", position=1, user="bob", label="No")
    return "web-agree"


def test_queues_show_progress_consensus_and_poor_agreement(site, disputed):
    page = site.page("alice")
    page.goto("/hitl/queues?limit=100")  # the shared server holds other modules' queues too (10 a page)
    row = page.get_by_role("row").filter(has_text="web-agree")
    assert "4 of 4" in row.inner_text()
    assert row.get_by_role("link", name="1").is_visible()  # one item awaits adjudication
    assert row.get_by_text("poor agreement").is_visible()
    site.shoot(page, "queues")


def test_without_the_role_the_page_shows_the_work_and_says_why_not(site, disputed):
    page = site.page("nora")
    page.goto("/hitl/adjudicate?queue=web-agree")
    assert page.get_by_text(
        "You cannot adjudicate: it needs the 'adjudicator' role (roles held: none)"
    ).is_visible()
    assert page.get_by_role("button", name="Settle item 0 as Yes").is_disabled()
    assert page.get_by_text(XSS).is_visible()  # bob's comment, as text
    # The form sent anyway (with nora's own token) is refused by the API's rule and audited.
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    sent = requests.post(
        f"{site.url}/hitl/adjudicate?queue=web-agree",
        data={"position": "0", "label": "Yes", "csrf_token": token},
        auth=("nora", PASSWORDS["nora"]),
        timeout=60,
    )
    assert sent.status_code == 403 and "needs the &#39;adjudicator&#39; role" in sent.text
    refused = site.store.audit_events(action="api.refused", actor="nora")
    assert refused["subject"].tolist() == ["queue:web-agree"]
    assert site.store.adjudications("web-agree").empty


def test_an_adjudicator_settles_a_disagreement(site, disputed):
    page = site.page("carol")
    page.goto("/hitl/adjudicate?queue=web-agree")
    assert page.get_by_role("cell", name="looks fine").is_visible()
    site.shoot(page, "adjudicate")
    page.get_by_label("Note").fill("the record says yes")
    page.get_by_role("button", name="Settle item 0 as Yes").click()
    page.get_by_text("Item 0 is settled.").wait_for()
    assert page.get_by_text("No item of this queue waits for adjudication").is_visible()
    settled = site.store.adjudications("web-agree")
    assert settled[["item", "label", "user", "note"]].values.tolist() == [
        [0, "Yes", "carol", "the record says yes"]
    ]
    event = site.store.audit_events(action="adjudication.create").iloc[-1]
    assert (event["actor"], event["subject"]) == ("carol", "queue:web-agree/item:0")


def test_a_fairness_reviewer_signs_off_the_evidence_and_the_author_cannot(site, signoff_run):
    path = f"/hitl/signoff?run_id={signoff_run}&check=fairness"
    author = site.page("eng")
    author.goto(path)
    assert author.get_by_text(
        "You cannot sign off fairness: it needs the 'fairness-reviewer' role"
    ).is_visible()
    assert author.get_by_text("You are an author of this run (eng)").is_visible()
    assert author.get_by_role("button", name="Approve").is_disabled()

    page = site.page("fay")
    page.goto("/hitl/")
    # Home lists the run waiting for her sign-off (among other modules' runs on the session's server).
    page.locator(f'a[href="{path}"]').click()
    registration = site.store.audit_events(action="evidence.registered", subject=f"run:{signoff_run}")
    assert len(registration) == 1
    digest = page.locator(".digest").inner_text()
    assert len(digest) == 64 and page.get_by_role("row").filter(has_text="calibration").is_visible()
    assert page.locator(".plots img").count() >= 1
    page.wait_for_load_state("load")  # the plots, served by MLflow's own artifact route
    assert page.locator(".plots img").first.evaluate("img => img.complete && img.naturalWidth > 0")
    site.shoot(page, "signoff")
    page.get_by_label("Note").fill("groups within bounds")
    page.get_by_role("button", name="Approve").click()
    page.get_by_text("Your decision (approve) is recorded in the audit chain.").wait_for()
    signed = site.store.signoffs(signoff_run)
    assert signed[["check_name", "user", "decision", "note"]].values.tolist() == [
        ["fairness", "fay", "approve", "groups within bounds"]
    ]
    assert page.get_by_role("row").filter(has_text="groups within bounds").get_by_text("yes").is_visible()
    event = site.store.audit_event(int(signed["audit_seq"].iloc[0]))
    assert (event["actor"], event["action"]) == ("fay", "signoff.approve")
    assert site.store.verify_audit().ok


def test_a_user_name_with_script_is_shown_as_text(site):
    create_users(site.url, {XSS: "Xss-pass-word-123"}, admin=("admin", "Adm1n-pass-word!"))
    PASSWORDS[XSS] = "Xss-pass-word-123"
    page = site.page(XSS)
    page.goto("/hitl/")
    assert page.evaluate("window.__xss") is None
    assert page.get_by_text(XSS).first.is_visible()


def test_long_lists_are_paged_with_the_count_shown(site):
    """Queues and Adjudicate show a page of the list, say how much there is and link to the next page."""
    make_queue(site.store, "web-paged", pd.DataFrame({"age": range(5)}), raters=2)
    for position in range(5):  # five disagreements: five items wait for adjudication
        site.store.annotate("web-paged", position=position, user="alice", label="Yes")
        site.store.annotate("web-paged", position=position, user="bob", label="No")
    for n in range(3):
        make_queue(site.store, f"web-paged-{n}", pd.DataFrame({"age": [n]}))
    total = len(site.store.queues())  # at least five
    page = site.page("carol")
    page.goto("/hitl/queues?limit=2")
    assert page.get_by_text(f"showing 1–2 of {total:,}").is_visible()
    assert len(page.locator("tbody tr").all()) == 2
    page.get_by_role("link", name="next").click()
    page.get_by_text(f"showing 3–4 of {total:,}").wait_for()  # the next page has loaded
    assert "offset=2" in page.url and "limit=2" in page.url

    def shown(after_loading: str) -> list[str | None]:
        page.get_by_text(after_loading).wait_for()
        return [h.get_attribute("id") for h in page.locator("section h2").all()]

    page.goto("/hitl/adjudicate?queue=web-paged&limit=2")
    assert shown("showing 2 of more: items 0–1") == ["item-0", "item-1"]
    page.get_by_role("link", name="next").click()
    assert shown("showing 2 of more: items 2–3") == ["item-2", "item-3"]
    page.get_by_role("link", name="next").click()
    assert shown("showing 1 of 1: items 4–4") == ["item-4"]
    assert page.get_by_text("1 item(s) from item 4 on wait for a final label").is_visible()
    assert page.get_by_role("link", name="next").count() == 0
    page.get_by_role("link", name="first").click()
    assert shown("showing 2 of more: items 0–1") == ["item-0", "item-1"]
    page.goto("/hitl/queues?limit=many")
    assert page.get_by_text("'limit' must be a whole number, got 'many'").is_visible()


def test_the_run_description_links_to_its_evidence_page(site, signoff_run):
    with as_engineer(site):
        note = mlflow.MlflowClient().get_run(signoff_run).data.tags["mlflow.note.content"]
    link = f"{site.url}/hitl/signoff?run_id={signoff_run}"
    assert f"Evidence and sign-off: [{link}]({link})" in note
    page = site.page("fay")
    page.goto(link)
    assert page.locator("h1").inner_text().startswith("Sign off")
