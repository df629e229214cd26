"""Socket.IO event handlers: validate, call a service, acknowledge, fan out. Nothing more."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import socketio
from sqlalchemy import select, union
from sqlalchemy.orm import Session

from securechat.components import Components
from securechat.db.models import Block, Member
from securechat.realtime.hub import NAMESPACE, session_room, user_room
from securechat.realtime.presence import Changes, PresenceUnavailable
from securechat.schemas import (
    ConversationRef,
    EmptyRequest,
    Envelope,
    ReadRequest,
    validate,
)
from securechat.security.urls import has_token_in_query
from securechat.services.accounts import AuthContext
from securechat.services.blocks import hidden_from
from securechat.services.conversations import load_member, member_ids
from securechat.services.errors import ServiceError
from securechat.services.messages import SendRequest

log = logging.getLogger(__name__)
Ack = dict[str, Any]


@dataclass(frozen=True, slots=True)
class SocketUser:
    user_id: str
    session_id: str


class Refused(socketio.exceptions.ConnectionRefusedError):  # type: ignore[misc]
    """A refused connection; the client's `connect_error` carries `{"code", "message"}`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.error_args = {"code": code, "message": message}


def refuse(code: str, message: str) -> Refused:
    return Refused(code, message)


def error_ack(error: ServiceError) -> Ack:
    return {"ok": False, "error": error.to_json()}


