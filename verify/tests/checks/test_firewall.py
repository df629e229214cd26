"""The firewall check on a loopback address of its own (127.x.y.z: services bound to 127.0.0.1
on this machine do not answer there), with real listeners for open ports."""

from __future__ import annotations

import random
import socket
from collections.abc import Callable, Iterator

import pytest

from securechat_verify.checks import firewall
from securechat_verify.checks.firewall import PROBE_PORTS, probe_host
from securechat_verify.net import tcp_connect
from securechat_verify.result import Status
from securechat_verify.target import Host, Target


@pytest.fixture
def address() -> str:
    """A loopback address where nothing of this machine's listens on the probed ports."""
    for _ in range(20):
        candidate = (
            f"127.{random.randint(1, 254)}.{random.randint(0, 255)}.{random.randint(1, 254)}"
        )
        try:
            with socket.socket() as sock:
                sock.bind((candidate, 0))
        except OSError:
            pytest.skip("cannot bind addresses of 127.0.0.0/8 other than 127.0.0.1 here")
        if not any(tcp_connect(candidate, port, 0.5).is_open for port in PROBE_PORTS):
            return candidate
    pytest.skip("every tried loopback address has a service answering on a probed port")


@pytest.fixture
def listen(address: str) -> Iterator[Callable[[int], int]]:
    """Open a listening socket on `address` (port 0: any free port); returns the port."""
    sockets: list[socket.socket] = []

    def open_port(port: int = 0) -> int:
        sock = socket.create_server((address, port))
        sockets.append(sock)
        return int(sock.getsockname()[1])

    yield open_port
    for sock in sockets:
        sock.close()


def test_only_the_expected_ports_answer(address: str, listen: Callable[[int], int]) -> None:
    web = listen(0)
    host = Host("front", address, frozenset({"front"}), frozenset({web}))

    findings = firewall.CHECK.run(Target(url=f"https://{address}:{web}", hosts=(host,)))

    (finding,) = findings
    assert finding.status is Status.PASS
    assert finding.metrics["open_ports"] == str(web)
    assert finding.metrics["probed"] == len(PROBE_PORTS) + 1


def test_an_unexpected_open_port_fails_naming_it(
    address: str, listen: Callable[[int], int]
) -> None:
    web, stray = listen(0), listen(0)
    host = Host("front", address, frozenset({"front"}), frozenset({web}))

    findings = probe_host(host, probe_ports=(*PROBE_PORTS, stray))

    (finding,) = findings
    assert finding.status is Status.FAIL
    assert finding.summary.startswith(f"{stray} an unlisted service answers from here")
    assert finding.target == f"{address}:{stray}"
    assert finding.hint is not None
    assert f"block port {stray}" in finding.hint


def test_an_open_database_port_names_the_service(
    address: str, listen: Callable[[int], int]
) -> None:
    web = listen(0)
    try:
        listen(3306)
    except OSError:
        pytest.skip(f"port 3306 of {address} is taken")
    host = Host("db", address, frozenset({"db"}), frozenset({web}))

    (finding,) = firewall.CHECK.run(Target(url=f"https://{address}:{web}", hosts=(host,)))

    assert finding.status is Status.FAIL
    assert finding.summary.startswith("3306 MariaDB answers from here")
    assert "the firewall must allow it from app hosts only" in finding.summary


def _closed_port(address: str) -> int:
    with socket.socket() as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])  # free again when the socket closes


def test_an_expected_port_that_is_closed_fails(address: str, listen: Callable[[int], int]) -> None:
    web, closed = listen(0), _closed_port(address)
    host = Host("app", address, frozenset({"app"}), frozenset({web, closed}))

    (finding,) = probe_host(host, probe_ports=())

    assert finding.status is Status.FAIL
    assert finding.target == f"{address}:{closed}"
    assert "does not answer" in finding.summary
    assert "connection refused" in finding.summary
    assert finding.hint is not None
    assert "expected ports" in finding.hint


def test_hosts_without_expected_ports_are_skipped() -> None:
    host = Host("db", "127.0.0.1", frozenset({"db"}))
    (finding,) = firewall.CHECK.run(Target(url="https://chat.lan", hosts=(host,)))
    assert finding.status is Status.SKIP
    assert "no expected ports" in finding.summary


def test_no_hosts_is_skipped() -> None:
    (finding,) = firewall.CHECK.run(Target(url="https://chat.lan"))
    assert finding.status is Status.SKIP
