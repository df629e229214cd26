"""Blocking: the blocker receives nothing from the blocked user, and shares no presence or
typing with them; direct conversations between them are closed; groups stay shared."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from securechat.db.models import Block, User
from securechat.security.audit import AuditLog
from securechat.services import clock
from securechat.services.accounts import AuthContext
from securechat.services.errors import ServiceError, invalid, not_found


def blocked_error(i_blocked: bool) -> ServiceError:
    message = (
        "you blocked this user; unblock them first"
        if i_blocked
        else "this user does not accept messages from you"
    )
    return ServiceError("blocked", message, status=403)


def hidden_from(db: Session, user_id: str) -> set[str]:
    """Users with a block in either direction with `user_id`: no presence or typing between."""
    rows = db.execute(
        select(Block.blocker_id, Block.blocked_id).where(
            or_(Block.blocker_id == user_id, Block.blocked_id == user_id)
        )
    )
    return {other for pair in rows for other in pair} - {user_id}


def blocked_by(db: Session, user_id: str) -> set[str]:
    """Users that `user_id` has blocked."""
    return set(db.scalars(select(Block.blocked_id).where(Block.blocker_id == user_id)))


def blocks_among(db: Session, user_ids: Iterable[str]) -> dict[str, set[str]]:
    """blocker -> blocked, for blocks that involve any of `user_ids` on either side."""
    ids = list(set(user_ids))
    found: dict[str, set[str]] = defaultdict(set)
    rows = db.execute(
        select(Block.blocker_id, Block.blocked_id).where(
            or_(Block.blocker_id.in_(ids), Block.blocked_id.in_(ids))
        )
    )
    for blocker, blocked in rows:
        found[blocker].add(blocked)
    return found


def check_direct_allowed(db: Session, me: str, other: str) -> None:
    blocks = blocks_among(db, [me])
    if other in blocks.get(me, set()):
        raise blocked_error(i_blocked=True)
    if me in blocks.get(other, set()):
        raise blocked_error(i_blocked=False)


class BlockService:
    def __init__(self, audit: AuditLog) -> None:
        self._audit = audit

    def block(self, db: Session, ctx: AuthContext, user_id: str) -> bool:
        """Block `user_id`; True if this created the block (blocking twice changes nothing)."""
        if user_id == ctx.user_id:
            raise invalid("user_id", "you cannot block yourself")
        if db.get(User, user_id) is None:
            raise not_found("user")
        if db.get(Block, (ctx.user_id, user_id)) is not None:
            return False
        db.add(Block(blocker_id=ctx.user_id, blocked_id=user_id, created_at=clock.now()))
        self._audit.append(db, "block.added", actor_id=ctx.user_id, target_id=user_id)
        return True

    def unblock(self, db: Session, ctx: AuthContext, user_id: str) -> bool:
        result = db.execute(
            delete(Block).where(Block.blocker_id == ctx.user_id, Block.blocked_id == user_id)
        )
        removed = bool(getattr(result, "rowcount", 0))
        if removed:
            self._audit.append(db, "block.removed", actor_id=ctx.user_id, target_id=user_id)
        return removed

    def list_for(self, db: Session, ctx: AuthContext) -> list[dict[str, Any]]:
        rows = db.execute(
            select(Block.blocked_id, User.username, Block.created_at)
            .join(User, User.id == Block.blocked_id)
            .where(Block.blocker_id == ctx.user_id)
            .order_by(User.username)
        )
        return [
            {"user_id": user_id, "username": username, "created_at": clock.iso(created)}
            for user_id, username, created in rows
        ]
