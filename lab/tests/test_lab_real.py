"""Real lab hosts: root, debootstrap (or its cache), systemd-nspawn. Run: pytest -m lab.

Traffic goes only to the lab's own 10.231.K.0/24 and loopback; isolation is proven from route
lookups (`ip route get` sends nothing). Every lab a test starts, it takes down, also on failure.
"""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from securechat_lab import lab, network, runfile
from securechat_lab.settings import Settings
from securechat_lab.sshkey import ssh_command
from securechat_lab.state import LabState

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root"),
    pytest.mark.skipif(shutil.which("systemd-nspawn") is None, reason="needs systemd-container"),
]
# Addresses outside the lab, only ever looked up in the host's routing table, never contacted.
OUTSIDE = ("192.0.2.2", "1.1.1.1", "10.0.0.1", "172.16.0.1", "192.168.1.1")
OUTSIDE6 = ("2001:db8::1", "2606:4700:4700::1111")


@pytest.fixture(scope="module")
def settings() -> Settings:
    return Settings.from_environ()


def start(settings: Settings, layout: str) -> Iterator[LabState]:
    name = f"test-{layout[:4]}-{os.getpid()}"
    try:
        yield lab.up(settings, layout, name)
    finally:
        if (settings.state_root / name / "state.json").exists():
            lab.down(settings, name)


@pytest.fixture
def single(settings: Settings) -> Iterator[LabState]:
    yield from start(settings, "single")


@pytest.fixture
def distributed(settings: Settings) -> Iterator[LabState]:
    yield from start(settings, "distributed")


def on_host(settings: Settings, address: str, *command: str, check: bool = True) -> str:
    result = subprocess.run(
        ssh_command(settings.private_key, address, shlex.join(command)),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result.stdout + result.stderr


def connect_probe(address: str, port: int) -> list[str]:
    code = f"import socket; socket.create_connection(({address!r}, {port}), 3).close()"
    return ["python3", "-c", code]


def test_single_host_life_cycle(settings: Settings, single: LabState) -> None:
    host = single.hosts[0]
    controller = network.controller_address(single.index)
    assert on_host(settings, host.address, "true") == ""
    assert on_host(settings, host.address, "hostname").strip() == "chat1"

    # Air-gapped: the only routes are the lab subnet's, no default route, in either family.
    routes = on_host(settings, host.address, "ip", "route")
    assert "default" not in routes
    assert routes.strip().startswith(f"10.231.{single.index}.0/24 dev host0")
    assert "default" not in on_host(settings, host.address, "ip", "-6", "route")
    for address in (*OUTSIDE, f"10.231.{single.index + 1}.1"):
        output = on_host(settings, host.address, "ip", "route", "get", address, check=False)
        assert "unreachable" in output, (address, output)
    for address in OUTSIDE6:
        output = on_host(settings, host.address, "ip", "-6", "route", "get", address, check=False)
        assert "unreachable" in output, (address, output)
    assert "nameserver" not in on_host(settings, host.address, "cat", "/etc/resolv.conf")
    assert on_host(settings, host.address, "cat", "/etc/apt/sources.list") == ""

    # The host reaches the controller (.1): a listener here, on the bridge address only.
    with socket.create_server((controller, 0)) as server:
        port = server.getsockname()[1]
        on_host(settings, host.address, *connect_probe(controller, port))

    # A clean reboot comes back, as a new container with its address.
    before = runfile.read(single.runfile(host.name))
    lab.reboot(settings, single.name, host.name)
    after = runfile.read(single.runfile(host.name))
    assert after.boots == before.boots + 1
    assert after.nspawn != before.nspawn
    assert on_host(settings, host.address, "hostname").strip() == "chat1"

    # down leaves nothing: no process, bridge, veth, tree, state or inventory files.
    processes = [
        p
        for p in (after.supervisor, after.nspawn, runfile.read(single.runfile(host.name)).init)
        if p
    ]
    tree = single.tree(host.name)
    lab.down(settings, single.name)
    assert not any(process.alive() for process in processes)
    assert not network.bridge_exists(single.bridge)
    links = subprocess.run(["ip", "-br", "link"], capture_output=True, text=True, check=True)
    assert f"vb-{host.machine}" not in links.stdout
    assert not tree.exists()
    assert not single.directory.exists()
    assert single.inventory is not None
    assert not (Path(single.inventory) / "hosts.yml").exists()


def test_distributed_hosts_reach_each_other(settings: Settings, distributed: LabState) -> None:
    app1, db1 = distributed.hosts
    on_host(settings, app1.address, *connect_probe(db1.address, 22))
    on_host(settings, db1.address, *connect_probe(app1.address, 22))
    assert (Path(str(distributed.inventory)) / "hosts.yml").is_file()


@pytest.mark.skipif(shutil.which("iptables") is None, reason="needs iptables")
def test_bridge_netfilter_trap(settings: Settings) -> None:
    """dockerd's state (bridge-nf-call-iptables = 1, FORWARD policy DROP), reproduced in a
    network namespace of its own so that this machine's firewall is not touched."""
    netns = f"sclab-test-{os.getpid()}"
    enter = ["nsenter", f"--net=/run/netns/{netns}"]
    name = f"test-nf-{os.getpid()}"
    cli = [*enter, sys.executable, "-m", "securechat_lab"]
    subprocess.run(["ip", "netns", "add", netns], check=True)
    try:
        for command in (["ip", "link", "set", "lo", "up"], ["iptables", "-P", "FORWARD", "DROP"]):
            subprocess.run([*enter, *command], check=True)
        nf = Path("/proc/sys/net/bridge/bridge-nf-call-iptables")
        active = subprocess.run(
            [*enter, "cat", str(nf)], capture_output=True, text=True, check=False
        )
        if active.stdout != "1\n":
            pytest.skip("br_netfilter is not active in a new network namespace")
        subprocess.run([*cli, "up", "distributed", "--name", name], check=True, timeout=600)
        rules = subprocess.run(
            [*enter, "iptables", "-S", "FORWARD"], capture_output=True, text=True, check=True
        ).stdout
        assert f'--comment "securechat-lab {name}" -j ACCEPT' in rules
        subprocess.run([*cli, "down", name], check=True, timeout=300)
        rules = subprocess.run(
            [*enter, "iptables", "-S", "FORWARD"], capture_output=True, text=True, check=True
        ).stdout
        assert rules == "-P FORWARD DROP\n"  # exactly its rules gone, the policy untouched
    finally:
        if (settings.state_root / name / "state.json").exists():
            subprocess.run([*cli, "down", name], check=False, timeout=300)
        subprocess.run(["ip", "netns", "delete", netns], check=False)
