"""The MariaDB pool without pre-ping and rollback-on-return: what those two protected still holds
(no open transaction goes back into the pool, no dead connection is handed out after idling),
and a committed transaction costs no extra round trip."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pymysql
import pytest
from sqlalchemy import Engine, text

from securechat.db.engine import make_engine, make_session_factory
from tests.conftest import MARIADB, mariadb_url

pytestmark = pytest.mark.mariadb


@pytest.fixture
def database() -> Iterator[str]:
    name = f"securechat_test_{secrets.token_hex(6)}"
    admin = pymysql.connect(**MARIADB, autocommit=True)
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{name}`")
        cursor.execute(f"CREATE TABLE `{name}`.t (id INT PRIMARY KEY) ENGINE=InnoDB")
    try:
        yield name
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


def status(engine: Engine, name: str) -> tuple[int, int]:
    """(connection id, this session's value of a status counter) on the next pooled connection."""
    with engine.connect() as connection:
        found = connection.execute(
            text(
                "SELECT CONNECTION_ID(), VARIABLE_VALUE FROM information_schema.session_status"
                " WHERE VARIABLE_NAME = :name"
            ),
            {"name": name.upper()},
        ).one()
        connection.commit()
    return int(found[0]), int(found[1])


def test_a_committed_transaction_goes_back_without_a_rollback(database: str) -> None:
    engine = make_engine(mariadb_url(database))
    sessions = make_session_factory(engine)
    try:
        connection_id, rollbacks = status(engine, "Com_rollback")
        for _ in range(3):
            with sessions() as db:
                db.execute(text("SELECT COUNT(*) FROM t")).one()
                db.commit()
            with sessions() as db:  # a session closed without committing is rolled back once
                db.execute(text("SELECT COUNT(*) FROM t")).one()
        # The most recently returned connection comes back first (pool_use_lifo).
        assert status(engine, "Com_rollback") == (connection_id, rollbacks + 3)
    finally:
        engine.dispose()


def test_a_raw_connection_with_an_open_transaction_is_rolled_back(database: str) -> None:
    engine = make_engine(mariadb_url(database))
    try:
        raw = engine.raw_connection()
        with raw.cursor() as cursor:
            cursor.execute("INSERT INTO t VALUES (1)")  # holds a row lock, not committed
        raw.close()  # back into the pool
        other = pymysql.connect(**MARIADB, database=database, read_timeout=10)
        try:
            with other.cursor() as cursor:
                cursor.execute("SET SESSION innodb_lock_wait_timeout = 2")
                cursor.execute("INSERT INTO t VALUES (1)")  # would wait for the lock, then fail
            other.commit()
        finally:
            other.close()
        with engine.connect() as connection:
            assert connection.execute(text("SELECT COUNT(*) FROM t")).scalar() == 1
    finally:
        engine.dispose()


def test_a_connection_that_died_while_idle_is_replaced(database: str) -> None:
    engine = make_engine(mariadb_url(database), ping_after_idle=0.0)
    sessions = make_session_factory(engine)
    try:
        first, _ = status(engine, "Com_rollback")
        admin = pymysql.connect(**MARIADB)
        try:
            with admin.cursor() as cursor:
                cursor.execute(f"KILL {first}")
        finally:
            admin.close()
        with sessions() as db:  # the ping finds it dead: the pool opens another
            assert db.execute(text("SELECT COUNT(*) FROM t")).scalar() == 0
            assert db.execute(text("SELECT CONNECTION_ID()")).scalar() != first
    finally:
        engine.dispose()


def test_recently_used_connections_are_not_pinged(database: str) -> None:
    engine = make_engine(mariadb_url(database), ping_after_idle=3600.0)
    try:
        # COM_PING counts among the server's admin commands.
        connection_id, pings = status(engine, "Com_admin_commands")
        for _ in range(3):
            with engine.connect() as connection:
                connection.execute(text("SELECT 1")).one()
        assert status(engine, "Com_admin_commands") == (connection_id, pings)
    finally:
        engine.dispose()
