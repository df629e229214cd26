"""`socket`: Socket.IO through the front. The Engine.IO v4 handshake over polling, the upgrade to
WebSocket (2probe/3probe), a WebSocket-only connection, and the Origin check both ways."""

from __future__ import annotations

import contextlib
import http.client
import json
import ssl
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from websockets.exceptions import InvalidStatus, WebSocketException
from websockets.sync.client import ClientConnection, connect

from securechat_verify.checks import Check
from securechat_verify.net import (
    HttpResponse,
    client_context,
    describe,
    ensure_resolvable,
    http_request,
    netloc,
    origin_of,
)
from securechat_verify.result import Finding, Severity, errored, failed, passed, warned
from securechat_verify.target import Target

ENGINEIO_PATH = "/socket.io/"
POLLING_QUERY = "EIO=4&transport=polling"
WEBSOCKET_QUERY = "EIO=4&transport=websocket"
FOREIGN_ORIGIN = "https://verify-foreign-origin.invalid"
RECORD_SEPARATOR = "\x1e"  # between Engine.IO v4 packets in one polling payload

ROUTE_HINT = (
    "the front must pass /socket.io/ to the chat server (nginx `location /` with proxy_pass "
    "to the server, as in docs/operations.md)"
)
UPGRADE_HINT = (
    "the front must forward WebSocket upgrades for /socket.io/: nginx `proxy_http_version 1.1; "
    "proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection $connection_upgrade;` "
    "and proxy_read_timeout of at least 60s"
)
FOREIGN_HINT = (
    "SECURECHAT_ALLOWED_ORIGINS must not contain * (the server refuses it) nor any origin that "
    "does not serve this chat; check the allowlist, and that the front does not remove the "
    "Origin header (no `proxy_set_header Origin`)"
)
SAME_ORIGIN_HINT = (
    "the server takes its own origin as <scheme>://<Host>: the front must send "
    "`X-Forwarded-Proto $scheme` and `Host $http_host` (port included) from an address listed "
    "in --forwarded-allow-ips (SECURECHAT_FORWARDED_ALLOW_IPS). Serving TLS directly "
    "(`securechat serve --ssl-certfile`, no front) is refused the same way: the server's "
    "Engine.IO takes the scheme from X-Forwarded-Proto only, so put the TLS front before it"
)


@dataclass(frozen=True)
class OpenPacket:
    sid: str
    upgrades: tuple[str, ...]
    ping_interval: int
    ping_timeout: int
    max_payload: int


def parse_open_packet(payload: str) -> OpenPacket:
    """The Engine.IO v4 open packet (`0{"sid": …}`) at the start of a payload; ValueError if
    there is none or it lacks sid, upgrades or pingInterval."""
    first = payload.split(RECORD_SEPARATOR, 1)[0]
    if not first.startswith("0"):
        raise ValueError(f"not an Engine.IO open packet: {first[:80]!r}")
    data: Any = json.loads(first[1:])
    if not isinstance(data, dict):
        raise ValueError("the open packet is not a JSON object")
    sid, upgrades, interval = data.get("sid"), data.get("upgrades"), data.get("pingInterval")
    if not isinstance(sid, str) or not sid:
        raise ValueError("the open packet has no sid")
    if not isinstance(upgrades, list) or not all(isinstance(u, str) for u in upgrades):
        raise ValueError("the open packet has no upgrades list")
    if not isinstance(interval, int) or interval <= 0:
        raise ValueError("the open packet has no pingInterval")
    timeout, max_payload = data.get("pingTimeout"), data.get("maxPayload")
    return OpenPacket(
        sid,
        tuple(upgrades),
        interval,
        timeout if isinstance(timeout, int) else 0,
        max_payload if isinstance(max_payload, int) else 0,
    )


