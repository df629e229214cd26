"""ASGI middleware around the whole application (HTTP API, static files and Socket.IO)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable, Iterable
from html.parser import HTMLParser
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from securechat.security.urls import has_token_in_query

# A CSP hash source, as `content_security_policy` accepts it.
SCRIPT_HASH = re.compile(r"'sha(256|384|512)-[A-Za-z0-9+/]+={0,2}'")


def content_security_policy(script_hashes: Iterable[str] = ()) -> str:
    """The CSP: nothing from anywhere but this origin, no inline style, and no inline script
    except those whose hash is listed (`'sha256-…'` sources, the import map of index.html)."""
    hashes = sorted(set(script_hashes))
    for source in hashes:
        if not SCRIPT_HASH.fullmatch(source):
            raise ValueError(f"not a CSP hash source: {source!r}")
    return "; ".join(
        (
            "default-src 'self'",
            " ".join(("script-src 'self'", *hashes)),
            "style-src 'self'",
            "img-src 'self' blob: data:",
            "connect-src 'self'",
            "font-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


def inline_script_hash(text: str) -> str:
    """The CSP source that allows an inline script whose text content is `text`.

    Browsers hash the text after the HTML parser normalised line breaks to LF.
    """
    normalised = text.replace("\r\n", "\n").replace("\r", "\n")
    digest = hashlib.sha256(normalised.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"


class _ImportMaps(HTMLParser):
    """Collects the text content of every inline `<script type="importmap">`."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.texts: list[str] = []
        self._current: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "script" and (attributes.get("type") or "").strip().lower() == "importmap":
            self._current = [] if "src" not in attributes else None

    def handle_data(self, data: str) -> None:
        if self._current is not None:
            self._current.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._current is not None:
            self.texts.append("".join(self._current))
            self._current = None


def import_map_hashes(html: str) -> list[str]:
    """The CSP hash sources of the inline import maps of an HTML page (its only allowed
    inline scripts: any other inline script stays blocked)."""
    parser = _ImportMaps()
    parser.feed(html)
    parser.close()
    return [inline_script_hash(text) for text in parser.texts]


# The policy without any inline script.
CONTENT_SECURITY_POLICY = content_security_policy()


def security_headers(csp: str) -> tuple[tuple[bytes, bytes], ...]:
    return (
        (b"content-security-policy", csp.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"no-referrer"),
        (b"cross-origin-opener-policy", b"same-origin"),
        (b"cross-origin-resource-policy", b"same-origin"),
        (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
        (b"cache-control", b"no-store"),
    )


SECURITY_HEADERS = security_headers(CONTENT_SECURITY_POLICY)


# Sent over HTTPS only (RFC 6797 §7.2); a year, as browsers' preload lists expect.
HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")


async def send_json_error(
    send: Send,
    status: int,
    code: str,
    message: str,
    headers: tuple[tuple[bytes, bytes], ...] = SECURITY_HEADERS,
) -> None:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    start = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": start + list(headers)})
    await send({"type": "http.response.body", "body": body})


class SecurityMiddleware:
    """Adds security headers to every response, refuses tokens in URLs and oversized bodies.

    `csp` is the Content-Security-Policy (from `content_security_policy`, with the hashes of
    the inline scripts the application serves).
    """

    def __init__(self, app: ASGIApp, *, body_limit: Callable[[str], int], csp: str) -> None:
        self.app = app
        self.body_limit = body_limit
        self.headers = security_headers(csp)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if has_token_in_query(query):
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            await send_json_error(
                send,
                400,
                "token_in_url",
                "credentials must not be sent in the URL; use the Authorization header",
                self.headers,
            )
            return
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        await self._http(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.body_limit(scope.get("path", ""))
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await send_json_error(
                send,
                413,
                "payload_too_large",
                f"the request body is larger than {limit} bytes",
                self.headers,
            )
            return
        received = 0
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLargeError
            return message

        async def secured_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [header for header in self.headers if header[0] not in present]
                if scope.get("scheme") == "https" and b"strict-transport-security" not in present:
                    extra.append(HSTS)
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        try:
            await self.app(scope, limited_receive, secured_send)
        except BodyTooLargeError:
            if not response_started:
                await send_json_error(
                    send,
                    413,
                    "payload_too_large",
                    f"the request body is larger than {limit} bytes",
                    self.headers,
                )


class BodyTooLargeError(Exception):
    pass
