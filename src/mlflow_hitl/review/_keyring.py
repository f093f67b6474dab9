"""The audit chain's keys: events are chained with HMAC-SHA256 under a key the server holds outside the database.

Without a key, an event's hash is a plain sha256 of its content: anyone who can write the database can
edit an event and re-chain everything after it, and ``audit verify`` cannot tell. With a key, only the
holder of the key can compute a valid hash, so an edit, a re-chain, an inserted or a forged event is
detected by anyone who verifies with the key.

The key is given as text, one key per line (or separated by commas), each ``key_id:secret``:

    MLFLOW_HITL_AUDIT_KEY="2026-11:9c1f...long random secret..."

The first key signs new events; every key listed verifies the events it signed, so rotating is adding a
new key in front and keeping the old ones. A key given without an id gets the first 8 hex digits of
its sha256 as id. Each event records the id of the key that signed it (never the key).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from ..errors import ConfigError

__all__ = ["KEY_ENV", "KEY_FILE_ENV", "MIN_SECRET_BYTES", "AuditKeyring"]

KEY_ENV = "MLFLOW_HITL_AUDIT_KEY"
KEY_FILE_ENV = "MLFLOW_HITL_AUDIT_KEY_FILE"
# 128 bits: a shorter secret could be guessed offline from any one stored event and its hash.
MIN_SECRET_BYTES = 16


@dataclass(frozen=True)
class AuditKeyring:
    """The keys that sign (the first) and verify (all) audit events. Build one with :meth:`parse`."""

    current_id: str
    keys: Mapping[str, bytes] = field(repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "keys", MappingProxyType(dict(self.keys)))

    def __repr__(self) -> str:  # never the secrets
        return f"AuditKeyring(current_id={self.current_id!r}, key_ids={sorted(self.keys)!r})"

    @classmethod
    def parse(cls, text: str, *, source: str = KEY_ENV) -> AuditKeyring:
        """Keys from ``key_id:secret`` entries, one per line or comma-separated; the first signs."""
        keys: dict[str, bytes] = {}
        lines = (
            line for line in text.splitlines() if not line.lstrip().startswith("#")
        )  # a comment may hold commas
        for entry in (e.strip() for line in lines for e in line.split(",")):
            if not entry:
                continue
            key_id, sep, secret = entry.partition(":")
            if not sep:
                key_id, secret = "", entry
            key_id, raw = key_id.strip(), secret.strip().encode("utf-8")
            if len(raw) < MIN_SECRET_BYTES:
                raise ConfigError(
                    f"{source}: an audit key must be at least {MIN_SECRET_BYTES} bytes of secret "
                    f"(e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`)"
                )
            key_id = key_id or hashlib.sha256(raw).hexdigest()[:8]
            if key_id in keys:
                raise ConfigError(f"{source}: key id {key_id!r} is listed twice")
            keys[key_id] = raw
        if not keys:
            raise ConfigError(f"{source} holds no key")
        return cls(current_id=next(iter(keys)), keys=keys)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AuditKeyring | None:
        """The keyring of ``$MLFLOW_HITL_AUDIT_KEY`` or of the file ``$MLFLOW_HITL_AUDIT_KEY_FILE``; ``None`` if neither."""
        env = os.environ if environ is None else environ
        if env.get(KEY_ENV):
            return cls.parse(env[KEY_ENV], source=KEY_ENV)
        if env.get(KEY_FILE_ENV):
            path = Path(env[KEY_FILE_ENV])
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(f"{KEY_FILE_ENV}: cannot read {path}: {exc}") from exc
            return cls.parse(text, source=str(path))
        return None

    def mac(self, message: str, key_id: str | None = None) -> str:
        """Hex HMAC-SHA256 of ``message`` under key ``key_id`` (the current key by default)."""
        key = self.keys[key_id or self.current_id]
        return hmac.new(key, message.encode("utf-8"), hashlib.sha256).hexdigest()

    def knows(self, key_id: str) -> bool:
        return key_id in self.keys
