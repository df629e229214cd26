"""Delivering events to users and ending sessions' sockets.

Every socket joins the room `user:<id>` of its user and `session:<id>` of its login, so an
event for a user or a revocation of a session is one emit to a room. With Redis (several server
processes) rooms span the processes, disconnecting a room included (`managers.py`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import socketio

from securechat.realtime.managers import DISCONNECT_ROOM

log = logging.getLogger(__name__)
NAMESPACE = "/"


def user_room(user_id: str) -> str:
    return f"user:{user_id}"


def session_room(session_id: str) -> str:
    return f"session:{session_id}"


class Hub:
    def __init__(self, sio: socketio.AsyncServer) -> None:
        self._sio = sio

    async def to_users(
        self, event: str, data: Any, user_ids: Iterable[str], *, skip_sid: str | None = None
    ) -> None:
        rooms = [user_room(user_id) for user_id in sorted(set(user_ids))]
        if rooms:
            await self._sio.emit(event, data, to=rooms, skip_sid=skip_sid, namespace=NAMESPACE)

    async def disconnect_room(self, room: str) -> None:
        """Disconnect every socket in `room`, in every server process."""
        await self._sio.emit(DISCONNECT_ROOM, None, to=room, namespace=NAMESPACE)

    async def revoke_sessions(self, session_ids: Iterable[str], reason: str) -> None:
        """Tell the sockets of these sessions why, then disconnect them."""
        for session_id in session_ids:
            room = session_room(session_id)
            await self._sio.emit(
                "session:revoked", {"reason": reason}, to=room, namespace=NAMESPACE
            )
            await self.disconnect_room(room)
