"""Accounts: registration, login, sessions, key versions and the public key directory."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from securechat.db.models import (
    AuthSession,
    Block,
    Conversation,
    Epoch,
    EpochKey,
    FileRef,
    Member,
    Message,
    StoredFile,
    User,
    UserKey,
)
from securechat.protocol import KDF_NAME, KDF_SALT_BYTES, SUITE
from securechat.schemas import (
    KeyChangeRequest,
    PasswordChangeRequest,
    PublicKeysIn,
    RegisterRequest,
)
from securechat.security.audit import AuditLog
from securechat.security.passwords import AuthKeyHasher, fake_salt
from securechat.security.tokens import new_token, session_id_for
from securechat.services import clock
from securechat.services.errors import ServiceError, conflict, invalid, not_found
from securechat.services.membership import keep_an_admin
from securechat.settings import Settings

DIRECTORY_PAGE = 50


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@dataclass(frozen=True)
class AuthContext:
    """Who is calling: resolved from a bearer token on every request and socket."""

    user_id: str
    session_id: str
    username: str
    is_admin: bool


class LoginRefusedError(ServiceError):
    """A refused login (wrong credentials or disabled account), recorded by the caller."""


def unauthorized() -> ServiceError:
    return ServiceError("unauthorized", "missing, invalid or expired session token", status=401)


# Every authenticated request runs this: a Core statement built once, run on the session's
# connection, costs a fraction of the ORM path (docs/benchmarks.md, S6).
_sessions_table = cast(Table, AuthSession.__table__)
_users_table = cast(Table, User.__table__)
_SESSION_OWNER = (
    select(
        _sessions_table.c.expires_at,
        _users_table.c.id,
        _users_table.c.username,
        _users_table.c.is_admin,
        _users_table.c.disabled,
    )
    .join_from(_sessions_table, _users_table, _users_table.c.id == _sessions_table.c.user_id)
    .where(_sessions_table.c.id == bindparam("session_id"))
)


class AccountService:
    def __init__(self, settings: Settings, hasher: AuthKeyHasher, audit: AuditLog) -> None:
        self._settings = settings
        self._hasher = hasher
        self._audit = audit

    def prelogin(self, db: Session, username: str) -> dict[str, Any]:
        user = db.scalar(select(User).where(User.username == username))
        if user is None:
            salt = fake_salt(self._settings.secret_key, username, KDF_SALT_BYTES)
            iterations = self._settings.kdf_iterations
        else:
            salt, iterations = user.kdf_salt, user.kdf_iterations
        return {"kdf": {"name": KDF_NAME, "iterations": iterations, "salt": b64(salt)}}

    def register(
        self, db: Session, request: RegisterRequest, *, ip: str | None = None
    ) -> dict[str, Any]:
        if request.kdf.iterations < self._settings.kdf_iterations:
            raise invalid(
                "kdf.iterations",
                f"kdf.iterations: must be at least {self._settings.kdf_iterations}",
            )
        moment = clock.now()
        user = User(
            id=request.user_id,
            username=request.username,
            auth_hash=self._hasher.hash(request.auth_key),
            kdf_salt=request.kdf.salt,
            kdf_iterations=request.kdf.iterations,
            key_version=1,
            key_blob_nonce=request.key_blob.nonce,
            key_blob_ciphertext=request.key_blob.ciphertext,
            is_admin=False,
            disabled=False,
            created_at=moment,
        )
        db.add(user)
        db.add(_user_key(request.user_id, 1, request.keys, moment))
        try:
            db.flush()
        except IntegrityError:
            db.rollback()
            if db.scalar(select(User.id).where(User.username == request.username)):
                raise conflict("username_taken", "that username is taken") from None
            raise conflict("conflict", "that user id is taken; generate a new one") from None
        self._audit.append(db, "account.registered", actor_id=user.id, ip=ip)
        return user_json(user)

    def login(
        self, db: Session, username: str, auth_key: bytes, *, ip: str | None = None
    ) -> dict[str, Any]:
        user = db.scalar(select(User).where(User.username == username))
        if not self._hasher.verify(user.auth_hash if user else None, auth_key) or user is None:
            raise LoginRefusedError("invalid_credentials", "wrong username or password", status=401)
        if user.disabled:
            raise LoginRefusedError("account_disabled", "this account is disabled", status=403)
        self._audit.append(db, "login.succeeded", actor_id=user.id, ip=ip)
        token, session_id = new_token()
        moment = clock.now()
        expires = moment + timedelta(seconds=self._settings.session_ttl_seconds)
        db.add(AuthSession(id=session_id, user_id=user.id, created_at=moment, expires_at=expires))
        return {"token": token, "expires_at": clock.iso(expires), "user": user_json(user)}

    def authenticate(self, db: Session, token: str) -> AuthContext:
        session_id = session_id_for(token)
        row = db.connection().execute(_SESSION_OWNER, {"session_id": session_id}).first()
        if row is None or row.disabled or row.expires_at <= clock.now():
            raise unauthorized()
        return AuthContext(row.id, session_id, row.username, row.is_admin)

    def login_failed(self, db: Session, username: str, reason: str, ip: str | None) -> None:
        """Record a refused login in its own transaction (the login's own was rolled back)."""
        user_id = db.scalar(select(User.id).where(User.username == username))
        self._audit.append(db, "login.failed", target_id=user_id, ip=ip, reason=reason)

    def logout(self, db: Session, ctx: AuthContext) -> None:
        db.execute(delete(AuthSession).where(AuthSession.id == ctx.session_id))
        self._audit.append(db, "logout", actor_id=ctx.user_id)

    def live_sessions(self, db: Session, session_ids: list[str]) -> set[str]:
        """Those of `session_ids` that exist, are unexpired and belong to enabled users."""
        if not session_ids:
            return set()
        rows = db.scalars(
            select(AuthSession.id)
            .join(User, User.id == AuthSession.user_id)
            .where(
                AuthSession.id.in_(session_ids),
                AuthSession.expires_at > clock.now(),
                User.disabled.is_(False),
            )
        )
        return set(rows)

    def purge_expired_sessions(self, db: Session) -> int:
        result = db.execute(delete(AuthSession).where(AuthSession.expires_at <= clock.now()))
        return int(getattr(result, "rowcount", 0) or 0)

    def delete_account(self, db: Session, ctx: AuthContext, auth_key: bytes) -> Deletion:
        """Delete the caller's account (the password confirms it).

        Conversations left without members are purged with their messages and files. If the
        user's messages or keys remain in conversations with other people, the user row stays
        as a disabled tombstone with a neutral name, so that those messages still verify.
        """
        user = self._user(db, ctx.user_id, for_update=True)
        if not self._hasher.verify(user.auth_hash, auth_key):
            raise ServiceError("invalid_credentials", "the password is wrong", status=401)
        if user.is_admin and not _other_admins(db, user.id):
            raise conflict("last_admin", "the last admin cannot delete their account")
        purged_blobs: list[str] = []
        for conversation_id in list(
            db.scalars(select(Member.conversation_id).where(Member.user_id == user.id))
        ):
            db.execute(
                delete(Member).where(
                    Member.conversation_id == conversation_id, Member.user_id == user.id
                )
            )
            remaining = db.scalar(
                select(func.count()).where(Member.conversation_id == conversation_id)
            )
            if remaining:
                db.execute(
                    update(Conversation)
                    .where(Conversation.id == conversation_id)
                    .values(rotation_required=True)
                )
                keep_an_admin(db, conversation_id)
            else:
                purged_blobs += purge_conversation(db, conversation_id)
        db.execute(
            delete(Block).where(or_(Block.blocker_id == user.id, Block.blocked_id == user.id))
        )
        sessions = list(db.scalars(select(AuthSession.id).where(AuthSession.user_id == user.id)))
        db.execute(delete(AuthSession).where(AuthSession.user_id == user.id))
        tombstone = _still_referenced(db, user.id)
        if tombstone:
            # "~" is outside the username alphabet: no one can register this name first.
            user.username = "~deleted-" + user.id.replace("-", "")[:23]
            user.auth_hash = "!"  # verifies against nothing
            user.disabled = True
            user.is_admin = False
            user.key_blob_nonce = bytes(12)
            user.key_blob_ciphertext = b""
        else:
            db.execute(delete(UserKey).where(UserKey.user_id == user.id))
            db.delete(user)
        self._audit.append(db, "account.deleted", actor_id=ctx.user_id, tombstone=tombstone)
        return Deletion(sessions=sessions, blobs=purged_blobs)

    def me(self, db: Session, ctx: AuthContext) -> dict[str, Any]:
        user = self._user(db, ctx.user_id)
        key = db.get_one(UserKey, (user.id, user.key_version))
        return {
            "user": user_json(user),
            "kdf": {
                "name": KDF_NAME,
                "iterations": user.kdf_iterations,
                "salt": b64(user.kdf_salt),
            },
            "keys": keys_json(key),
            "key_blob": {
                "nonce": b64(user.key_blob_nonce),
                "ciphertext": b64(user.key_blob_ciphertext),
            },
        }

    def change_keys(
        self, db: Session, ctx: AuthContext, request: KeyChangeRequest
    ) -> dict[str, Any]:
        user = self._user(db, ctx.user_id, for_update=True)
        if request.key_version != user.key_version + 1:
            raise conflict(
                "conflict", f"key_version must be {user.key_version + 1}", current=user.key_version
            )
        user.key_version = request.key_version
        user.key_blob_nonce = request.key_blob.nonce
        user.key_blob_ciphertext = request.key_blob.ciphertext
        db.add(_user_key(user.id, request.key_version, request.keys, clock.now()))
        self._audit.append(db, "keys.changed", actor_id=user.id, key_version=request.key_version)
        return user_json(user)

    def change_password(
        self, db: Session, ctx: AuthContext, request: PasswordChangeRequest
    ) -> list[str]:
        """Re-wrap the key blob under a new password; return the other sessions it ended."""
        user = self._user(db, ctx.user_id, for_update=True)
        if not self._hasher.verify(user.auth_hash, request.auth_key):
            raise ServiceError("invalid_credentials", "the current password is wrong", status=401)
        if request.kdf.iterations < self._settings.kdf_iterations:
            raise invalid(
                "kdf.iterations",
                f"kdf.iterations: must be at least {self._settings.kdf_iterations}",
            )
        user.auth_hash = self._hasher.hash(request.new_auth_key)
        user.kdf_salt = request.kdf.salt
        user.kdf_iterations = request.kdf.iterations
        user.key_blob_nonce = request.key_blob.nonce
        user.key_blob_ciphertext = request.key_blob.ciphertext
        others = list(
            db.scalars(
                select(AuthSession.id).where(
                    AuthSession.user_id == user.id, AuthSession.id != ctx.session_id
                )
            )
        )
        db.execute(delete(AuthSession).where(AuthSession.id.in_(others)))
        self._audit.append(db, "password.changed", actor_id=user.id, sessions_ended=len(others))
        return others

    def search_users(self, db: Session, prefix: str) -> list[dict[str, Any]]:
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = db.execute(
            select(User, UserKey)
            .join(UserKey, (UserKey.user_id == User.id) & (UserKey.key_version == User.key_version))
            .where(User.username.like(escaped + "%", escape="\\"), User.disabled.is_(False))
            .order_by(User.username)
            .limit(DIRECTORY_PAGE)
        ).all()
        return [public_user_json(user, key) for user, key in rows]

    def public_user(self, db: Session, user_id: str) -> dict[str, Any]:
        row = db.execute(
            select(User, UserKey)
            .join(UserKey, (UserKey.user_id == User.id) & (UserKey.key_version == User.key_version))
            .where(User.id == user_id)
        ).first()
        if row is None:
            raise not_found("user")
        return public_user_json(row[0], row[1])

    def key_version(self, db: Session, user_id: str, key_version: int) -> dict[str, Any]:
        key = db.get(UserKey, (user_id, key_version))
        if key is None:
            raise not_found("key version")
        return {
            "user_id": key.user_id,
            "key_version": key.key_version,
            **keys_json(key),
            "created_at": clock.iso(key.created_at),
        }

    def _user(self, db: Session, user_id: str, *, for_update: bool = False) -> User:
        query = select(User).where(User.id == user_id)
        user = db.scalar(query.with_for_update() if for_update else query)
        if user is None:
            raise unauthorized()
        return user


@dataclass(frozen=True)
class Deletion:
    sessions: list[str]
    blobs: list[str]  # storage names to remove from disk once the transaction committed


def purge_conversation(db: Session, conversation_id: str) -> list[str]:
    """Remove a conversation without members and everything in it; return its blob names."""
    blobs = list(
        db.scalars(
            select(StoredFile.storage_name).where(StoredFile.conversation_id == conversation_id)
        )
    )
    for model in (FileRef, StoredFile, Message, EpochKey, Epoch, Member):
        db.execute(delete(model).where(model.conversation_id == conversation_id))
    db.execute(delete(Conversation).where(Conversation.id == conversation_id))
    return blobs


def _still_referenced(db: Session, user_id: str) -> bool:
    references = (
        select(Message.conversation_id).where(Message.sender_id == user_id),
        select(Epoch.conversation_id).where(Epoch.wrapper_id == user_id),
        select(EpochKey.conversation_id).where(EpochKey.recipient_id == user_id),
        select(StoredFile.id).where(StoredFile.uploader_id == user_id),
        select(Conversation.id).where(Conversation.created_by == user_id),
    )
    return any(db.scalar(query.limit(1)) is not None for query in references)


def _other_admins(db: Session, user_id: str) -> int:
    return (
        db.scalar(
            select(func.count()).where(
                User.is_admin.is_(True), User.disabled.is_(False), User.id != user_id
            )
        )
        or 0
    )


def _user_key(user_id: str, version: int, keys: PublicKeysIn, moment: Any) -> UserKey:
    return UserKey(
        user_id=user_id,
        key_version=version,
        ecdh_public=keys.ecdh_public,
        ecdsa_public=keys.ecdsa_public,
        created_at=moment,
    )


def user_json(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "username": user.username,
        "is_admin": user.is_admin,
        "key_version": user.key_version,
        "created_at": clock.iso(user.created_at),
    }


def keys_json(key: UserKey) -> dict[str, str]:
    return {
        "suite": SUITE,
        "ecdh_public": b64(key.ecdh_public),
        "ecdsa_public": b64(key.ecdsa_public),
    }


def public_user_json(user: User, key: UserKey) -> dict[str, Any]:
    return {
        "id": user.id,
        "username": user.username,
        "key_version": user.key_version,
        "keys": keys_json(key),
    }
