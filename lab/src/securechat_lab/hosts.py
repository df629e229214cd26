"""Starting, stopping and rebooting one lab host through its supervisor (supervise.py)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from securechat_lab import nspawn, runfile
from securechat_lab.commands import LabError
from securechat_lab.layouts import runs_containers
from securechat_lab.network import PREFIX
from securechat_lab.sshkey import ssh_ready
from securechat_lab.state import HostState, LabState

SSH_TIMEOUT = 90.0  # seconds from start (or reboot) until sshd must answer
SUPERVISOR_STOP_TIMEOUT = 10.0


def start(lab: LabState, host: HostState) -> None:
    """Launch the host's supervisor, detached (setsid -f: it outlives this command)."""
    path = lab.runfile(host.name)
    path.unlink(missing_ok=True)
    # fmt: off
    command = [
        sys.executable, "-m", "securechat_lab.supervise",
        "--tree", str(lab.tree(host.name)),
        "--machine", host.machine,
        "--hostname", host.name,
        "--bridge", lab.bridge,
        "--address", host.address,
        "--prefix", str(PREFIX),
        "--runfile", str(path),
    ]
    # fmt: on
    if runs_containers(host.groups):
        command.append("--containers")
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
    while runfile.read(path).nspawn is None:
        if time.monotonic() > deadline:
            raise LabError(f"{host.name} did not start: see {lab.logfile(host.name)}")
        time.sleep(0.1)


def wait_ssh(
    lab: LabState, host: HostState, private_key: Path, timeout: float = SSH_TIMEOUT
) -> None:
    deadline = time.monotonic() + timeout
    while not ssh_ready(private_key, host.address):
        current = runfile.read(lab.runfile(host.name)).nspawn
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
    path = lab.runfile(host.name)
    info = runfile.read(path)
    if info.supervisor is not None:
        info.supervisor.signal(signal.SIGTERM)  # no further boot
    # A reboot in progress may start one more nspawn before SIGTERM lands: stop that one too.
    for _ in range(3):
        nspawn.stop(info.nspawn, info.init)
        if info.supervisor is None or info.supervisor.wait_gone(SUPERVISOR_STOP_TIMEOUT):
            break
        info = runfile.read(path)
    if info.supervisor is not None:
        info.supervisor.kill()
    last = runfile.read(path)
    for process in (last.nspawn, last.init):
        if process is not None:
            process.kill()


@dataclass(frozen=True)
class HostStatus:
    name: str
    address: str
    groups: list[str]
    running: bool
    orphaned: bool  # systemd-nspawn is gone but its container is not (down ends it)
    supervised: bool  # a reboot comes back only while the supervisor runs
    nspawn_pid: int | None
    reboots: int


def status(lab: LabState, host: HostState) -> HostStatus:
    info = runfile.read(lab.runfile(host.name))
    running = info.nspawn is not None and info.nspawn.alive()
    return HostStatus(
        name=host.name,
        address=host.address,
        groups=host.groups,
        running=running,
        orphaned=not running and info.init is not None and info.init.alive(),
        supervised=info.supervisor is not None and info.supervisor.alive(),
        nspawn_pid=info.nspawn.pid if running and info.nspawn else None,
        reboots=info.boots,
    )


def reboot(lab: LabState, host: HostState, private_key: Path, timeout: float = SSH_TIMEOUT) -> None:
    """Reboot cleanly (systemd in the container), wait for the new boot's sshd."""
    path = lab.runfile(host.name)
    info = runfile.read(path)
    supervisor, current = info.supervisor, info.nspawn
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
        now = runfile.read(path).nspawn
        if now is not None and now != current and now.alive():
            break
        if not supervisor.alive():
            raise LabError(f"{host.name} did not boot again: see {lab.logfile(host.name)}")
        if time.monotonic() > deadline:
            raise LabError(f"{host.name} did not boot again within {timeout:.0f} s")
        time.sleep(0.2)
    wait_ssh(lab, host, private_key, max(deadline - time.monotonic(), 10.0))
