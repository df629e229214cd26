"""One lab host: a systemd-nspawn container booted from its tree, on the lab bridge.

There is no machined or dbus on this machine, hence `--register=no --keep-unit`. The container
gets a veth pair (`host0` inside, on the bridge outside); its first address is added from here
through its network namespace (nsenter), until the netplan role configures one in the tree.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Final

from securechat_lab.commands import LabError, run
from securechat_lab.procs import Proc, children, pid_namespace

# systemd-nspawn's exit status when the container asked for a reboot (systemd-nspawn(1)).
REBOOT_EXIT: Final = 133
POWEROFF_TIMEOUT: Final = 30.0  # seconds systemd gets to stop every unit
INTERFACE: Final = "host0"


# What a host that runs Docker containers needs beyond nspawn's defaults. dockerd and runc make
# cgroups, mounts, veths and device nodes: every capability, and the system calls nspawn's
# filter refuses (keyrings for runc's session keyring, bpf for the device cgroup of v2).
CONTAINER_OPTIONS: Final = ("--capability=all", "--system-call-filter=@keyring bpf")


def command(
    tree: Path, machine: str, hostname: str, bridge: str, *, containers: bool = False
) -> list[str]:
    options = list(CONTAINER_OPTIONS) if containers else []
    return [
        "systemd-nspawn",
        "--quiet",
        f"--directory={tree}",
        "--boot",
        "--register=no",
        "--keep-unit",
        f"--network-bridge={bridge}",
        f"--machine={machine}",  # unique on this machine: it names the veth (vb-<machine>)
        f"--hostname={hostname}",
        "--resolv-conf=off",  # the tree's own (no resolver), not this machine's
        "--link-journal=no",
        "--console=read-only",  # boot messages go to the host's log file
        *options,
    ]


def container_init(nspawn: Proc) -> Proc | None:
    """The container's PID 1: the nspawn process's child in another PID namespace."""
    own = pid_namespace(nspawn.pid)
    for pid in children(nspawn.pid):
        namespace = pid_namespace(pid)
        if namespace is not None and namespace != own:
            return Proc.of(pid)
    return None


def wait_init(nspawn: Proc, timeout: float = 30.0) -> Proc:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        init = container_init(nspawn)
        if init is not None:
            return init
        if not nspawn.alive():
            raise LabError(f"systemd-nspawn (pid {nspawn.pid}) exited while starting")
        time.sleep(0.1)
    raise LabError(f"no container init under systemd-nspawn (pid {nspawn.pid}) after {timeout}s")


def netplan_configured(tree: Path) -> bool:
    """Whether the host configures its own address (the netplan role wrote a config)."""
    return any((tree / "etc" / "netplan").glob("*.yaml"))


def _in_container(init: Proc, *command: str) -> str:
    return run("nsenter", "-t", str(init.pid), "-n", *command)


def _host0(init: Proc) -> dict[str, object]:
    links = json.loads(_in_container(init, "ip", "-j", "link", "show", INTERFACE))
    if not isinstance(links, list) or not links or not isinstance(links[0], dict):
        raise LabError(f"no {INTERFACE} in the container of pid {init.pid}")
    return links[0]


def configure_network(init: Proc, address: str, prefix: int, tree: Path) -> None:
    """Bring the host onto the bridge: the first address on host0 unless netplan owns it."""
    deadline = time.monotonic() + 30
    while True:
        try:
            link = _host0(init)
            break
        except LabError:
            if time.monotonic() > deadline or not init.alive():
                raise
            time.sleep(0.1)
    peer = link.get("link_index")
    if isinstance(peer, int):
        # nspawn brings its side up already; make sure, by index (the name may be shortened).
        for outer in json.loads(run("ip", "-j", "link", "show")):
            if outer.get("ifindex") == peer and "UP" not in outer.get("flags", []):
                run("ip", "link", "set", "dev", str(outer["ifname"]), "up")
    if netplan_configured(tree):
        return  # the netplan role configures the address itself: test that it does
    present = json.loads(_in_container(init, "ip", "-j", "-4", "addr", "show", "dev", INTERFACE))
    addresses = {info.get("local") for entry in present for info in entry.get("addr_info", [])}
    if address not in addresses:
        _in_container(init, "ip", "addr", "add", f"{address}/{prefix}", "dev", INTERFACE)
    _in_container(init, "ip", "link", "set", INTERFACE, "up")


def stop(nspawn: Proc | None, init: Proc | None, timeout: float = POWEROFF_TIMEOUT) -> None:
    """Power the container off cleanly (SIGRTMIN+4 to its systemd), else kill it, by PID.

    `init` is the recorded PID 1, used when nspawn is gone (killed) but its container is not."""
    if nspawn is not None and nspawn.alive():
        init = container_init(nspawn) or init
    if init is not None:
        init.signal(signal.SIGRTMIN + 4)
    deadline = time.monotonic() + timeout
    for process in (nspawn, init):
        if process is not None:
            process.wait_gone(max(deadline - time.monotonic(), 0.0))
    for process in (nspawn, init):
        if process is not None:
            process.kill()  # init: PID 1 of its namespace, the kernel ends every process in it


def reboot(nspawn: Proc) -> Proc:
    """Ask the container's systemd to reboot (SIGINT: ctrl-alt-del.target); its old PID 1."""
    init = container_init(nspawn)
    if init is None or not init.signal(signal.SIGINT):
        raise LabError(f"the container of systemd-nspawn pid {nspawn.pid} is not running")
    return init
