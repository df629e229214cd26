"""Command-line administration, run against the database directly (no server needed)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy.orm import Session

from securechat.client.registration import build_registration
from securechat.db.engine import make_engine, make_session_factory
from securechat.db.migrate import check_schema, current_revision, head_revision, upgrade
from securechat.schemas import RegisterRequest
from securechat.security.audit import AuditLog, Verdict
from securechat.security.passwords import AuthKeyHasher
from securechat.services.accounts import AccountService
from securechat.services.admin import AdminService
from securechat.services.files import FileService
from securechat.services.lifecycle import record_schema_upgrade
from securechat.settings import Settings
from securechat.storage import BlobStore

MIN_PASSWORD_CHARS = 12
T = TypeVar("T")


@dataclass(frozen=True)
class Tools:
    settings: Settings
    audit: AuditLog
    accounts: AccountService
    admin: AdminService


@contextmanager
def _database(settings: Settings, *, check: bool = True) -> Iterator[Session]:
    engine = make_engine(settings.database_url)
    try:
        if check:
            check_schema(engine)
        with make_session_factory(engine)() as session:
            yield session
    finally:
        engine.dispose()


def _run(settings: Settings, work: Callable[[Session, Tools], T]) -> T:
    """One transaction with the services wired as the server wires them."""
    audit = AuditLog(settings.audit_key)
    tools = Tools(
        settings,
        audit,
        AccountService(settings, AuthKeyHasher(settings.argon2), audit),
        AdminService(audit),
    )
    with _database(settings) as db:
        result = work(db, tools)
        db.commit()
        return result


def create_admin(settings: Settings, username: str, password: str) -> str:
    """Register `username` as a client would (keys made by the reference client), as admin."""
    if len(password) < MIN_PASSWORD_CHARS:
        raise ValueError(f"the password must have at least {MIN_PASSWORD_CHARS} characters")
    registration = build_registration(
        username.strip().lower(),
        password,
        iterations=settings.kdf_iterations,
        min_iterations=settings.kdf_iterations,
    )
    request = RegisterRequest.model_validate(registration.request)

    def work(db: Session, tools: Tools) -> str:
        user = tools.accounts.register(db, request)
        tools.admin.set_admin(db, None, user["id"], is_admin=True)
        return str(user["id"])

    return _run(settings, work)


def set_disabled(settings: Settings, username: str, *, disabled: bool) -> int:
    def work(db: Session, tools: Tools) -> int:
        user = tools.admin.find(db, username)
        return len(tools.admin.set_disabled(db, None, user.id, disabled=disabled))

    return _run(settings, work)


def upgrade_schema(settings: Settings, revision: str) -> tuple[str | None, str | None]:
    """Migrate; record the change in the audit trail once the schema has one."""
    engine = make_engine(settings.database_url)
    try:
        before = current_revision(engine)
        upgrade(settings.database_url, revision)
        after = current_revision(engine)
    finally:
        engine.dispose()
    if after == head_revision() and after is not None:
        _run(settings, lambda db, tools: record_schema_upgrade(db, tools.audit, before, after))
    return before, after


def verify_audit(settings: Settings) -> Verdict:
    return _run(settings, lambda db, tools: tools.audit.verify(db))


def export_audit(settings: Settings) -> list[dict[str, object]]:
    return _run(settings, lambda db, tools: [r.to_json() for r in tools.audit.records(db)])


def collect_files(settings: Settings) -> int:
    blobs = BlobStore(settings.upload_dir)

    def work(db: Session, tools: Tools) -> list[str]:
        return FileService(settings, tools.audit).collect_garbage(db)

    names = _run(settings, work)
    for name in names:
        blobs.delete(name)
    return len(names)
