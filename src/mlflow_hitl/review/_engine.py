"""The SQL store's engine: dialect quirks, schema migrations, and the write transaction.

Every writing transaction first locks the audit chain head (``SELECT ... FOR UPDATE`` on PostgreSQL;
on SQLite every writing transaction is ``BEGIN IMMEDIATE``), so the action's rows and its audit
events commit together and concurrent writers still produce one valid chain.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ..errors import InputError
from . import _schema as t
from ._audit import canonical_json, event_hash, utc_now

__all__ = ["HEAD_REVISION", "IN_CHUNK", "INSERT_CHUNK", "SqlStoreBase", "Writer", "masked_url"]

INSERT_CHUNK = 5_000
IN_CHUNK = 500  # values per IN (...) list


class Writer:
    """A writing transaction holding the chain head: the action's rows and its audit events commit together."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        head = conn.execute(
            sa.select(t.chain_head.c.seq, t.chain_head.c.hash).where(t.chain_head.c.id == 1).with_for_update()
        ).one()
        self.seq, self.hash = int(head.seq), str(head.hash)
        self._events: list[dict[str, Any]] = []

    def event(self, *, actor: str, action: str, subject: str, payload: Mapping[str, Any]) -> tuple[int, str]:
        """Append one event after the current head; returns its ``(seq, hash)``."""
        seq, time, text = self.seq + 1, utc_now(), canonical_json(payload)
        digest = event_hash(
            seq=seq, time=time, actor=actor, action=action, subject=subject, payload=text, prev_hash=self.hash
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


def _make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 60}, poolclass=sa.pool.NullPool)

        @sa.event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite's own handling defers it).
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
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
HEAD_REVISION = "0004"


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
    """The store URL with any password replaced by ``***``, for messages and reprs."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return url


class SqlStoreBase:
    """The engine every part of the SQL store works through; the schema is created or upgraded
    (alembic) when the store is opened."""

    def __init__(self, url: str) -> None:
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
    def _write(self) -> Iterator[Writer]:
        with self._engine.begin() as conn:
            writer = Writer(conn)
            yield writer
            writer.flush()

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
