"""A database operator against the keyed, anchored audit chain: SQL on the real store, then `verify_audit`.

Each attack is what someone who can write the review database (but holds neither the audit key nor the
anchor log) can do: edit and re-chain, re-chain under a guessed key, drop the tail and move the head,
wipe everything, append a forged sign-off. All are detected. Without a key, a re-chain is not: that
limit of local mode is tested too, so the docs' claim stays true.
"""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from mlflow_hitl.review import AuditKeyring, FileAnchorLog, ReviewStore
from mlflow_hitl.review._audit import GENESIS_HASH, event_hash

KEY = AuditKeyring.parse("k1:" + "a" * 40)
_FIELDS = ("seq", "time", "actor", "action", "subject", "payload", "prev_hash")


@pytest.fixture
def anchors(tmp_path):
    return FileAnchorLog(tmp_path / "anchors.jsonl")


@pytest.fixture
def keyed(store_url, anchors):
    store = ReviewStore(store_url, keyring=KEY, anchor_log=anchors)
    store.grant_role("root", "admin", actor="root")
    store.grant_role("dana", "fairness-reviewer", actor="root")
    for n in range(4):
        store.record_event(actor="maya", action="note", subject=f"run:r/{n}", payload={"n": n})
    store.record_event(actor="rita", action="gate.check", subject="model:m/1", payload={})  # anchored
    yield store
    store.close()


def _rows(store) -> list[dict]:
    with store._engine.connect() as conn:
        return [
            dict(r._mapping) for r in conn.execute(sa.text("SELECT * FROM hitl_audit_events ORDER BY seq"))
        ]


def _rewrite(store, rows: list[dict]) -> None:
    """Replace the chain with ``rows`` and point the head at the last one, as an operator with SQL can."""
    with store._engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM hitl_audit_events"))
        for row in rows:
            conn.execute(
                sa.text(
                    "INSERT INTO hitl_audit_events (seq, time, actor, action, subject, payload, prev_hash, hash, key_id) "
                    "VALUES (:seq, :time, :actor, :action, :subject, :payload, :prev_hash, :hash, :key_id)"
                ),
                row,
            )
        head = (rows[-1]["seq"], rows[-1]["hash"]) if rows else (0, GENESIS_HASH)
        conn.execute(
            sa.text("UPDATE hitl_chain_head SET seq = :s, hash = :h WHERE id = 1"),
            {"s": head[0], "h": head[1]},
        )


def _rechain(rows: list[dict], start: int, keyring: AuditKeyring | None) -> list[dict]:
    """Recompute every hash from event ``start`` on, signed with ``keyring`` (the forger's) or plain."""
    out, prev = [], GENESIS_HASH
    for row in rows:
        if row["seq"] >= start:
            row = {**row, "prev_hash": prev, "key_id": keyring.current_id if keyring else None}
            row["hash"] = event_hash(**{k: row[k] for k in _FIELDS}, key_id=row["key_id"], keyring=keyring)
        out.append(row)
        prev = row["hash"]
    return out


def test_a_keyed_store_signs_every_event_and_anchors_gate_decisions(keyed, anchors):
    result = keyed.verify_audit()
    assert result.ok and result.keyed and result.key_ids == ("k1",) and result.n_events == 7
    head = keyed.audit_head()
    assert anchors.records()[-1]["seq"] == head[0] and anchors.records()[-1]["hash"] == head[1]
    assert all(row["key_id"] == "k1" for row in _rows(keyed))
    assert result.anchors_checked >= 1


def test_an_edit_rechained_without_the_key_is_detected(keyed):
    rows = _rows(keyed)
    rows[2]["actor"] = "mallory"
    _rewrite(keyed, _rechain(rows, start=3, keyring=None))
    result = keyed.verify_audit()
    assert not result.ok and result.first_bad_seq == 3 and "without the audit key" in result.problem


def test_a_rechain_under_a_guessed_key_is_detected(keyed):
    rows = _rows(keyed)
    rows[2]["actor"] = "mallory"
    guess = AuditKeyring.parse("k1:" + "b" * 40)
    _rewrite(keyed, _rechain(rows, start=3, keyring=guess))
    result = keyed.verify_audit()
    assert not result.ok and result.first_bad_seq == 3 and "altered" in result.problem


