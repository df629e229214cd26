"""Shared fixtures: a throw-away PKI and the real Secure Chat server in a subprocess.

Fixture API (usable from every module under verify/tests):

- `pki` (session): `pki.ca` is the site CA (`.cert_file` is what a Target's `ca_file` takes),
  `pki.other_ca` an unrelated CA, `pki.server_cert` a certificate for localhost + 127.0.0.1,
  `pki.expired_cert()` / `pki.wrong_name_cert()` broken ones, and
  `pki.issue(stem, names, days=..., valid_from_days=..., ca=...)` any other.
- `start_server` (module): `start_server(cert=pki.server_cert, extra_env={...})` starts a
  server over HTTPS (`cert=None`: plain HTTP) and returns a `RunningServer`; every server is
  stopped at the end of the module.
- `tls_server` (module): the server at `https://localhost:PORT` with the site CA.
- `closed_port`: a free port on 127.0.0.1 where nothing listens.
- `http_server` (module): the server at `http://127.0.0.1:PORT`, `ca_file` None.
- `start_front` (module): `start_front(backend_port, forwarded_proto=True, host_with_port=True)`
  starts a small TLS-terminating reverse proxy in a thread (like nginx in front of `securechat
  serve`) at `https://localhost:PORT`; the flags reproduce a correct or a broken front.

A `RunningServer` has `.url`, `.ca_file` (Path or None), `.env` (the SECURECHAT_* variables,
so a test can run `securechat admin …` or open the SQLite file), `.port`, `.log()`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.client
import ipaddress
import os
import select
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SERVER_START_SECONDS = 60
TEST_ENV = {
    "SECURECHAT_SECRET_KEY": "verify-test-secret-key-" + "k" * 17,  # 40 characters
    "SECURECHAT_KDF_ITERATIONS": "1000",
    "SECURECHAT_ARGON2_TIME_COST": "1",
    "SECURECHAT_ARGON2_MEMORY_KIB": "1024",
    "SECURECHAT_ARGON2_PARALLELISM": "1",
    "SECURECHAT_RATE_AUTH_PER_IP": "100000",
}


# --- PKI ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CertificateAuthority:
    name: str
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    cert_file: Path


@dataclass(frozen=True)
class ServerCert:
    cert_file: Path
    key_file: Path
    names: tuple[str, ...]
    not_after: dt.datetime


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def make_ca(directory: Path, name: str) -> CertificateAuthority:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file = directory / f"{name.replace(' ', '-').lower()}.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return CertificateAuthority(name, cert, key, cert_file)


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def issue_certificate(
    ca: CertificateAuthority,
    directory: Path,
    stem: str,
    names: Sequence[str],
    *,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
) -> ServerCert:
    """A server certificate signed by `ca` whose SAN lists `names` (DNS names or IPs)."""
    now = _now()
    not_before = not_before or now - dt.timedelta(days=1)
    not_after = not_after or now + dt.timedelta(days=365)
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
    )
    if names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([_general_name(name) for name in names]), critical=False
        )
    cert = builder.sign(ca.key, hashes.SHA256())
    cert_file = directory / f"{stem}.crt"
    key_file = directory / f"{stem}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key, key_file)
    return ServerCert(cert_file, key_file, tuple(names), not_after)


@dataclass(frozen=True)
class Pki:
    directory: Path
    ca: CertificateAuthority
    other_ca: CertificateAuthority
    server_cert: ServerCert

    def issue(
        self,
        stem: str,
        names: Sequence[str] = ("localhost", "127.0.0.1"),
        *,
        days: float = 365,
        valid_from_days: float = -1,
        ca: CertificateAuthority | None = None,
    ) -> ServerCert:
        """A certificate valid from now + `valid_from_days` to now + `days` (negative: past)."""
        now = _now()
        return issue_certificate(
            ca or self.ca,
            self.directory,
            stem,
            names,
            not_before=now + dt.timedelta(days=valid_from_days),
            not_after=now + dt.timedelta(days=days),
        )

    def expired_cert(self) -> ServerCert:
        return self.issue("expired", days=-1, valid_from_days=-60)

    def wrong_name_cert(self) -> ServerCert:
        return self.issue("wrong-name", ("chat.other.test", "10.99.99.99"))


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    ca = make_ca(directory, "Verify Test Site CA")
    other = make_ca(directory, "Unrelated CA")
    server_cert = issue_certificate(ca, directory, "localhost", ("localhost", "127.0.0.1"))
    return Pki(directory, ca, other, server_cert)


# --- the server ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RunningServer:
    url: str
    ca_file: Path | None
    env: dict[str, str]
    port: int
    log_path: Path
    process: subprocess.Popen[bytes] = field(repr=False)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


class StartServer(Protocol):
    def __call__(
        self,
        cert: ServerCert | None = ...,
        *,
        extra_env: Mapping[str, str] | None = ...,
        host: str = ...,
    ) -> RunningServer: ...


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _health(url: str, context: ssl.SSLContext | None) -> int | None:
    host, port = url.split("://", 1)[1].rsplit(":", 1)
    connection: http.client.HTTPConnection
    if context is not None:
        connection = http.client.HTTPSConnection(host, int(port), timeout=2, context=context)
    else:
        connection = http.client.HTTPConnection(host, int(port), timeout=2)
    try:
        connection.request("GET", "/api/v1/health")
        return connection.getresponse().status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()


def launch_server(
    directory: Path,
    *,
    cert: ServerCert | None,
    ca_file: Path | None,
    extra_env: Mapping[str, str] | None = None,
    host: str = "127.0.0.1",
) -> RunningServer:
    """Migrate a fresh SQLite database and start `securechat serve` on a free port."""
    directory.mkdir(parents=True, exist_ok=True)
    env = {
        **TEST_ENV,
        "SECURECHAT_DATABASE_URL": f"sqlite:///{directory / 'db.sqlite'}",
        "SECURECHAT_UPLOAD_DIR": str(directory / "uploads"),
        **(extra_env or {}),
    }
    # The caller's own SECURECHAT_* settings must not leak into the test server.
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("SECURECHAT_")}
    full_env = {**inherited, **env}
    log_path = directory / "server.log"
    subprocess.run(
        [sys.executable, "-m", "securechat.cli", "db", "upgrade"],
        env=full_env,
        check=True,
        capture_output=True,
        timeout=SERVER_START_SECONDS,
    )
    port = free_port(host)
    argv = [sys.executable, "-m", "securechat.cli", "serve", "--host", host, "--port", str(port)]
    if cert is not None:
        argv += ["--ssl-certfile", str(cert.cert_file), "--ssl-keyfile", str(cert.key_file)]
        # The name the certificate covers, so that clients verify it.
        url = f"https://{'localhost' if host == '127.0.0.1' else host}:{port}"
        # Readiness only, and also for deliberately broken certificates: no verification here.
        context: ssl.SSLContext | None = ssl._create_unverified_context()
    else:
        url = f"http://{host}:{port}"
        context = None
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(argv, env=full_env, stdout=log_file, stderr=subprocess.STDOUT)
    server = RunningServer(url, ca_file if cert else None, env, port, log_path, process)
    try:
        deadline = time.monotonic() + SERVER_START_SECONDS
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"server exited with {process.returncode}: {server.log()}")
            if _health(url, context) == 200:
                return server
            time.sleep(0.1)
        raise RuntimeError(f"server did not start: {server.log()}")
    except BaseException:
        stop_server(server)
        raise


def stop_server(server: RunningServer) -> None:
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.process.kill()
    server.process.wait()


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (free a moment ago)."""
    return free_port()


