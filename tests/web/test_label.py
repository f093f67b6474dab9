"""Labelling in the browser: clicks and keys, undo, skip, blind queues, escaping, CSRF, the audit chain."""

from __future__ import annotations

import time

import pandas as pd
import pytest
import requests
from flask import Flask

from hitl_support import SERVER_SECRET
from mlflow_hitl.adapter.pages._web import CSRF_LIFETIME_SECONDS, csrf_token

from .conftest import PASSWORDS, XSS, make_queue, press

pytestmark = pytest.mark.web


def _rows(n: int = 4) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": [23, 41, 35, 52][:n],
            "income": [41_250.5, 1_234_567.0, 88_000.25, 12.0][:n],
            "notes": ["short", "a long remark " * 30, "x", "y"][:n],
        }
    )


def test_a_reviewer_labels_three_items_by_click_and_by_keyboard(site):
    make_queue(site.store, "web-label", _rows())
    page = site.page("alice")
    page.goto("/hitl/queues")
    # This queue's row: the session's server holds other modules' queues too.
    page.get_by_role("row").filter(has_text="web-label").get_by_role("link", name="Label").click()
    page.get_by_role("button", name="Start labelling").click()
    assert page.get_by_role("heading", name="Item 0").is_visible()
    assert "1,234,567" not in page.content()  # item 0 is shown, not item 1
    assert "41,250.500" in page.content()  # numbers through mlflow_hitl._format.number
    site.shoot(page, "label")
    page.get_by_role("button", name="No", exact=True).click()  # by click
    page.get_by_role("heading", name="Item 1").wait_for()
    page.get_by_label("Comment").fill("odd income")
    page.get_by_label("Comment").blur()
    press(page, "2")  # by keyboard: the second class
    page.get_by_role("heading", name="Item 2").wait_for()
    press(page, "1")
    page.get_by_role("heading", name="Item 3").wait_for()
    assert page.get_by_text("Your label of item 2 is saved.").is_visible()

    labels = site.store.annotations("web-label")
    assert list(zip(labels["item"], labels["rater"], labels["label"], strict=True)) == [
        (0, "alice", "No"),
        (1, "alice", "Yes"),
        (2, "alice", "No"),
    ]
    assert labels["comment"].tolist()[1] == "odd income"
    assert set(labels["source"]) == {"web"}
    events = site.store.audit_events(action="annotation.create", actor="alice")
    assert [s for s in events["subject"] if s.startswith("queue:web-label/")] == [
        "queue:web-label/item:0",
        "queue:web-label/item:1",
        "queue:web-label/item:2",
    ]
    assert site.store.verify_audit().ok

    # Undo my last label: taken back in the store, recorded in the chain, the item shown again.
    press(page, "u")
    page.get_by_role("heading", name="Item 2").wait_for()
    assert list(site.store.annotations("web-label")["item"]) == [0, 1]
    withdrawn = site.store.audit_events(action="annotation.withdraw", actor="alice")
    assert withdrawn["subject"].tolist() == ["queue:web-label/item:2"]
    press(page, "2")
    page.get_by_role("heading", name="Item 3").wait_for()
    press(page, "s")  # skip: item 3 goes back, nothing is left for alice
    page.get_by_text("Nothing left for you in this queue").wait_for()
    assert site.store.annotations("web-label")["label"].tolist() == ["No", "Yes", "Yes"]


def test_a_blind_queue_never_shows_the_prediction_in_pages_or_requests(site):
    make_queue(site.store, "web-blind", _rows(2), blind=True, reason="uncertainty-pick", confidence=0.8765)
    page = site.page("bob")
    seen, urls = [], []  # the body of every answer the page got (read on the way through) and every URL

    def record(route):
        response = route.fetch(max_redirects=0)
        seen.append(response.text())
        route.fulfill(response=response)

    page.route("**/*", record)
    page.on("request", lambda request: urls.append(request.url))
    page.goto("/hitl/label?queue=web-blind")
    page.get_by_role("button", name="Start labelling").click()
    page.get_by_role("heading", name="Item 0").wait_for()
    seen.append(page.content())  # a page reached by a redirect is not routed: its document is read here
    site.shoot(page, "label-blind")
    press(page, "1")
    page.get_by_role("heading", name="Item 1").wait_for()
    seen.append(page.content())
    page.unroute_all(behavior="ignoreErrors")
    everything = "\n".join(seen)
    assert "41,250.500" in everything and "1,234,567" in everything  # the fields are there...
    for secret in ("0.876", "0.877", "0.123", "0.1235", "uncertainty-pick", "model says", "selected by"):
        assert secret not in everything, secret  # ...the model's answer, confidence, score and reason are not
    assert len(urls) >= 6 and not [u for u in urls if "/hitl/api/" in u]  # no API call from the browser
    assert site.store.annotations("web-blind")["rater"].tolist() == ["bob"]


def test_payloads_with_script_are_shown_as_text(site):
    rows = pd.DataFrame({XSS: [XSS], "plain": [f"value {XSS}"]})
    make_queue(site.store, "web-xss", rows)
    page = site.page("alice")
    page.goto("/hitl/label?queue=web-xss")
    page.get_by_role("button", name="Start labelling").click()
    page.get_by_role("heading", name="Item 0").wait_for()
    page.get_by_label("Comment").fill(XSS)
    page.get_by_role("button", name="No", exact=True).click()
    page.get_by_text("Nothing left for you in this queue").wait_for()
    page.goto("/hitl/label?queue=web-xss&item=0")
    assert page.evaluate("window.__xss") is None
    assert page.get_by_text(XSS).first.is_visible()  # the column name and the value, as text
    assert XSS not in page.content()  # escaped in the HTML source
    assert site.store.annotations("web-xss")["comment"].tolist() == [XSS]