class Probe:
    """Requests to one target's Engine.IO endpoint."""

    def __init__(self, target: Target, context: ssl.SSLContext | None) -> None:
        self.target = target
        self.context = context
        parts = urlsplit(target.url)
        self.http_base = f"{parts.scheme}://{netloc(target.hostname, target.port, parts.scheme)}"
        ws_scheme = "wss" if target.is_https else "ws"
        self.ws_base = f"{ws_scheme}://{netloc(target.hostname, target.port, ws_scheme)}"

    def poll(self, origin: str | None = None) -> HttpResponse:
        headers = {"Accept": "*/*"}
        if origin is not None:
            headers["Origin"] = origin
        return http_request(
            f"{self.http_base}{ENGINEIO_PATH}?{POLLING_QUERY}",
            headers=headers,
            context=self.context,
            timeout=self.target.timeout,
        )

    def close_session(self, sid: str) -> None:
        """Best effort: send the close packet, so the session does not linger until it times
        out."""
        with contextlib.suppress(OSError, ssl.SSLError, http.client.HTTPException):
            http_request(
                f"{self.http_base}{ENGINEIO_PATH}?{POLLING_QUERY}&sid={quote(sid, safe='')}",
                method="POST",
                headers={"Content-Type": "text/plain;charset=UTF-8"},
                body=b"1",
                context=self.context,
                timeout=self.target.timeout,
            )

    def websocket(self, query: str) -> ClientConnection:
        ensure_resolvable(self.target.hostname)
        return connect(
            f"{self.ws_base}{ENGINEIO_PATH}?{query}",
            ssl=self.context,
            proxy=None,
            compression=None,
            open_timeout=self.target.timeout,
            close_timeout=2,
            ping_interval=None,
            user_agent_header="securechat-verify",
        )


_NETWORK_ERRORS = (OSError, ssl.SSLError, http.client.HTTPException)


@dataclass(frozen=True)
class Handshake:
    finding: Finding
    packet: OpenPacket | None = None
    reachable: bool = True


def _handshake(probe: Probe) -> Handshake:
    """The polling handshake, without an Origin header (a non-browser client)."""
    url = f"{probe.http_base}{ENGINEIO_PATH}?{POLLING_QUERY}"
    try:
        response = probe.poll()
    except ssl.SSLError as error:
        finding = errored(
            f"TLS failed for {url}: {describe(error)}", "see the tls check's findings", url
        )
        return Handshake(finding, reachable=False)
    except _NETWORK_ERRORS as error:
        finding = failed(
            f"{url} does not answer: {describe(error)}", "see the connectivity check", url
        )
        return Handshake(finding, reachable=False)
    if response.status != 200:
        return Handshake(
            failed(
                f"the Engine.IO polling handshake answers HTTP {response.status}: "
                f"{response.text[:120]}",
                ROUTE_HINT,
                url,
            )
        )
    try:
        packet = parse_open_packet(response.text)
    except ValueError as error:
        return Handshake(
            failed(f"the polling handshake did not open a session: {error}", ROUTE_HINT, url)
        )
    if "websocket" not in packet.upgrades:
        probe.close_session(packet.sid)
        return Handshake(
            failed(
                f"the server offers no WebSocket upgrade (upgrades: {list(packet.upgrades)})",
                "run the chat server as shipped (`securechat serve`: uvicorn with WebSocket "
                "support)",
                url,
            )
        )
    finding = passed(
        f"Engine.IO v4 polling handshake: session opened, upgrades {list(packet.upgrades)}, "
        f"pingInterval {packet.ping_interval} ms",
        url,
        ping_interval_ms=packet.ping_interval,
        ping_timeout_ms=packet.ping_timeout,
        max_payload=packet.max_payload,
    )
    return Handshake(finding, packet)


def _websocket_failure(what: str, error: Exception, url: str) -> Finding:
    if isinstance(error, InvalidStatus):
        detail = f"HTTP {error.response.status_code}"
    else:
        detail = describe(error)
    return failed(f"{what} failed: {detail}", UPGRADE_HINT, url)


