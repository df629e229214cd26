"""Authentication of a bearer token against the real database (SQLite, MariaDB)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from securechat.db.engine import make_engine, make_session_factory
from securechat.db.models import AuthSession, User
from securechat.security.audit import AuditLog
from securechat.security.passwords import AuthKeyHasher
from securechat.security.tokens import session_id_for
from securechat.services import clock
from securechat.services.accounts import AccountService
from securechat.services.errors import ServiceError
from securechat.settings import Settings
from tests.conftest import server_environment
from tests.services.test_messages import World


@pytest.fixture(scope="module")
def sessions(migrated_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(migrated_url)
    yield make_session_factory(engine)
    engine.dispose()


def login(sessions: sessionmaker[Session], user_id: str, lifetime: timedelta) -> str:
    token = secrets.token_urlsafe(32)
    with sessions.begin() as db:
        db.add(
            AuthSession(
                id=session_id_for(token),
                user_id=user_id,
                created_at=clock.now(),
                expires_at=clock.now() + lifetime,
            )
        )
    return token


@pytest.fixture(scope="module")
def service(migrated_url: str) -> AccountService:
    settings = Settings.from_env(server_environment(migrated_url))
    return AccountService(settings, AuthKeyHasher(settings.argon2), AuditLog(settings.audit_key))


def authenticate(sessions: sessionmaker[Session], service: AccountService, token: str) -> str:
    with sessions() as db:
        return service.authenticate(db, token).user_id


def test_a_live_session_names_its_user_and_nothing_else_does(
    sessions: sessionmaker[Session], service: AccountService
) -> None:
    world = World(sessions)
    alice, bob = world.user(), world.user()
    token = login(sessions, alice, timedelta(hours=1))
    login(sessions, bob, timedelta(hours=1))
    assert authenticate(sessions, service, token) == alice
    expired = login(sessions, alice, timedelta(seconds=-1))
    for refused in (expired, token + "x", "", secrets.token_urlsafe(32), "' OR 1=1 --"):
        with pytest.raises(ServiceError) as error:
            authenticate(sessions, service, refused)
        assert error.value.code == "unauthorized"
    with sessions.begin() as db:
        db.execute(update(User).where(User.id == alice).values(disabled=True))
    with pytest.raises(ServiceError):
        authenticate(sessions, service, token)
