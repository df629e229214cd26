"""Messages: storing batches of envelopes, history, catch-up and read positions.

The two hot paths, `store_batch` (every message sent) and `_page` (history and catch-up), use
prepared Core statements on the session's connection: no ORM objects, only the columns they
need, and as few round trips as the rules allow (docs/benchmarks.md, S5 and S6).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    Connection,
    Select,
    String,
    Table,
    and_,
    bindparam,
    exists,
    or_,
    select,
    tuple_,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from securechat.db.models import Block, Conversation, FileRef, Member, Message, StoredFile, User
from securechat.protocol import PROTOCOL_VERSION, SUITE
from securechat.schemas import Envelope
from securechat.services import clock
from securechat.services.accounts import AuthContext, b64
from securechat.services.blocks import blocked_error
from securechat.services.conversations import load_member, member_ids
from securechat.services.errors import ServiceError, invalid, not_found

HISTORY_DEFAULT_LIMIT = 50
HISTORY_MAX_LIMIT = 200

_conversations_table = cast(Table, Conversation.__table__)
_conversations = _conversations_table.c
_members_table = cast(Table, Member.__table__)
_members = _members_table.c
_users_table = cast(Table, User.__table__)
_users = _users_table.c
_blocks = cast(Table, Block.__table__).c
_files = cast(Table, StoredFile.__table__).c
_messages_table = cast(Table, Message.__table__)
_messages = _messages_table.c
_file_refs_table = cast(Table, FileRef.__table__)


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


@dataclass
class _Target:
    """A conversation of the batch, locked: what the checks read, and its sequence counter."""

    kind: str
    epoch: int
    rotation_required: bool
    last_seq: int
    members: list[str]


def epoch_stale() -> ServiceError:
    return ServiceError(
        "epoch_stale",
        "the conversation has a newer epoch or needs a key rotation; re-read it and re-send",
        status=409,
        field="epoch",
    )


# The statements of `store_batch`, built once: their cache keys are computed once too.
_LOCK_CONVERSATIONS = (
    select(
        _conversations.id,
        _conversations.kind,
        _conversations.epoch,
        _conversations.rotation_required,
        _conversations.last_seq,
    )
    .where(_conversations.id.in_(bindparam("ids", expanding=True)))
    .order_by(_conversations.id)
    .with_for_update()
)
# Members of the batch's conversations, with the key version of those who send in this batch
# (enabled accounts only): one query instead of two.
_MEMBERS = (
    select(_members.conversation_id, _members.user_id, _users.key_version)
    .select_from(_members_table)
    .outerjoin(
        _users_table,
        and_(
            _users.id == _members.user_id,
            _users.id.in_(bindparam("senders", expanding=True)),
            _users.disabled.is_(False),
        ),
    )
    .where(_members.conversation_id.in_(bindparam("ids", expanding=True)))
)
# The columns of a message that are the sender's envelope, as stored and as read back.
_ENVELOPE_COLUMNS = (
    _messages.message_id,
    _messages.sender_id,
    _messages.sender_key_version,
    _messages.epoch,
    _messages.nonce,
    _messages.ciphertext,
    _messages.signature,
)
_STORED = select(
    _messages.conversation_id,
    _messages.seq,
    *_ENVELOPE_COLUMNS,
    _messages.server_time,
).where(
    tuple_(_messages.conversation_id, _messages.message_id).in_(bindparam("keys", expanding=True))
)
# Blocks in either direction that involve any of the senders (as blocks.blocks_among).
_BLOCKS = select(_blocks.blocker_id, _blocks.blocked_id).where(
    or_(
        _blocks.blocker_id.in_(bindparam("ids", expanding=True)),
        _blocks.blocked_id.in_(bindparam("ids", expanding=True)),
    )
)
_FILES = select(_files.id, _files.conversation_id, _files.uploader_id).where(
    _files.id.in_(bindparam("ids", expanding=True))
)


@dataclass(frozen=True)
class _Facts:
    """What the rules of a send are checked against, read once for the whole batch."""

    targets: dict[str, _Target]
    key_versions: dict[str, int]
    blocks: dict[str, set[str]]
    files: dict[str, tuple[str, str]]
    max_ciphertext_bytes: int


@dataclass(frozen=True)
class _Plan:
    results: list[Stored | Exception]
    rows: list[dict[str, Any]]
    refs: list[dict[str, Any]]
    last_seq: dict[str, int]


def store_batch(
    db: Session, batch: Sequence[SendRequest], max_ciphertext_bytes: int
) -> list[Stored | Exception]:
    """Validate and store a batch of envelopes in the caller's transaction.

    One round of queries serves the whole batch (conversations locked, members with the
    senders' key versions, blocks), then one multi-row INSERT and one UPDATE of the sequence
    counters: a batch of N sends costs five statements and one commit.

    Retried sends (section 5.3) are not looked up in advance: they are rare, and the unique
    key finds them. A batch whose INSERT meets one is rolled back (an executemany may have
    stored part of it) and done again, this time looking up the ids already stored.
    """
    try:
        return _store(db.connection(), batch, max_ciphertext_bytes, look_up=False)
    except IntegrityError:
        db.rollback()
    return _store(db.connection(), batch, max_ciphertext_bytes, look_up=True)


def _store(
    connection: Connection,
    batch: Sequence[SendRequest],
    max_ciphertext_bytes: int,
    *,
    look_up: bool,
) -> list[Stored | Exception]:
    conversation_ids = sorted({r.envelope.conversation_id for r in batch})
    sender_ids = sorted({r.sender_id for r in batch})
    targets = {
        row.id: _Target(row.kind, row.epoch, row.rotation_required, row.last_seq, [])
        for row in connection.execute(_LOCK_CONVERSATIONS, {"ids": conversation_ids})
    }
    key_versions: dict[str, int] = {}
    members = connection.execute(_MEMBERS, {"ids": conversation_ids, "senders": sender_ids})
    for conversation_id, user_id, key_version in members:
        targets[conversation_id].members.append(user_id)
        if key_version is not None:
            key_versions[user_id] = key_version
    blocks: dict[str, set[str]] = defaultdict(set)
    for blocker, blocked in connection.execute(_BLOCKS, {"ids": sender_ids}):
        blocks[blocker].add(blocked)
    facts = _Facts(
        targets, key_versions, blocks, _files_of(connection, batch), max_ciphertext_bytes
    )
    stored = _already_stored(connection, batch) if look_up else {}
    plan = _plan(batch, facts, stored, clock.now())
    if plan.rows:
        connection.execute(_messages_table.insert(), plan.rows)
        _advance_sequences(connection, plan.last_seq)
    if plan.refs:
        connection.execute(_file_refs_table.insert(), plan.refs)
    return plan.results


def _plan(
    batch: Sequence[SendRequest],
    facts: _Facts,
    stored: dict[tuple[str, str], dict[str, Any]],
    moment: datetime,
) -> _Plan:
    """Each send's outcome, and the rows to insert for those accepted, in batch order."""
    results: list[Stored | Exception] = []
    rows: list[dict[str, Any]] = []
    refs: list[dict[str, Any]] = []
    last_seq: dict[str, int] = {}
    known = dict(stored)  # a message id twice in one batch: the second is a duplicate
    server_time = clock.iso(moment)
    for request in batch:
        env = request.envelope
        key = (env.conversation_id, env.message_id)
        target = facts.targets.get(env.conversation_id)
        if target is None or request.sender_id not in target.members:
            results.append(not_found())  # strangers learn nothing, not even which ids exist
            continue
        recipients = tuple(target.members)
        existing = known.get(key)
        if existing is not None:
            # A retry gets its original ack, even after a rotation made its epoch stale.
            results.append(_duplicate(existing, request.sender_id, recipients))
            continue
        problem = (
            _problem(request, target, facts.key_versions, facts.max_ciphertext_bytes)
            or _block_problem(target, request.sender_id, facts.blocks)
            or _file_problem(request, facts.files)
        )
        if problem is not None:
            results.append(problem)
            continue
        seq = last_seq.get(env.conversation_id, target.last_seq) + 1
        last_seq[env.conversation_id] = seq
        row = _row(env, seq, moment)
        rows.append(row)
        refs.extend(
            {"file_id": file_id, "conversation_id": env.conversation_id, "seq": seq}
            for file_id in set(env.files or ())
        )
        message = _message_json(row, server_time)
        known[key] = message
        # Whoever blocked the sender receives nothing from them.
        audience = tuple(u for u in recipients if request.sender_id not in facts.blocks.get(u, ()))
        results.append(Stored(message, duplicate=False, recipients=audience))
    return _Plan(results, rows, refs, last_seq)


def _advance_sequences(connection: Connection, last_seq: dict[str, int]) -> None:
    """One UPDATE by primary key per conversation that got messages (their rows are locked).

    Not one UPDATE … CASE … WHERE id IN (…): on a small conversations table MariaDB scans the
    whole table for a long IN list and locks the rows of other writers' conversations, which
    deadlocked two app processes sharing a database (bench/scaleout.py)."""
    connection.execute(
        _SEQUENCE_UPDATE,
        [{"cid": cid, "seq": seq} for cid, seq in sorted(last_seq.items())],
    )


_SEQUENCE_UPDATE = (
    _conversations_table.update()
    .where(_conversations.id == bindparam("cid"))
    .values(last_seq=bindparam("seq"))
)


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
    target: _Target,
    key_versions: dict[str, int],
    max_ciphertext_bytes: int,
) -> ServiceError | None:
    env = request.envelope
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
    if env.epoch != target.epoch or target.rotation_required:
        return epoch_stale()
    return None


