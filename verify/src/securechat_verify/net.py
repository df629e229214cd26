"""Network helpers shared by the checks: name resolution, timed TCP connects, TLS, plain HTTP.

Everything here talks only to the address it is given: no proxies from the environment, no
redirects followed, and names under the reserved `.invalid` domain are refused without a query.
"""

from __future__ import annotations

import errno
import http.client
import socket
import ssl
import time
import warnings
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from urllib.parse import urlsplit

from securechat_verify.target import Target

MAX_BODY_BYTES = 1 << 20
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


# --- names --------------------------------------------------------------------------------


def is_reserved_invalid(hostname: str) -> bool:
    """RFC 6761 §6.4: names under `.invalid` never resolve; resolvers should not even ask."""
    name = hostname.rstrip(".").lower()
    return name == "invalid" or name.endswith(".invalid")


def ensure_resolvable(hostname: str) -> None:
    """Refuse, without a query, names that cannot resolve (`socket.gaierror`)."""
    if is_reserved_invalid(hostname):
        raise socket.gaierror(
            socket.EAI_NONAME, f"{hostname}: a reserved .invalid name (RFC 6761) never resolves"
        )


def resolve(hostname: str, port: int = 0) -> list[str]:
    """The addresses of `hostname` in the system resolver's order (files, mDNS, DNS: whatever
    nsswitch says). Raises `socket.gaierror` when the name does not resolve."""
    ensure_resolvable(hostname)
    infos = socket.getaddrinfo(hostname, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "", parts.port or DEFAULT_PORTS.get(parts.scheme, 80)


def netloc(hostname: str, port: int, scheme: str) -> str:
    """`host[:port]` as a browser writes it: brackets around IPv6, default port left out."""
    host = f"[{hostname}]" if ":" in hostname else hostname
    return host if DEFAULT_PORTS.get(scheme) == port else f"{host}:{port}"


def origin_of(url: str) -> str:
    """The web origin of `url`, serialized like a browser's `Origin` header."""
    parts = urlsplit(url)
    hostname, port = host_port(url)
    return f"{parts.scheme}://{netloc(hostname.lower(), port, parts.scheme)}"


# --- TCP ----------------------------------------------------------------------------------


class PortState(StrEnum):
    OPEN = "open"
    REFUSED = "refused"  # the host answered: nothing listens, or a firewall rejects
    TIMEOUT = "timeout"  # no answer: filtered by a firewall, or the host is down
    UNREACHABLE = "unreachable"  # no route to the host or its network
    UNRESOLVED = "unresolved"  # the name does not resolve
    ERROR = "error"


@dataclass(frozen=True)
class TcpResult:
    host: str
    port: int
    state: PortState
    address: str | None = None  # the address that answered (or the last one tried)
    connect_ms: float | None = None
    detail: str = ""

    @property
    def is_open(self) -> bool:
        return self.state is PortState.OPEN


_UNREACHABLE_ERRNOS = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EADDRNOTAVAIL}


def _classify(error: OSError) -> PortState:
    if isinstance(error, ConnectionRefusedError):
        return PortState.REFUSED
    if isinstance(error, TimeoutError):
        return PortState.TIMEOUT
    if error.errno in _UNREACHABLE_ERRNOS:
        return PortState.UNREACHABLE
    return PortState.ERROR


def tcp_connect(host: str, port: int, timeout: float) -> TcpResult:
    """Connect to `host`:`port` (each resolved address in turn) and time the connect."""
    try:
        addresses = resolve(host, port)
    except (socket.gaierror, UnicodeError) as error:
        return TcpResult(host, port, PortState.UNRESOLVED, detail=str(error))
    last = TcpResult(host, port, PortState.ERROR, detail="no address")
    for address in addresses:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            start = time.perf_counter()
            try:
                sock.connect((address, port))
            except OSError as error:
                detail = error.strerror or str(error) or type(error).__name__
                last = TcpResult(host, port, _classify(error), address, detail=detail)
                continue
            elapsed = (time.perf_counter() - start) * 1000
        return TcpResult(host, port, PortState.OPEN, address, round(elapsed, 2))
    return last


# --- TLS ----------------------------------------------------------------------------------


