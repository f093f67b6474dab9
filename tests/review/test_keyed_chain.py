"""The keyed chain and its outside anchors, as a database operator would attack them (pure functions)."""

from __future__ import annotations

import json

import pytest

from mlflow_hitl.errors import ConfigError
from mlflow_hitl.review import AuditKeyring, FileAnchorLog
from mlflow_hitl.review._anchors import check_anchors, make_anchor
from mlflow_hitl.review._audit import GENESIS_HASH, event_hash, verify_chain

KEYRING = AuditKeyring.parse("k1:" + "s" * 32)
ROTATED = AuditKeyring.parse("k2:" + "t" * 32 + "\nk1:" + "s" * 32)


def _chain(n: int, keyring: AuditKeyring | None, *, start: int = 1, prev: str = GENESIS_HASH) -> list[tuple]:
    rows = []
    for seq in range(start, start + n):
        fields = {
            "seq": seq,
            "time": f"2026-11-30T00:00:{seq:02d}.000000Z",
            "actor": "dana",
            "action": "annotation.create",
            "subject": f"queue:q/item:{seq}",
            "payload": json.dumps({"label": "a"}),
            "prev_hash": prev,
        }
        key_id = keyring.current_id if keyring else None
        digest = event_hash(**fields, key_id=key_id, keyring=keyring)
        rows.append((*fields.values(), digest, key_id))
        prev = digest
    return rows


def _rehash(row: tuple, keyring: AuditKeyring | None, **changes) -> tuple:
    """The row as a forger rewrites it: new content, a hash recomputed with what the forger holds."""
    names = ("seq", "time", "actor", "action", "subject", "payload", "prev_hash")
    fields = {**dict(zip(names, row[:7], strict=True)), **changes}
    key_id = keyring.current_id if keyring else None
    return (*fields.values(), event_hash(**fields, key_id=key_id, keyring=keyring), key_id)


def _rechain(rows: list[tuple], keyring: AuditKeyring | None, prev: str = GENESIS_HASH) -> list[tuple]:
    out = []
    for row in rows:
        new = _rehash(row, keyring, prev_hash=prev)
        out.append(new)
        prev = new[7]
    return out


def test_a_keyed_chain_verifies_with_its_key_and_names_the_keys():
    rows = _chain(5, KEYRING)
    result = verify_chain(rows, keyring=KEYRING, expected_head=(5, rows[-1][7]))
    assert result.ok and result.keyed and result.key_ids == ("k1",) and result.n_events == 5


def test_without_the_key_a_keyed_chain_cannot_be_vouched_for():
    result = verify_chain(_chain(3, KEYRING))
    assert not result.ok and result.first_bad_seq == 1 and "MLFLOW_HITL_AUDIT_KEY" in result.problem


def test_an_edit_rechained_without_the_key_is_detected():
    rows = _chain(6, KEYRING)
    forged = rows[:2] + _rechain([_rehash(rows[2], None, actor="mallory"), *rows[3:]], None, prev=rows[1][7])
    result = verify_chain(forged, keyring=KEYRING)
    assert not result.ok and result.first_bad_seq == 3 and "without the audit key" in result.problem


def test_a_rechain_under_a_guessed_key_is_detected():
    rows = _chain(4, KEYRING)
    guess = AuditKeyring.parse("k1:" + "x" * 32)
    result = verify_chain(_rechain(rows, guess), keyring=KEYRING)
    assert not result.ok and result.first_bad_seq == 1 and "altered" in result.problem


def test_an_unkeyed_chain_rewritten_from_genesis_is_caught_by_an_anchor():
    rows = _chain(5, KEYRING)
    anchor = make_anchor(5, rows[-1][7], "2026-11-30T00:01:00Z", KEYRING)
    rewritten = _rechain([_rehash(r, None) for r in rows], None)
    check = check_anchors([anchor], KEYRING)
    result = verify_chain(rewritten, keyring=KEYRING, anchors=check.hashes)
    assert check.problem is None
    assert not result.ok and result.first_bad_seq == 5 and "anchored" in result.problem


@pytest.mark.parametrize("keep", [3, 0], ids=["truncated", "wiped"])
def test_a_dropped_tail_or_a_wiped_chain_contradicts_the_last_anchor(keep):
    rows = _chain(5, KEYRING)
    anchors = check_anchors([make_anchor(5, rows[-1][7], "t", KEYRING)], KEYRING).hashes
    moved_head = (keep, rows[keep - 1][7]) if keep else (0, GENESIS_HASH)
    result = verify_chain(rows[:keep], keyring=KEYRING, anchors=anchors, expected_head=moved_head)
    assert not result.ok and result.first_bad_seq == keep + 1
    assert f"events {keep + 1}..5 are missing" in result.problem


def test_rotation_keeps_old_events_verifiable_and_signs_new_ones_with_the_new_key():
    old = _chain(3, KEYRING)
    new = _chain(2, ROTATED, start=4, prev=old[-1][7])
    result = verify_chain(old + new, keyring=ROTATED)
    assert result.ok and result.key_ids == ("k1", "k2")
    assert not verify_chain(old + new, keyring=AuditKeyring.parse("k2:" + "t" * 32)).ok


def test_unkeyed_events_before_the_key_was_set_stay_valid_and_are_counted():
    legacy = _chain(3, None)
    rows = legacy + _chain(2, KEYRING, start=4, prev=legacy[-1][7])
    result = verify_chain(rows, keyring=KEYRING)
    assert result.ok and result.unkeyed_events == 3 and not result.keyed


def test_forged_and_contradicting_anchors_are_reported():
    genuine = make_anchor(4, "a" * 64, "t", KEYRING)
    forged = {**genuine, "hash": "b" * 64}
    assert "forged" in check_anchors([genuine, forged], KEYRING).problem
    unsigned_conflict = make_anchor(4, "c" * 64, "t", None)
    assert "contradicts" in check_anchors([genuine, unsigned_conflict], KEYRING).problem
    assert "not given" in check_anchors([genuine], None).problem


def test_the_file_anchor_log_appends_and_reads_back(tmp_path):
    log = FileAnchorLog(tmp_path / "anchors" / "chain.jsonl")
    assert log.records() == []
    log.append(make_anchor(1, "a" * 64, "t1", KEYRING))
    log.append(make_anchor(2, "b" * 64, "t2", KEYRING))
    (tmp_path / "anchors" / "chain.jsonl").open("a").write("not json\n")
    records = log.records()
    assert [r.get("seq") for r in records[:2]] == [1, 2]
    assert "is not an anchor" in check_anchors(records, KEYRING).problem


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "holds no key"), ("k1:short", "at least 16 bytes"), (f"a:{'s' * 20},a:{'t' * 20}", "listed twice")],
)
def test_bad_keys_are_refused_with_the_reason(text, message):
    with pytest.raises(ConfigError, match=message):
        AuditKeyring.parse(text)


def test_a_keyring_never_shows_its_secrets():
    assert "s" * 32 not in repr(KEYRING) and "k1" in repr(KEYRING)
    assert (
        AuditKeyring.parse("s" * 32).current_id == AuditKeyring.parse("s" * 32).current_id
    )  # id from the key


def test_a_key_file_may_carry_comments_with_commas():
    """A hand-written key file: comment lines are skipped whole, so a comma in one never makes a "key"."""
    text = (
        "# made 2026-11-30, by ops, keep it safe\nk2:"
        + "t" * 32
        + "\n  # old key, still verifies\nk1:"
        + "s" * 32
    )
    keyring = AuditKeyring.parse(text)
    assert keyring.current_id == "k2" and sorted(keyring.keys) == ["k1", "k2"]
