"""Conversations, members and epochs. Epoch keys are opaque wraps made by clients."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from securechat.db.models import Conversation, Epoch, EpochKey, Member, User
from securechat.schemas import CreateConversationRequest, NewEpochRequest, WrappedKey
from securechat.security.audit import AuditLog
from securechat.services import clock
from securechat.services.accounts import AuthContext, b64
from securechat.services.blocks import check_direct_allowed
from securechat.services.errors import ServiceError, conflict, forbidden, invalid, not_found
from securechat.services.membership import ADMIN, MEMBER, keep_an_admin


@dataclass
class Change:
    """The result of a change, and who must hear about it (`conversation:updated`)."""

    conversation: dict[str, Any]
    notify: set[str] = field(default_factory=set)
    removed: set[str] = field(default_factory=set)


def load_member(db: Session, conversation_id: str, user_id: str) -> Member:
    """The caller's membership, or 404: a stranger cannot tell a conversation exists."""
    member = db.get(Member, (conversation_id, user_id))
    if member is None:
        raise not_found()
    return member


def member_ids(db: Session, conversation_id: str) -> list[str]:
    return list(db.scalars(select(Member.user_id).where(Member.conversation_id == conversation_id)))


def contacts_of(db: Session, user_id: str) -> set[str]:
    """Users who share at least one conversation with `user_id` (excluding them)."""
    mine = select(Member.conversation_id).where(Member.user_id == user_id)
    rows = db.scalars(select(Member.user_id).where(Member.conversation_id.in_(mine)).distinct())
    return set(rows) - {user_id}