def _block_problem(
    target: _Target, sender_id: str, blocks: dict[str, set[str]]
) -> ServiceError | None:
    if target.kind != "direct":
        return None  # groups stay shared; delivery skips blockers instead
    for other in target.members:
        if other == sender_id:
            continue
        if other in blocks.get(sender_id, ()):
            return blocked_error(i_blocked=True)
        if sender_id in blocks.get(other, ()):
            return blocked_error(i_blocked=False)
    return None


def _files_of(connection: Connection, batch: Sequence[SendRequest]) -> dict[str, tuple[str, str]]:
    """file id -> (conversation id, uploader id) of the files the batch shares."""
    ids = sorted({file_id for r in batch for file_id in (r.envelope.files or ())})
    if not ids:
        return {}
    found = connection.execute(_FILES, {"ids": ids})
    return {
        file_id: (conversation_id, uploader_id) for file_id, conversation_id, uploader_id in found
    }


def _file_problem(request: SendRequest, files: dict[str, tuple[str, str]]) -> ServiceError | None:
    for index, file_id in enumerate(request.envelope.files or ()):
        if files.get(file_id) != (request.envelope.conversation_id, request.sender_id):
            where = f"files[{index}]"
            return invalid(where, f"{where}: not a file you uploaded to this conversation")
    return None