@pytest.fixture(scope="module")
def start_server(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartServer]:
    """Factory: start a server with a certificate (None: plain HTTP) and extra environment."""
    servers: list[RunningServer] = []
    sentinel = pki.server_cert

    def start(
        cert: ServerCert | None = sentinel,
        *,
        extra_env: Mapping[str, str] | None = None,
        host: str = "127.0.0.1",
    ) -> RunningServer:
        directory = tmp_path_factory.mktemp("server")
        server = launch_server(
            directory, cert=cert, ca_file=pki.ca.cert_file, extra_env=extra_env, host=host
        )
        servers.append(server)
        return server

    try:
        yield start
    finally:
        for server in servers:
            stop_server(server)


@pytest.fixture(scope="module")
def tls_server(start_server: StartServer, pki: Pki) -> RunningServer:
    """The server over HTTPS at https://localhost:PORT; `ca_file` is the site CA."""
    server = start_server(pki.server_cert)
    # The CA and the name really verify (the readiness probe does not check them).
    assert _health(server.url, ssl.create_default_context(cafile=str(pki.ca.cert_file))) == 200
    return server


@pytest.fixture(scope="module")
def http_server(start_server: StartServer) -> RunningServer:
    """The server over plain HTTP at http://127.0.0.1:PORT; `ca_file` is None."""
    return start_server(None)


