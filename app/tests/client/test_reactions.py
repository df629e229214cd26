"""Reactions (docs/protocol.md section 5.2): content validation and set-semantics folding."""

from __future__ import annotations

import random
import uuid
from collections.abc import Mapping

import pytest

from securechat.client.crypto import CryptoError, encode_json
from securechat.client.reactions import (
    Reaction,
    aggregate_reactions,
    parse_reaction_content,
    reaction_content,
)

M1, M2 = str(uuid.uuid4()), str(uuid.uuid4())
ALICE, BOB, CAROL = (str(uuid.uuid4()) for _ in range(3))
Event = tuple[int, str, Mapping[str, object]]


def react(seq: int, sender: str, target: str, emoji: str, op: str = "add") -> Event:
    return (seq, sender, {"type": "reaction", "target": target, "emoji": emoji, "op": op})


def test_reaction_content() -> None:
    assert reaction_content(M1, "👍") == {
        "type": "reaction",
        "target": M1,
        "emoji": "👍",
        "op": "add",
    }
    content = reaction_content(M1, "👍", "remove")
    assert content["op"] == "remove"
    assert parse_reaction_content(content) == Reaction(target=M1, emoji="👍", op="remove")
    # It survives the envelope's JSON encoding.
    assert encode_json(content)


@pytest.mark.parametrize(
    "emoji",
    [
        "👍",
        "👍🏽",  # with a skin-tone modifier: 2 code points
        "👨‍👩‍👧‍👦",  # family: 7 code points joined with ZWJ
        "🏳️‍🌈",
        "x" * 16,
        "+1",
    ],
)
def test_valid_emoji(emoji: str) -> None:
    assert parse_reaction_content(reaction_content(M1, emoji)).emoji == emoji


BAD: list[tuple[str, object]] = [
    ("target", "not-a-uuid"),
    ("target", M1.upper()),
    ("target", 5),
    ("target", None),
    ("emoji", ""),
    ("emoji", "x" * 17),
    ("emoji", "👍\x00"),
    ("emoji", "\n"),
    ("emoji", "a\x7f"),
    ("emoji", "\ud83d"),  # lone surrogate: not encodable as UTF-8
    ("emoji", 1),
    ("emoji", ["👍"]),
    ("op", "toggle"),
    ("op", "ADD"),
    ("op", None),
    ("op", True),
]


@pytest.mark.parametrize(("member", "value"), BAD)
def test_malformed_content(member: str, value: object) -> None:
    content: dict[str, object] = {"type": "reaction", "target": M1, "emoji": "👍", "op": "add"}
    content[member] = value
    with pytest.raises(CryptoError):
        parse_reaction_content(content)
    with pytest.raises(ValueError):
        reaction_content(
            content["target"],  # type: ignore[arg-type]
            content["emoji"],  # type: ignore[arg-type]
            content["op"],  # type: ignore[arg-type]
        )
    assert aggregate_reactions([(1, ALICE, content)]) == {}


@pytest.mark.parametrize("missing", ["type", "target", "emoji", "op"])
def test_missing_member(missing: str) -> None:
    content: dict[str, object] = {"type": "reaction", "target": M1, "emoji": "👍", "op": "add"}
    del content[missing]
    with pytest.raises(CryptoError):
        parse_reaction_content(content)


def test_unknown_members_are_ignored() -> None:
    content = {**reaction_content(M1, "👍"), "future": {"x": 1}}
    assert parse_reaction_content(content) == Reaction(M1, "👍", "add")


def test_aggregate_basic() -> None:
    events = [
        react(1, ALICE, M1, "👍"),
        react(2, BOB, M1, "👍"),
        react(3, BOB, M1, "❤️"),
        react(4, CAROL, M2, "😂"),
    ]
    assert aggregate_reactions(events) == {
        M1: {"👍": {ALICE, BOB}, "❤️": {BOB}},
        M2: {"😂": {CAROL}},
    }


