"""Anchors: the audit chain's head, recorded outside the database so a truncated or wiped chain shows.

A chain checks itself only from the inside: whoever can write the database can delete its last events
and move the recorded head back, or empty the tables. An anchor is a copy of the head ``(seq, hash)``,
with the time and, when the chain is keyed, an HMAC under the audit key, appended to a log the
database's writers cannot reach (a file on other storage, an object store with retention, the MLflow
artifact store). Verification then demands that every anchored event is still there with the same
hash: edits, re-chains, a dropped tail and a wiped chain all contradict some anchor.

An anchor log is anything with ``append(record)`` and ``records()`` (:class:`AnchorLog`);
:class:`FileAnchorLog` is the one for a path the operator names (``MLFLOW_HITL_ANCHOR_PATH``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from .._hashing import canonical_json
from ..errors import ConfigError
from ._keyring import AuditKeyring

__all__ = ["ANCHOR_PATH_ENV", "AnchorCheck", "AnchorLog", "FileAnchorLog", "check_anchors", "make_anchor"]

ANCHOR_PATH_ENV = "MLFLOW_HITL_ANCHOR_PATH"
_SIGNED = ("seq", "hash", "time", "key_id")


@runtime_checkable
class AnchorLog(Protocol):
    """An append-only log of anchors, kept where the review database's writers cannot rewrite it."""

    def append(self, record: dict[str, Any]) -> None: ...

    def records(self) -> list[dict[str, Any]]: ...


class FileAnchorLog:
    """Anchors as JSON lines appended to a file (put it on storage the database operator cannot write)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"FileAnchorLog({str(self.path)!r})"

    def append(self, record: dict[str, Any]) -> None:
        line = (canonical_json(record) + "\n").encode("utf-8")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One write() on an O_APPEND descriptor: concurrent appenders never interleave within a line.
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    def records(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        found = []
        for number, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                record = {"unreadable": f"{self.path} line {number}"}
            found.append(record if isinstance(record, dict) else {"unreadable": f"{self.path} line {number}"})
        return found

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> FileAnchorLog | None:
        env = os.environ if environ is None else environ
        path = env.get(ANCHOR_PATH_ENV)
        if not path:
            return None
        if Path(path).is_dir():
            raise ConfigError(f"{ANCHOR_PATH_ENV} must name a file, not the folder {path}")
        return cls(path)


def _signed_text(record: dict[str, Any]) -> str:
    return canonical_json({k: record.get(k) for k in _SIGNED})


def make_anchor(seq: int, head_hash: str, time: str, keyring: AuditKeyring | None) -> dict[str, Any]:
    """An anchor record of head ``(seq, head_hash)``, signed with the current key when there is one."""
    record: dict[str, Any] = {
        "seq": int(seq),
        "hash": head_hash,
        "time": time,
        "key_id": keyring.current_id if keyring else None,
    }
    record["mac"] = keyring.mac(_signed_text(record)) if keyring else None
    return record


@dataclass(frozen=True)
class AnchorCheck:
    """Anchors read back: ``hashes`` (seq -> hash) of those that are genuine, ``problem`` for the first that is not."""

    hashes: dict[int, str]
    count: int
    last_time: str | None
    problem: str | None = None


def check_anchors(records: Sequence[dict[str, Any]], keyring: AuditKeyring | None) -> AnchorCheck:
    """Keep the anchors that are what they claim; a forged, unreadable or contradicting one is a problem.

    A signed anchor needs its key to be believed. An unsigned one (local mode, or written before the key)
    is taken as written: it can only demand more of the chain, so a forged one raises a false alarm and
    never hides a change.
    """
    hashes: dict[int, str] = {}
    last_time = None
    for index, record in enumerate(records, start=1):
        where = f"anchor {index}"
        if "unreadable" in record:
            return AnchorCheck(hashes, len(records), last_time, f"{record['unreadable']} is not an anchor")
        seq, head_hash = record.get("seq"), record.get("hash")
        if not isinstance(seq, int) or isinstance(seq, bool) or not isinstance(head_hash, str):
            return AnchorCheck(hashes, len(records), last_time, f"{where} has no seq and hash")
        key_id = record.get("key_id")
        if key_id:
            if keyring is None or not keyring.knows(key_id):
                return AnchorCheck(
                    hashes, len(records), last_time, f"{where} is signed with audit key {key_id!r}, not given"
                )
            if keyring.mac(_signed_text(record), key_id) != record.get("mac"):
                return AnchorCheck(hashes, len(records), last_time, f"{where} (event {seq}) is forged")
        if hashes.get(seq, head_hash) != head_hash:
            return AnchorCheck(
                hashes, len(records), last_time, f"{where} contradicts an earlier anchor of event {seq}"
            )
        hashes[seq] = head_hash
        last_time = record.get("time") or last_time
    return AnchorCheck(hashes, len(records), last_time)
