"""The collection deploys from the bundle to air-gapped lab hosts: `make lab-test`.

For each layout: a first `site.yml` run from the bundle succeeds (it ends with securechat-verify);
a second run changes nothing; `--check --diff` then reports nothing; two reference-client users
chat through nginx over https; the firewall matrix holds from the controller and between hosts;
a reboot brings every service back. Traffic goes only to the lab's own hosts.

The bundle is built from this tree once per run, unless SECURECHAT_LAB_BUNDLE names one
(its fingerprint is read from the tarball).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from securechat.client.chat import ChatClient

from securechat_lab import lab
from securechat_lab import playbook as playbooks
from securechat_lab.bundle import newest_bundle, read_fingerprint
from securechat_lab.playbook import changed_hosts
from securechat_lab.probe import probe_command, reachable
from securechat_lab.settings import Settings
from securechat_lab.sshkey import ssh_command
from securechat_lab.state import LabState

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root"),
    pytest.mark.skipif(shutil.which("systemd-nspawn") is None, reason="needs systemd-container"),
]

REPO = Path(__file__).resolve().parents[2]
VERIFY = REPO / ".venv" / "bin" / "securechat-verify"
APP_PORT = 8000
PORTS = (22, 80, 443, 3306, 6379, APP_PORT)


@dataclass(frozen=True)
class Deployment:
    settings: Settings
    state: LabState
    inventory: Path

    def address(self, host: str) -> str:
        return self.state.host(host).address

    def hosts_in(self, group: str) -> list[str]:
        return [h.name for h in self.state.hosts if group in h.groups]


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings.from_environ()


@pytest.fixture(scope="session")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    given = os.environ.get("SECURECHAT_LAB_BUNDLE")
    if given:
        tarball = Path(given)
    else:
        out = tmp_path_factory.mktemp("dist")
        subprocess.run([str(REPO / "offline-bundle.sh"), "build", "--out", str(out)], check=True)
        found = newest_bundle(out)
        assert found is not None, "offline-bundle.sh build wrote no tarball"
        tarball = found
    return tarball, read_fingerprint(tarball)


def run_playbook(
    deployment: Deployment, log_name: str, *extra: str, name: str = "site.yml"
) -> subprocess.CompletedProcess[str]:
    return playbooks.run_playbook(deployment.inventory, log_name, *extra, name=name)


def playbook(deployment: Deployment, log_name: str, *extra: str) -> str:
    """Run site.yml against the lab; it must succeed."""
    result = run_playbook(deployment, log_name, *extra)
    assert result.returncode == 0, f"{log_name}: rc {result.returncode}\n{result.stdout[-6000:]}"
    return result.stdout


def deploy(settings: Settings, layout: str, bundle: tuple[Path, str]) -> Iterator[Deployment]:
    name = f"deploy-{layout[:4]}"
    if (settings.state_root / name / "state.json").exists():
        lab.down(settings, name)
    tarball, fingerprint = bundle
    state = lab.up(settings, layout, name, tarball, fingerprint)
    deployment = Deployment(settings, state, settings.inventory_root / f"lab-{name}")
    try:
        playbook(deployment, f"{layout}-1-first")
        yield deployment
    finally:
        lab.down(settings, name)


@pytest.fixture(scope="module", params=["single", "distributed"])
def deployed(
    request: pytest.FixtureRequest, settings: Settings, bundle: tuple[Path, str]
) -> Iterator[Deployment]:
    yield from deploy(settings, request.param, bundle)


def test_a_second_run_changes_nothing(deployed: Deployment) -> None:
    output = playbook(deployed, f"{deployed.state.layout}-2-second")
    assert changed_hosts(output) == {}


def test_check_diff_after_it_reports_nothing(deployed: Deployment) -> None:
    output = playbook(deployed, f"{deployed.state.layout}-3-check", "--check", "--diff")
    assert changed_hosts(output) == {}


@pytest.mark.parametrize(
    ("playbook_name", "overrides", "refusal"),
    [
        ("bundle.yml", {"securechat_bundle_fingerprint": "0" * 40}, "did not verify, so nothing"),
        ("preflight.yml", {"securechat_bundle_fingerprint": "1AF1 not hex"}, "40 hex digits"),
        ("preflight.yml", {"securechat_bundle_path": "/nonexistent/b.tar.gz"}, "No bundle at"),
        ("preflight.yml", {"securechat_public_url": "http://chat.lan"}, "must be https://"),
        ("preflight.yml", {"securechat_public_url": "https://chat.lan/x?y"}, "must be https://"),
        ("preflight.yml", {"securechat_public_url": "https://a b\n"}, "must be https://"),
        ("preflight.yml", {"securechat_admin_networks": ["10.0.0.1"]}, "CIDR networks"),
        ("preflight.yml", {"securechat_client_networks": []}, "CIDR networks"),
        (
            "preflight.yml",
            {"securechat_admin_networks": {"net": "10.0.0.0/8"}},
            "securechat_admin_networks",
        ),
    ],
)
def test_hostile_settings_are_refused_before_any_change(
    deployed: Deployment, playbook_name: str, overrides: dict[str, object], refusal: str
) -> None:
    log_name = f"{deployed.state.layout}-refused-{playbook_name}"
    result = run_playbook(deployed, log_name, "-e", json.dumps(overrides), name=playbook_name)
    assert result.returncode != 0
    assert refusal in result.stdout + result.stderr
    assert changed_hosts(result.stdout) == {}


def verify(deployed: Deployment) -> None:
    result = subprocess.run(
        [str(VERIFY), "all", "-i", str(deployed.inventory)],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_securechat_verify_passes(deployed: Deployment) -> None:
    verify(deployed)


def test_two_users_chat_through_nginx_over_https(deployed: Deployment) -> None:
    url = f"https://{deployed.address(deployed.hosts_in('securechat_front')[0])}"
    context = ssl.create_default_context(cafile=str(deployed.inventory / "pki" / "ca.crt"))
    text = f"hello across the air gap {secrets.token_hex(8)}"
    assert asyncio.run(chat(url, context, text)) == text


async def chat(url: str, context: ssl.SSLContext, text: str) -> str:
    password = secrets.token_urlsafe(18)
    tag = secrets.token_hex(4)
    alice, bob = ChatClient(url, ssl_context=context), ChatClient(url, ssl_context=context)
    try:
        for client, name in ((alice, f"alice-{tag}"), (bob, f"bob-{tag}")):
            await client.register(name, password)
            await client.login(name, password)
        await bob.connect()
        conversation = await alice.create_direct(bob.user_id)
        cid = str(conversation["id"])
        ack = await alice.send_text(cid, text)
        assert ack.get("ok"), ack
        message = await bob.events.wait(
            "message:new", lambda m: m.get("conversation_id") == cid, timeout=20
        )
        return (await bob.decrypt(message)).text
    finally:
        await asyncio.gather(alice.close(), bob.close(), return_exceptions=True)


def expected_open(deployed: Deployment, host: str, source: str | None) -> set[int]:
    """The ports of `host` that `source` (None: the controller) may open; the rest must not.

    The controller is in the admin and the client networks. Between hosts both ends filter:
    a host may only open what its roles need (app -> db, app -> redis, front -> app)."""
    groups = set(deployed.state.host(host).groups)
    if source is None:
        return {22, 80, 443} if "securechat_front" in groups else {22}
    source_groups = set(deployed.state.host(source).groups)
    ports: set[int] = set()
    if "securechat_app" in source_groups:
        ports |= {3306} if "securechat_db" in groups else set()
        ports |= {6379} if "securechat_redis" in groups else set()
    # An app host that is also a front listens on 127.0.0.1 only.
    app_on_lan = "securechat_app" in groups and "securechat_front" not in groups
    if app_on_lan and "securechat_front" in source_groups:
        ports.add(APP_PORT)
    return ports


def reachable_between(deployed: Deployment, source: str, address: str, port: int) -> bool:
    remote = f"timeout 3 {probe_command(address, port)}"
    command = ssh_command(deployed.settings.private_key, deployed.address(source), remote)
    return subprocess.run(command, capture_output=True, check=False, timeout=30).returncode == 0


def test_the_firewall_matrix_holds(deployed: Deployment) -> None:
    wrong: list[str] = []
    names = [h.name for h in deployed.state.hosts]
    for host in names:
        address = deployed.address(host)
        allowed = expected_open(deployed, host, None)
        for port in PORTS:
            if reachable(address, port) != (port in allowed):
                wrong.append(f"controller -> {host}:{port} expected {port in allowed}")
        for source in (n for n in names if n != host):
            allowed = expected_open(deployed, host, source)
            for port in PORTS:
                if reachable_between(deployed, source, address, port) != (port in allowed):
                    wrong.append(f"{source} -> {host}:{port} expected {port in allowed}")
    assert wrong == []


def test_a_reboot_brings_every_service_back(deployed: Deployment) -> None:
    for host in deployed.state.hosts:
        lab.reboot(deployed.settings, deployed.state.name, host.name)
    wait_until_healthy(deployed)
    verify(deployed)


def wait_until_healthy(deployed: Deployment, timeout: float = 180) -> None:
    """The chat answers its health check through the front (services restart on their own)."""
    url = f"https://{deployed.address(deployed.hosts_in('securechat_front')[0])}/api/v1/health"
    context = ssl.create_default_context(cafile=str(deployed.inventory / "pki" / "ca.crt"))
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, context=context, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        assert time.monotonic() < deadline, f"{url} did not answer 200 within {timeout:.0f} s"
        time.sleep(2)