def test_a_post_without_the_csrf_token_is_refused(site):
    make_queue(site.store, "web-csrf", _rows(1))
    answer = requests.post(
        f"{site.url}/hitl/label?queue=web-csrf",
        data={"action": "label", "position": "0", "label": "No"},
        auth=("alice", PASSWORDS["alice"]),
        timeout=60,
    )
    assert answer.status_code == 403
    assert "CSRF token" in answer.text
    forged = requests.post(
        f"{site.url}/hitl/label?queue=web-csrf",
        data={"action": "label", "position": "0", "label": "No", "csrf_token": "0" * 64},
        auth=("alice", PASSWORDS["alice"]),
        timeout=60,
    )
    assert forged.status_code == 403
    assert site.store.annotations("web-csrf").empty
    # Another user's token does not work either: it is bound to the user.
    bobs = requests.get(f"{site.url}/hitl/label?queue=web-csrf", auth=("bob", PASSWORDS["bob"]), timeout=60)
    token = bobs.text.split('name="csrf_token" value="')[1].split('"')[0]
    stolen = requests.post(
        f"{site.url}/hitl/label?queue=web-csrf",
        data={"action": "label", "position": "0", "label": "No", "csrf_token": token},
        auth=("alice", PASSWORDS["alice"]),
        timeout=60,
    )
    assert stolen.status_code == 403 and site.store.annotations("web-csrf").empty


def test_a_csrf_token_expires_and_its_refusal_is_audited(site):
    # A token leaked once (a log, a screenshot, a saved page) must not work forever.
    make_queue(site.store, "web-csrf-age", _rows(1))
    signer = Flask(__name__)
    signer.secret_key = SERVER_SECRET  # the server's: tokens built exactly as the server builds them
    now = int(time.time())
    with signer.app_context():
        expired = csrf_token("alice", issued=now - CSRF_LIFETIME_SECONDS - 60)
        bobs, fresh = csrf_token("bob", issued=now), csrf_token("alice", issued=now)

    def post(token):
        return requests.post(
            f"{site.url}/hitl/label?queue=web-csrf-age",
            data={"action": "label", "position": "0", "label": "No", "csrf_token": token},
            auth=("alice", PASSWORDS["alice"]),
            timeout=60,
            allow_redirects=False,
        )

    old = post(expired)
    assert old.status_code == 403 and "CSRF token has expired" in old.text
    assert post(bobs).status_code == 403
    assert post(fresh[:-1] + ("0" if fresh[-1] != "0" else "1")).status_code == 403
    assert site.store.annotations("web-csrf-age").empty
    refused = site.store.audit_events(action="page.refused", subject="page:label", actor="alice")
    assert len(refused) >= 3
    assert post(fresh).status_code == 303
    assert site.store.annotations("web-csrf-age")["label"].tolist() == ["No"]


def test_pages_carry_a_strict_content_security_policy(site):
    answer = requests.get(f"{site.url}/hitl/queues", auth=("nora", PASSWORDS["nora"]), timeout=60)
    assert answer.status_code == 200  # a user without any role reads the pages (basic-auth lets them through)
    csp = answer.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert answer.headers["X-Frame-Options"] in ("DENY", "SAMEORIGIN")  # MLflow's middleware may set its own
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert "<script>" not in answer.text and " style=" not in answer.text  # nothing inline
    assert requests.get(f"{site.url}/hitl/queues", timeout=60).status_code == 401


def test_a_generator_audit_asks_realism_and_reasons_and_hides_the_truth(site):
    from hitl_support import real_rows, resampled
    from mlflow_hitl.review import generator_audit_inputs, queue_generator_audit

    real = real_rows(200)
    queue_generator_audit(
        site.store,
        "web-audit",
        synthetic=resampled(real, 100),
        real=real,
        sensitive="sex",
        per_group=2,
        actor="eng",
    )
    page = site.page("alice")
    seen = []
    page.goto("/hitl/label?queue=web-audit")
    seen.append(page.content())
    page.get_by_role("button", name="Start labelling").click()
    page.get_by_role("heading", name="Item 0").wait_for()
    seen.append(page.content())
    site.shoot(page, "label-generator-audit")
    assert page.get_by_role("button", name="not realistic").is_visible()
    page.get_by_label("stereotyped").check()
    page.get_by_label("other").check()
    page.get_by_label("Comment").fill("too tidy")
    page.get_by_label("Comment").blur()
    page.get_by_label("other").focus()
    press(page, "2")  # a key answers with a ticked check box in focus
    page.get_by_role("heading", name="Item 1").wait_for()
    seen.append(page.content())
    page.get_by_role("button", name="realistic", exact=True).click()
    page.get_by_role("heading", name="Item 2").wait_for()
    everything = "\n".join(seen).lower()
    for secret in ("synthetic", "generator-audit", "selected by", "gold"):
        assert secret not in everything, secret
    _, judgements = generator_audit_inputs(site.store.queue_labels("web-audit"))
    assert judgements["label"].tolist() == ["not realistic", "realistic"]
    assert judgements["tags"].tolist() == [("stereotyped", "other"), ()]
    assert judgements["note"].tolist() == ["too tidy", None]
