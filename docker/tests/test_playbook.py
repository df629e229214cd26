"""playbooks/docker.yml on an air-gapped host: Docker from the bundle, its images, the stack.

A lab host of the `docker` layout (securechat-lab, docs/lab.md: systemd-nspawn on an isolated
bridge, no route out) in the inventory group docker_hosts, booted with what dockerd needs to run
containers inside it. The playbook runs from this tree with the same bundle as test_stack.py
(built with `--with-docker-images`): Docker Engine from the bundle's apt repository, `docker
load`, compose up, a wait until the front is healthy. Then: every service runs, securechat-verify
passes against the host over https, a second run changes nothing, and the host firewall the
playbook installs lets the chat in and nothing else. The lab is removed at the end.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from securechat_lab import lab
from securechat_lab.bundle import read_fingerprint
from securechat_lab.playbook import ANSIBLE_PLAYBOOK, changed_hosts, run_playbook
from securechat_lab.probe import probe_command, reachable
from securechat_lab.settings import Settings
from securechat_lab.sshkey import ssh_command

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root"),
    pytest.mark.skipif(shutil.which("systemd-nspawn") is None, reason="needs systemd-container"),
    pytest.mark.skipif(not ANSIBLE_PLAYBOOK.exists(), reason="needs .venv-ansible (make lab-test)"),
]

VERIFY = Path(sys.executable).with_name("securechat-verify")
LAB_NAME = "docker-play"
HOST = "docker1"


@dataclass(frozen=True)
class DockerHost:
    settings: Settings
    inventory: Path
    address: str

    def ssh(self, command: str) -> str:
        argv = ssh_command(self.settings.private_key, self.address, command)
        result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)
        assert result.returncode == 0, f"{command}: {result.stdout}{result.stderr}"
        return result.stdout


def docker_playbook(host_inventory: Path, log_name: str) -> str:
    result = run_playbook(host_inventory, log_name, name="docker.yml")
    assert result.returncode == 0, f"{log_name}: rc {result.returncode}\n{result.stdout[-6000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def docker_host(bundle: Path) -> Iterator[DockerHost]:
    settings = Settings.from_environ()
    if (settings.state_root / LAB_NAME / "state.json").exists():
        lab.down(settings, LAB_NAME)
    state = lab.up(settings, "docker", LAB_NAME, bundle, read_fingerprint(bundle))
    try:
        made = DockerHost(
            settings, settings.inventory_root / f"lab-{LAB_NAME}", state.host(HOST).address
        )
        docker_playbook(made.inventory, "docker-1-first")
        yield made
    finally:
        lab.down(settings, LAB_NAME)


def test_every_service_of_the_stack_runs(docker_host: DockerHost) -> None:
    listing = docker_host.ssh(
        "docker ps --all --format '{{.Label \"com.docker.compose.service\"}} {{.Status}}'"
    )
    status = dict(line.split(" ", 1) for line in listing.splitlines())
    assert set(status) == {"db", "migrate", "app", "front"}, listing
    for service in ("db", "app", "front"):
        assert "(healthy)" in status[service], listing
    assert status["migrate"].startswith("Exited (0)"), listing


def test_securechat_verify_passes(docker_host: DockerHost) -> None:
    result = subprocess.run(
        [
            str(VERIFY),
            "all",
            "--url",
            f"https://{docker_host.address}",
            "--ca",
            str(docker_host.inventory / "pki" / "ca.crt"),
            "--only",
            "tls,socket,e2e",
            "--timeout",
            "30",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_second_run_changes_nothing(docker_host: DockerHost) -> None:
    assert changed_hosts(docker_playbook(docker_host.inventory, "docker-2-second")) == {}


def test_only_the_front_and_ssh_are_reachable(docker_host: DockerHost) -> None:
    # The controller is both the admin network (SSH) and a client (80, 443). The app and the
    # database publish nothing: their ports are closed on the host's address.
    open_ports = {
        port for port in (22, 80, 443, 3306, 8000) if reachable(docker_host.address, port)
    }
    assert open_ports == {22, 80, 443}


def test_no_container_can_open_a_connection_to_the_host(docker_host: DockerHost) -> None:
    # Without Docker's own rules a container has a route to its bridge's address, the host:
    # the firewall drops what comes in from the bridges. The app is on the app and db networks.
    app = docker_host.ssh("docker ps --quiet --filter label=com.docker.compose.service=app").strip()
    gateways = docker_host.ssh(
        "docker inspect --format '{{range .NetworkSettings.Networks}}{{.Gateway}} {{end}}' " + app
    ).split()
    assert len(gateways) == 2, gateways
    for gateway in [*gateways, docker_host.address]:
        result = subprocess.run(
            ssh_command(
                docker_host.settings.private_key,
                docker_host.address,
                f"docker exec {app} {probe_command(gateway, 22)}",  # the app image has python3
            ),
            capture_output=True,
            check=False,
            timeout=60,
        )
        assert result.returncode == 1, f"the app container reached {gateway}:22"
