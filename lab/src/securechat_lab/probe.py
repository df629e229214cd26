"""Connection probes of the deployment tests: from the controller, and as a python3 script
run on a lab host (or in a container on it) through ssh. Only the lab's own addresses."""

from __future__ import annotations

import shlex
import socket
from typing import Final

TIMEOUT_SECONDS: Final = 2
# `python3 -c PROBE ADDRESS PORT` exits 0 when the connection opens, 1 when it does not.
PROBE: Final = (
    "import socket, sys\n"
    "try:\n"
    "    address = (sys.argv[1], int(sys.argv[2]))\n"
    f"    socket.create_connection(address, timeout={TIMEOUT_SECONDS}).close()\n"
    "except OSError:\n"
    "    sys.exit(1)\n"
    "sys.exit(0)\n"
)


def reachable(address: str, port: int) -> bool:
    """Whether a TCP connection from here to address:port opens."""
    try:
        socket.create_connection((address, port), timeout=TIMEOUT_SECONDS).close()
    except OSError:
        return False
    return True


def probe_command(address: str, port: int) -> str:
    """The shell command that runs PROBE against address:port with python3."""
    return f"python3 -c {shlex.quote(PROBE)} {address} {port}"
