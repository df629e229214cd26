"""Credentials never travel in URLs: they end up in proxy logs, history and Referer headers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

FORBIDDEN_QUERY_NAMES = frozenset({"token", "access_token", "auth", "authorization", "session"})


def has_token_in_query(query: Mapping[str, Sequence[str]]) -> bool:
    return any(name.lower() in FORBIDDEN_QUERY_NAMES for name in query)
