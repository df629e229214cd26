"""Starting, stopping and rebooting one lab host through its supervisor (supervise.py)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from securechat_lab import nspawn
from securechat_lab.commands import LabError
from securechat_lab.network import PREFIX
from securechat_lab.sshkey import ssh_ready
from securechat_lab.state import HostState, LabState

SSH_TIMEOUT = 90.0  # seconds from start (or reboot) until sshd must answer
SUPERVISOR_STOP_TIMEOUT = 10.0


def start(lab: LabState, host: HostState) -> None:
    """Launch the host's supervisor, detached (setsid -f: it outlives this command)."""
    runfile = lab.runfile(host.name)
    runfile.unlink(missing_ok=True)
    # fmt: off
    command = [
        sys.executable, "-m", "securechat_lab.supervise",
        "--tree", str(lab.tree(host.name)),
        "--machine", host.machine,
        "--hostname", host.name,
        "--bridge", lab.bridge,
        "--address", host.address,
        "--prefix", str(PREFIX),
        "--runfile", str(runfile),
    ]
    # fmt: on
    with lab.logfile(host.name).open("ab") as log:
        subprocess.run(
            ["setsid", "-f", *command],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=True,
            cwd="/",
        )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        _, current = nspawn.read_runfile(runfile)
        if current is not None:
            return
        time.sleep(0.1)
    raise LabError(f"{host.name} did not start: see {lab.logfile(host.name)}")


def wait_ssh(
    lab: LabState, host: HostState, private_key: Path, timeout: float = SSH_TIMEOUT
) -> None:
    deadline = time.monotonic() + timeout
    while not ssh_ready(private_key, host.address):
        _, current = nspawn.read_runfile(lab.runfile(host.name))
        if current is None or not current.alive():
            raise LabError(f"{host.name} stopped while booting: see {lab.logfile(host.name)}")
        if time.monotonic() > deadline:
            raise LabError(
                f"sshd on {host.name} ({host.address}) did not answer within {timeout:.0f} s: "
                f"see {lab.logfile(host.name)}"
            )
        time.sleep(0.5)


def stop(lab: LabState, host: HostState) -> None:
    """Power the host off and end its supervisor; works when either has died already."""
    runfile = lab.runfile(host.name)
    supervisor, current = nspawn.read_runfile(runfile)
    if supervisor is not None:
        supervisor.signal(signal.SIGTERM)  # no further boot
    # A reboot in progress may start one more nspawn before SIGTERM lands: stop that one too.
    for _ in range(3):
        if current is not None and current.alive():
            nspawn.stop(current)
        if supervisor is None or supervisor.wait_gone(SUPERVISOR_STOP_TIMEOUT):
            break
        supervisor, current = nspawn.read_runfile(runfile)
    if supervisor is not None and supervisor.alive():
        supervisor.kill()
    _, current = nspawn.read_runfile(runfile)
    if current is not None and current.alive():
        current.kill()


@dataclass(frozen=True)
class HostStatus:
    name: str
    address: str
    groups: list[str]
    supervisor: bool
    running: bool
    nspawn_pid: int | None
    boots: int


def status(lab: LabState, host: HostState) -> HostStatus:
    supervisor, current = nspawn.read_runfile(lab.runfile(host.name))
    running = current is not None and current.alive()
    boots = _boots(lab.runfile(host.name))
    return HostStatus(
        name=host.name,
        address=host.address,
        groups=host.groups,
        supervisor=supervisor is not None and supervisor.alive(),
        running=running,
        nspawn_pid=current.pid if running and current else None,
        boots=boots,
    )


def _boots(runfile: Path) -> int:
    try:
        value = json.loads(runfile.read_text()).get("boots", 0)
    except (FileNotFoundError, ValueError):
        return 0
    return int(value) if isinstance(value, int) else 0


def reboot(lab: LabState, host: HostState, private_key: Path, timeout: float = SSH_TIMEOUT) -> None:
    """Reboot cleanly (systemd in the container), wait for the new boot's sshd."""
    supervisor, current = nspawn.read_runfile(lab.runfile(host.name))
    if current is None or not current.alive() or supervisor is None or not supervisor.alive():
        raise LabError(f"{host.name} is not running: `securechat-lab status {lab.name}`")
    old_init = nspawn.reboot(current)
    deadline = time.monotonic() + timeout
    # The old container must be gone first, or sshd's answer could still be the old boot's.
    while old_init.alive():
        if time.monotonic() > deadline:
            raise LabError(f"{host.name} did not shut down for the reboot within {timeout:.0f} s")
        time.sleep(0.2)
    while True:
        _, now = nspawn.read_runfile(lab.runfile(host.name))
        if now is not None and now != current and now.alive():
            break
        if not supervisor.alive():
            raise LabError(f"{host.name} did not boot again: see {lab.logfile(host.name)}")
        if time.monotonic() > deadline:
            raise LabError(f"{host.name} did not boot again within {timeout:.0f} s")
        time.sleep(0.2)
    wait_ssh(lab, host, private_key, max(deadline - time.monotonic(), 10.0))