# --- a TLS front (reverse proxy) ------------------------------------------------------------


@dataclass(frozen=True)
class RunningFront:
    url: str
    ca_file: Path
    port: int


class StartFront(Protocol):
    def __call__(
        self, backend_port: int, *, forwarded_proto: bool = ..., host_with_port: bool = ...
    ) -> RunningFront: ...


def _pipe(client: ssl.SSLSocket, upstream: socket.socket) -> None:
    """Copy bytes both ways until either side closes (single thread: one SSL object must not
    be read and written from two threads at once)."""
    client.settimeout(10)
    upstream.settimeout(10)
    while True:
        readable = [client] if client.pending() else []
        if not readable:
            readable, _, _ = select.select([client, upstream], [], [], 30)
            if not readable:
                return
        for sock in readable:
            other = upstream if sock is client else client
            data = sock.recv(65536)
            if not data:
                return
            other.sendall(data)


def _front_connection(
    raw: socket.socket,
    context: ssl.SSLContext,
    backend_port: int,
    forwarded_proto: bool,
    host_with_port: bool,
) -> None:
    with contextlib.suppress(OSError), raw, context.wrap_socket(raw, server_side=True) as client:
        client.settimeout(10)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = client.recv(65536)
            if not chunk:
                return
            head += chunk
        head, rest = head.split(b"\r\n\r\n", 1)
        request_line, *header_lines = head.split(b"\r\n")
        lines = [request_line]
        for line in header_lines:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name in (b"x-forwarded-proto", b"x-forwarded-for"):
                continue  # a front sets these itself, never passes the client's
            if name == b"host" and not host_with_port:
                lines.append(b"Host: " + value.strip().rsplit(b":", 1)[0])  # like nginx's $host
            else:
                lines.append(line)
        lines.append(b"X-Forwarded-For: 127.0.0.1")
        if forwarded_proto:
            lines.append(b"X-Forwarded-Proto: https")
        with socket.create_connection(("127.0.0.1", backend_port), timeout=10) as upstream:
            upstream.sendall(b"\r\n".join(lines) + b"\r\n\r\n" + rest)
            _pipe(client, upstream)


@pytest.fixture(scope="module")
def start_front(pki: Pki) -> Iterator[StartFront]:
    """Factory: a TLS front for a plain-HTTP server on 127.0.0.1 (`http_server.port`)."""
    stop = threading.Event()
    threads: list[threading.Thread] = []

    def start(
        backend_port: int, *, forwarded_proto: bool = True, host_with_port: bool = True
    ) -> RunningFront:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(pki.server_cert.cert_file, pki.server_cert.key_file)
        listener = socket.create_server(("127.0.0.1", 0))
        listener.settimeout(0.2)
        port = int(listener.getsockname()[1])

        def accept_loop() -> None:
            with listener:
                while not stop.is_set():
                    try:
                        raw, _ = listener.accept()
                    except TimeoutError:
                        continue
                    raw.settimeout(10)
                    threading.Thread(
                        target=_front_connection,
                        args=(raw, context, backend_port, forwarded_proto, host_with_port),
                        daemon=True,
                    ).start()

        thread = threading.Thread(target=accept_loop, daemon=True)
        thread.start()
        threads.append(thread)
        return RunningFront(f"https://localhost:{port}", pki.ca.cert_file, port)

    try:
        yield start
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=5)
