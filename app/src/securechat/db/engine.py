"""Engine and session factory for SQLite (embedded default) and MySQL/MariaDB (production)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry, PoolResetState

# A pooled MariaDB connection that was used this recently is taken as alive without a ping.
PING_AFTER_IDLE_SECONDS = 1.0
_LAST_USED = "securechat_last_used"
# The MySQL protocol's status flag: the session has a transaction open (SERVER_STATUS_IN_TRANS).
_IN_TRANSACTION = 0x0001


def make_engine(database_url: str, *, ping_after_idle: float = PING_AFTER_IDLE_SECONDS) -> Engine:
    """Create the engine; for SQLite also create the database's directory."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(database_url, url.database)
    return _mysql_engine(database_url, ping_after_idle)


def _mysql_engine(database_url: str, ping_after_idle: float) -> Engine:
    engine = create_engine(
        database_url,
        hide_parameters=True,  # logs must never carry ciphertext or hashes
        pool_recycle=3600,
        # Up to 30 connections, all kept: with overflow (10 kept + 20 opened per use) every
        # request beyond the tenth concurrent one opened and closed a MariaDB connection, which
        # doubled the CPU per history page and per connect (docs/benchmarks.md, levers).
        pool_size=30,
        max_overflow=0,
        # The most recently returned connection first: under light load the same few stay warm
        # (no ping needed, see below) and the others age out through pool_recycle.
        pool_use_lifo=True,
        # pool_pre_ping and the pool's rollback-on-return each cost a round trip per
        # transaction, two of the nine a history page used to make (docs/benchmarks.md, S6).
        # The listeners below keep what they protect: a dead connection is never handed out
        # after it sat idle, and a connection never goes back with a transaction open.
        pool_pre_ping=False,
        pool_reset_on_return=None,
    )

    dbapi_error = engine.dialect.loaded_dbapi.Error

    @event.listens_for(engine, "connect")
    def _fresh(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info[_LAST_USED] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        last_used = record.info.get(_LAST_USED)
        if last_used is not None and time.monotonic() - last_used < ping_after_idle:
            return
        try:
            dbapi_connection.ping(False)
        except (dbapi_error, OSError) as error:
            # The pool discards this connection and checks out (or opens) another one.
            raise DisconnectionError("the pooled MariaDB connection is gone") from error

    @event.listens_for(engine, "checkin")
    def _used(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info[_LAST_USED] = time.monotonic()

    @event.listens_for(engine, "reset")
    def _end_open_transaction(
        dbapi_connection: Any, _record: ConnectionPoolEntry, state: PoolResetState
    ) -> None:
        # SQLAlchemy ends its own transactions (commit, or rollback on close) before the
        # connection comes back; the server's status flags say whether one is still open, for
        # anything else (a raw DBAPI connection). When unsure, roll back.
        if state.transaction_was_reset or state.terminate_only:
            return
        status = getattr(dbapi_connection, "server_status", None)
        if isinstance(status, int) and not status & _IN_TRANSACTION:
            return
        dbapi_connection.rollback()

    return engine


def _sqlite_engine(database_url: str, database: str | None) -> Engine:
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        database_url,
        connect_args={"check_same_thread": False, "timeout": 30},
        hide_parameters=True,
    )

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        # Transactions are begun by hand below, so the driver must not begin its own.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection: Any) -> None:
        # SQLite has no row locks: a transaction that reads, then writes, loses to a concurrent
        # writer. Taking the write lock up front serializes transactions (they wait up to the
        # 30 s busy timeout) instead of failing them; MySQL/MariaDB use row locks instead.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
