"""Administration: users (never content), sessions, admin roles, server statistics, audit."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, select, true
from sqlalchemy.orm import Session

from securechat import __version__
from securechat.db.models import AuthSession, Message, StoredFile, User
from securechat.security.audit import AuditLog
from securechat.services import clock
from securechat.services.errors import ServiceError, conflict, not_found

STATS_DAYS = 14


def user_row_json(user: User, sessions: int) -> dict[str, Any]:
    return {
        "id": user.id,
        "username": user.username,
        "is_admin": user.is_admin,
        "disabled": user.disabled,
        "key_version": user.key_version,
        "created_at": clock.iso(user.created_at),
        "sessions": sessions,
    }


class AdminService:
    def __init__(self, audit: AuditLog) -> None:
        self._audit = audit
        self._started = time.monotonic()

    def find(self, db: Session, username: str) -> User:
        user = db.scalar(select(User).where(User.username == username))
        if user is None:
            raise not_found("user")
        return user

    def list_users(self, db: Session, query: str, offset: int, limit: int) -> dict[str, Any]:
        condition = User.username.contains(query, autoescape=True) if query else true()
        total = db.scalar(select(func.count()).select_from(User).where(condition)) or 0
        sessions = (
            select(AuthSession.user_id, func.count().label("n"))
            .where(AuthSession.expires_at > clock.now())
            .group_by(AuthSession.user_id)
            .subquery()
        )
        rows = db.execute(
            select(User, func.coalesce(sessions.c.n, 0))
            .outerjoin(sessions, sessions.c.user_id == User.id)
            .where(condition)
            .order_by(User.username)
            .offset(offset)
            .limit(limit)
        )
        return {"users": [user_row_json(u, int(n)) for u, n in rows], "total": total}

    def set_disabled(
        self, db: Session, actor_id: str | None, user_id: str, *, disabled: bool
    ) -> list[str]:
        """Disable (ending every session) or enable; returns the ended session ids."""
        user = self._user(db, user_id)
        if disabled and user.is_admin and not user.disabled:
            self._keep_an_admin(db, user_id)
        user.disabled = disabled
        ended = self._end_sessions(db, user_id) if disabled else []
        event = "admin.user_disabled" if disabled else "admin.user_enabled"
        self._audit.append(
            db, event, actor_id=actor_id, target_id=user_id, sessions_ended=len(ended)
        )
        return ended

    def reset_sessions(self, db: Session, actor_id: str | None, user_id: str) -> list[str]:
        self._user(db, user_id)
        ended = self._end_sessions(db, user_id)
        self._audit.append(
            db,
            "admin.sessions_reset",
            actor_id=actor_id,
            target_id=user_id,
            sessions_ended=len(ended),
        )
        return ended

    def set_admin(self, db: Session, actor_id: str | None, user_id: str, *, is_admin: bool) -> None:
        user = self._user(db, user_id)
        if user.is_admin == is_admin:
            return
        if not is_admin:
            self._keep_an_admin(db, user_id)
        user.is_admin = is_admin
        event = "admin.granted" if is_admin else "admin.revoked"
        self._audit.append(db, event, actor_id=actor_id, target_id=user_id)

    def stats(self, db: Session, *, online_now: int, schema: str) -> dict[str, Any]:
        since = clock.now() - timedelta(days=STATS_DAYS)
        day = func.date(Message.server_time)
        per_day = db.execute(
            select(day, func.count())
            .where(Message.server_time >= since)
            .group_by(day)
            .order_by(day)
        )
        return {
            "users": db.scalar(select(func.count()).select_from(User)) or 0,
            "disabled_users": db.scalar(select(func.count()).where(User.disabled.is_(True))) or 0,
            "online_now": online_now,
            "messages_total": db.scalar(select(func.count()).select_from(Message)) or 0,
            "messages_per_day": [{"day": str(d), "messages": int(n)} for d, n in per_day],
            "storage_bytes": int(
                db.scalar(select(func.coalesce(func.sum(StoredFile.size), 0))) or 0
            ),
            "files": db.scalar(select(func.count()).select_from(StoredFile)) or 0,
            "version": __version__,
            "schema": schema,
            "uptime_seconds": int(time.monotonic() - self._started),
        }

    def _user(self, db: Session, user_id: str) -> User:
        user = db.scalar(select(User).where(User.id == user_id).with_for_update())
        if user is None:
            raise not_found("user")
        return user

    def _keep_an_admin(self, db: Session, leaving_id: str) -> None:
        others = db.scalar(
            select(func.count()).where(
                User.is_admin.is_(True), User.disabled.is_(False), User.id != leaving_id
            )
        )
        if not others:
            raise conflict("last_admin", "this is the last active admin; promote another first")

    def _end_sessions(self, db: Session, user_id: str) -> list[str]:
        ended = list(db.scalars(select(AuthSession.id).where(AuthSession.user_id == user_id)))
        db.execute(delete(AuthSession).where(AuthSession.user_id == user_id))
        return ended


def require_admin(is_admin: bool) -> None:
    if not is_admin:
        raise ServiceError("forbidden", "this needs an admin account", status=403)
