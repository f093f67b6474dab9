"""Team mode: the review store through `/hitl/api/` of one real `mlflow server --app-name hitl` with basic auth.

The server is the only door: every action is taken as the user basic-auth authenticated, whatever
name the client passes; refusals come back as our errors with the server's message and are audited;
what the HTTP client answers is what the SQL store behind the server holds.
"""

import contextlib
import os
import re
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import requests
from mlflow.server import get_app_client

from hitl_support import WITHOUT_MLFLOW_JOBS, basic_auth_env, mlflow_hitl_server, server_store
from mlflow_hitl.adapter.api import API_PREFIX, ROUTES, server_decision
from mlflow_hitl.adapter.review import store_for
from mlflow_hitl.errors import HitlError, InputError, NotFoundError, PermissionDeniedError
from mlflow_hitl.gate import decision_hash, parse_policy, policy_hash
from mlflow_hitl.review import AnnotationRecord, HttpReviewStore, ImportReport, ReviewStore

ADMIN = "admin"
PASSWORDS = {
    ADMIN: "Adm1n-pass-word!",
    "alice": "Alice-pass-word-1",
    "bob": "Bob-pass-word-12",
    "dana": "Dana-pass-word-1",
    "rita": "Rita-pass-word-1",
}
POLICY = """
[protect]
aliases = ["champion"]
[[signoffs]]
check = "fairness"
role = "fairness-reviewer"
count = 1
"""
ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def acting_as(user):
    """The credentials MLflow's client (and ours) read from the environment, for the block."""
    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")}
    os.environ.pop("MLFLOW_TRACKING_USERNAME", None)
    os.environ.pop("MLFLOW_TRACKING_PASSWORD", None)
    if user is not None:
        os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"] = user, PASSWORDS[user]
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def make_queue(store, name, *, n=4, k=2, blind=False, actor="mallory"):
    rows = pd.DataFrame({"age": np.arange(30.0, 30.0 + n), "colour": ["Black", "White"] * (n // 2)})
    rows.loc[1, "age"] = np.nan
    selection = pd.DataFrame(
        {"row": np.arange(n), "reason": ["least-confidence"] * n, "score": np.linspace(0.5, 0.2, n)}
    )
    return store.create_queue(
        name,
        rows=rows,
        selection=selection,
        classes=["No", "Yes"],
        actor=actor,  # over HTTP not sent: the server's authenticated user creates the queue
        raters_per_item=k,
        blind=blind,
        predictions=["Yes"] * n,
        confidences=np.full(n, 0.6),
        gold={0: "Yes"},
    )


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request, tmp_path_factory):
    """One server per review-store backend; the rest of the module runs against it."""
    folder = tmp_path_factory.mktemp("api")
    if request.param == "sqlite":
        store_uri = f"sqlite:///{folder / 'hitl.db'}"
    else:
        import psycopg

        pg = request.getfixturevalue("postgres_server")
        dsn = f"host={pg['host']} port={pg['port']} user=postgres dbname=postgres"
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{folder.name}"')
        store_uri = f"postgresql+psycopg://postgres@{pg['host']}:{pg['port']}/{folder.name}"
    env = {
        **os.environ,
        **basic_auth_env(folder, store_uri, admin=ADMIN, password=PASSWORDS[ADMIN], auth_cache_ttl=600),
        **WITHOUT_MLFLOW_JOBS,
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    with mlflow_hitl_server(
        f"sqlite:///{folder / 'mlflow.db'}",
        artifacts=folder / "artifacts",
        env=env,
        log_path=folder / "server.log",
    ) as url:
        for name, password in PASSWORDS.items():
            if name != ADMIN:
                created = requests.post(
                    f"{url}/api/2.0/mlflow/users/create",
                    json={"username": name, "password": password},
                    auth=(ADMIN, PASSWORDS[ADMIN]),
                    timeout=60,
                )
                assert created.status_code == 200, created.text
        yield {"url": url, "sql": server_store(folder, store_uri)}  # with the server's key and anchors


@pytest.fixture(scope="module")
def team(server):
    """Roles, a queue, a run and a registered model, set up through the API by the people who may."""
    url = server["url"]
    # Locally anyone may appoint the first admin; through the server only an MLflow admin.
    with (
        acting_as("alice"),
        pytest.raises(PermissionDeniedError, match="an MLflow admin of this server must"),
    ):
        HttpReviewStore(url).grant_role("alice", "admin", actor="alice")
    with acting_as(ADMIN):
        store = HttpReviewStore(url)
        store.grant_role(ADMIN, "admin", actor="ignored")
        store.grant_role("alice", "reviewer", actor="ignored")
        store.grant_role("dana", "fairness-reviewer", actor="ignored")
        store.grant_role("dana", "adjudicator", actor="ignored")
        make_queue(store, "q1")
        client = mlflow.MlflowClient(tracking_uri=url, registry_uri=url)
        run_id = client.create_run(experiment_id="0").info.run_id
        client.create_registered_model("fraud")
    return {"url": url, "sql": server["sql"], "run_id": run_id}


def _raw(team, method, route, *, auth=(ADMIN, PASSWORDS[ADMIN]), **kwargs):
    return requests.request(method, f"{team['url']}{API_PREFIX}/{route}", auth=auth, timeout=60, **kwargs)


def test_the_first_admin_was_appointed_by_the_mlflow_admin_and_the_attempt_before_is_on_record(team):
    events = team["sql"].audit_events(subject="user:alice")
    refused = events[events["action"] == "api.refused"]
    assert refused["actor"].tolist() == ["alice"] and "roles/grant" in refused["payload"].iloc[0]
    boot = team["sql"].audit_events(subject=f"user:{ADMIN}", action="role.grant")
    assert boot["actor"].tolist() == [ADMIN] and '"bootstrap":true' in boot["payload"].iloc[0]


def test_a_reviewer_labels_as_the_user_the_server_authenticated(team):
    with acting_as("alice"):
        store = HttpReviewStore(team["url"])
        item = store.next_item("q1", user="mallory")
        assert item.position == 0 and item.payload == {"age": 30.0, "colour": "Black"}
        store.annotate("q1", position=item.position, user="mallory", label="Yes", comment="clear")
    labels = team["sql"].annotations("q1")
    assert labels[["item", "rater", "label", "comment"]].values.tolist() == [[0, "alice", "Yes", "clear"]]
    event = team["sql"].audit_events(subject="queue:q1/item:0", action="annotation.create")
    assert event["actor"].tolist() == ["alice"]
    assert team["sql"].queue("q1").created_by == ADMIN  # the queue's creator, too, is who was authenticated


@pytest.mark.parametrize(
    ("route", "body"),
    [
        ("annotations/create", {"queue": "q1", "position": 1, "label": "No", "user": "dana"}),
        ("items/next", {"queue": "q1", "actor": "dana"}),
        ("signoffs/create", {"run_id": "x", "check": "fairness", "approve": True, "user": "dana"}),
    ],
    ids=["user-label", "actor-reserve", "user-signoff"],
)
def test_a_request_naming_its_own_actor_is_refused(team, route, body):
    answer = _raw(team, "POST", route, json=body, auth=("bob", PASSWORDS["bob"]))
    assert answer.status_code == 400
    assert answer.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "acts as the authenticated user" in answer.json()["message"]
    assert team["sql"].audit_events(actor="dana", action="annotation").empty


def test_a_non_admin_cannot_grant_roles(team):
    with (
        acting_as("bob"),
        pytest.raises(PermissionDeniedError, match=r"^bob cannot grant roles: needs the 'admin' role"),
    ):
        HttpReviewStore(team["url"]).grant_role("bob", "release-manager", actor=ADMIN)
    assert team["sql"].roles("bob").empty
    refused = team["sql"].audit_events(subject="user:bob", action="api.refused")
    assert refused["actor"].tolist() == ["bob"]


def test_a_fairness_signoff_without_the_role_is_refused_audited_and_not_recorded(team):
    run_id = team["run_id"]
    with (
        acting_as("rita"),
        pytest.raises(
            PermissionDeniedError, match="rita cannot sign off fairness: needs the 'fairness-reviewer'"
        ),
    ):
        HttpReviewStore(team["url"]).sign_off(run_id=run_id, check="fairness", user="dana", approve=True)
    assert team["sql"].signoffs(run_id).empty
    refused = team["sql"].audit_events(subject=f"run:{run_id}/check:fairness", action="api.refused")
    assert refused["actor"].tolist() == ["rita"]
    with acting_as("dana"):
        record = HttpReviewStore(team["url"]).sign_off(
            run_id=run_id, check="fairness", user="rita", approve=True
        )
    assert record["user"] == "dana" and record["decision"] == "approve"
    assert team["sql"].signoffs(run_id)["user"].tolist() == ["dana"]
    with acting_as("dana"), pytest.raises(NotFoundError, match="unknown MLflow run 'no-such-run'"):
        HttpReviewStore(team["url"]).sign_off(
            run_id="no-such-run", check="fairness", user="dana", approve=True
        )


def test_unauthenticated_requests_get_401_and_authenticated_non_admins_get_through(team):
    for method, route, body in (
        ("GET", "queues/list", None),
        ("GET", "audit/events", None),
        ("POST", "annotations/create", {"queue": "q1", "position": 2, "label": "No"}),
        ("POST", "roles/grant", {"user": "rita", "role": "admin"}),
    ):
        assert _raw(team, method, route, json=body, auth=None).status_code == 401, route
        assert _raw(team, method, route, json=body, auth=("bob", "wrong-password")).status_code == 401, route
    with acting_as(None), pytest.raises(PermissionDeniedError, match="did not accept the credentials"):
        HttpReviewStore(team["url"]).queues()
    # basic-auth fails closed on routes it has no validator for; ours authorize inside and are declared so.
    listed = _raw(team, "GET", "queues/list", auth=("bob", PASSWORDS["bob"]))
    assert listed.status_code == 200 and listed.headers["X-MLflow-Hitl-API"] == "1"
    assert [q["name"] for q in listed.json()["queues"]][:1] == ["q1"]


def test_bad_input_comes_back_as_our_errors_with_the_servers_message(team):
    with acting_as("alice"):
        store = HttpReviewStore(team["url"])
        with pytest.raises(
            InputError, match=r"^label 'Maybe' is not one of the queue's classes: \['No', 'Yes'\]$"
        ):
            store.annotate("q1", position=3, user="alice", label="Maybe")
        with pytest.raises(NotFoundError, match="^unknown queue 'nope'; known queues: q1"):
            store.queue("nope")
        with pytest.raises(NotFoundError, match="queue 'q1' has no item 99"):
            store.annotate("q1", position=99, user="alice", label="No")
        with pytest.raises(PermissionDeniedError, match="a client cannot append them"):
            store.record_event(actor="alice", action="signoff.approve", subject="run:x", payload={})
    cases = [
        ("GET", "annotations/create", {}, 405, "annotations/create takes POST only"),
        ("POST", "annotations/create", {"data": "queue=q1"}, 400, "Content-Type: application/json"),
        ("POST", "annotations/create", {"json": ["q1"]}, 400, "must be a JSON object"),
        (
            "POST",
            "annotations/create",
            {"json": {"queue": "q1", "position": "two", "label": "No"}},
            400,
            "whole number",
        ),
        (
            "GET",
            "items/list",
            {"params": {"queue": "q1", "limit": 0}},
            400,
            "'limit' must be a whole number ≥ 1",
        ),
        ("GET", "queues/get", {"params": {}}, 400, "'queue' is required"),
    ]
    for method, route, kwargs, status, message in cases:
        answer = _raw(team, method, route, auth=("alice", PASSWORDS["alice"]), **kwargs)
        assert answer.status_code == status, (route, answer.text)
        assert message in answer.json()["message"]
        assert "Traceback" not in answer.text


def test_every_action_goes_through_with_the_stores_rules(team):
    url, sql = team["url"], team["sql"]
    with acting_as("dana"):
        store = HttpReviewStore(url)
        blind = make_queue(store, "blind", n=2, k=1, blind=True)
        assert blind.blind and blind.created_by == "dana" and blind.classes == ("No", "Yes")
        item = store.next_item("blind", user="x")
        assert item.prediction is None and item.confidence is None  # nor over the wire
        store.release("blind", position=item.position, user="x")
        assert store.next_item("blind", user="x", exclude=[0]).position == 1
        labels = [AnnotationRecord(1, "carol", "No"), AnnotationRecord(1, "erin", "Yes")]
        # An import records each label as its rater's act: for others' labels, an admin must vouch.
        with pytest.raises(
            PermissionDeniedError, match=r"dana cannot import labels given by others \(carol, erin\)"
        ):
            store.import_annotations("q1", labels, actor="x", source="label-studio")
        own = store.import_annotations("q1", [AnnotationRecord(2, "dana", "No")], actor="x", source="csv")
        assert (own.added, own.unchanged) == (1, 0)
    with acting_as(ADMIN):
        store = HttpReviewStore(url)
        report = store.import_annotations("q1", labels, actor="x", source="label-studio")
        assert (report.added, report.unchanged) == (2, 0)
        assert store.import_annotations("q1", labels[:1], actor="x", source="csv").unchanged == 1
    with acting_as("dana"):
        store = HttpReviewStore(url)
        store.adjudicate("q1", position=1, user="x", label="No", note="second look")
        with pytest.raises(InputError, match="item 1 of queue 'q1' is already adjudicated"):
            store.adjudicate("q1", position=1, user="x", label="Yes")
    assert sql.adjudications("q1")[["item", "user", "note"]].values.tolist() == [[1, "dana", "second look"]]
    assert sql.audit_events(subject="queue:q1", action="annotation.import")["actor"].tolist() == [
        "dana",
        ADMIN,
    ]
    with acting_as(ADMIN):
        store = HttpReviewStore(url)
        store.grant_role("rita", "release-manager", actor="x")
        store.revoke_role("rita", "release-manager", actor="x")
        assert sql.roles("rita").empty
        record = store.record_snapshot(
            "q1",
            snapshot_id="s1",
            run_id=team["run_id"],
            method="majority",
            n_items=1,
            labels_sha256="a" * 64,
            manifest_sha256="b" * 64,
            actor="x",
        )
        assert record["created_by"] == ADMIN and record["audit_seq"] == sql.audit_head()[0]
        expected_hash = policy_hash(parse_policy(POLICY))
        with pytest.raises(InputError, match="is not the hash of the policy text sent"):
            store.set_policy("fraud", policy=POLICY, policy_hash="0" * 64, actor="x")
        stored = store.set_policy("fraud", policy=POLICY, policy_hash=expected_hash, actor="x")
        assert stored["set_by"] == ADMIN and stored["policy_hash"] == expected_hash
        with pytest.raises(InputError, match="line"):
            store.set_policy("fraud", policy="[protect\n", policy_hash="0", actor="x")
        with pytest.raises(NotFoundError, match="unknown registered model 'ghost'"):
            store.set_policy("ghost", policy=POLICY, policy_hash=expected_hash, actor="x")
    with acting_as("alice"), pytest.raises(PermissionDeniedError, match="needs the 'admin' role"):
        HttpReviewStore(url).set_policy("fraud", policy=POLICY, policy_hash=expected_hash, actor=ADMIN)
    assert sql.policy("fraud")["version"] == 1


READS = {
    "queues": lambda s: s.queues(),
    "queue": lambda s: s.queue("q1"),
    "progress": lambda s: s.progress("q1"),
    "items": lambda s: s.items("q1"),
    "items-page": lambda s: s.items("q1", offset=1, limit=2),
    "gold": lambda s: s.gold("q1"),
    "annotations": lambda s: s.annotations("q1"),
    "annotations-page": lambda s: s.annotations("q1", offset=1, limit=2),
    "adjudications": lambda s: s.adjudications("q1"),
    "roles": lambda s: s.roles(),
    "roles-of": lambda s: s.roles("dana"),
    "signoffs": lambda s: s.signoffs(),
    "snapshots": lambda s: s.snapshots("q1"),
    "policy": lambda s: s.policy("fraud"),
    "no-policy": lambda s: s.policy("ghost"),
    "audit-head": lambda s: s.audit_head(),
    "audit-event": lambda s: s.audit_event(2),
    "no-audit-event": lambda s: s.audit_event(10**9),
    "audit-events": lambda s: s.audit_events(),
    "audit-filtered": lambda s: s.audit_events(subject="queue:q1", action="annotation", limit=2),
    "audit-page": lambda s: s.audit_events(after_seq=3, limit=12_000),
    "verify": lambda s: s.verify_audit(),
}


@pytest.mark.parametrize("read", list(READS), ids=list(READS))
def test_every_read_answers_what_the_sql_store_holds(team, read):
    with acting_as("bob"):  # any authenticated user reads, as locally
        over_http = READS[read](HttpReviewStore(team["url"]))
    direct = READS[read](team["sql"])
    if isinstance(direct, pd.DataFrame):
        pd.testing.assert_frame_equal(over_http, direct, check_dtype=False)
    else:
        assert over_http == direct


def test_the_audit_chain_verifies_through_the_server(team):
    with acting_as("bob"):
        verification = HttpReviewStore(team["url"]).verify_audit(incremental=True)
    assert verification.ok and verification.problem is None
    assert (verification.head_seq, verification.head_hash) == team["sql"].audit_head()


def test_long_lists_are_paged(team):
    seqs, after = [], 0
    while after is not None:
        page = _raw(team, "GET", "audit/events", params={"after_seq": after, "limit": 3}).json()
        assert len(page["events"]) <= 3
        seqs += [e["seq"] for e in page["events"]]
        after = page["next_after_seq"]
    assert seqs == team["sql"].audit_events()["seq"].tolist()
    positions, offset = [], 0
    while offset is not None:
        page = _raw(team, "GET", "items/list", params={"queue": "q1", "offset": offset, "limit": 3}).json()
        positions += [i["position"] for i in page["items"]]
        offset = page["next_offset"]
    assert positions == [0, 1, 2, 3]
    with acting_as("bob"):
        assert HttpReviewStore(team["url"]).audit_events(limit=4)["seq"].tolist() == [1, 2, 3, 4]


def test_the_store_follows_the_tracking_uri_to_the_server(team, tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_HITL_STORE_URI", raising=False)
    assert isinstance(store_for(team["url"]), HttpReviewStore)
    assert isinstance(store_for("sqlite:///x.db", store_uri=team["url"]), HttpReviewStore)
    local = store_for(team["url"], store_uri=f"sqlite:///{tmp_path / 'own.db'}")
    assert isinstance(local, ReviewStore)
    assert store_for(f"sqlite:///{tmp_path / 'mlflow.db'}").url == f"sqlite:///{tmp_path / 'hitl.db'}"
    monkeypatch.setenv("MLFLOW_HITL_STORE_URI", team["url"])
    assert isinstance(store_for(f"sqlite:///{tmp_path / 'mlflow.db'}"), HttpReviewStore)


def test_a_server_path_without_the_plugin_says_so(team):
    # The same MLflow server, at a path where no mlflow-hitl API answers.
    with (
        acting_as(ADMIN),
        pytest.raises(HitlError, match=r"does not run the mlflow-hitl plugin: start it with"),
    ):
        HttpReviewStore(team["url"] + "/elsewhere").queues()
    with (
        acting_as("bob"),
        pytest.raises(PermissionDeniedError, match="refused the request before it reached mlflow-hitl"),
    ):
        HttpReviewStore(team["url"] + "/elsewhere").queues()
    with pytest.raises(InputError, match="starts with http:// or https://"):
        HttpReviewStore("ftp://example.com")


def test_every_route_is_documented():
    text = (ROOT / "docs" / "api.md").read_text()
    for route in ROUTES:
        assert re.search(rf"^### `{route.method} /hitl/api/{re.escape(route.path)}`", text, re.MULTILINE), (
            route.path
        )


class AsEachUser:
    """The HTTP store, each call made with the credentials of the user it names (``user=`` or ``actor=``),
    so one test body, written with names as for the SQL store, runs against the server too."""

    def __init__(self, url):
        self._store = HttpReviewStore(url)

    def __getattr__(self, name):
        method = getattr(self._store, name)

        def call(*args, **kwargs):
            with acting_as(kwargs.get("user") or kwargs.get("actor") or "bob"):
                return method(*args, **kwargs)

        return call


@pytest.fixture(params=["sql", "http"])
def any_store(request, team):
    return team["sql"] if request.param == "sql" else AsEachUser(team["url"])


def test_on_both_stores_no_reviewer_gets_an_item_twice_and_no_item_more_than_k(any_store, request):
    name = f"k-{request.node.callspec.id}"
    make_queue(any_store, name, n=4, k=2, actor="dana")
    seen = []
    while (item := any_store.next_item(name, user="alice")) is not None:
        seen.append(item.position)
        any_store.annotate(name, position=item.position, user="alice", label="Yes")
    assert seen == [0, 1, 2, 3]
    for user in ("bob", "dana"):
        while (item := any_store.next_item(name, user=user)) is not None:
            any_store.annotate(
                name, position=item.position, user=user, label="No" if user == "bob" else "Yes"
            )
    assert any_store.annotations(name).groupby("item")["rater"].nunique().tolist() == [2, 2, 2, 2]
    assert any_store.next_item(name, user="rita") is None
    with pytest.raises(InputError, match=f"item 0 of queue '{name}' already has its 2 label"):
        any_store.annotate(name, position=0, user="rita", label="Yes")
    with pytest.raises(InputError, match="alice has already labelled item 0"):
        any_store.annotate(name, position=0, user="alice", label="No")


def test_on_both_stores_reservations_spread_and_a_skip_releases(any_store, request):
    name = f"skip-{request.node.callspec.id}"
    make_queue(any_store, name, n=2, k=1, actor="dana")
    first = any_store.next_item(name, user="alice")
    second = any_store.next_item(name, user="bob")
    assert first.position != second.position
    assert any_store.next_item(name, user="dana") is None
    any_store.release(name, position=first.position, user="alice")
    assert any_store.next_item(name, user="dana").position == first.position


def test_on_both_stores_consensus_reads_the_same_labels(any_store, request):
    from mlflow_hitl.review import queue_consensus

    name = f"consensus-{request.node.callspec.id}"
    make_queue(any_store, name, n=2, k=2, actor="dana")
    for user, labels in (("alice", ["Yes", "No"]), ("bob", ["Yes", "Yes"])):
        for position, label in enumerate(labels):
            any_store.annotate(name, position=position, user=user, label=label)
    result = queue_consensus(any_store, name)
    assert result.labels.loc[0, "label"] == "Yes" and result.labels.loc[0, "agreement"] == 1.0
    assert result.pending == (1,)  # a tie goes to adjudication
    any_store.adjudicate(name, position=1, user="dana", label="No")
    assert queue_consensus(any_store, name).labels.loc[1, ["label", "source"]].tolist() == [
        "No",
        "adjudicated",
    ]


def test_the_cli_follows_the_tracking_uri_to_the_server(team, monkeypatch):
    from click.testing import CliRunner

    from mlflow_hitl.cli import cli

    monkeypatch.delenv("MLFLOW_HITL_STORE_URI", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", team["url"])
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(team["url"])
    runner = CliRunner()
    try:
        with acting_as("alice"):
            signed = runner.invoke(
                cli,
                [
                    "signoff",
                    "--run-id",
                    team["run_id"],
                    "--check",
                    "calibration",
                    "--approve",
                    "--user",
                    "dana",
                ],
            )
            assert signed.exit_code == 0, signed.output
            assert signed.output.startswith("alice (reviewer) approved calibration of run")
            refused = runner.invoke(cli, ["roles", "grant", "alice", "admin", "--user", ADMIN])
            assert (
                refused.exit_code == 2
                and "alice cannot grant roles: needs the 'admin' role" in refused.output
            )
            assert "Traceback" not in refused.output
            verified = runner.invoke(cli, ["audit", "verify"])
            assert verified.exit_code == 0 and verified.output.startswith("audit chain intact")
    finally:
        mlflow.set_tracking_uri(previous)
    assert team["sql"].signoffs(team["run_id"]).query("check_name == 'calibration'")["user"].tolist() == [
        "alice"
    ]


def test_the_server_decides_the_gate_and_records_it_only_when_asked(team):
    with acting_as(ADMIN):
        client = mlflow.MlflowClient(tracking_uri=team["url"], registry_uri=team["url"])
        client.create_registered_model("gated")
        client.create_model_version("gated", source=f"runs:/{team['run_id']}/model", run_id=team["run_id"])
        store = HttpReviewStore(team["url"])
        store.set_policy("gated", policy=POLICY, policy_hash=policy_hash(parse_policy(POLICY)), actor="x")
    query = {"model": "gated", "version": 1, "target": "alias:champion"}
    shown = _raw(team, "GET", "gate/decision", params=query, auth=("bob", PASSWORDS["bob"]))
    assert shown.status_code == 200, shown.text
    decision = shown.json()["decision"]
    assert decision["passed"] is False and decision["target"] == "alias:champion"
    unmet = [r["name"] for r in decision["requirements"] if not r["met"]]
    assert unmet and unmet[0] in shown.json()["summary"]  # the run has no evidence logged, for one
    assert shown.json()["summary"].startswith("gated version 1 -> alias:champion: blocked")
    assert (
        team["sql"].audit_events(subject="model:gated/1", action="gate.check").empty
    )  # showing is not recording
    checked = _raw(team, "POST", "gate/check", json=query, auth=("bob", PASSWORDS["bob"]))
    assert checked.status_code == 200 and checked.json()["decision"]["evidence_hash"]
    events = team["sql"].audit_events(subject="model:gated/1", action="gate.check")
    assert events["actor"].tolist() == ["bob"]
    with acting_as("rita"):
        decision = server_decision(HttpReviewStore(team["url"]), "gated", 1, "alias:champion", record=True)
    assert not decision.passed and [r.name for r in decision.unmet()] == unmet
    assert decision_hash(decision.to_dict()) == decision.evidence_hash
    assert team["sql"].audit_events(subject="model:gated/1", action="gate.check")["actor"].tolist() == [
        "bob",
        "rita",
    ]
    missing = _raw(team, "GET", "gate/decision", params={**query, "version": 9})
    assert (
        missing.status_code == 404 and "unknown model version 'gated' version 9" in missing.json()["message"]
    )
    wrong = _raw(team, "GET", "gate/decision", params={**query, "target": "champion"})
    assert wrong.status_code == 400 and "alias:NAME or stage:NAME" in wrong.json()["message"]


def test_the_gate_of_a_model_the_caller_may_not_read_is_neither_shown_nor_recorded(team):
    """A decision shows the version's run, metrics and signers, and recording it tags the version: MLflow's
    own permissions on the registered model decide who may ask, as for ``registered-models/get``."""
    with acting_as(ADMIN):
        client = mlflow.MlflowClient(tracking_uri=team["url"], registry_uri=team["url"])
        client.create_registered_model("secret")
        client.create_model_version("secret", source=f"runs:/{team['run_id']}/model", run_id=team["run_id"])
        auth = get_app_client("basic-auth", tracking_uri=team["url"])
        auth.grant_user_permission("bob", "registered_model", "secret", "DENY")
    bob = ("bob", PASSWORDS["bob"])
    mlflows_answer = requests.get(
        f"{team['url']}/api/2.0/mlflow/registered-models/get", params={"name": "secret"}, auth=bob, timeout=60
    )
    assert mlflows_answer.status_code == 403  # MLflow refuses bob the model itself
    query = {"model": "secret", "version": 1, "target": "alias:champion"}
    shown = _raw(team, "GET", "gate/decision", params=query, auth=bob)
    checked = _raw(team, "POST", "gate/check", json=query, auth=bob)
    for refused in (shown, checked):
        assert refused.status_code == 403, refused.text
        assert refused.json()["message"] == (
            "bob cannot see the gate of 'secret': needs permission to read the registered model"
        )
        assert "decision" not in refused.json()
    assert team["sql"].audit_events(subject="model:secret/1", action="gate.check").empty
    with acting_as(ADMIN):
        assert not any(k.startswith("hitl.") for k in client.get_model_version("secret", "1").tags)
    # Whoever may read it (here by the server's default permission) is answered, and recorded when asked.
    for user in ("alice", ADMIN):
        answered = _raw(team, "POST", "gate/check", json=query, auth=(user, PASSWORDS[user]))
        assert answered.status_code == 200 and answered.json()["decision"]["model_name"] == "secret"
    recorded = team["sql"].audit_events(subject="model:secret/1", action="gate.check")["actor"].tolist()
    assert recorded == ["alice", ADMIN]
    # The lineage page of the version names its run, raters and signers: the same permission.
    page = f"{team['url']}/hitl/lineage"
    refused = requests.get(page, params={"model": "secret", "version": 1}, auth=bob, timeout=60)
    assert (
        refused.status_code == 403
        and "you may not read the registered model &#39;secret&#39;" in refused.text
    )
    shown = requests.get(
        page, params={"model": "secret", "version": 1}, auth=("alice", PASSWORDS["alice"]), timeout=60
    )
    assert shown.status_code == 200 and team["run_id"] in shown.text


def test_the_signoff_page_shows_a_runs_evidence_only_to_whoever_may_read_the_run(team):
    """MLflow's permission on the run's experiment decides, as for ``runs/get``; an admin reads anything."""
    with acting_as(ADMIN):
        client = mlflow.MlflowClient(tracking_uri=team["url"])
        experiment = client.create_experiment("closed-experiment")
        run = client.create_run(experiment)
        client.log_metric(run.info.run_id, "hitl.calibration.ece", 0.0123)
        get_app_client("basic-auth", tracking_uri=team["url"]).grant_user_permission(
            "bob", "experiment", experiment, "DENY"
        )
    page, query = f"{team['url']}/hitl/signoff", {"run_id": run.info.run_id}
    bob = ("bob", PASSWORDS["bob"])
    assert (
        requests.get(f"{team['url']}/api/2.0/mlflow/runs/get", params=query, auth=bob, timeout=60).status_code
        == 403
    )
    refused = requests.get(page, params=query, auth=bob, timeout=60)
    assert refused.status_code == 403, refused.text
    assert f"you may not read run &#39;{run.info.run_id}&#39; in MLflow" in refused.text
    assert "closed-experiment" not in refused.text
    for user in ("alice", ADMIN):
        shown = requests.get(page, params=query, auth=(user, PASSWORDS[user]), timeout=60)
        assert shown.status_code == 200 and run.info.run_id in shown.text


def test_the_cli_checks_and_promotes_through_the_server_which_decides(team, monkeypatch):
    """In team mode `gate check` shows the server's decision and `gate promote` asks the server's guard:
    both as the authenticated user, never as `--user`, and the refusal carries the unmet requirements."""
    from click.testing import CliRunner

    from mlflow_hitl.cli import cli

    with acting_as(ADMIN):
        client = mlflow.MlflowClient(tracking_uri=team["url"], registry_uri=team["url"])
        client.create_registered_model("gated-cli")
        client.create_model_version(
            "gated-cli", source=f"runs:/{team['run_id']}/model", run_id=team["run_id"]
        )
        HttpReviewStore(team["url"]).set_policy(
            "gated-cli", policy=POLICY, policy_hash=policy_hash(parse_policy(POLICY)), actor="x"
        )
    monkeypatch.delenv("MLFLOW_HITL_STORE_URI", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", team["url"])
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(team["url"])
    runner = CliRunner()
    try:
        with acting_as("rita"):
            checked = runner.invoke(cli, ["gate", "check", "models:/gated-cli/1", "--target", "Champion"])
            promoted = runner.invoke(
                cli, ["gate", "promote", "gated-cli", "1", "--alias", "champion", "--user", "dana"]
            )
    finally:
        mlflow.set_tracking_uri(previous)
    assert checked.exit_code == 1 and "gated-cli version 1 → alias:champion: BLOCKED" in checked.output
    assert promoted.exit_code == 1 and "UNMET" in promoted.output, promoted.output
    events = team["sql"].audit_events(subject="model:gated-cli/1")
    assert events.query("action == 'gate.check'")["actor"].tolist() == ["rita"]
    assert events.query("action == 'promotion.refused'")["actor"].tolist() == ["rita"]
    with acting_as(ADMIN):
        aliases = mlflow.MlflowClient(tracking_uri=team["url"]).get_registered_model("gated-cli").aliases
    assert "champion" not in aliases


def test_on_both_stores_a_production_queue_grows_once_per_request_id(any_store, request):
    name = f"grow-{request.node.callspec.id}"
    make_queue(any_store, name, n=2, k=1, actor="dana")
    rows = pd.DataFrame({"age": [50.0, 51.0, np.nan], "colour": ["Black", "White", "Black"]})
    batch = {
        "rows": rows,
        "selection": pd.DataFrame({"row": [0, 2], "reason": ["least-confidence", "random-control"]}),
        "request_ids": ["req-a", "req-b", "req-c"],
        "predictions": ["No", "Yes", "No"],
        "confidences": [0.55, 0.9, 0.51],
        "actor": "dana",
    }
    assert any_store.append_items(name, **batch) == ImportReport(added=2, unchanged=0)
    assert any_store.append_items(name, **batch) == ImportReport(added=0, unchanged=2)
    items = any_store.items(name)
    assert [(i.position, i.row_key, i.reason) for i in items[2:]] == [
        (2, "req-a", "least-confidence"),
        (3, "req-c", "random-control"),
    ]
    assert items[3].payload == {"age": None, "colour": "Black"} and items[3].prediction == "No"
    appended = any_store.audit_events(subject=f"queue:{name}", action="queue.append")
    assert appended["actor"].tolist() == ["dana"]  # over HTTP: the user the server authenticated
