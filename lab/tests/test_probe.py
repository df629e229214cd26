"""The connection probes, on loopback: a listening port opens, a closed one does not."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator

import pytest

from securechat_lab.probe import probe_command, reachable


@pytest.fixture
def ports() -> Iterator[tuple[int, int]]:
    with socket.socket() as listening, socket.socket() as closed:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        closed.bind(("127.0.0.1", 0))  # bound, never listening: refused
        yield listening.getsockname()[1], closed.getsockname()[1]


def test_from_here(ports: tuple[int, int]) -> None:
    open_port, closed_port = ports
    assert reachable("127.0.0.1", open_port)
    assert not reachable("127.0.0.1", closed_port)


def test_as_a_remote_command(ports: tuple[int, int]) -> None:
    open_port, closed_port = ports
    codes = [
        subprocess.run(probe_command("127.0.0.1", port), shell=True, check=False).returncode
        for port in (open_port, closed_port)
    ]
    assert codes == [0, 1]
