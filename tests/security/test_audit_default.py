"""A team server keys and anchors its audit chain by default, with state it holds outside the database.

The session's shared servers are started with no key and no anchor path (only ``MLFLOW_HITL_SERVER_HOME``,
a folder of the test's own): their chains are signed with the key the server generated, so a database
operator's re-chain or dropped tail, done with SQL on the real store, shows in ``audit verify`` run through
the server's API. Each attack is undone afterwards: the other tests share the chain. The key file's own
rules (created once, 0600, one winner of a race, a folder that cannot be written) are tested directly.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import threading
from pathlib import Path

import mlflow
import pytest
import requests
from click.testing import CliRunner

from mlflow_hitl.adapter.server_home import ensure_key_file, store_folder, use_server_home
from mlflow_hitl.cli import cli
from mlflow_hitl.review import ANCHOR_PATH_ENV, KEY_ENV, KEY_FILE_ENV, AuditKeyring
from review.test_keyed_store import _rechain, _rewrite, _rows

ADMIN, PASSWORD = "admin", "Adm1n-pass-word!"


@pytest.fixture(params=["sqlite", "postgresql"])
def shared(request, monkeypatch):
    """The shared server of each backend; the CLI here is its client (team mode), as its admin."""
    server = request.getfixturevalue(f"hitl_server_{request.param}")
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", ADMIN)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", PASSWORD)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
    monkeypatch.delenv("MLFLOW_HITL_STORE_URI", raising=False)
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(server.url)
    yield server
    mlflow.set_tracking_uri(previous)


def _verify_through_server() -> tuple[int, dict]:
    result = CliRunner().invoke(cli, ["audit", "verify", "--format", "json"])
    return result.exit_code, json.loads(result.output)


@pytest.fixture
def chain(shared):
    """The server's store opened with its key, and its events as they are; put back after the test."""
    store = shared.store()
    # Events written through the server, a fresh head to attack: the authors of runs it created.
    for _ in range(2):
        created = requests.post(
            f"{shared.url}/api/2.0/mlflow/runs/create",
            json={"experiment_id": "0"},
            auth=(ADMIN, PASSWORD),
            timeout=60,
        )
        assert created.status_code == 200, created.text
    before = _rows(store)
    assert before[-1]["action"] == "identity.run_created" and before[-1]["actor"] == ADMIN
    yield store, before
    _rewrite(store, before)
    assert _verify_through_server()[0] == 0
    store.close()


def test_events_written_through_the_server_are_signed_with_its_own_key_and_a_rechain_shows(shared, chain):
    store, rows = chain
    key_file = Path(shared.key_env[KEY_FILE_ENV])
    key = AuditKeyring.parse(key_file.read_text())
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert rows[-1]["key_id"] == key.current_id
    code, intact = _verify_through_server()
    assert code == 0 and intact["ok"] and key.current_id in intact["key_ids"]

    # The operator names someone else as the run's author and re-chains from there, without the key.
    edited = [{**r, "payload": r["payload"].replace(ADMIN, "mallory")} if r is rows[-1] else r for r in rows]
    _rewrite(store, _rechain(edited, rows[-1]["seq"], None))
    code, broken = _verify_through_server()
    assert code == 1 and broken["first_bad_seq"] == rows[-1]["seq"]
    assert "without the audit key" in broken["problem"]


def test_the_anchor_log_defaults_beside_the_key_and_a_dropped_tail_shows(shared, chain):
    store, rows = chain
    anchors = Path(shared.key_env[ANCHOR_PATH_ENV])
    assert anchors.parent == Path(shared.key_env[KEY_FILE_ENV]).parent
    anchored = json.loads(anchors.read_text().splitlines()[-1])
    assert anchored["key_id"] == rows[-1]["key_id"]  # signed with the server's key

    _rewrite(store, [r for r in rows if r["seq"] < anchored["seq"]])  # the tail dropped, the head moved
    code, broken = _verify_through_server()
    assert code == 1 and not broken["ok"]
    assert "missing" in broken["problem"]


def test_the_key_file_is_made_once_private_and_reused(tmp_path):
    path = tmp_path / "home" / "store" / "audit.key"
    assert ensure_key_file(path) == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first = path.read_text()
    key = AuditKeyring.parse(first)
    assert len(key.keys[key.current_id]) == 64  # secrets.token_hex(32)
    assert ensure_key_file(path) == path and path.read_text() == first


def test_workers_starting_at_once_all_use_one_key(tmp_path):
    path = tmp_path / "audit.key"
    start, texts = threading.Barrier(8), []

    def worker() -> None:
        start.wait()
        texts.append(ensure_key_file(path).read_text())

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(texts) == 8 and len(set(texts)) == 1 and texts[0].strip()
    assert os.listdir(tmp_path) == ["audit.key"]  # no half-written or temporary files left


def test_the_state_folder_is_one_per_store_and_ignores_the_password(tmp_path):
    home = tmp_path
    with_password = store_folder(home, "postgresql+psycopg://hitl:s3cret@db:5432/mlflow")
    assert with_password == store_folder(home, "postgresql+psycopg://hitl:other@db:5432/mlflow")
    assert with_password != store_folder(home, "postgresql+psycopg://hitl:s3cret@db:5432/other")
    assert "s3cret" not in str(with_password)


def test_settings_the_operator_gave_win(tmp_path):
    env = {"MLFLOW_HITL_SERVER_HOME": str(tmp_path), KEY_ENV: "mine:" + "b" * 40}
    use_server_home("sqlite:///x/hitl.db", env)
    assert KEY_FILE_ENV not in env and not list(tmp_path.glob("*/audit.key"))
    assert env[ANCHOR_PATH_ENV] == str(store_folder(tmp_path, "sqlite:///x/hitl.db") / "anchors.jsonl")
    given = {"MLFLOW_HITL_SERVER_HOME": str(tmp_path / "other"), KEY_FILE_ENV: "k", ANCHOR_PATH_ENV: "a"}
    use_server_home("sqlite:///x/hitl.db", given)
    assert given[KEY_FILE_ENV] == "k" and given[ANCHOR_PATH_ENV] == "a"
    assert not (tmp_path / "other").exists()


def test_a_folder_that_cannot_be_written_leaves_the_chain_unkeyed_and_says_so(tmp_path, caplog):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    env = {"MLFLOW_HITL_SERVER_HOME": str(blocker / "server")}
    with caplog.at_level(logging.WARNING, logger="mlflow_hitl.adapter.server_home"):
        use_server_home("sqlite:///x/hitl.db", env)
    assert KEY_FILE_ENV not in env and ANCHOR_PATH_ENV not in env
    said = caplog.text
    assert "cannot keep the server's key and anchors" in said
    assert "no audit key (MLFLOW_HITL_AUDIT_KEY or MLFLOW_HITL_AUDIT_KEY_FILE)" in said
    assert "detects naive edits only" in said and "a dropped tail or a wiped chain is not detected" in said