def _upgrade(probe: Probe, sid: str) -> Finding:
    url = f"{probe.ws_base}{ENGINEIO_PATH}?{WEBSOCKET_QUERY}&sid=…"
    try:
        with probe.websocket(f"{WEBSOCKET_QUERY}&sid={quote(sid, safe='')}") as ws:
            start = time.perf_counter()
            ws.send("2probe")
            reply = ws.recv(timeout=probe.target.timeout)
            round_trip = round((time.perf_counter() - start) * 1000, 2)
            if reply != "3probe":
                return failed(
                    f"the WebSocket upgrade answered {reply!r} to 2probe instead of 3probe",
                    UPGRADE_HINT,
                    url,
                )
            ws.send("5")
    except (WebSocketException, *_NETWORK_ERRORS, TimeoutError) as error:
        return _websocket_failure("the WebSocket upgrade of the polling session", error, url)
    return passed(
        f"upgrade to WebSocket: 2probe → 3probe in {round_trip} ms, upgrade sent",
        url,
        probe_rtt_ms=round_trip,
    )


def _websocket_only(probe: Probe) -> Finding:
    url = f"{probe.ws_base}{ENGINEIO_PATH}?{WEBSOCKET_QUERY}"
    try:
        with probe.websocket(WEBSOCKET_QUERY) as ws:
            first = ws.recv(timeout=probe.target.timeout)
    except (WebSocketException, *_NETWORK_ERRORS, TimeoutError) as error:
        return _websocket_failure("a WebSocket-only connection", error, url)
    try:
        parse_open_packet(first if isinstance(first, str) else first.decode("utf-8", "replace"))
    except ValueError as error:
        return failed(f"a WebSocket-only connection got no open packet: {error}", ROUTE_HINT, url)
    return passed("a WebSocket-only connection gets an Engine.IO open packet", url)


def _foreign_origin(probe: Probe) -> Finding:
    label = f"Origin: {FOREIGN_ORIGIN}"
    try:
        response = probe.poll(FOREIGN_ORIGIN)
    except _NETWORK_ERRORS as error:
        return errored(f"the foreign-origin probe failed: {describe(error)}", ROUTE_HINT, label)
    if response.status == 400:
        return passed(f"a foreign Origin is refused (HTTP 400: {response.text[:80]})", label)
    if 200 <= response.status < 300:
        with contextlib.suppress(ValueError):
            probe.close_session(parse_open_packet(response.text).sid)
        return failed(
            f"a foreign Origin ({FOREIGN_ORIGIN}) is accepted for Socket.IO "
            f"(HTTP {response.status})",
            FOREIGN_HINT,
            label,
        )
    return warned(
        f"a foreign Origin got HTTP {response.status}, not the server's 400",
        "something in front of the server answers instead of it: check the front's rules for "
        "/socket.io/",
        label,
    )


def _same_origin(probe: Probe) -> Finding:
    origin = origin_of(probe.target.url)
    label = f"Origin: {origin}"
    try:
        response = probe.poll(origin)
    except _NETWORK_ERRORS as error:
        return errored(f"the same-origin probe failed: {describe(error)}", ROUTE_HINT, label)
    if response.status != 200:
        return failed(
            f"the chat's own origin {origin} is refused (HTTP {response.status}: "
            f"{response.text[:100]})",
            SAME_ORIGIN_HINT,
            label,
        )
    try:
        probe.close_session(parse_open_packet(response.text).sid)
    except ValueError as error:
        return failed(f"same-origin handshake: {error}", ROUTE_HINT, label)
    return passed(f"the chat's own origin {origin} is accepted", label)


def run(target: Target) -> list[Finding]:
    try:
        context = client_context(target.ca_file) if target.is_https else None
    except (OSError, ssl.SSLError) as error:
        return [
            errored(
                f"cannot load the site CA {target.ca_file}: {describe(error)}",
                "give a readable PEM file holding the CA certificate",
            )
        ]
    probe = Probe(target, context)
    handshake = _handshake(probe)
    findings = [handshake.finding]
    if not handshake.reachable:
        return findings
    if handshake.packet is not None:
        findings.append(_upgrade(probe, handshake.packet.sid))
    findings.append(_websocket_only(probe))
    findings.append(_foreign_origin(probe))
    findings.append(_same_origin(probe))
    return findings


CHECK = Check(
    id="socket",
    title="Socket.IO through the front: handshake, WebSocket upgrade, Origin check",
    severity=Severity.CRITICAL,
    run=run,
)
