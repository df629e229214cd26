"""Storing batches of envelopes and reading pages, against the real database (SQLite, MariaDB):
sequence numbers, idempotency (protocol 5.3), the send rules, blocks and pagination (section 7)."""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from securechat.db.engine import make_engine, make_session_factory
from securechat.db.models import Block, Conversation, Member, Message, User
from securechat.schemas import Envelope, validate
from securechat.services import clock
from securechat.services.accounts import AuthContext
from securechat.services.errors import ServiceError
from securechat.services.messages import (
    MessageService,
    SendRequest,
    Stored,
    _iso_from_text,
    store_batch,
)

MAX_CIPHERTEXT = 4096


@pytest.fixture(scope="module")
def sessions(migrated_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(migrated_url)
    yield make_session_factory(engine)
    engine.dispose()


@dataclass
class World:
    """Users and conversations of one test, made directly in the database."""

    sessions: sessionmaker[Session]

    def user(self, *, disabled: bool = False) -> str:
        user_id = str(uuid.uuid4())
        with self.sessions.begin() as db:
            db.add(
                User(
                    id=user_id,
                    username=f"u{uuid.uuid4().hex[:12]}",
                    auth_hash="x",
                    kdf_salt=b"s" * 16,
                    kdf_iterations=1000,
                    key_version=1,
                    key_blob_nonce=b"n" * 12,
                    key_blob_ciphertext=b"c" * 32,
                    is_admin=False,
                    disabled=disabled,
                    created_at=clock.now(),
                )
            )
        return user_id

    def conversation(self, members: list[str], kind: str = "group", epoch: int = 1) -> str:
        conversation_id = str(uuid.uuid4())
        with self.sessions.begin() as db:
            db.add(
                Conversation(
                    id=conversation_id,
                    kind=kind,
                    title=None,
                    direct_pair=":".join(sorted(members)) if kind == "direct" else None,
                    created_by=members[0],
                    created_at=clock.now(),
                    epoch=epoch,
                    rotation_required=False,
                    last_seq=0,
                )
            )
            db.flush()
            for user_id in members:
                db.add(
                    Member(
                        conversation_id=conversation_id,
                        user_id=user_id,
                        role="admin",
                        joined_at=clock.now(),
                        last_read_seq=0,
                    )
                )
        return conversation_id

    def block(self, blocker: str, blocked: str) -> None:
        with self.sessions.begin() as db:
            db.add(Block(blocker_id=blocker, blocked_id=blocked, created_at=clock.now()))

    def store(self, requests: list[SendRequest]) -> list[Stored | Exception]:
        with self.sessions() as db:
            results = store_batch(db, requests, MAX_CIPHERTEXT)
            db.commit()
        return results

    def last_seq(self, conversation_id: str) -> int:
        with self.sessions() as db:
            found = db.scalar(
                select(Conversation.last_seq).where(Conversation.id == conversation_id)
            )
        assert found is not None
        return found

    def seqs(self, conversation_id: str) -> list[int]:
        with self.sessions() as db:
            return list(
                db.scalars(
                    select(Message.seq)
                    .where(Message.conversation_id == conversation_id)
                    .order_by(Message.seq)
                )
            )

    def history(self, viewer: str, conversation_id: str, **bounds: Any) -> dict[str, Any]:
        bounds.setdefault("before", None)
        bounds.setdefault("after", None)
        bounds.setdefault("limit", 50)
        with self.sessions() as db:
            return MessageService().history(db, context(viewer), conversation_id, **bounds)


@pytest.fixture
def world(sessions: sessionmaker[Session]) -> World:
    return World(sessions)


def context(user_id: str) -> AuthContext:
    return AuthContext(user_id, "session", "name", False)


def send(
    sender: str, conversation_id: str, message_id: str | None = None, **changes: Any
) -> SendRequest:
    data: dict[str, Any] = {
        "v": 1,
        "suite": "p256-v1",
        "conversation_id": conversation_id,
        "epoch": 1,
        "message_id": message_id or str(uuid.uuid4()),
        "sender_id": sender,
        "sender_key_version": 1,
        "nonce": base64.b64encode(os.urandom(12)).decode(),
        "ciphertext": base64.b64encode(os.urandom(40)).decode(),
        "signature": base64.b64encode(os.urandom(64)).decode(),
    }
    data.update(changes)
    return SendRequest(sender, validate(Envelope, data))


def stored(result: Stored | Exception) -> Stored:
    assert isinstance(result, Stored), result
    return result


def error_code(result: Stored | Exception) -> str:
    assert isinstance(result, ServiceError), result
    return result.code


def test_a_batch_over_several_conversations_numbers_each_without_gaps(world: World) -> None:
    alice, bob, carol = world.user(), world.user(), world.user()
    one = world.conversation([alice, bob])
    two = world.conversation([alice, carol])
    three = world.conversation([bob, carol])
    world.store([send(alice, one)])  # `one` starts at 1, the others at 0
    batch = [send(alice, one), send(alice, two), send(bob, one), send(carol, two), send(bob, three)]
    results = [stored(r) for r in world.store(batch)]
    assert [(r.message["conversation_id"], r.message["seq"]) for r in results] == [
        (one, 2),
        (two, 1),
        (one, 3),
        (two, 2),
        (three, 1),
    ]
    assert results[0].message["server_time"] == results[4].message["server_time"]
    assert set(results[0].recipients) == {alice, bob}
    assert (world.last_seq(one), world.last_seq(two), world.last_seq(three)) == (3, 2, 1)
    assert world.seqs(one) == [1, 2, 3]
    assert all(not r.duplicate for r in results)


def test_a_retry_gets_its_first_ack_and_the_new_ones_in_its_batch_get_no_gap(
    world: World,
) -> None:
    alice, bob = world.user(), world.user()
    cid = world.conversation([alice, bob])
    first = world.store([send(alice, cid, message_id="0b4e8a40-0000-4000-8000-000000000001")])
    original = stored(first[0])
    retry = send(alice, cid, message_id="0b4e8a40-0000-4000-8000-000000000001")
    stolen = send(bob, cid, message_id="0b4e8a40-0000-4000-8000-000000000001")
    twice = str(uuid.uuid4())
    results = world.store(
        [send(alice, cid), retry, send(bob, cid, twice), stolen, send(bob, cid, twice)]
    )
    new_one, again, fresh, conflict, same_batch = results
    assert stored(new_one).message["seq"] == 2
    assert stored(again).duplicate
    assert stored(again).message == original.message  # the original seq and server_time
    assert stored(fresh).message["seq"] == 3
    assert error_code(conflict) == "conflict"
    assert stored(same_batch).duplicate
    assert stored(same_batch).message["seq"] == 3
    assert world.seqs(cid) == [1, 2, 3]
    assert world.last_seq(cid) == 3


def test_a_batch_of_nothing_but_retries_changes_nothing(world: World) -> None:
    alice, bob = world.user(), world.user()
    cid = world.conversation([alice, bob])
    request = send(alice, cid)
    world.store([request])
    results = world.store([request, request])
    assert all(stored(r).duplicate for r in results)
    assert world.last_seq(cid) == 1


def test_the_rules_of_a_send(world: World) -> None:
    alice, bob, stranger = world.user(), world.user(), world.user()
    gone = world.user(disabled=True)
    cid = world.conversation([alice, bob, gone])
    stale = world.conversation([alice, bob], epoch=2)
    results = world.store(
        [
            send(stranger, cid),
            send(alice, str(uuid.uuid4())),
            send(alice, cid, sender_id=bob),
            send(alice, cid, sender_key_version=2),
            send(gone, cid, sender_id=gone),
            send(alice, stale),
            send(alice, cid, ciphertext=base64.b64encode(os.urandom(MAX_CIPHERTEXT + 1)).decode()),
            send(alice, cid, files=[str(uuid.uuid4())]),
            send(bob, cid),
        ]
    )
    assert [error_code(r) for r in results[:-1]] == [
        "not_found",
        "not_found",
        "validation_error",
        "validation_error",
        "validation_error",
        "epoch_stale",
        "payload_too_large",
        "validation_error",
    ]
    assert stored(results[-1]).message["seq"] == 1  # refused sends take no number
    assert world.last_seq(cid) == 1
    assert world.last_seq(stale) == 0


def test_blocks_close_direct_conversations_and_mute_in_groups(world: World) -> None:
    alice, bob, carol = world.user(), world.user(), world.user()
    direct = world.conversation([alice, bob], kind="direct")
    group = world.conversation([alice, bob, carol])
    world.block(alice, bob)
    results = world.store([send(alice, direct), send(bob, direct), send(bob, group)])
    assert error_code(results[0]) == "blocked"
    assert error_code(results[1]) == "blocked"
    assert isinstance(results[0], ServiceError)
    assert isinstance(results[1], ServiceError)
    assert results[0].message != results[1].message  # the blocker is told it was them
    assert set(stored(results[2]).recipients) == {bob, carol}  # alice blocked bob


def test_history_pages_newest_before_after(world: World) -> None:
    alice, bob = world.user(), world.user()
    cid = world.conversation([alice, bob])
    for _ in range(3):
        world.store([send(alice, cid) for _ in range(3)])  # seq 1..9

    def seqs(page: dict[str, Any]) -> list[int]:
        return [m["seq"] for m in page["messages"]]

    newest = world.history(bob, cid, limit=4)
    assert (seqs(newest), newest["has_more"]) == ([6, 7, 8, 9], True)
    older = world.history(bob, cid, before=6, limit=4)
    assert (seqs(older), older["has_more"]) == ([2, 3, 4, 5], True)
    oldest = world.history(bob, cid, before=2, limit=4)
    assert (seqs(oldest), oldest["has_more"]) == ([1], False)
    after = world.history(bob, cid, after=6, limit=2)
    assert (seqs(after), after["has_more"]) == ([7, 8], True)
    tail = world.history(bob, cid, after=7, limit=2)
    assert (seqs(tail), tail["has_more"]) == ([8, 9], False)
    everything = world.history(bob, cid, limit=200)
    assert (seqs(everything), everything["has_more"]) == (list(range(1, 10)), False)
    message = everything["messages"][0]
    assert set(message) == {
        "v",
        "suite",
        "conversation_id",
        "epoch",
        "message_id",
        "sender_id",
        "sender_key_version",
        "nonce",
        "ciphertext",
        "signature",
        "seq",
        "server_time",
    }
    assert message["conversation_id"] == cid
    assert len(base64.b64decode(message["nonce"], validate=True)) == 12
    assert message["server_time"].endswith("Z")


def test_history_is_the_same_as_the_ack(world: World) -> None:
    alice, bob = world.user(), world.user()
    cid = world.conversation([alice, bob])
    ack = stored(world.store([send(alice, cid)])[0])
    assert world.history(bob, cid)["messages"] == [ack.message]


def test_history_leaves_out_the_blocked_and_hides_from_strangers(world: World) -> None:
    alice, bob, carol, stranger = world.user(), world.user(), world.user(), world.user()
    cid = world.conversation([alice, bob, carol])
    world.store([send(alice, cid), send(bob, cid), send(alice, cid), send(bob, cid)])
    world.block(carol, bob)
    page = world.history(carol, cid, limit=1)
    assert ([m["seq"] for m in page["messages"]], page["has_more"]) == ([3], True)
    assert [m["seq"] for m in world.history(carol, cid)["messages"]] == [1, 3]
    assert [m["seq"] for m in world.history(bob, cid)["messages"]] == [1, 2, 3, 4]
    with pytest.raises(ServiceError) as refused:
        world.history(stranger, cid)
    assert refused.value.code == "not_found"
    with pytest.raises(ServiceError) as missing:
        world.history(alice, str(uuid.uuid4()))
    assert missing.value.code == "not_found"
    with pytest.raises(ServiceError) as both:
        world.history(alice, cid, before=3, after=1)
    assert both.value.code == "validation_error"


def test_an_empty_history_is_a_page_for_members_only(world: World) -> None:
    alice, bob, stranger = world.user(), world.user(), world.user()
    cid = world.conversation([alice, bob])
    assert world.history(bob, cid) == {"messages": [], "has_more": False}
    assert world.history(bob, cid, after=5) == {"messages": [], "has_more": False}
    with pytest.raises(ServiceError):
        world.history(stranger, cid)
    world.store([send(alice, cid)])
    world.block(bob, alice)
    assert world.history(bob, cid) == {"messages": [], "has_more": False}  # all blocked


def test_sync_answers_only_the_callers_conversations(world: World) -> None:
    alice, bob, carol = world.user(), world.user(), world.user()
    mine = world.conversation([alice, bob])
    theirs = world.conversation([bob, carol])
    world.store([send(alice, mine), send(bob, mine), send(bob, theirs)])
    with world.sessions() as db:
        answer = MessageService().sync(db, context(alice), {mine: 1, theirs: 0}, limit=10)
    assert list(answer["conversations"]) == [mine]
    assert [m["seq"] for m in answer["conversations"][mine]["messages"]] == [2]


@pytest.mark.parametrize("microsecond", [0, 7000, 999000])
def test_history_times_read_as_text_are_the_acks_times(world: World, microsecond: int) -> None:
    alice, bob = world.user(), world.user()
    cid = world.conversation([alice, bob])
    moment = clock.now().replace(microsecond=microsecond)
    with world.sessions.begin() as db:
        db.add(
            Message(
                conversation_id=cid,
                seq=1,
                message_id=str(uuid.uuid4()),
                sender_id=alice,
                sender_key_version=1,
                epoch=1,
                nonce=b"n" * 12,
                ciphertext=b"c" * 16,
                signature=b"s" * 64,
                server_time=moment,
            )
        )
    [message] = world.history(bob, cid)["messages"]
    assert message["server_time"] == clock.iso(moment)


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("2026-11-25 16:48:31.123", "2026-11-25T16:48:31.123Z"),
        ("2026-11-25 16:48:31.123999", "2026-11-25T16:48:31.123Z"),
        ("2026-11-25 16:48:31", "2026-11-25T16:48:31.000Z"),
        ("2026-11-25T16:48:31.5", "2026-11-25T16:48:31.500Z"),
    ],
)
def test_times_as_text(text: str, iso: str) -> None:
    assert _iso_from_text(text) == iso


def test_a_batch_locks_only_its_own_conversations(world: World) -> None:
    """Another writer (an app process on the same database) holds its conversation's row:
    a batch over many of the others neither waits for it nor deadlocks with it. On MariaDB an
    UPDATE … WHERE id IN (a long list) scanned the small table and waited for that row."""
    with world.sessions() as probe:
        if probe.get_bind().dialect.name != "mysql":
            pytest.skip("row locks: MariaDB only (SQLite locks the whole database)")
    alice, bob = world.user(), world.user()
    held = world.conversation([alice, bob])
    mine = [world.conversation([alice, bob]) for _ in range(12)]
    with world.sessions() as other, world.sessions() as db:
        other.execute(select(Conversation.id).where(Conversation.id == held).with_for_update())
        db.execute(text("SET SESSION innodb_lock_wait_timeout = 1"))
        results = store_batch(db, [send(alice, cid) for cid in mine], MAX_CIPHERTEXT)
        db.commit()
        other.rollback()
    assert [stored(r).message["seq"] for r in results] == [1] * len(mine)
    assert [world.last_seq(cid) for cid in mine] == [1] * len(mine)