class ConversationService:
    def __init__(self, audit: AuditLog) -> None:
        self._audit = audit

    def list_for(self, db: Session, ctx: AuthContext) -> list[dict[str, Any]]:
        ids = list(db.scalars(select(Member.conversation_id).where(Member.user_id == ctx.user_id)))
        return self._render_many(db, ids)

    def get(self, db: Session, ctx: AuthContext, conversation_id: str) -> dict[str, Any]:
        load_member(db, conversation_id, ctx.user_id)
        return self._render_many(db, [conversation_id])[0]

    def create(self, db: Session, ctx: AuthContext, request: CreateConversationRequest) -> Change:
        members = _unique(request.members, "members")
        if ctx.user_id not in members:
            raise invalid("members", "members: must include yourself")
        direct_pair = None
        if request.kind == "direct":
            if len(members) != 2 or request.title is not None:
                raise invalid(
                    "members", "a direct conversation has exactly two members and no title"
                )
            direct_pair = ":".join(sorted(members))
            self._refuse_existing_direct(db, direct_pair)
            (other,) = members - {ctx.user_id}
            check_direct_allowed(db, ctx.user_id, other)
        elif request.title is None:
            raise invalid("title", "title: a group needs a title")
        users = _active_users(db, members)
        _check_wraps(request.epoch_keys, users)
        moment = clock.now()
        db.add(
            Conversation(
                id=request.id,
                kind=request.kind,
                title=request.title,
                direct_pair=direct_pair,
                created_by=ctx.user_id,
                created_at=moment,
                epoch=1,
                rotation_required=False,
                last_seq=0,
            )
        )
        try:
            db.flush()
        except IntegrityError:
            db.rollback()
            if direct_pair is not None:
                self._refuse_existing_direct(db, direct_pair)
            raise conflict(
                "conflict", "that conversation id is taken; generate a new one"
            ) from None
        for user_id in members:
            role = ADMIN if request.kind == "group" and user_id == ctx.user_id else MEMBER
            db.add(_member(request.id, user_id, role, moment))
        _add_epoch(
            db, request.id, 1, wrapper=users[ctx.user_id], wraps=request.epoch_keys, moment=moment
        )
        self._audit.append(
            db,
            "conversation.created",
            actor_id=ctx.user_id,
            target_id=request.id,
            kind=request.kind,
            members=len(members),
        )
        return Change(self._render_many(db, [request.id])[0], notify=set(members))

    def new_epoch(
        self, db: Session, ctx: AuthContext, conversation_id: str, request: NewEpochRequest
    ) -> Change:
        conversation = _lock(db, conversation_id)
        me = load_member(db, conversation_id, ctx.user_id)
        if request.epoch != conversation.epoch + 1:
            raise conflict(
                "epoch_conflict",
                f"epoch must be {conversation.epoch + 1}; re-read the conversation and retry",
                current_epoch=conversation.epoch,
            )
        new_members = _unique(request.members, "members")
        old_members = set(member_ids(db, conversation_id))
        if ctx.user_id not in new_members:
            raise invalid("members", "members: must include yourself; use leave to go")
        if new_members != old_members:
            if conversation.kind == "direct":
                raise forbidden("the members of a direct conversation cannot change")
            if me.role != ADMIN:
                raise forbidden("only a group admin can add or remove members")
        # Disabled accounts that stay members still get wraps (for if they come back); only
        # people being added must be active.
        users = _active_users(db, new_members, must_be_active=new_members - old_members)
        _check_wraps(request.epoch_keys, users)
        moment = clock.now()
        removed = old_members - new_members
        db.execute(
            delete(Member).where(
                Member.conversation_id == conversation_id, Member.user_id.in_(removed)
            )
        )
        for user_id in new_members - old_members:
            db.add(_member(conversation_id, user_id, MEMBER, moment))
        _add_epoch(
            db,
            conversation_id,
            request.epoch,
            wrapper=users[ctx.user_id],
            wraps=request.epoch_keys,
            moment=moment,
        )
        conversation.epoch = request.epoch
        conversation.rotation_required = False
        self._audit.append(
            db,
            "conversation.epoch" if new_members == old_members else "conversation.members_changed",
            actor_id=ctx.user_id,
            target_id=conversation_id,
            epoch=request.epoch,
            added=sorted(new_members - old_members),
            removed=sorted(removed),
        )
        rendered = self._render_many(db, [conversation_id])[0]
        return Change(rendered, notify=new_members, removed=removed)

    def leave(self, db: Session, ctx: AuthContext, conversation_id: str) -> Change:
        conversation = _lock(db, conversation_id)
        me = load_member(db, conversation_id, ctx.user_id)
        if conversation.kind == "direct":
            raise forbidden("you cannot leave a direct conversation")
        db.delete(me)
        conversation.rotation_required = True
        db.flush()
        remaining = keep_an_admin(db, conversation_id)
        self._audit.append(db, "conversation.left", actor_id=ctx.user_id, target_id=conversation_id)
        rendered = self._render_many(db, [conversation_id])[0]
        return Change(rendered, notify={m.user_id for m in remaining}, removed={ctx.user_id})

    def rename(self, db: Session, ctx: AuthContext, conversation_id: str, title: str) -> Change:
        conversation = _lock(db, conversation_id)
        self._require_group_admin(db, conversation, ctx)
        conversation.title = title
        self._audit.append(
            db, "conversation.renamed", actor_id=ctx.user_id, target_id=conversation_id
        )
        return self._changed(db, conversation_id)

    def set_role(
        self, db: Session, ctx: AuthContext, conversation_id: str, user_id: str, role: str
    ) -> Change:
        conversation = _lock(db, conversation_id)
        self._require_group_admin(db, conversation, ctx)
        target = db.get(Member, (conversation_id, user_id))
        if target is None:
            raise not_found("member")
        if role == MEMBER and target.role == ADMIN:
            admins = db.scalars(
                select(Member.user_id).where(
                    Member.conversation_id == conversation_id, Member.role == ADMIN
                )
            ).all()
            if len(admins) == 1:
                raise conflict("conflict", "a group needs at least one admin")
        target.role = role
        self._audit.append(
            db,
            "conversation.role_changed",
            actor_id=ctx.user_id,
            target_id=conversation_id,
            member=user_id,
            role=role,
        )
        return self._changed(db, conversation_id)

    def keys_for(self, db: Session, ctx: AuthContext, conversation_id: str) -> list[dict[str, Any]]:
        load_member(db, conversation_id, ctx.user_id)
        rows = db.execute(
            select(EpochKey, Epoch)
            .join(
                Epoch,
                (Epoch.conversation_id == EpochKey.conversation_id)
                & (Epoch.epoch == EpochKey.epoch),
            )
            .where(
                EpochKey.conversation_id == conversation_id, EpochKey.recipient_id == ctx.user_id
            )
            .order_by(EpochKey.epoch)
        ).all()
        return [
            {
                "epoch": key.epoch,
                "wrapper_id": epoch.wrapper_id,
                "wrapper_key_version": epoch.wrapper_key_version,
                "recipient_id": key.recipient_id,
                "recipient_key_version": key.recipient_key_version,
                "ephemeral_public": b64(key.ephemeral_public),
                "nonce": b64(key.nonce),
                "ciphertext": b64(key.ciphertext),
                "signature": b64(key.signature),
            }
            for key, epoch in rows
        ]

    def _changed(self, db: Session, conversation_id: str) -> Change:
        rendered = self._render_many(db, [conversation_id])[0]
        return Change(rendered, notify=set(member_ids(db, conversation_id)))

    def _require_group_admin(
        self, db: Session, conversation: Conversation, ctx: AuthContext
    ) -> None:
        me = load_member(db, conversation.id, ctx.user_id)
        if conversation.kind != "group":
            raise forbidden("only groups have titles and roles")
        if me.role != ADMIN:
            raise forbidden("only a group admin can do that")

    def _refuse_existing_direct(self, db: Session, direct_pair: str) -> None:
        existing = db.scalar(select(Conversation.id).where(Conversation.direct_pair == direct_pair))
        if existing is not None:
            raise conflict(
                "conversation_exists",
                "a direct conversation between these users exists",
                existing_id=existing,
            )

    def _render_many(self, db: Session, ids: Sequence[str]) -> list[dict[str, Any]]:
        if not ids:
            return []
        conversations = db.scalars(
            select(Conversation).where(Conversation.id.in_(ids)).order_by(Conversation.created_at)
        ).all()
        members: dict[str, list[dict[str, Any]]] = defaultdict(list)
        rows = db.execute(
            select(Member, User.username, User.key_version)
            .join(User, User.id == Member.user_id)
            .where(Member.conversation_id.in_(ids))
            .order_by(Member.joined_at, User.username)
        )
        for member, username, key_version in rows:
            members[member.conversation_id].append(
                {
                    "user_id": member.user_id,
                    "username": username,
                    "role": member.role,
                    "key_version": key_version,
                    "last_read_seq": member.last_read_seq,
                }
            )
        return [
            {
                "id": c.id,
                "kind": c.kind,
                "title": c.title,
                "created_at": clock.iso(c.created_at),
                "created_by": c.created_by,
                "epoch": c.epoch,
                "rotation_required": c.rotation_required,
                "last_seq": c.last_seq,
                "members": members[c.id],
            }
            for c in conversations
        ]


