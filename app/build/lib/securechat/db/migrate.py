"""Alembic, driven from the application's settings rather than an alembic.ini file."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
FIX_COMMAND = "securechat db upgrade"


class SchemaOutdatedError(RuntimeError):
    """The database schema is not at the revision this code expects."""


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Dated file names keep the history readable in a directory listing.
    config.set_main_option("file_template", "%%(year)d_%%(month).2d_%%(day).2d_%%(rev)s_%%(slug)s")
    # Percent signs in passwords would otherwise be read as interpolation.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def head_revision() -> str:
    script = ScriptDirectory(str(MIGRATIONS_DIR))
    head = script.get_current_head()
    if head is None:  # pragma: no cover - the package always ships migrations
        raise RuntimeError("no migrations shipped")
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def check_schema(engine: Engine) -> str:
    """Return the current revision, or raise if it is not the head this code needs."""
    current = current_revision(engine)
    head = head_revision()
    if current != head:
        found = current or "an empty database"
        raise SchemaOutdatedError(
            f"the database schema is at {found}, this server needs {head}; "
            f"run `{FIX_COMMAND}` (with the same SECURECHAT_DATABASE_URL) and start again"
        )
    return current
