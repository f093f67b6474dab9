"""The server's page addresses come from one place (``mlflow_hitl._urls``), and every link points at a served page."""

import re
from pathlib import Path

from mlflow_hitl._urls import PAGE_PREFIX, page_url, release_page
from mlflow_hitl.adapter.gate import gate_tag_text
from mlflow_hitl.adapter.pages import PAGES
from mlflow_hitl.gate import GateDecision

SERVED = {f"{PAGE_PREFIX}/{page.path}" for page in PAGES}
TEMPLATES = Path(__file__).resolve().parents[1] / "src" / "mlflow_hitl" / "adapter" / "pages" / "templates"


def test_page_urls_quote_their_query_and_leave_out_empty_values():
    assert (
        page_url("release", model="fraud model", version="7") == "/hitl/release?model=fraud+model&version=7"
    )
    assert page_url("audit", model=None, actor="") == "/hitl/audit"
    assert page_url("") == "/hitl/"


def test_the_gate_tag_links_to_the_release_page_the_server_serves():
    assert release_page("arrests", 2) == "/hitl/release?model=arrests&version=2"
    assert release_page("arrests", 2).split("?")[0] in SERVED
    decision = GateDecision(
        model_name="arrests",
        version="2",
        target="alias:champion",
        passed=True,
        requirements=(),
        policy_hash="0" * 64,
        evidence={},
        evidence_hash="0" * 64,
    )
    assert gate_tag_text(decision).endswith(f"details: {release_page('arrests', '2')}")


def test_templates_build_their_links_with_page_url():
    """No template writes a page's address by hand (the API's own paths are the API's)."""
    for template in TEMPLATES.glob("*.html"):
        hand_written = re.findall(r"""(?:href|src|action)="(/hitl[^"]*)\"""", template.read_text())
        assert hand_written == [], (template.name, hand_written)