def _already_stored(
    connection: Connection, batch: Sequence[SendRequest]
) -> dict[tuple[str, str], dict[str, Any]]:
    keys = sorted({(r.envelope.conversation_id, r.envelope.message_id) for r in batch})
    found = connection.execute(_STORED, {"keys": keys}).mappings()
    return {(m["conversation_id"], m["message_id"]): message_json_from_row(m) for m in found}


def _row(env: Envelope, seq: int, moment: datetime) -> dict[str, Any]:
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


def message_json_from_row(row: Mapping[Any, Any]) -> dict[str, Any]:
    return _message_json(row, clock.iso(row["server_time"]))


def _message_json(row: Mapping[Any, Any], server_time: str) -> dict[str, Any]:
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
        "server_time": server_time,
    }


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
        if before is not None and after is not None:
            raise invalid("before", "before and after cannot be combined")
        page = _page(
            db.connection(),
            ctx.user_id,
            conversation_id,
            before=before,
            after=after,
            limit=limit,
            check_member=True,
        )
        if not page["messages"] and not _is_member(db.connection(), conversation_id, ctx.user_id):
            raise not_found()
        return page

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
        connection = db.connection()
        return {
            "conversations": {
                conversation_id: _page(
                    connection,
                    ctx.user_id,
                    conversation_id,
                    before=None,
                    after=seq,
                    limit=limit,
                    check_member=False,
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


_IS_MEMBER = exists().where(
    _members.conversation_id == bindparam("conversation_id"),
    _members.user_id == bindparam("viewer_id"),
)


def _is_member(connection: Connection, conversation_id: str, user_id: str) -> bool:
    found = connection.execute(
        select(_IS_MEMBER), {"conversation_id": conversation_id, "viewer_id": user_id}
    ).scalar()
    return bool(found)


def _page_statement(direction: str, check_member: bool) -> Select[Any]:
    """A page of one conversation without the messages of users the viewer blocked; with
    `check_member`, empty unless the viewer is a member (the caller tells 404 from empty)."""
    blocked = select(_blocks.blocked_id).where(_blocks.blocker_id == bindparam("viewer_id"))
    query = select(
        _messages.seq,
        *_ENVELOPE_COLUMNS,
        # As text: the driver's datetime parsing and clock.iso cost 15 % of a page (profile).
        _messages.server_time.cast(String),
    ).where(
        _messages.conversation_id == bindparam("conversation_id"),
        _messages.sender_id.not_in(blocked),
    )
    if check_member:
        query = query.where(_IS_MEMBER)
    if direction == "after":
        query = query.where(_messages.seq > bindparam("bound")).order_by(_messages.seq)
    elif direction == "before":
        query = query.where(_messages.seq < bindparam("bound")).order_by(_messages.seq.desc())
    else:
        query = query.order_by(_messages.seq.desc())
    return query.limit(bindparam("limit"))


_PAGES = {
    (direction, check_member): _page_statement(direction, check_member)
    for direction in ("newest", "before", "after")
    for check_member in (True, False)
}


def _page(
    connection: Connection,
    viewer_id: str,
    conversation_id: str,
    *,
    before: int | None,
    after: int | None,
    limit: int,
    check_member: bool,
) -> dict[str, Any]:
    """A page of history; messages from users the viewer blocked are left out (seq gaps)."""
    if after is not None:
        direction, bound = "after", after
    elif before is not None:
        direction, bound = "before", before
    else:
        direction, bound = "newest", 0
    found = list(
        connection.execute(
            _PAGES[direction, check_member],
            {
                "conversation_id": conversation_id,
                "viewer_id": viewer_id,
                "bound": bound,
                "limit": limit + 1,
            },
        )
    )
    has_more = len(found) > limit
    found = found[:limit]
    if after is None:
        found.reverse()
    messages = [
        {
            "v": PROTOCOL_VERSION,
            "suite": SUITE,
            "conversation_id": conversation_id,
            "epoch": epoch,
            "message_id": message_id,
            "sender_id": sender_id,
            "sender_key_version": sender_key_version,
            "nonce": b64(nonce),
            "ciphertext": b64(ciphertext),
            "signature": b64(signature),
            "seq": seq,
            "server_time": _iso_from_text(server_time),
        }
        for (
            seq,
            message_id,
            sender_id,
            sender_key_version,
            epoch,
            nonce,
            ciphertext,
            signature,
            server_time,
        ) in found
    ]
    return {"messages": messages, "has_more": has_more}


def _iso_from_text(text: str) -> str:
    """clock.iso of a DATETIME read as text: "2026-11-25 16:48:31.123" (MariaDB, DATETIME(3))
    or "2026-11-25 16:48:31.123456" (SQLite) becomes "2026-11-25T16:48:31.123Z"."""
    if len(text) >= 23 and text[10] == " " and text[19] == ".":
        return f"{text[:10]}T{text[11:23]}Z"
    return clock.iso(datetime.fromisoformat(text))  # another shape: parse it
