"""Messages: storing batches of envelopes, history, catch-up and read positions."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, tuple_
from sqlalchemy.orm import Session

from securechat.db.models import Block, Conversation, FileRef, Member, Message, StoredFile, User
from securechat.protocol import PROTOCOL_VERSION, SUITE
from securechat.schemas import Envelope
from securechat.services import clock
from securechat.services.accounts import AuthContext, b64
from securechat.services.blocks import blocked_error, blocks_among
from securechat.services.conversations import load_member, member_ids
from securechat.services.errors import ServiceError, invalid, not_found

HISTORY_DEFAULT_LIMIT = 50
HISTORY_MAX_LIMIT = 200


@dataclass(frozen=True)
class SendRequest:
    sender_id: str
    envelope: Envelope


@dataclass(frozen=True)
class Stored:
    """A committed (or previously committed) message and who should receive it."""

    message: dict[str, Any]
    duplicate: bool
    recipients: tuple[str, ...]

    def ack(self) -> dict[str, Any]:
        return {
            "ok": True,
            "conversation_id": self.message["conversation_id"],
            "message_id": self.message["message_id"],
            "seq": self.message["seq"],
            "server_time": self.message["server_time"],
            "duplicate": self.duplicate,
        }


def epoch_stale() -> ServiceError:
    return ServiceError(
        "epoch_stale",
        "the conversation has a newer epoch or needs a key rotation; re-read it and re-send",
        status=409,
        field="epoch",
    )


def store_batch(
    db: Session, batch: Sequence[SendRequest], max_ciphertext_bytes: int
) -> list[Stored | Exception]:
    """Validate and store a batch of envelopes in the caller's transaction.

    One round of queries serves the whole batch (conversations locked, memberships,
    sender key versions, already stored ids), so a batch of N sends costs a handful of
    statements and one commit instead of N transactions.
    """
    conversation_ids = sorted({r.envelope.conversation_id for r in batch})
    conversations = {
        c.id: c
        for c in db.scalars(
            select(Conversation)
            .where(Conversation.id.in_(conversation_ids))
            .order_by(Conversation.id)
            .with_for_update()
        )
    }
    members: dict[str, list[str]] = defaultdict(list)
    for conversation_id, user_id in db.execute(
        select(Member.conversation_id, Member.user_id).where(
            Member.conversation_id.in_(conversation_ids)
        )
    ):
        members[conversation_id].append(user_id)
    senders = select(User.id, User.key_version).where(
        User.id.in_({r.sender_id for r in batch}), User.disabled.is_(False)
    )
    key_versions: dict[str, int] = {row.id: row.key_version for row in db.execute(senders)}
    stored = _already_stored(db, batch)
    blocks = blocks_among(db, {r.sender_id for r in batch})
    files = _files_of(db, batch)

    results: list[Stored | Exception] = []
    rows: list[dict[str, Any]] = []
    refs: list[dict[str, Any]] = []
    moment = clock.now()
    for request in batch:
        env = request.envelope
        key = (env.conversation_id, env.message_id)
        conversation = conversations.get(env.conversation_id)
        recipients = tuple(members.get(env.conversation_id, ()))
        if conversation is None or request.sender_id not in recipients:
            results.append(not_found())  # strangers learn nothing, not even which ids exist
            continue
        existing = stored.get(key)
        if existing is not None:
            # A retry gets its original ack, even after a rotation made its epoch stale.
            results.append(_duplicate(existing, request.sender_id, recipients))
            continue
        problem = _problem(request, conversation, recipients, key_versions, max_ciphertext_bytes)
        if problem is None and conversation is not None:
            problem = _block_problem(conversation, request.sender_id, recipients, blocks)
        if problem is None:
            problem = _file_problem(request, files)
        if problem is not None or conversation is None:
            results.append(problem or not_found())
            continue
        conversation.last_seq += 1
        row = _row(env, conversation.last_seq, moment)
        rows.append(row)
        refs.extend(
            {"file_id": file_id, "conversation_id": env.conversation_id, "seq": row["seq"]}
            for file_id in set(env.files or ())
        )
        message = message_json_from_row(row)
        stored[key] = message
        # Whoever blocked the sender receives nothing from them.
        audience = tuple(u for u in recipients if request.sender_id not in blocks.get(u, ()))
        results.append(Stored(message, duplicate=False, recipients=audience))
    if rows:
        db.execute(insert(Message), rows)
    if refs:
        db.execute(insert(FileRef), refs)
    return results


def _duplicate(
    existing: dict[str, Any], sender_id: str, recipients: tuple[str, ...]
) -> Stored | ServiceError:
    if existing["sender_id"] != sender_id:
        return ServiceError(
            "conflict",
            "message_id: already used; generate a new one",
            status=409,
            field="message_id",
        )
    return Stored(existing, duplicate=True, recipients=recipients)


def _problem(
    request: SendRequest,
    conversation: Conversation | None,
    recipients: tuple[str, ...],
    key_versions: dict[str, int],
    max_ciphertext_bytes: int,
) -> ServiceError | None:
    env = request.envelope
    if conversation is None or request.sender_id not in recipients:
        return not_found()
    if env.sender_id != request.sender_id:
        return invalid("sender_id", "sender_id: must be your own user id")
    if key_versions.get(request.sender_id) != env.sender_key_version:
        return invalid("sender_key_version", "sender_key_version: must be your current key version")
    if len(env.ciphertext) > max_ciphertext_bytes:
        return ServiceError(
            "payload_too_large",
            f"ciphertext: larger than {max_ciphertext_bytes} bytes",
            status=413,
            field="ciphertext",
        )
    if env.epoch != conversation.epoch or conversation.rotation_required:
        return epoch_stale()
    return None


def _block_problem(
    conversation: Conversation,
    sender_id: str,
    members: tuple[str, ...],
    blocks: dict[str, set[str]],
) -> ServiceError | None:
    if conversation.kind != "direct":
        return None  # groups stay shared; delivery skips blockers instead
    for other in members:
        if other == sender_id:
            continue
        if other in blocks.get(sender_id, ()):
            return blocked_error(i_blocked=True)
        if sender_id in blocks.get(other, ()):
            return blocked_error(i_blocked=False)
    return None


def _files_of(db: Session, batch: Sequence[SendRequest]) -> dict[str, StoredFile]:
    ids = {file_id for r in batch for file_id in (r.envelope.files or ())}
    if not ids:
        return {}
    return {f.id: f for f in db.scalars(select(StoredFile).where(StoredFile.id.in_(ids)))}


def _file_problem(request: SendRequest, files: dict[str, StoredFile]) -> ServiceError | None:
    for index, file_id in enumerate(request.envelope.files or ()):
        found = files.get(file_id)
        if (
            found is None
            or found.conversation_id != request.envelope.conversation_id
            or found.uploader_id != request.sender_id
        ):
            where = f"files[{index}]"
            return invalid(where, f"{where}: not a file you uploaded to this conversation")
    return None


def _already_stored(
    db: Session, batch: Sequence[SendRequest]
) -> dict[tuple[str, str], dict[str, Any]]:
    keys = {(r.envelope.conversation_id, r.envelope.message_id) for r in batch}
    found = db.scalars(
        select(Message).where(tuple_(Message.conversation_id, Message.message_id).in_(keys))
    )
    return {(m.conversation_id, m.message_id): message_json(m) for m in found}


def _row(env: Envelope, seq: int, moment: Any) -> dict[str, Any]:
    return {
        "conversation_id": env.conversation_id,
        "seq": seq,
        "message_id": env.message_id,
        "sender_id": env.sender_id,
        "sender_key_version": env.sender_key_version,
        "epoch": env.epoch,
        "nonce": env.nonce,
        "ciphertext": env.ciphertext,
        "signature": env.signature,
        "server_time": moment,
    }


def message_json_from_row(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "v": PROTOCOL_VERSION,
        "suite": SUITE,
        "conversation_id": row["conversation_id"],
        "epoch": row["epoch"],
        "message_id": row["message_id"],
        "sender_id": row["sender_id"],
        "sender_key_version": row["sender_key_version"],
        "nonce": b64(row["nonce"]),
        "ciphertext": b64(row["ciphertext"]),
        "signature": b64(row["signature"]),
        "seq": row["seq"],
        "server_time": clock.iso(row["server_time"]),
    }


def message_json(message: Message) -> dict[str, Any]:
    return message_json_from_row({column: getattr(message, column) for column in _MESSAGE_COLUMNS})


_MESSAGE_COLUMNS = (
    "conversation_id",
    "seq",
    "message_id",
    "sender_id",
    "sender_key_version",
    "epoch",
    "nonce",
    "ciphertext",
    "signature",
    "server_time",
)


class MessageService:
    def history(
        self,
        db: Session,
        ctx: AuthContext,
        conversation_id: str,
        *,
        before: int | None,
        after: int | None,
        limit: int,
    ) -> dict[str, Any]:
        load_member(db, conversation_id, ctx.user_id)
        if before is not None and after is not None:
            raise invalid("before", "before and after cannot be combined")
        return _page(db, ctx.user_id, conversation_id, before=before, after=after, limit=limit)

    def sync(
        self, db: Session, ctx: AuthContext, since: dict[str, int], limit: int
    ) -> dict[str, Any]:
        mine = set(
            db.scalars(
                select(Member.conversation_id).where(
                    Member.user_id == ctx.user_id, Member.conversation_id.in_(list(since))
                )
            )
        )
        return {
            "conversations": {
                conversation_id: _page(
                    db, ctx.user_id, conversation_id, before=None, after=seq, limit=limit
                )
                for conversation_id, seq in since.items()
                if conversation_id in mine
            }
        }

    def mark_read(
        self, db: Session, user_id: str, conversation_id: str, seq: int
    ) -> tuple[int, list[str]]:
        """Move the user's read position forward (never back). Returns the position and the
        members to tell, none when the position did not move (nothing to broadcast)."""
        member = load_member(db, conversation_id, user_id)
        last_seq = db.scalar(
            select(Conversation.last_seq).where(Conversation.id == conversation_id)
        )
        target = min(seq, last_seq or 0)
        if target <= member.last_read_seq:
            return member.last_read_seq, []
        member.last_read_seq = target
        return target, member_ids(db, conversation_id)


def _page(
    db: Session,
    viewer_id: str,
    conversation_id: str,
    *,
    before: int | None,
    after: int | None,
    limit: int,
) -> dict[str, Any]:
    """A page of history; messages from users the viewer blocked are left out (seq gaps)."""
    blocked = select(Block.blocked_id).where(Block.blocker_id == viewer_id)
    query = select(Message).where(
        Message.conversation_id == conversation_id, Message.sender_id.not_in(blocked)
    )
    if after is not None:
        query = query.where(Message.seq > after).order_by(Message.seq)
    else:
        if before is not None:
            query = query.where(Message.seq < before)
        query = query.order_by(Message.seq.desc())
    found = list(db.scalars(query.limit(limit + 1)))
    has_more = len(found) > limit
    found = found[:limit]
    if after is None:
        found.reverse()
    return {"messages": [message_json(m) for m in found], "has_more": has_more}
