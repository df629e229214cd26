"""Engine and session factory for SQLite (embedded default) and MySQL/MariaDB (production)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker


def make_engine(database_url: str) -> Engine:
    """Create the engine; for SQLite also create the database's directory."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(database_url, url.database)
    return create_engine(
        database_url,
        pool_pre_ping=True,
        hide_parameters=True,  # logs must never carry ciphertext or hashes
        pool_recycle=3600,
        # Up to 30 connections, all kept: with overflow (10 kept + 20 opened per use) every
        # request beyond the tenth concurrent one opened and closed a MariaDB connection, which
        # doubled the CPU per history page and per connect (docs/benchmarks.md, levers).
        pool_size=30,
        max_overflow=0,
    )


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
