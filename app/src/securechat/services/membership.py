"""Group roles shared by conversation and account services."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from securechat.db.models import Member

ADMIN = "admin"
MEMBER = "member"


def keep_an_admin(db: Session, conversation_id: str) -> list[Member]:
    """After someone left: if no admin remains, the longest-standing member becomes one."""
    remaining = db.scalars(
        select(Member)
        .where(Member.conversation_id == conversation_id)
        .order_by(Member.joined_at, Member.user_id)
    ).all()
    if remaining and all(member.role != ADMIN for member in remaining):
        remaining[0].role = ADMIN
    return list(remaining)