def test_order_independence() -> None:
    rng = random.Random(1234)
    emojis = ["👍", "❤️", "😂"]
    events = [
        react(
            seq,
            rng.choice([ALICE, BOB, CAROL]),
            rng.choice([M1, M2]),
            rng.choice(emojis),
            rng.choice(["add", "add", "remove"]),
        )
        for seq in range(1, 200)
    ]
    expected = aggregate_reactions(events)
    assert expected  # the sample is not trivially empty
    for _ in range(20):
        shuffled = events[:]
        rng.shuffle(shuffled)
        assert aggregate_reactions(shuffled) == expected
    # The reference: the last operation by seq of each (target, emoji, user) decides.
    last: dict[tuple[str, str, str], str] = {}
    for _seq, sender, content in events:
        last[(str(content["target"]), str(content["emoji"]), sender)] = str(content["op"])
    reference: dict[str, dict[str, set[str]]] = {}
    for (target, emoji, sender), op in last.items():
        if op == "add":
            reference.setdefault(target, {}).setdefault(emoji, set()).add(sender)
    assert expected == reference


def test_idempotent_add_and_remove() -> None:
    events = [
        react(1, ALICE, M1, "👍"),
        react(2, ALICE, M1, "👍"),
        react(3, BOB, M1, "👍", "remove"),  # Bob never added it: no change
        react(4, BOB, M2, "👍", "remove"),  # nothing at all on M2: no change
    ]
    assert aggregate_reactions(events) == {M1: {"👍": {ALICE}}}
    # One remove undoes any number of adds.
    events.append(react(5, ALICE, M1, "👍", "remove"))
    assert aggregate_reactions(events) == {}
    events.append(react(6, ALICE, M1, "👍", "remove"))
    assert aggregate_reactions(events) == {}


def test_the_same_event_twice_changes_nothing() -> None:
    # A message received both live and through catch-up.
    event = react(7, ALICE, M1, "👍")
    assert aggregate_reactions([event, event]) == aggregate_reactions([event])


def test_remove_before_add_by_seq() -> None:
    # Arrival order says add then remove; seq says the remove came first.
    events = [react(10, ALICE, M1, "👍"), react(9, ALICE, M1, "👍", "remove")]
    assert aggregate_reactions(events) == {M1: {"👍": {ALICE}}}
    events = [react(9, ALICE, M1, "👍"), react(10, ALICE, M1, "👍", "remove")]
    assert aggregate_reactions(list(reversed(events))) == {}


def test_users_remove_only_their_own() -> None:
    events = [react(1, ALICE, M1, "👍"), react(2, BOB, M1, "👍", "remove")]
    assert aggregate_reactions(events) == {M1: {"👍": {ALICE}}}


def test_empty_entries_are_dropped() -> None:
    events = [
        react(1, ALICE, M1, "👍"),
        react(2, ALICE, M1, "❤️"),
        react(3, ALICE, M1, "👍", "remove"),
        react(4, BOB, M2, "😂"),
        react(5, BOB, M2, "😂", "remove"),
    ]
    assert aggregate_reactions(events) == {M1: {"❤️": {ALICE}}}


def test_malformed_events_are_ignored() -> None:
    good = react(1, ALICE, M1, "👍")
    events: list[object] = [
        good,
        (2, BOB, {"type": "text", "text": "hello"}),
        (3, BOB, {"type": "reaction", "target": M1, "emoji": "", "op": "add"}),
        (4, BOB, {"type": "reaction", "target": "x", "emoji": "👍", "op": "add"}),
        (5, BOB, {"type": "reaction", "target": M1, "emoji": "👍", "op": "flip"}),
        (6, BOB, {"type": "reaction", "target": M1, "emoji": "👍"}),
        ("7", BOB, reaction_content(M1, "👍")),
        (True, BOB, reaction_content(M1, "👍")),
        (8, "", reaction_content(M1, "👍")),
        (9, None, reaction_content(M1, "👍")),
        (10, BOB, None),
        (11, BOB, ["reaction"]),
        (12, ALICE, {"type": "reaction", "target": M1, "emoji": "👍", "op": "remove", "x": 1}),
    ]
    # Only the first and the last are valid: Alice added, then removed.
    assert aggregate_reactions(events[:-1]) == {M1: {"👍": {ALICE}}}  # type: ignore[arg-type]
    assert aggregate_reactions(events) == {}  # type: ignore[arg-type]


def test_no_events() -> None:
    assert aggregate_reactions([]) == {}
    assert aggregate_reactions(iter([])) == {}
