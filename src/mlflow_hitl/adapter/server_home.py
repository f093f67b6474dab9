"""The server's own state outside the database: the audit key and the anchor log it uses by default.

A team server whose operator named no audit key (``MLFLOW_HITL_AUDIT_KEY``, ``MLFLOW_HITL_AUDIT_KEY_FILE``)
or anchor log (``MLFLOW_HITL_ANCHOR_PATH``) still keys and anchors its chain: without a key a database
operator can edit an event and re-chain everything after it, and without anchors a dropped tail or a
wiped chain looks like a short one. So the server keeps both in a folder of its own, one per review store:

    $MLFLOW_HITL_SERVER_HOME (default ~/.mlflow-hitl/server) / <id of the review store> / audit.key
                                                                                        / anchors.jsonl

The key is generated on the first start and reused on every later one (every worker reads the same
file). Only the server process does this (:func:`use_server_home`, called by ``create_app``): local
mode stays unkeyed, and says so. Explicit settings always win.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
from collections.abc import MutableMapping
from pathlib import Path

from ..review import ANCHOR_PATH_ENV, KEY_ENV, KEY_FILE_ENV, masked_url

__all__ = ["SERVER_HOME_ENV", "default_server_home", "ensure_key_file", "store_folder", "use_server_home"]

SERVER_HOME_ENV = "MLFLOW_HITL_SERVER_HOME"
KEY_FILE_NAME = "audit.key"
ANCHORS_FILE_NAME = "anchors.jsonl"

# What a server cannot promise without a key, or without anchors (docs/security.md).
NO_KEY = (
    f"there is no audit key ({KEY_ENV} or {KEY_FILE_ENV}): the audit chain detects naive edits only, and labels "
    "withheld on blind queues could be guessed from the hashes of neighbouring events"
)
NO_ANCHORS = f"there is no anchor log ({ANCHOR_PATH_ENV}): a dropped tail or a wiped chain is not detected"

_log = logging.getLogger(__name__)


def default_server_home(environ: MutableMapping[str, str] | None = None) -> Path:
    """``$MLFLOW_HITL_SERVER_HOME``, else ``~/.mlflow-hitl/server``."""
    env = os.environ if environ is None else environ
    return Path(env.get(SERVER_HOME_ENV) or Path.home() / ".mlflow-hitl" / "server").expanduser()


def store_folder(home: Path, store_url: str) -> Path:
    """The folder of one review store under ``home``: a short sha256 of its URL without the password,
    so two stores never share a key or an anchor log, and a changed password keeps the folder."""
    return home / hashlib.sha256(masked_url(store_url).encode("utf-8")).hexdigest()[:16]


def ensure_key_file(path: Path) -> Path:
    """The key file at ``path``, generated (one ``key_id:secret`` line, mode 0600) if there is none.

    The file appears whole or not at all: the key is written to a private temporary file, then
    hard-linked to ``path``, which fails if another worker got there first; that worker's key is
    then the one. Raises ``OSError`` when the folder cannot be made or written.
    """
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    text = (
        "# The audit key of this mlflow-hitl server (docs/security.md). Back it up: without it the events\n"
        "# it signed cannot be verified. To rotate put a new key_id:secret line first and keep this one.\n"
        f"{secrets.token_hex(4)}:{secrets.token_hex(32)}\n"
    )
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, text.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(temporary, path)
    except FileExistsError:
        pass  # another worker's key won: everyone uses it
    finally:
        temporary.unlink()
    return path


def use_server_home(store_url: str, environ: MutableMapping[str, str] | None = None) -> None:
    """Give this server process a key file and an anchor log in its folder for ``store_url``, unless set.

    Sets ``MLFLOW_HITL_AUDIT_KEY_FILE`` and ``MLFLOW_HITL_ANCHOR_PATH`` in this process's environment,
    so every store the server opens (and every check of a recorded event) uses them. Logs one line
    saying where they are; when the folder cannot be written, logs what the chain then cannot detect
    and starts anyway.
    """
    env = os.environ if environ is None else environ
    keyed = bool(env.get(KEY_ENV) or env.get(KEY_FILE_ENV))
    anchored = bool(env.get(ANCHOR_PATH_ENV))
    if keyed and anchored:
        return
    folder = store_folder(default_server_home(env), store_url)
    try:
        key_file = None if keyed else ensure_key_file(folder / KEY_FILE_NAME)
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        lost = [] if keyed else [NO_KEY]
        lost += [] if anchored else [NO_ANCHORS]
        _log.warning(
            "mlflow-hitl: cannot keep the server's key and anchors in %s (%s; set %s to a writable folder), "
            "so %s; see docs/security.md",
            folder,
            exc,
            SERVER_HOME_ENV,
            "; ".join(lost),
        )
        return
    said = []
    if key_file is not None:
        env[KEY_FILE_ENV] = str(key_file)
        said.append(
            f"the audit key is {key_file}: back it up (without it the events it signed cannot be verified; "
            f"to rotate, put a new key in front), or choose your own with {KEY_ENV} or {KEY_FILE_ENV}"
        )
    if not anchored:
        env[ANCHOR_PATH_ENV] = str(folder / ANCHORS_FILE_NAME)
        said.append(
            f"the chain is anchored in {env[ANCHOR_PATH_ENV]} (choose another place, out of the database "
            f"writers' reach, with {ANCHOR_PATH_ENV})"
        )
    _log.warning("mlflow-hitl: %s; see docs/security.md", "; ".join(said))