def test_a_forged_signoff_appended_at_the_head_is_detected(keyed):
    rows = _rows(keyed)
    forged = {
        "seq": rows[-1]["seq"] + 1,
        "time": rows[-1]["time"],
        "actor": "dana",
        "action": "signoff.approve",
        "subject": "run:r/check:fairness",
        "payload": json.dumps({"role": "fairness-reviewer", "note": None}),
        "prev_hash": rows[-1]["hash"],
        "key_id": None,
    }
    forged["hash"] = event_hash(**{k: forged[k] for k in _FIELDS})
    _rewrite(keyed, [*rows, forged])
    result = keyed.verify_audit()
    assert not result.ok and result.first_bad_seq == forged["seq"]


@pytest.mark.parametrize("keep", [3, 0], ids=["tail-dropped", "wiped"])
def test_a_dropped_tail_or_a_wiped_chain_contradicts_the_anchor(keyed, keep):
    rows = _rows(keyed)
    _rewrite(keyed, rows[:keep])
    result = keyed.verify_audit()
    assert not result.ok and result.first_bad_seq == keep + 1
    assert f"events {keep + 1}..{len(rows)} are missing" in result.problem


def test_the_whole_chain_rewritten_unkeyed_from_genesis_contradicts_the_anchor(keyed):
    rows = _rows(keyed)
    rows[1]["actor"] = "mallory"
    _rewrite(keyed, _rechain(rows, start=1, keyring=None))
    result = keyed.verify_audit()
    assert not result.ok and "anchored outside the database" in result.problem


def test_a_forged_anchor_is_reported(keyed, anchors):
    record = {**anchors.records()[-1], "hash": "f" * 64}
    anchors.append(record)
    result = keyed.verify_audit()
    assert not result.ok and "forged" in result.problem


def test_rotation_old_events_verify_with_the_old_key_kept(store_url, anchors):
    ReviewStore(store_url, keyring=KEY, anchor_log=anchors).record_event(
        actor="a", action="note", subject="x", payload={}
    )
    rotated = AuditKeyring.parse("k2:" + "c" * 40 + ",k1:" + "a" * 40)
    store = ReviewStore(store_url, keyring=rotated, anchor_log=anchors)
    store.record_event(actor="a", action="note", subject="y", payload={})
    result = store.verify_audit()
    assert result.ok and result.key_ids == ("k1", "k2")
    only_new = ReviewStore(store_url, keyring=AuditKeyring.parse("k2:" + "c" * 40), anchor_log=anchors)
    assert not only_new.verify_audit().ok


def test_without_a_key_a_rechain_goes_unseen_and_the_result_says_so(store_url):
    """Local mode's limit, as docs/security.md states it: naive edits only."""
    store = ReviewStore(store_url, keyring=None, anchor_log=None)
    for n in range(3):
        store.record_event(actor="maya", action="note", subject=f"run:r/{n}", payload={"n": n})
    rows = _rows(store)
    rows[1]["actor"] = "mallory"
    _rewrite(store, _rechain(rows, start=2, keyring=None))
    result = store.verify_audit()
    assert result.ok and not result.keyed and result.unkeyed_events == 3


def test_audit_verify_says_what_an_intact_chain_vouches_for(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from mlflow_hitl.cli import cli

    url = f"sqlite:///{tmp_path / 'hitl.db'}"
    for name in ("MLFLOW_HITL_AUDIT_KEY", "MLFLOW_HITL_AUDIT_KEY_FILE", "MLFLOW_HITL_ANCHOR_PATH"):
        monkeypatch.delenv(name, raising=False)
    ReviewStore(url).record_event(actor="maya", action="note", subject="run:r", payload={})
    plain = CliRunner().invoke(cli, ["audit", "verify", "--store-uri", url])
    assert plain.exit_code == 0 and "detects naive edits only" in plain.output

    monkeypatch.setenv("MLFLOW_HITL_AUDIT_KEY", "k1:" + "a" * 40)
    monkeypatch.setenv("MLFLOW_HITL_ANCHOR_PATH", str(tmp_path / "anchors.jsonl"))
    ReviewStore(url).record_event(actor="rita", action="gate.check", subject="model:m/1", payload={})
    keyed = CliRunner().invoke(cli, ["audit", "verify", "--store-uri", url])
    assert keyed.exit_code == 0, keyed.output
    assert (
        "signed with audit key(s) k1; 1 older event(s) unsigned; 1 outside anchor(s) matched" in keyed.output
    )
    monkeypatch.delenv("MLFLOW_HITL_AUDIT_KEY")
    without_key = CliRunner().invoke(cli, ["audit", "verify", "--store-uri", url])
    assert without_key.exit_code == 1
    assert without_key.output.startswith(
        "audit chain BROKEN: anchor log: anchor 1 is signed with audit key 'k1'"
    )
