"""The pages under ``/hitl/`` end to end: the session's ``mlflow server --app-name hitl`` with basic auth and ONE
headless Chromium (the session's ``browser`` fixture, in ``tests/conftest.py``)
for every web test; each test opens a browser context per user.

Users (basic auth): ``alice`` and ``bob`` (reviewers), ``carol`` (adjudicator), ``fay``
(fairness-reviewer), ``eng`` (the ML engineer who made the run: no review role), ``nora`` (no role).
Queues are made in the store by ``eng``; every step under test is taken in the browser.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from hitl_support import log_run_with_evidence, mlflow_state_restored
from mlflow_hitl.review import ReviewStore

PASSWORDS = {
    "alice": "Alice-pass-word-1",
    "bob": "Bob-pass-word-12",
    "carol": "Carol-pass-word-1",
    "fay": "Fay-pass-word-123",
    "eng": "Eng-pass-word-123",
    "nora": "Nora-pass-word-12",
    "rita": "Rita-pass-word-1",
}
ROLES = {
    "alice": "reviewer",
    "bob": "reviewer",
    "carol": "adjudicator",
    "fay": "fairness-reviewer",
    "rita": "release-manager",
}
XSS = "<script>window.__xss=1</script>"
IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"


class Site:
    """The server, its review store, and browser pages signed in as one of the users."""

    def __init__(self, server, browser) -> None:
        self.url, self.store_uri, self.browser = server.url, server.store_uri, browser
        self.store = server.store()  # with the server's key: its events must not break the server's chain
        self.key_env = server.key_env
        self._contexts = []

    def page(self, user: str):
        """A fresh browser page signed in (basic auth) as ``user``."""
        context = self.browser.new_context(
            base_url=self.url,
            http_credentials={"username": user, "password": PASSWORDS[user]},
            viewport={"width": 1400, "height": 900},
        )
        self._contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        return page

    def shoot(self, page, name: str) -> None:
        """A screenshot for the docs, taken by the test run so it stays true."""
        IMAGES.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(IMAGES / f"web-{name}.png"), full_page=True)

    def close(self) -> None:
        for context in self._contexts:
            context.close()


@pytest.fixture(scope="session")
def site(browser, hitl_server_sqlite):
    """The session's shared SQLite server (see tests/conftest.py), with the web tests' users and roles."""
    hitl_server_sqlite.users(PASSWORDS)
    hitl_server_sqlite.roles({user: [role] for user, role in ROLES.items()})
    served = Site(hitl_server_sqlite, browser)
    served.admin = hitl_server_sqlite.admin
    yield served
    served.close()


def press(page, key: str) -> None:
    """Press ``key`` once the page's script has run (it is deferred: it runs before the load event)."""
    page.wait_for_load_state("load")
    page.keyboard.press(key)


def make_queue(
    store: ReviewStore,
    name: str,
    rows: pd.DataFrame,
    *,
    classes=("No", "Yes"),
    raters: int = 1,
    blind: bool = False,
    reason: str = "least-confidence",
    confidence: float = 0.61,
) -> None:
    """A queue of every row of ``rows``, made by ``eng``, with the model's answers."""
    selection = pd.DataFrame(
        {"row": range(len(rows)), "reason": reason, "score": [1 - confidence] * len(rows)}
    )
    store.create_queue(
        name,
        rows=rows,
        selection=selection,
        classes=list(classes),
        actor="eng",
        raters_per_item=raters,
        blind=blind,
        predictions=["Yes"] * len(rows),
        confidences=[confidence] * len(rows),
    )


@contextlib.contextmanager
def as_engineer(site):
    """MLflow's client and ours pointed at the server as ``eng`` for the block, as they were after it."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_USERNAME", "eng")
        patch.setenv("MLFLOW_TRACKING_PASSWORD", PASSWORDS["eng"])
        patch.setenv("MLFLOW_HITL_USER", "eng")
        patch.setenv("MLFLOW_HITL_STORE_URI", site.store_uri)
        for name, value in site.key_env.items():
            patch.setenv(name, value)
        patch.setenv("MLFLOW_TRACKING_URI", site.url)
        with mlflow_state_restored():
            mlflow.set_tracking_uri(site.url)
            mlflow.set_registry_uri(site.url)
            yield


@pytest.fixture(scope="session")
def signoff_run(site, arrests_model, arrests_split):
    """A run made by ``eng`` through the server, with calibration and fairness evidence registered."""
    synthetic, real, _ = arrests_split
    with as_engineer(site):
        mlflow.set_experiment("web-signoff")
        return log_run_with_evidence(arrests_model, synthetic, real, input_example=False)
