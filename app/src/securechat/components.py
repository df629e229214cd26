"""The server's parts, built once by `main.create_app` and shared by HTTP and Socket.IO handlers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from securechat.db.writer import BatchingWriter
from securechat.realtime.hub import Hub
from securechat.realtime.presence import Presence
from securechat.security.audit import AuditLog
from securechat.security.ratelimit import SlidingWindowLimiter
from securechat.services.accounts import AccountService
from securechat.services.admin import AdminService
from securechat.services.blocks import BlockService
from securechat.services.conversations import ConversationService
from securechat.services.files import FileService
from securechat.services.messages import MessageService, SendRequest, Stored
from securechat.settings import Settings
from securechat.storage import BlobStore

T = TypeVar("T")


@dataclass(frozen=True)
class AuthLimits:
    per_ip: SlidingWindowLimiter
    failures_per_account: SlidingWindowLimiter


@dataclass
class Components:
    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    accounts: AccountService
    conversations: ConversationService
    messages: MessageService
    blocks: BlockService
    files: FileService
    admin: AdminService
    audit: AuditLog
    blobs: BlobStore
    presence: Presence
    writer: BatchingWriter[SendRequest, Stored]
    limits: AuthLimits
    hub: Hub
    schema_revision: str

    async def db(self, work: Callable[[Session], T]) -> T:
        """Run `work` in a worker thread in one transaction; commit on return, else roll back."""
        return await run_in_threadpool(self._in_transaction, work)

    def _in_transaction(self, work: Callable[[Session], T]) -> T:
        with self.session_factory() as session:
            try:
                result = work(session)
                session.commit()
            except BaseException:
                session.rollback()
                raise
            return result
