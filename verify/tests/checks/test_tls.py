"""The tls check against the real server with good and deliberately broken certificates, a TLS
front that forgets X-Forwarded-Proto, and a small server that still speaks TLS 1.1."""

from __future__ import annotations

import datetime as dt
import ssl
import threading
import warnings
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

import pytest
from cryptography import x509

from securechat_verify.checks import tls
from securechat_verify.checks.tls import (
    dns_name_matches,
    expiry_finding,
    hsts_finding,
    legacy_protocols_finding,
)
from securechat_verify.net import legacy_tls_context, unverified_context
from securechat_verify.result import Finding, Status
from securechat_verify.target import Target

if TYPE_CHECKING:
    from conftest import Pki, RunningServer, ServerCert, StartFront, StartServer


def by_status(findings: list[Finding], status: Status) -> list[Finding]:
    return [finding for finding in findings if status is finding.status]


def only(findings: list[Finding], status: Status, text: str) -> Finding:
    matching = [f for f in by_status(findings, status) if text in f.summary]
    assert len(matching) == 1, findings
    return matching[0]


# --- a good setup -------------------------------------------------------------------------


def test_good_setup_passes(tls_server: RunningServer) -> None:
    target = Target(url=tls_server.url, ca_file=tls_server.ca_file, client_names=("127.0.0.1",))

    findings = tls.CHECK.run(target)

    assert {f.status for f in findings} == {Status.PASS}, findings
    summaries = " | ".join(f.summary for f in findings)
    assert "chain validates against the site CA" in summaries
    assert "covers localhost" in summaries
    assert "covers 127.0.0.1" in summaries
    assert "TLS 1.0 and 1.1 are refused" in summaries
    # The server itself sends HSTS over HTTPS.
    hsts = only(findings, Status.PASS, "Strict-Transport-Security")
    assert hsts.metrics["hsts_max_age"] == 31536000
    negotiated = only(findings, Status.PASS, "negotiated")
    assert negotiated.metrics["tls_version"] in ("TLSv1.2", "TLSv1.3")
    assert negotiated.metrics["cipher"]
    assert only(findings, Status.PASS, "valid until").metrics["days_left"] > 300


def test_good_setup_behind_a_tls_front(http_server: RunningServer, start_front: StartFront) -> None:
    front = start_front(http_server.port)
    findings = tls.CHECK.run(Target(url=front.url, ca_file=front.ca_file))
    assert {f.status for f in findings} == {Status.PASS}, findings


def test_without_a_site_ca_it_warns_and_the_system_store_rejects_the_test_ca(
    tls_server: RunningServer,
) -> None:
    findings = tls.CHECK.run(Target(url=tls_server.url))

    warning = only(findings, Status.WARN, "no site CA given")
    assert warning.hint is not None
    assert "--ca" in warning.hint
    chain = only(findings, Status.FAIL, "does not validate")
    assert chain.hint is not None
    assert "a CA this machine trusts" in chain.hint


# --- broken setups --------------------------------------------------------------------------


def test_wrong_ca(tls_server: RunningServer, pki: Pki) -> None:
    target = Target(url=tls_server.url, ca_file=pki.other_ca.cert_file)

    findings = tls.CHECK.run(target)

    chain = only(findings, Status.FAIL, "chain does not validate")
    assert chain.hint is not None
    assert "not issued by the site CA" in chain.hint
    assert "full chain" in chain.hint
    # What the server presents is still examined: names and dates are fine.
    assert only(findings, Status.PASS, "covers localhost")
    assert only(findings, Status.PASS, "valid until")


def test_expired_certificate(start_server: StartServer, pki: Pki) -> None:
    server = start_server(pki.expired_cert())

    findings = tls.CHECK.run(Target(url=server.url, ca_file=server.ca_file))

    chain = only(findings, Status.FAIL, "chain does not validate")
    assert "expired" in chain.summary
    expiry = only(findings, Status.FAIL, "expired on")
    assert expiry.hint is not None
    assert "renew" in expiry.hint
    assert isinstance(expiry.metrics["days_left"], float)
    assert expiry.metrics["days_left"] < 0


def test_certificate_without_the_name_used(start_server: StartServer, pki: Pki) -> None:
    server = start_server(pki.wrong_name_cert())

    findings = tls.CHECK.run(Target(url=server.url, ca_file=server.ca_file))

    # The chain is fine (the site CA issued it); the names are not.
    assert only(findings, Status.PASS, "chain validates")
    name = only(findings, Status.FAIL, "does not cover localhost")
    assert name.target == "localhost"
    assert "DNS:chat.other.test" in name.summary
    assert name.hint is not None
    assert "subjectAltName=DNS:localhost" in name.hint


def test_every_client_name_must_be_covered(tls_server: RunningServer) -> None:
    target = Target(
        url=tls_server.url,
        ca_file=tls_server.ca_file,
        client_names=("127.0.0.1", "chat.lan", "10.0.0.5"),
    )
    findings = tls.CHECK.run(target)

    failing = {f.target for f in by_status(findings, Status.FAIL)}
    assert failing == {"chat.lan", "10.0.0.5"}
    hint = by_status(findings, Status.FAIL)[0].hint
    assert hint is not None
    assert "DNS:localhost,IP:127.0.0.1,DNS:chat.lan,IP:10.0.0.5" in hint


def test_a_front_without_x_forwarded_proto_loses_hsts(
    http_server: RunningServer, start_front: StartFront
) -> None:
    front = start_front(http_server.port, forwarded_proto=False)

    findings = tls.CHECK.run(Target(url=front.url, ca_file=front.ca_file))

    hsts = only(findings, Status.FAIL, "no Strict-Transport-Security")
    assert hsts.hint is not None
    assert "X-Forwarded-Proto" in hsts.hint
    assert "add_header Strict-Transport-Security" in hsts.hint


