"""Encrypted file blobs: who may upload and download them, quotas, and garbage collection."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, exists, func, select
from sqlalchemy.orm import Session

from securechat.db.models import Conversation, FileRef, Member, StoredFile, User
from securechat.security.audit import AuditLog
from securechat.services import clock
from securechat.services.accounts import AuthContext
from securechat.services.blocks import check_direct_allowed
from securechat.services.conversations import load_member
from securechat.services.errors import ServiceError, not_found
from securechat.settings import Settings

# The smallest valid blob: one record of a 12-byte nonce and a 16-byte tag (an empty file).
MIN_BLOB_BYTES = 28


def too_large(limit: int, code: str = "payload_too_large", what: str = "the file") -> ServiceError:
    return ServiceError(code, f"{what} is larger than {limit} bytes", status=413)


def file_json(stored: StoredFile) -> dict[str, Any]:
    return {
        "id": stored.id,
        "conversation_id": stored.conversation_id,
        "size": stored.size,
        "sha256": stored.sha256,
        "created_at": clock.iso(stored.created_at),
    }


class FileService:
    def __init__(self, settings: Settings, audit: AuditLog) -> None:
        self._settings = settings
        self._audit = audit

    def check_upload(self, db: Session, ctx: AuthContext, conversation_id: str, size: int) -> None:
        """Refuse before a byte is stored: not a member, blocked, too large, over quota."""
        load_member(db, conversation_id, ctx.user_id)
        self._check_not_blocked(db, ctx.user_id, conversation_id)
        if size > self._settings.max_upload_bytes:
            raise too_large(self._settings.max_upload_bytes)
        if size < MIN_BLOB_BYTES:
            raise ServiceError(
                "validation_error",
                f"an encrypted file is at least {MIN_BLOB_BYTES} bytes",
                status=422,
                field="body",
            )
        quota = self._settings.upload_quota_bytes
        if self.usage(db, ctx.user_id) + size > quota:
            raise too_large(quota, "quota_exceeded", "your stored files would be")

    def record_upload(
        self,
        db: Session,
        ctx: AuthContext,
        conversation_id: str,
        *,
        name: str,
        size: int,
        sha256: str,
    ) -> dict[str, Any]:
        # Again, under a lock on the uploader's row: concurrent uploads must not both fit a quota.
        db.scalar(select(User.id).where(User.id == ctx.user_id).with_for_update())
        self.check_upload(db, ctx, conversation_id, size)
        stored = StoredFile(
            id=str(uuid.uuid4()),
            uploader_id=ctx.user_id,
            conversation_id=conversation_id,
            storage_name=name,
            size=size,
            sha256=sha256,
            created_at=clock.now(),
        )
        db.add(stored)
        self._audit.append(
            db, "file.uploaded", actor_id=ctx.user_id, target_id=conversation_id, size=size
        )
        return file_json(stored)

    def for_download(self, db: Session, ctx: AuthContext, file_id: str) -> StoredFile:
        """The file, if the caller is in its conversation and it was shared (or is theirs)."""
        stored = db.get(StoredFile, file_id)
        if stored is None or db.get(Member, (stored.conversation_id, ctx.user_id)) is None:
            raise not_found("file")
        shared = db.scalar(select(exists().where(FileRef.file_id == file_id)))
        if not shared and stored.uploader_id != ctx.user_id:
            raise not_found("file")
        return stored

    def usage(self, db: Session, user_id: str) -> int:
        total = db.scalar(
            select(func.coalesce(func.sum(StoredFile.size), 0)).where(
                StoredFile.uploader_id == user_id
            )
        )
        return int(total or 0)

    def collect_garbage(self, db: Session) -> list[str]:
        """Delete files that no message shares after the grace period; return blob names."""
        horizon = clock.now() - timedelta(seconds=self._settings.file_grace_seconds)
        orphans = db.execute(
            select(StoredFile.id, StoredFile.storage_name).where(
                StoredFile.created_at < horizon,
                ~exists().where(FileRef.file_id == StoredFile.id),
            )
        ).all()
        if orphans:
            db.execute(delete(StoredFile).where(StoredFile.id.in_([row.id for row in orphans])))
            self._audit.append(db, "file.collected", files=len(orphans))
        return [row.storage_name for row in orphans]

    def storage_names(self, db: Session) -> set[str]:
        return set(db.scalars(select(StoredFile.storage_name)))

    def _check_not_blocked(self, db: Session, user_id: str, conversation_id: str) -> None:
        conversation = db.get(Conversation, conversation_id)
        if conversation is None or conversation.kind != "direct":
            return
        others = db.scalars(
            select(Member.user_id).where(
                Member.conversation_id == conversation_id, Member.user_id != user_id
            )
        ).all()
        for other in others:
            check_direct_allowed(db, user_id, other)