class ChatNamespace(socketio.AsyncNamespace):  # type: ignore[misc]
    def __init__(self, parts: Components) -> None:
        super().__init__(NAMESPACE)
        self._parts = parts
        self._sockets: dict[str, SocketUser] = {}
        # How many sockets each user and each session has in this process, kept as sockets come
        # and go: the connect's worker thread reads the first, the session sweep the second.
        self._users_here: dict[str, int] = {}
        self._sessions_here: dict[str, int] = {}
        self._presence = parts.presence
        self._announcing: set[asyncio.Task[None]] = set()

    # python-socketio looks up `on_<event>`; our events are named `noun:verb`.
    async def trigger_event(self, event: str, *args: Any) -> Any:
        return await super().trigger_event(event.replace(":", "_"), *args)

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        if has_token_in_query(parse_qs(environ.get("QUERY_STRING", ""))):
            raise refuse(
                "token_in_url", "send the token in the Socket.IO auth payload, not the URL"
            )
        token = auth.get("token") if isinstance(auth, dict) else None
        if not isinstance(token, str) or not token or len(token) > 256:
            raise refuse("unauthorized", "connect with auth: {token: <session token>}")
        parts = self._parts
        here = self._users_here

        def check(db: Session) -> tuple[AuthContext, set[str] | None]:
            ctx = parts.accounts.authenticate(db, token)
            # A user's first socket here is likely their first anywhere: fetch who is told they
            # came online in the same transaction, rather than in a second one afterwards.
            # (`here` is only read in this thread: a dict lookup is atomic.)
            contacts = None if ctx.user_id in here else visible_contacts(db, ctx.user_id)
            return ctx, contacts

        try:
            ctx, contacts = await parts.db(check)
        except ServiceError as error:
            raise refuse(error.code, error.message) from None
        self._sockets[sid] = SocketUser(ctx.user_id, ctx.session_id)
        _count(here, ctx.user_id, 1)
        _count(self._sessions_here, ctx.session_id, 1)
        await self.enter_room(sid, user_room(ctx.user_id))
        await self.enter_room(sid, session_room(ctx.session_id))
        if await self._came_online(ctx.user_id, sid):
            await self._announce(ctx.user_id, "user:online", contacts)

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        user = self._sockets.pop(sid, None)
        if user is None:
            return
        _count(self._users_here, user.user_id, -1)
        _count(self._sessions_here, user.session_id, -1)
        if await self._went_offline(user.user_id, sid):
            await self._announce(user.user_id, "user:offline")

    async def on_message_send(self, sid: str, data: Any = None, *_extra: Any) -> Ack:
        return await self._handle(sid, lambda user: self._send(sid, user, data))

    async def on_message_read(self, sid: str, data: Any = None, *_extra: Any) -> Ack:
        return await self._handle(sid, lambda user: self._read(user, data))

    async def on_typing_start(self, sid: str, data: Any = None, *_extra: Any) -> Ack:
        return await self._handle(sid, lambda user: self._typing(user, data, "typing:start"))

    async def on_typing_stop(self, sid: str, data: Any = None, *_extra: Any) -> Ack:
        return await self._handle(sid, lambda user: self._typing(user, data, "typing:stop"))

    async def on_presence_list(self, sid: str, data: Any = None, *_extra: Any) -> Ack:
        return await self._handle(sid, lambda user: self._presence_list(user, data))

    async def _handle(self, sid: str, work: Callable[[SocketUser], Awaitable[Ack]]) -> Ack:
        user = self._sockets.get(sid)
        if user is None:
            return error_ack(ServiceError("unauthorized", "not connected", status=401))
        try:
            return await work(user)
        except ServiceError as error:
            return error_ack(error)
        except Exception:
            log.exception("unhandled error in a socket event")
            return error_ack(ServiceError("internal_error", "internal error", status=500))

    async def _send(self, sid: str, user: SocketUser, data: Any) -> Ack:
        envelope = validate(Envelope, data)
        stored = await self._parts.writer.submit(SendRequest(user.user_id, envelope))
        if not stored.duplicate:
            await self._parts.hub.to_users(
                "message:new", stored.message, stored.recipients, skip_sid=sid
            )
        return stored.ack()

    async def _read(self, user: SocketUser, data: Any) -> Ack:
        request = validate(ReadRequest, data)
        parts = self._parts

        def mark(db: Session) -> tuple[int, set[str]]:
            seq, members = parts.messages.mark_read(
                db, user.user_id, request.conversation_id, request.seq
            )
            # A position that did not move is not broadcast again.
            return seq, set(members) - hidden_from(db, user.user_id) if members else set()

        seq, audience = await parts.db(mark)
        event = {"conversation_id": request.conversation_id, "user_id": user.user_id, "seq": seq}
        await parts.hub.to_users("message:read", event, audience)
        return {"ok": True, "seq": seq}

    async def _typing(self, user: SocketUser, data: Any, event: str) -> Ack:
        request = validate(ConversationRef, data)

        def audience(db: Session) -> set[str]:
            load_member(db, request.conversation_id, user.user_id)
            members = set(member_ids(db, request.conversation_id))
            return members - hidden_from(db, user.user_id) - {user.user_id}

        others = await self._parts.db(audience)
        payload = {"conversation_id": request.conversation_id, "user_id": user.user_id}
        await self._parts.hub.to_users(event, payload, others)
        return {"ok": True}

    async def _presence_list(self, user: SocketUser, data: Any) -> Ack:
        validate(EmptyRequest, data if data is not None else {})
        contacts = await self._parts.db(lambda db: visible_contacts(db, user.user_id))
        return {"ok": True, "online": await self._presence.online(contacts)}

    # Presence is best effort: a failure of its store (Redis) must not refuse or break sockets.
    # The presence heartbeat repairs the store from this process's own list of sockets.
    async def _came_online(self, user_id: str, sid: str) -> bool:
        try:
            return await self._presence.connected(user_id, sid)
        except PresenceUnavailable as error:
            log.warning("presence: a connection not recorded (%s); the next beat will", error)
            return False

    async def _went_offline(self, user_id: str, sid: str) -> bool:
        try:
            return await self._presence.disconnected(user_id, sid)
        except PresenceUnavailable as error:
            log.warning("presence: a disconnection not recorded (%s); the next beat will", error)
            return False

    async def _announce(self, user_id: str, event: str, contacts: set[str] | None = None) -> None:
        try:
            if contacts is None:
                contacts = await self._parts.db(lambda db: visible_contacts(db, user_id))
            await self._parts.hub.to_users(event, {"user_id": user_id}, contacts)
        except Exception:
            log.exception("presence: announcing %s failed", event)

    async def _announce_changes(self, changes: Changes) -> None:
        for user_id in changes.offline:
            await self._announce(user_id, "user:offline")
        for user_id in changes.online:
            await self._announce(user_id, "user:online")

    async def run_presence(self) -> None:
        """Beat the presence heartbeat; announce the changes it finds (e.g. a process died).

        Announcing runs beside the beats, so that many of them cannot delay the next beat past
        this process's lease."""
        interval = self._presence.heartbeat_seconds
        if interval is None:
            return
        failing = False
        while True:
            await asyncio.sleep(interval)
            try:
                changes = await self._presence.heartbeat()
            except PresenceUnavailable as error:
                if not failing:  # once per outage, not at every beat
                    log.warning("presence heartbeat failed (%s); retrying at every beat", error)
                failing = True
                continue
            except Exception:
                log.exception("presence heartbeat failed; retrying at the next beat")
                continue
            if failing:
                log.warning("presence heartbeat works again")
                failing = False
            if changes.online or changes.offline:
                task = asyncio.create_task(self._announce_changes(changes))
                self._announcing.add(task)
                task.add_done_callback(self._announcing.discard)

    async def sweep_sessions(self) -> None:
        """Disconnect sockets whose session ended elsewhere (expired, disabled, another process)."""
        parts = self._parts
        # No copy of every socket: an idle server's CPU is mostly the garbage collector's, and
        # it runs the more often the more objects live through a few collections.
        sessions = list(self._sessions_here)
        if not sessions:
            return
        live = await parts.db(lambda db: parts.accounts.live_sessions(db, sessions))
        dead = [session_id for session_id in sessions if session_id not in live]
        if dead:
            await parts.hub.revoke_sessions(dead, "expired")

    async def run_sweeper(self) -> None:
        while True:
            await asyncio.sleep(self._parts.settings.session_sweep_seconds)
            try:
                await self.sweep_sessions()
            except Exception:
                log.exception("session sweep failed; retrying at the next interval")


def _count(counts: dict[str, int], key: str, delta: int) -> None:
    left = counts.get(key, 0) + delta
    if left > 0:
        counts[key] = left
    else:
        counts.pop(key, None)


def visible_contacts(db: Session, user_id: str) -> set[str]:
    """Who may see this user's presence: people sharing a conversation, minus blocks either way.

    `contacts_of(...) - hidden_from(...)` in one query instead of two."""
    shared = select(Member.conversation_id).where(Member.user_id == user_id)
    hidden = union(
        select(Block.blocked_id).where(Block.blocker_id == user_id),
        select(Block.blocker_id).where(Block.blocked_id == user_id),
    )
    rows = db.scalars(
        select(Member.user_id)
        .where(
            Member.conversation_id.in_(shared),
            Member.user_id != user_id,
            Member.user_id.not_in(hidden),
        )
        .distinct()
    )
    return set(rows)
