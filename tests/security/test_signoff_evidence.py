"""A sign-off approves the evidence its reviewer read, on SQLite and PostgreSQL.

The run's author ``eve`` re-registers her run's evidence (``POST /hitl/api/evidence/register``) between
the moment the release manager ``rita`` reads it and the moment she signs: the digest she read goes with
her sign-off (the page's hidden field, the API's ``evidence_sha256``, the Python store's and the CLI's
option), and the server refuses it, writing nothing. A sign-off of evidence since re-registered no
longer counts for the gate.
"""

import html
import json
import re

import pytest
from click.testing import CliRunner

from hitl_support import mlflow_state_restored
from mlflow_hitl.cli import cli
from mlflow_hitl.errors import InputError
from mlflow_hitl.review import HttpReviewStore

from .conftest import BACKENDS, PASSWORDS

pytestmark = pytest.mark.security
SERVER_BACKENDS = BACKENDS

REGISTER = "hitl/api/evidence/register"
SIGN = "hitl/api/signoffs/create"
RELEASE_POLICY = '[protect]\naliases = ["champion"]\n\n[[signoffs]]\ncheck = "release"\nrole = "release-manager"\ncount = 1\n'


def _register(api, run: dict, version: int) -> None:
    """``eve`` logs a summary of her own and has the server register it."""
    folder = run["artifact_uri"].removeprefix("mlflow-artifacts:/")
    summary = json.dumps({"checks": {}, "manifest": {}, "details": {"version": version}})
    put = api.call(
        "PUT", f"api/2.0/mlflow-artifacts/artifacts/{folder}/hitl/summary.json", "eve", data=summary
    )
    assert put.status_code == 200, put.text
    answer = api.post(REGISTER, {"run_id": run["run_id"]})
    assert answer.status_code == 200, answer.text


def _read_page(api, run_id: str) -> dict[str, str]:
    """What ``rita`` reads on the Sign off page: the digest shown, and the form's hidden fields."""
    page = api.call("GET", "hitl/signoff", "rita", params={"run_id": run_id, "check": "release"})
    assert page.status_code == 200, page.text
    hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text))
    shown = re.search(r'<p class="digest">([0-9a-f]{64})</p>', page.text).group(1)
    assert hidden["evidence_sha256"] == shown, hidden
    return {**hidden, "page": page.text}


def _nothing_signed(api, run_id: str) -> None:
    assert api.store.signoffs(run_id).empty
    assert api.events("signoff.approve", f"run:{run_id}/check:release").empty


def test_a_sign_off_of_evidence_re_registered_since_it_was_read_is_refused(api, monkeypatch):
    run = api.run("eve")
    run_id = run["run_id"]
    _register(api, run, 1)
    read = _read_page(api, run_id)
    _register(api, run, 2)  # eve, after rita opened the page
    expected = f"the evidence of run {run_id} changed since it was read"

    # The page: its form sends the digest rita read.
    form = {k: v for k, v in read.items() if k != "page"} | {"decision": "approve", "note": "looks right"}
    posted = api.call(
        "POST", "hitl/signoff", "rita", params={"run_id": run_id, "check": "release"}, data=form
    )
    assert expected in html.unescape(posted.text) and "read it again before signing" in posted.text
    _nothing_signed(api, run_id)

    # The API: one line, 400, nothing written.
    answer = api.post(
        SIGN,
        {"run_id": run_id, "check": "release", "approve": True, "evidence_sha256": read["evidence_sha256"]},
        "rita",
    )
    assert answer.status_code == 400, answer.text
    message = answer.json()["message"]
    assert message.startswith(expected) and message.endswith("; read it again before signing"), message
    assert "\n" not in message
    _nothing_signed(api, run_id)

    # The Python store and the CLI, as clients of the server.
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "rita")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", PASSWORDS["rita"])
    with pytest.raises(InputError, match=re.escape(expected)):
        HttpReviewStore(api.url).sign_off(
            run_id=run_id, check="release", user="rita", approve=True, evidence_sha256=read["evidence_sha256"]
        )
    monkeypatch.delenv("MLFLOW_HITL_STORE_URI", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", api.url)
    with mlflow_state_restored():
        import mlflow

        mlflow.set_tracking_uri(api.url)
        signed = CliRunner().invoke(
            cli,
            ["signoff", "--run-id", run_id, "--check", "release", "--approve"]
            + ["--evidence-sha256", read["evidence_sha256"]],
        )
    assert signed.exit_code == 2, signed.output
    assert expected in signed.output and "Traceback" not in signed.output
    _nothing_signed(api, run_id)
    assert api.events("api.refused", f"run:{run_id}/check:release").empty  # bad input, not a refused role

    # Read again, signed: the digest signed is in the sign-off's audit payload.
    again = _read_page(api, run_id)
    assert again["evidence_sha256"] != read["evidence_sha256"]
    answer = api.post(
        SIGN,
        {"run_id": run_id, "check": "release", "approve": True, "evidence_sha256": again["evidence_sha256"]},
        "rita",
    )
    assert answer.status_code == 200, answer.text
    event = api.events("signoff.approve", f"run:{run_id}/check:release").iloc[-1]
    assert json.loads(event["payload"])["evidence_sha256"] == again["evidence_sha256"]
    malformed = api.post(
        SIGN, {"run_id": run_id, "check": "release", "approve": True, "evidence_sha256": "abc"}, "rita"
    )
    assert malformed.status_code == 400 and "64 hex digits" in malformed.json()["message"], malformed.text


def test_a_sign_off_given_before_a_re_registration_no_longer_counts(api):
    run = api.run("eve")
    run_id = run["run_id"]
    _register(api, run, 1)
    name = api.fresh_name("signed")
    created = api.post("api/2.0/mlflow/registered-models/create", {"name": name})
    assert created.status_code == 200, created.text
    version = api.post(
        "api/2.0/mlflow/model-versions/create",
        {"name": name, "source": f"{run['artifact_uri']}/model", "run_id": run_id},
    )
    assert version.status_code == 200, version.text
    api.set_policy(name, RELEASE_POLICY)
    digest = _read_page(api, run_id)["evidence_sha256"]
    signed = api.post(
        SIGN, {"run_id": run_id, "check": "release", "approve": True, "evidence_sha256": digest}, "rita"
    )
    assert signed.status_code == 200, signed.text

    def release_requirement() -> dict:
        query = {"model": name, "version": "1", "target": "alias:champion"}
        shown = api.call("GET", "hitl/api/gate/decision", "rita", params=query)
        assert shown.status_code == 200, shown.text
        return next(r for r in shown.json()["decision"]["requirements"] if r["name"] == "signoff.release")

    assert release_requirement()["met"] is True
    _register(api, run, 2)  # new evidence: rita never saw it
    assert release_requirement()["met"] is False
    assert ">no</td>" in _read_page(api, run_id)["page"]  # the page says so too
