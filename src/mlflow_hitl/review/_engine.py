"""The SQL store's engine: dialect quirks, schema migrations, and the write transaction.

Every writing transaction first locks the audit chain head (``SELECT ... FOR UPDATE`` on PostgreSQL;
on SQLite every writing transaction is ``BEGIN IMMEDIATE``), so the action's rows and its audit
events commit together and concurrent writers still produce one valid chain.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ..errors import InputError
from . import _schema as t
from ._anchors import AnchorLog, FileAnchorLog, make_anchor
from ._audit import canonical_json, event_hash, utc_now
from ._keyring import AuditKeyring

__all__ = [
    "ANCHOR_EVERY_SECONDS",
    "FROM_ENV",
    "HEAD_REVISION",
    "IN_CHUNK",
    "INSERT_CHUNK",
    "SqlStoreBase",
    "Writer",
    "masked_url",
]

INSERT_CHUNK = 5_000
IN_CHUNK = 500  # values per IN (...) list


class Writer:
    """A writing transaction holding the chain head: the action's rows and its audit events commit together.

    With a ``keyring`` every event is signed (HMAC-SHA256) with its current key and records the key's id.
    """

    def __init__(self, conn: Connection, keyring: AuditKeyring | None = None) -> None:
        self.conn = conn
        self.keyring = keyring
        self.key_id = keyring.current_id if keyring else None
        head = conn.execute(
            sa.select(t.chain_head.c.seq, t.chain_head.c.hash).where(t.chain_head.c.id == 1).with_for_update()
        ).one()
        self.seq, self.hash = int(head.seq), str(head.hash)
        self._events: list[dict[str, Any]] = []

    def event(self, *, actor: str, action: str, subject: str, payload: Mapping[str, Any]) -> tuple[int, str]:
        """Append one event after the current head; returns its ``(seq, hash)``."""
        seq, time, text = self.seq + 1, utc_now(), canonical_json(payload)
        digest = event_hash(
            seq=seq,
            time=time,
            actor=actor,
            action=action,
            subject=subject,
            payload=text,
            prev_hash=self.hash,
            key_id=self.key_id,
            keyring=self.keyring,
        )
        self._events.append(
            {
                "seq": seq,
                "time": time,
                "actor": actor,
                "action": action,
                "subject": subject,
                "payload": text,
                "prev_hash": self.hash,
                "hash": digest,
                "key_id": self.key_id,
            }
        )
        self.seq, self.hash = seq, digest
        return seq, digest

    def flush(self) -> None:
        for start in range(0, len(self._events), INSERT_CHUNK):
            self.conn.execute(sa.insert(t.audit_events), self._events[start : start + INSERT_CHUNK])
        if self._events:
            self.conn.execute(
                sa.update(t.chain_head).where(t.chain_head.c.id == 1).values(seq=self.seq, hash=self.hash)
            )
        self._events.clear()


def _set_wal(cursor: Any, wait_seconds: float = 60.0) -> None:
    """Put the database in WAL mode (it stays so once set). On a new database, processes opening it at
    once race to switch it, and SQLite answers "locked" without waiting for the busy timeout; the
    switch is retried until it is made."""
    import sqlite3

    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 60}, poolclass=sa.pool.NullPool)

        @sa.event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite's own handling defers it).
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            _set_wal(cursor)
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @sa.event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            # Writers take the database lock up front: no lock upgrades, so no deadlocks between reviewers.
            conn.exec_driver_sql(
                "BEGIN" if conn.get_execution_options().get("hitl_read") else "BEGIN IMMEDIATE"
            )

        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def _migrations_config() -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).with_name("migrations")))
    return config


# The newest migration in ``migrations/versions`` (a test keeps it equal to alembic's head). A store
# whose schema is at it opens with one query and without importing alembic, which would add about
# 0.15 s to every CLI command.
HEAD_REVISION = "0007"


# The advisory-lock key PostgreSQL stores take while they migrate ("hitl" in ASCII).
_MIGRATION_LOCK = 0x6869746C


def _upgrade(engine: Engine) -> None:
    """Create or upgrade the schema, taking the write lock only when the database is behind.

    Every store opens with this (each CLI command, each gated registry write): a schema already at
    the head is confirmed in a read transaction, so opening a store never waits behind a writer.
    """
    with engine.connect() as conn:
        conn = conn.execution_options(hitl_read=True)
        with conn.begin():
            if _current_revision(conn) == HEAD_REVISION:
                return
    from alembic import command
    from alembic.util import CommandError

    config = _migrations_config()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Processes opening a new database at once (a server's workers, a CLI beside the server)
            # would each create the version table; one migrates while the others wait here, then
            # find the schema at the head (SQLite's BEGIN IMMEDIATE serialises them already).
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
        config.attributes["connection"] = conn
        try:
            command.upgrade(config, "head")
        except CommandError as exc:  # a schema from a newer mlflow-hitl than this one
            raise InputError(
                f"cannot upgrade review store {masked_url(str(engine.url))}: {exc} "
                f"(this mlflow-hitl knows revisions up to {HEAD_REVISION}; upgrade it)"
            ) from exc


def _current_revision(conn: Connection) -> str | None:
    if not sa.inspect(conn).has_table(t.VERSION_TABLE):
        return None
    return conn.execute(sa.select(sa.column("version_num")).select_from(sa.table(t.VERSION_TABLE))).scalar()


def masked_url(url: str) -> str:
    """The store URL with any password replaced by ``***``, for messages and reprs.

    SQLAlchemy's own rendering of the URL, not :func:`~mlflow_hitl.errors.mask_credentials` (which masks
    addresses in free text): the server's key and anchor folder is a hash of this string
    (``adapter.server_home.store_folder``), so it must not change, e.g. for a user without a password.
    """
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return url


# Where the key and the anchors come from when the caller does not say: the environment of the
# process that holds them (the server, in team mode).
FROM_ENV: Any = "env"
# Besides every gate decision, the chain head is anchored after a write when the last anchor is older.
ANCHOR_EVERY_SECONDS = 60.0


class SqlStoreBase:
    """The engine every part of the SQL store works through; the schema is created or upgraded
    (alembic) when the store is opened.

    ``keyring`` signs the audit events this store appends (default: ``$MLFLOW_HITL_AUDIT_KEY`` or
    ``$MLFLOW_HITL_AUDIT_KEY_FILE``; ``None``: unsigned, which detects naive edits only).
    ``anchor_log`` receives the chain head at every gate decision and at most every
    ``ANCHOR_EVERY_SECONDS`` after a write (default: the file ``$MLFLOW_HITL_ANCHOR_PATH``; ``None``: no
    anchors, so a truncated or wiped chain cannot be told from a short one).
    """

    def __init__(
        self, url: str, *, keyring: AuditKeyring | None = FROM_ENV, anchor_log: AnchorLog | None = FROM_ENV
    ) -> None:
        self.keyring = AuditKeyring.from_env() if keyring is FROM_ENV else keyring
        self.anchor_log = FileAnchorLog.from_env() if anchor_log is FROM_ENV else anchor_log
        self._last_anchor_at = float("-inf")
        if not isinstance(url, str) or "://" not in url:
            raise InputError(
                f"store URL must look like sqlite:///path/hitl.db or postgresql://..., got {url!r}"
            )
        self.url = url
        try:
            self._engine = _make_engine(url)
            _upgrade(self._engine)
        except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError) as exc:
            raise InputError(f"cannot use review store {masked_url(url)}: {exc}") from exc
        except sa.exc.OperationalError as exc:
            raise InputError(f"cannot open review store {masked_url(url)}: {str(exc.orig).strip()}") from exc

    def __repr__(self) -> str:
        return f"{type(self).__name__}({masked_url(self.url)!r})"

    def close(self) -> None:
        self._engine.dispose()

    @contextmanager
    def _write(self, *, anchor: bool = False) -> Iterator[Writer]:
        """A writing transaction; after it commits, the head is anchored if ``anchor`` or if it is time."""
        with self._engine.begin() as conn:
            writer = Writer(conn, self.keyring)
            yield writer
            writer.flush()
        if self.anchor_log is not None and (
            anchor or time.monotonic() - self._last_anchor_at >= ANCHOR_EVERY_SECONDS
        ):
            self._anchor(writer.seq, writer.hash)

    def _anchor(self, seq: int, head_hash: str) -> None:
        """Append the head ``(seq, head_hash)`` to the anchor log (outside the database)."""
        assert self.anchor_log is not None
        self.anchor_log.append(make_anchor(seq, head_hash, utc_now(), self.keyring))
        self._last_anchor_at = time.monotonic()

    @contextmanager
    def _read(self, *, repeatable: bool = False) -> Iterator[Connection]:
        """A read transaction; ``repeatable`` gives every statement in it one snapshot on PostgreSQL too
        (SQLite's read transactions already are one)."""
        with self._engine.connect() as conn:
            conn = conn.execution_options(hitl_read=True)
            if repeatable and conn.dialect.name == "postgresql":
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                yield conn
