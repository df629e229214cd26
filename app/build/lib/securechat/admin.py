"""Administrative actions run from the command line against the database directly."""

from __future__ import annotations

from sqlalchemy.orm import Session

from securechat.client.registration import build_registration
from securechat.db.engine import make_engine, make_session_factory
from securechat.db.migrate import check_schema
from securechat.schemas import RegisterRequest
from securechat.security.passwords import AuthKeyHasher
from securechat.services.accounts import AccountService
from securechat.settings import Settings

MIN_PASSWORD_CHARS = 12


def _with_accounts(settings: Settings) -> tuple[AccountService, Session]:
    engine = make_engine(settings.database_url)
    check_schema(engine)
    return AccountService(settings, AuthKeyHasher(settings.argon2)), make_session_factory(engine)()


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
    accounts, db = _with_accounts(settings)
    with db:
        user = accounts.register(db, request)
        accounts.set_admin(db, user["id"], is_admin=True)
        db.commit()
    return str(user["id"])


def set_disabled(settings: Settings, username: str, *, disabled: bool) -> int:
    accounts, db = _with_accounts(settings)
    with db:
        _user_id, ended = accounts.set_disabled(db, username, disabled)
        db.commit()
    return len(ended)
