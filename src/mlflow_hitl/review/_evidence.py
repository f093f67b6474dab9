"""Evidence registrations as the audit chain holds them, and the digest a sign-off approves.

The MLflow adapter appends one ``evidence.registered`` event (subject ``run:<run_id>``) each time a run's
evidence is registered; the newest intact one is in force. Its *digest*, the sha256 of its canonical
payload, is what a sign-off approves: the gate compares it, and a sign-off may name it
(``evidence_sha256``) so that evidence registered after its reviewer read the run is not approved unseen.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._hashing import canonical_json, sha256_hex

__all__ = ["EVIDENCE_REGISTERED", "registration_digest"]

EVIDENCE_REGISTERED = "evidence.registered"


def registration_digest(payload: Mapping[str, Any]) -> str:
    """The digest of one registration: the sha256 of its payload's canonical JSON."""
    return sha256_hex(canonical_json(payload))