def client_context(ca_file: Path | None) -> ssl.SSLContext:
    """Verifying context: only the site CA when given, else the system's trust store.
    Raises OSError or ssl.SSLError when the CA file cannot be read."""
    if ca_file is None:
        return ssl.create_default_context()
    return ssl.create_default_context(cafile=str(ca_file))


def target_context(target: Target) -> ssl.SSLContext | None:
    """The verifying context for the chat URL, or None for plain http."""
    return client_context(target.ca_file) if target.is_https else None


def chain_only_context(ca_file: Path | None) -> ssl.SSLContext:
    """Verifies the chain, not the name: the name is checked separately against every name."""
    context = client_context(ca_file)
    context.check_hostname = False
    return context


def unverified_context() -> ssl.SSLContext:
    """For reading what the server presents (its certificate, its headers), never for secrets."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


@dataclass(frozen=True)
class TlsSession:
    version: str
    cipher: str
    certificate_der: bytes | None
    handshake_ms: float


def tls_handshake(
    host: str, port: int, context: ssl.SSLContext, timeout: float, server_hostname: str
) -> TlsSession:
    """One TLS handshake; raises ssl.SSLError (incl. SSLCertVerificationError) or OSError."""
    ensure_resolvable(host)
    with socket.create_connection((host, port), timeout=timeout) as raw:
        start = time.perf_counter()
        with context.wrap_socket(raw, server_hostname=server_hostname) as tls:
            elapsed = (time.perf_counter() - start) * 1000
            cipher = tls.cipher()
            return TlsSession(
                version=tls.version() or "unknown",
                cipher=cipher[0] if cipher else "unknown",
                certificate_der=tls.getpeercert(binary_form=True),
                handshake_ms=round(elapsed, 2),
            )


def legacy_tls_context() -> tuple[ssl.SSLContext | None, str]:
    """A client context offering only TLS 1.0/1.1 with every cipher, if this machine's OpenSSL
    can still send such a ClientHello; else (None, why). Checked in memory, without traffic."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            context.minimum_version = ssl.TLSVersion.TLSv1
            context.maximum_version = ssl.TLSVersion.TLSv1_1
            context.set_ciphers("DEFAULT:@SECLEVEL=0")
    except (ValueError, ssl.SSLError, AttributeError) as error:
        return None, f"this machine's OpenSSL ({ssl.OPENSSL_VERSION}) refuses TLS < 1.2: {error}"
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    probe = context.wrap_bio(incoming, outgoing, server_hostname="legacy-probe.invalid")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            probe.do_handshake()
    except ssl.SSLWantReadError:
        pass  # the ClientHello is written; the answer would come from a server
    except ssl.SSLError as error:
        return (
            None,
            f"this machine's OpenSSL ({ssl.OPENSSL_VERSION}) cannot offer TLS < 1.2: {error}",
        )
    hello = outgoing.read()
    # Record header (5 bytes), handshake header (4 bytes), then the client_version.
    if len(hello) < 11 or hello[0] != 0x16 or hello[5] != 0x01:
        return None, "this machine's OpenSSL wrote no usable ClientHello for TLS < 1.2"
    if (hello[9], hello[10]) >= (3, 3):
        return None, f"this machine's OpenSSL ({ssl.OPENSSL_VERSION}) offers TLS 1.2 at least"
    return context, ""


# --- HTTP ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class HttpResponse:
    status: int
    reason: str
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes = b""

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


def http_request(
    url: str,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    context: ssl.SSLContext | None = None,
    timeout: float = 10.0,
) -> HttpResponse:
    """One request, no redirects followed, no proxy. Raises OSError, ssl.SSLError or
    http.client.HTTPException."""
    parts = urlsplit(url)
    hostname, port = host_port(url)
    ensure_resolvable(hostname)
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(hostname, port, timeout=timeout, context=context)
    elif parts.scheme == "http":
        connection = http.client.HTTPConnection(hostname, port, timeout=timeout)
    else:
        raise ValueError(f"not an http(s) URL: {url}")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        content = response.read(MAX_BODY_BYTES)
        names = {name.lower(): value for name, value in response.getheaders()}
        return HttpResponse(response.status, response.reason, names, content)
    finally:
        connection.close()


def describe(error: BaseException) -> str:
    """A short, readable reason for a network error."""
    if isinstance(error, ssl.SSLCertVerificationError):
        return error.verify_message or str(error)
    if isinstance(error, ssl.SSLError):
        return error.reason or str(error)
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__
