"""Which browser origins may open a Socket.IO connection: our own, plus an explicit allowlist.

Never "*". The server's own origin is computed from the request's scheme and Host header;
behind a TLS proxy uvicorn has already applied X-Forwarded-Proto from trusted proxies
(`--forwarded-allow-ips`), so `https://chat.lan` matches when nginx terminates TLS.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class OriginPolicy:
    def __init__(self, allowed: tuple[str, ...]) -> None:
        self._allowed = frozenset(origin.lower() for origin in allowed)

    def __call__(self, origin: str | None, environ: Mapping[str, Any]) -> bool:
        if not origin:
            return True  # not a browser: Origin checks protect browsers, tokens protect the rest
        origin = origin.lower()
        return origin in self._allowed or origin == _own_origin(environ)


def _own_origin(environ: Mapping[str, Any]) -> str | None:
    host = environ.get("HTTP_HOST")
    # The ASGI scope's scheme is what uvicorn established: https when it terminates TLS itself,
    # or when a proxy in --forwarded-allow-ips said X-Forwarded-Proto: https. (Engine.IO's own
    # wsgi.url_scheme trusts that header from anyone, so it is not used.)
    scope = environ.get("asgi.scope") or {}
    scheme = scope.get("scheme")
    if not host or not scheme:
        return None
    scheme = {"ws": "http", "wss": "https"}.get(scheme, scheme)
    return f"{scheme}://{host}".lower()
