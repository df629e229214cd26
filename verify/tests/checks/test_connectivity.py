"""The connectivity check against the real server, a closed port, an unresolvable name, and
small local HTTP servers standing in for the front's port-80 block."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

import pytest

from securechat_verify.checks import connectivity
from securechat_verify.checks.connectivity import check_redirect, resolution_hint
from securechat_verify.result import Finding, Status
from securechat_verify.target import Host, Target

if TYPE_CHECKING:
    from conftest import RunningServer

BAD = (Status.FAIL, Status.WARN, Status.ERROR)


def statuses(findings: list[Finding]) -> set[Status]:
    return {finding.status for finding in findings}


def test_good_setup_passes_and_reports_connect_times(tls_server: RunningServer) -> None:
    host = Host("app", "127.0.0.1", frozenset({"app"}), frozenset({tls_server.port}))
    target = Target(url=tls_server.url, ca_file=tls_server.ca_file, hosts=(host,))

    findings = connectivity.CHECK.run(target)

    assert not statuses(findings) & set(BAD), findings
    assert findings[0].summary.startswith("localhost resolves to ")
    timed = [f for f in findings if "connect_ms" in f.metrics]
    assert {f.target for f in timed} == {
        f"localhost:{tls_server.port}",
        f"127.0.0.1:{tls_server.port}",
    }
    assert all(isinstance(f.metrics["connect_ms"], float) for f in timed)
    # No host expects port 80 here: the redirect sub-check says why it did not run.
    (skip,) = [f for f in findings if f.status is Status.SKIP]
    assert "port 80" in skip.summary
    assert connectivity.CHECK.id == "connectivity"


def test_plain_http_target_has_no_redirect_sub_check(http_server: RunningServer) -> None:
    findings = connectivity.CHECK.run(Target(url=http_server.url))
    assert statuses(findings) == {Status.PASS}


def test_connection_refused_names_the_service_and_the_firewall(closed_port: int) -> None:
    findings = connectivity.CHECK.run(Target(url=f"https://localhost:{closed_port}"))

    (failure,) = [f for f in findings if f.status is Status.FAIL]
    assert "refused" in failure.summary
    assert failure.hint is not None
    assert "nothing accepts connections" in failure.hint
    assert "firewall" in failure.hint


def test_an_expected_port_that_does_not_answer_fails(
    tls_server: RunningServer, closed_port: int
) -> None:
    closed = closed_port
    host = Host("db", "127.0.0.1", frozenset({"db"}), frozenset({closed}))
    findings = connectivity.CHECK.run(Target(url=tls_server.url, hosts=(host,)))

    (failure,) = [f for f in findings if f.status is Status.FAIL]
    assert failure.target == f"127.0.0.1:{closed}"
    assert failure.hint is not None
    assert f"port {closed} of db" in failure.hint


def test_a_name_that_does_not_resolve_fails_with_a_dns_hint() -> None:
    # Names under .invalid (RFC 6761) are refused by the resolver helper without any query.
    findings = connectivity.CHECK.run(Target(url="https://chat.securechat-verify.invalid"))

    (failure,) = findings
    assert failure.status is Status.FAIL
    assert "does not resolve" in failure.summary
    assert failure.hint is not None
    assert "DNS" in failure.hint
    assert "/etc/hosts" in failure.hint


def test_mdns_names_get_the_avahi_hint() -> None:
    assert "avahi" in resolution_hint("chat.local")
    assert "mdns4_minimal" in resolution_hint("chat.local.")
    assert "avahi" not in resolution_hint("chat.lan")


# --- the http→https redirect, against stand-ins for nginx's port-80 server block ----------


def _handler(status: int, location: str | None) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status)
            if location is not None:
                self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def port_80_stand_in() -> Iterator[Callable[[int, str | None], int]]:
    servers: list[ThreadingHTTPServer] = []

    def start(status: int, location: str | None) -> int:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(status, location))
        servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return int(server.server_address[1])

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


TARGET = Target(url="https://localhost:8443")


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_to_https_passes(
    port_80_stand_in: Callable[[int, str | None], int], status: int
) -> None:
    port = port_80_stand_in(status, "https://localhost:8443/")
    finding = check_redirect(TARGET, port=port)
    assert finding.status is Status.PASS
    assert finding.metrics["status"] == status


def test_no_redirect_fails_with_the_port_80_block(
    port_80_stand_in: Callable[[int, str | None], int],
) -> None:
    finding = check_redirect(TARGET, port=port_80_stand_in(200, None))
    assert finding.status is Status.FAIL
    assert "answers 200" in finding.summary
    assert finding.hint is not None
    assert "return 301 https://$host$request_uri" in finding.hint


def test_a_redirect_to_plain_http_fails(
    port_80_stand_in: Callable[[int, str | None], int],
) -> None:
    finding = check_redirect(TARGET, port=port_80_stand_in(301, "http://localhost/"))
    assert finding.status is Status.FAIL
    assert "not to https://" in finding.summary


def test_a_redirect_to_another_host_warns(
    port_80_stand_in: Callable[[int, str | None], int],
) -> None:
    finding = check_redirect(TARGET, port=port_80_stand_in(301, "https://elsewhere.test/"))
    assert finding.status is Status.WARN


def test_an_expected_port_80_that_is_closed_fails(closed_port: int) -> None:
    finding = check_redirect(TARGET, port=closed_port)
    assert finding.status is Status.FAIL
    assert finding.hint is not None
    assert "port-80 server block" in finding.hint