def _lock(db: Session, conversation_id: str) -> Conversation:
    # Row lock: concurrent epoch changes of one conversation serialize here (MySQL);
    # SQLite serializes all writers anyway.
    conversation = db.scalar(
        select(Conversation).where(Conversation.id == conversation_id).with_for_update()
    )
    if conversation is None:
        raise not_found()
    return conversation


def _unique(ids: Iterable[str], field_name: str) -> set[str]:
    items = list(ids)
    unique = set(items)
    if len(unique) != len(items):
        raise invalid(field_name, f"{field_name}: lists a user twice")
    return unique


def _active_users(
    db: Session, ids: set[str], *, must_be_active: set[str] | None = None
) -> dict[str, User]:
    users = {u.id: u for u in db.scalars(select(User).where(User.id.in_(ids)))}
    active_required = ids if must_be_active is None else must_be_active
    for user_id in sorted(ids):
        user = users.get(user_id)
        if user is None or (user.disabled and user_id in active_required):
            raise ServiceError(
                "validation_error",
                f"members: no active user {user_id}",
                status=422,
                field="members",
            )
    return users


def _check_wraps(wraps: Sequence[WrappedKey], users: dict[str, User]) -> None:
    """Exactly one wrap per member, each for the member's current key version."""
    seen: set[str] = set()
    for index, wrap in enumerate(wraps):
        where = f"epoch_keys[{index}]"
        user = users.get(wrap.recipient_id)
        if user is None or wrap.recipient_id in seen:
            raise invalid(where, f"{where}: recipient is not a member or is listed twice")
        if wrap.recipient_key_version != user.key_version:
            raise invalid(
                where,
                f"{where}: recipient_key_version must be {user.key_version} (the current one)",
            )
        seen.add(wrap.recipient_id)
    missing = set(users) - seen
    if missing:
        raise invalid("epoch_keys", f"epoch_keys: no wrap for {', '.join(sorted(missing))}")


def _member(conversation_id: str, user_id: str, role: str, moment: datetime) -> Member:
    return Member(
        conversation_id=conversation_id,
        user_id=user_id,
        role=role,
        joined_at=moment,
        last_read_seq=0,
    )


def _add_epoch(
    db: Session,
    conversation_id: str,
    epoch: int,
    *,
    wrapper: User,
    wraps: Sequence[WrappedKey],
    moment: datetime,
) -> None:
    db.add(
        Epoch(
            conversation_id=conversation_id,
            epoch=epoch,
            wrapper_id=wrapper.id,
            wrapper_key_version=wrapper.key_version,
            created_at=moment,
        )
    )
    db.flush()
    for wrap in wraps:
        db.add(
            EpochKey(
                conversation_id=conversation_id,
                epoch=epoch,
                recipient_id=wrap.recipient_id,
                recipient_key_version=wrap.recipient_key_version,
                ephemeral_public=wrap.ephemeral_public,
                nonce=wrap.nonce,
                ciphertext=wrap.ciphertext,
                signature=wrap.signature,
            )
        )
