"""Migrations: upgrade from empty, the schema check, and MySQL-specific column types."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, text

from securechat.db.engine import make_engine
from securechat.db.migrate import SchemaOutdatedError, check_schema, head_revision, upgrade


def test_empty_database_is_refused_then_upgraded(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        with pytest.raises(SchemaOutdatedError, match="securechat db upgrade"):
            check_schema(engine)
        upgrade(database_url)
        assert check_schema(engine) == head_revision()
        upgrade(database_url)  # idempotent
        tables = set(inspect(engine).get_table_names())
        assert {
            "users",
            "user_keys",
            "sessions",
            "conversations",
            "conversation_members",
            "epochs",
            "epoch_keys",
            "messages",
            "alembic_version",
        } <= tables
        if engine.dialect.name in ("mysql", "mariadb"):
            with engine.connect() as connection:
                columns = {
                    row[0]: row[1]
                    for row in connection.execute(
                        text(
                            "SELECT column_name, column_type FROM information_schema.columns "
                            "WHERE table_schema = DATABASE() AND table_name = 'messages'"
                        )
                    )
                }
                charset = connection.execute(
                    text(
                        "SELECT table_collation FROM information_schema.tables "
                        "WHERE table_schema = DATABASE() AND table_name = 'messages'"
                    )
                ).scalar_one()
            assert columns["ciphertext"] == "mediumblob"
            assert columns["server_time"] == "datetime(3)"
            assert charset.startswith("utf8mb4")
    finally:
        engine.dispose()