def test_plain_http() -> None:
    # Neither target is contacted: the verdict follows from the URL.
    (local,) = tls.CHECK.run(Target(url="http://127.0.0.1:8000"))
    assert local.status is Status.SKIP
    assert "secure context" in local.summary
    for url in (
        "http://localhost:8000",
        "http://chat.localhost",
        "http://127.5.6.7",
        "http://[::1]",
    ):
        (finding,) = tls.CHECK.run(Target(url=url))
        assert finding.status is Status.SKIP, url
    (lan,) = tls.CHECK.run(Target(url="http://chat.lan"))
    assert lan.status is Status.FAIL
    assert lan.summary == "http://chat.lan is not https"
    assert lan.hint is not None
    assert "TLS front" in lan.hint


def test_an_unreadable_ca_file_is_an_error(tls_server: RunningServer, pki: Pki) -> None:
    missing = pki.directory / "missing-ca.pem"
    (finding,) = tls.CHECK.run(Target(url=tls_server.url, ca_file=missing))
    assert finding.status is Status.ERROR


# --- TLS 1.0/1.1 and HSTS against a small local HTTPS server --------------------------------


def _https_server(
    cert: ServerCert, *, legacy: bool, hsts: str | None
) -> tuple[ThreadingHTTPServer, int]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            if hsts is not None:
                self.send_header("Strict-Transport-Security", hsts)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if legacy:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = ssl.TLSVersion.TLSv1
            context.maximum_version = ssl.TLSVersion.TLSv1_1
            context.set_ciphers("DEFAULT:@SECLEVEL=0")
    context.load_cert_chain(cert.cert_file, cert.key_file)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, int(server.server_address[1])


@pytest.fixture
def https_stand_in(pki: Pki) -> Iterator[Callable[..., int]]:
    servers: list[ThreadingHTTPServer] = []

    def start(*, legacy: bool = False, hsts: str | None = None) -> int:
        server, port = _https_server(pki.server_cert, legacy=legacy, hsts=hsts)
        servers.append(server)
        return port

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_a_server_that_accepts_tls_1_1_fails(https_stand_in: Callable[..., int]) -> None:
    if legacy_tls_context()[0] is None:
        pytest.skip(f"cannot offer TLS 1.1 here: {legacy_tls_context()[1]}")
    port = https_stand_in(legacy=True)

    finding = legacy_protocols_finding(Target(url=f"https://localhost:{port}"))

    assert finding.status is Status.FAIL
    assert "accepts TLSv1" in finding.summary
    assert finding.hint is not None
    assert "ssl_protocols TLSv1.2 TLSv1.3" in finding.hint


def test_the_legacy_probe_never_fakes_a_pass() -> None:
    context, why = legacy_tls_context()
    # Either this machine can really offer TLS < 1.2, or the reason is given (a SKIP).
    assert (context is None) == bool(why)


@pytest.mark.parametrize(
    ("header", "status"),
    [
        (None, Status.FAIL),
        ("max-age=0", Status.FAIL),
        ("max-age=3600", Status.WARN),
        ('max-age="31536000"; includeSubDomains', Status.PASS),
    ],
)
def test_hsts_values(
    https_stand_in: Callable[..., int], header: str | None, status: Status
) -> None:
    port = https_stand_in(hsts=header)
    finding = hsts_finding(Target(url=f"https://localhost:{port}"), unverified_context())
    assert finding.status is status


# --- names and dates ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "hostname", "matches"),
    [
        ("chat.lan", "chat.lan", True),
        ("chat.lan", "CHAT.LAN.", True),
        ("*.chat.lan", "a.chat.lan", True),
        ("*.chat.lan", "chat.lan", False),
        ("*.chat.lan", "a.b.chat.lan", False),
        ("*.lan", "chat.lan", False),  # too broad: at least two labels after the wildcard
        ("a*.chat.lan", "ab.chat.lan", False),  # partial wildcards are not honoured
        ("*.*.lan", "a.b.lan", False),
        ("*.10.0.0", "1.10.0.0", False),
        ("*.example.lan", "127.0.0.1", False),
        ("xn--bcher-kva.lan", "bücher.lan", True),
    ],
)
def test_dns_name_matching(pattern: str, hostname: str, matches: bool) -> None:
    assert dns_name_matches(pattern, hostname) is matches


def test_ip_addresses_only_match_ip_entries(pki: Pki) -> None:
    cert = x509.load_pem_x509_certificate(
        pki.issue("ip-as-dns", ("127.0.0.1.example", "::1")).cert_file.read_bytes()
    )
    names = tls.SubjectAltNames.of(cert)
    assert names.covers("::1")
    assert names.covers("[::1]")
    assert not names.covers("127.0.0.1")


def test_expiry_thresholds(pki: Pki) -> None:
    cert = x509.load_pem_x509_certificate(pki.server_cert.cert_file.read_bytes())
    after = cert.not_valid_after_utc
    assert expiry_finding(cert, after - dt.timedelta(days=90)).status is Status.PASS
    soon = expiry_finding(cert, after - dt.timedelta(days=10))
    assert soon.status is Status.WARN
    assert soon.metrics["days_left"] == 10.0
    assert expiry_finding(cert, after + dt.timedelta(seconds=1)).status is Status.FAIL
    early = expiry_finding(cert, cert.not_valid_before_utc - dt.timedelta(hours=1))
    assert early.status is Status.FAIL
    assert early.hint is not None
    assert "clock" in early.hint
