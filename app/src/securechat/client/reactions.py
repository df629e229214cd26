"""Reactions (docs/protocol.md section 5.2, content type ``reaction``).

A reaction is an ordinary encrypted message whose content adds or removes one emoji of its
sender on another message. Its state is a set per (target, emoji): adding twice or removing
what is absent changes nothing, and the messages are applied in ``seq`` order, so every
client that holds the same messages shows the same reactions, whatever order they arrived in.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

from securechat.client.crypto import CryptoError
from securechat.protocol import UUID_RE

ReactionOp: TypeAlias = Literal["add", "remove"]

EMOJI_MAX_CODE_POINTS: Final = 16
_OPS: Final[frozenset[str]] = frozenset(("add", "remove"))


@dataclass(frozen=True)
class Reaction:
    """A validated ``reaction`` content."""

    target: str
    emoji: str
    op: ReactionOp


def _valid_emoji(emoji: object) -> bool:
    """1 to 16 code points, no control characters, no lone surrogates (not UTF-8)."""
    return (
        isinstance(emoji, str)
        and 1 <= len(emoji) <= EMOJI_MAX_CODE_POINTS
        and not any(unicodedata.category(ch) in ("Cc", "Cs") for ch in emoji)
    )


def _check(target: object, emoji: object, op: object) -> str | None:
    """The name of the first malformed member, or None."""
    if not isinstance(target, str) or not UUID_RE.fullmatch(target):
        return "target"
    if not _valid_emoji(emoji):
        return "emoji"
    if not isinstance(op, str) or op not in _OPS:
        return "op"
    return None


def reaction_content(target: str, emoji: str, op: ReactionOp = "add") -> dict[str, object]:
    """The content of a reaction to message ``target``; ValueError for a malformed argument."""
    bad = _check(target, emoji, op)
    if bad is not None:
        raise ValueError(f"malformed {bad}")
    return {"type": "reaction", "target": target, "emoji": emoji, "op": op}


def parse_reaction_content(content: Mapping[str, object]) -> Reaction:
    """Validate a received ``reaction`` content; CryptoError if it is not a valid one."""
    if content.get("type") != "reaction":
        raise CryptoError("not a reaction content")
    target, emoji, op = content.get("target"), content.get("emoji"), content.get("op")
    bad = _check(target, emoji, op)
    # The isinstance tests repeat part of _check for the type checker.
    if bad is not None or not isinstance(target, str) or not isinstance(emoji, str):
        raise CryptoError(f"malformed {bad or 'reaction'}")
    return Reaction(target=target, emoji=emoji, op="add" if op == "add" else "remove")


def aggregate_reactions(
    events: Iterable[tuple[int, str, Mapping[str, object]]],
) -> dict[str, dict[str, set[str]]]:
    """Fold reaction messages into ``{target_message_id: {emoji: {user_id, ...}}}``.

    ``events`` are ``(seq, sender_id, content)`` of one conversation's decrypted messages, in
    any order; ``sender_id`` must come from the verified envelope. They are applied in ``seq``
    order (ties, which a server never produces, are broken by the other fields so the result
    never depends on input order). Contents that are not valid reactions are ignored, and
    emoji nobody reacts with any longer, and targets left without emoji, are dropped.
    """
    valid: list[tuple[int, str, Reaction]] = []
    for seq, sender_id, content in events:
        if isinstance(seq, bool) or not isinstance(seq, int):
            continue
        if not isinstance(sender_id, str) or not sender_id or not isinstance(content, Mapping):
            continue
        try:
            valid.append((seq, sender_id, parse_reaction_content(content)))
        except CryptoError:
            continue
    valid.sort(key=lambda e: (e[0], e[1], e[2].target, e[2].emoji, e[2].op))

    state: dict[str, dict[str, set[str]]] = {}
    for _seq, sender_id, reaction in valid:
        if reaction.op == "add":
            state.setdefault(reaction.target, {}).setdefault(reaction.emoji, set()).add(sender_id)
            continue
        emojis = state.get(reaction.target)
        users = None if emojis is None else emojis.get(reaction.emoji)
        if emojis is None or users is None:
            continue
        users.discard(sender_id)
        if not users:
            del emojis[reaction.emoji]
            if not emojis:
                del state[reaction.target]
    return state
