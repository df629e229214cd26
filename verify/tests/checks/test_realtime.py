"""The socket check against the real server: directly over TLS and plain HTTP, behind a correct
and a broken TLS front, and with a foreign origin in the allowlist."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from securechat_verify.checks import realtime
from securechat_verify.checks.realtime import FOREIGN_ORIGIN, parse_open_packet
from securechat_verify.result import Finding, Status
from securechat_verify.target import Target

if TYPE_CHECKING:
    from conftest import Pki, RunningServer, StartFront, StartServer


def one(findings: list[Finding], text: str) -> Finding:
    matching = [f for f in findings if text in f.summary]
    assert len(matching) == 1, findings
    return matching[0]


def assert_all_pass(findings: list[Finding]) -> None:
    assert {f.status for f in findings} == {Status.PASS}, findings
    assert len(findings) == 5  # handshake, upgrade, websocket-only, foreign, same origin


def test_good_setup_behind_a_tls_front(http_server: RunningServer, start_front: StartFront) -> None:
    front = start_front(http_server.port)

    findings = realtime.CHECK.run(Target(url=front.url, ca_file=front.ca_file))

    assert_all_pass(findings)
    handshake = one(findings, "polling handshake")
    assert handshake.metrics["ping_interval_ms"] == 25000
    upgrade = one(findings, "2probe → 3probe")
    assert isinstance(upgrade.metrics["probe_rtt_ms"], float)
    assert one(findings, "foreign Origin is refused").status is Status.PASS
    assert one(findings, f"own origin {front.url} is accepted").status is Status.PASS


def test_plain_http_server(http_server: RunningServer) -> None:
    assert_all_pass(realtime.CHECK.run(Target(url=http_server.url)))


def test_direct_tls_server(tls_server: RunningServer) -> None:
    findings = realtime.CHECK.run(Target(url=tls_server.url, ca_file=tls_server.ca_file))

    for text in ("polling handshake", "2probe → 3probe", "WebSocket-only", "foreign Origin"):
        assert one(findings, text).status is Status.PASS


def test_direct_tls_server_accepts_its_own_origin(tls_server: RunningServer) -> None:
    findings = realtime.CHECK.run(Target(url=tls_server.url, ca_file=tls_server.ca_file))
    assert one(findings, "own origin").status is Status.PASS


def test_a_foreign_origin_in_the_allowlist_fails(start_server: StartServer) -> None:
    server = start_server(None, extra_env={"SECURECHAT_ALLOWED_ORIGINS": FOREIGN_ORIGIN})

    findings = realtime.CHECK.run(Target(url=server.url))

    foreign = one(findings, "foreign Origin")
    assert foreign.status is Status.FAIL
    assert foreign.hint is not None
    assert "SECURECHAT_ALLOWED_ORIGINS must not contain *" in foreign.hint
    assert "check the allowlist" in foreign.hint
    # Everything else still works.
    assert [f.status for f in findings].count(Status.PASS) == 4


@pytest.mark.parametrize(
    "broken", [{"forwarded_proto": False}, {"host_with_port": False}], ids=["no-proto", "no-port"]
)
def test_a_broken_front_refuses_the_chats_own_origin(
    http_server: RunningServer, start_front: StartFront, broken: dict[str, bool]
) -> None:
    front = start_front(http_server.port, **broken)

    findings = realtime.CHECK.run(Target(url=front.url, ca_file=front.ca_file))

    same = one(findings, "own origin")
    assert same.status is Status.FAIL
    assert "is not an accepted origin" in same.summary
    assert same.hint is not None
    assert "X-Forwarded-Proto" in same.hint
    assert "$http_host" in same.hint
    assert "--forwarded-allow-ips" in same.hint


def test_nothing_listening(closed_port: int) -> None:
    (finding,) = realtime.CHECK.run(Target(url=f"http://127.0.0.1:{closed_port}"))
    assert finding.status is Status.FAIL
    assert "does not answer" in finding.summary


def test_wrong_ca_is_an_error_pointing_at_the_tls_check(
    tls_server: RunningServer, pki: Pki
) -> None:
    target = Target(url=tls_server.url, ca_file=pki.other_ca.cert_file)
    (finding,) = realtime.CHECK.run(target)
    assert finding.status is Status.ERROR
    assert finding.hint is not None
    assert "tls check" in finding.hint


def test_a_path_that_is_not_engine_io_fails_with_the_routing_hint(
    http_server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As if the front routed /socket.io/ elsewhere: the server answers 404 there.
    monkeypatch.setattr(realtime, "ENGINEIO_PATH", "/not-socket.io/")
    findings = realtime.CHECK.run(Target(url=http_server.url))
    handshake = findings[0]
    assert handshake.status is Status.FAIL
    assert "HTTP 404" in handshake.summary
    assert handshake.hint is not None
    assert "/socket.io/" in handshake.hint


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        ('0{"sid":"a","upgrades":["websocket"],"pingInterval":25000}', None),
        ('0{"sid":"a","upgrades":[],"pingInterval":25000}\x1e40', None),
        ('4{"sid":"a"}', "not an Engine.IO open packet"),
        ('0{"upgrades":["websocket"],"pingInterval":25000}', "no sid"),
        ('0{"sid":"a","pingInterval":25000}', "no upgrades"),
        ('0{"sid":"a","upgrades":["websocket"]}', "no pingInterval"),
        ("0[]", "not a JSON object"),
    ],
)
def test_open_packet_parsing(payload: str, problem: str | None) -> None:
    if problem is None:
        assert parse_open_packet(payload).sid == "a"
    else:
        with pytest.raises(ValueError, match=problem):
            parse_open_packet(payload)
