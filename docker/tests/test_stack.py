"""The stack from the bundle's images: hardened containers, securechat-verify, no lost message
when the database restarts or is killed, migrations once, the host firewall untouched."""

from __future__ import annotations

import asyncio
import os
import secrets
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from conftest import Site, firewall_rules, host_state
from securechat.client.chat import ChatClient

VERIFY = Path(sys.executable).with_name("securechat-verify")


def test_containers_run_hardened(site: Site) -> None:
    users = {
        "db": "mysql:mysql",
        "migrate": "securechat:securechat",
        "app": "securechat:securechat",
    }
    for service in ("db", "migrate", "app", "front"):
        container = site.inspect(service)
        config, host = container["Config"], container["HostConfig"]
        assert isinstance(config, dict)
        assert isinstance(host, dict)
        assert host["ReadonlyRootfs"] is True, service
        assert host["Privileged"] is False, service
        assert "ALL" in host["CapDrop"], service
        if service in users:
            assert config["User"] == users[service], service
            assert not host["PortBindings"], f"{service} publishes a port"
        if service != "migrate":
            assert config["Healthcheck"]["Test"], f"{service} has no health check"
    front = site.inspect("front")["HostConfig"]
    assert isinstance(front, dict)
    bindings = [b for ports in front["PortBindings"].values() for b in ports]
    assert {b["HostIp"] for b in bindings} == {"127.0.0.1"}


def test_only_the_front_has_a_network_that_is_not_internal(site: Site) -> None:
    for name, internal in (("db", True), ("app", True), ("edge", False)):
        flag = site.engine.docker(
            "network", "inspect", "--format", "{{.Internal}}", f"{site.project}_{name}"
        )
        assert flag.strip() == str(internal).lower(), name
    networks = site.inspect("db")["NetworkSettings"]
    assert isinstance(networks, dict)
    assert set(networks["Networks"]) == {f"{site.project}_db"}


def test_the_host_firewall_and_forwarding_are_untouched(site: Site) -> None:
    assert host_state() == site.engine.host_state
    # No packet of a container is routed beyond this host: forwarding stays off (dockerd was
    # told not to switch it on) and no rule of dockerd's exists, NAT included.
    assert host_state()["net/ipv4/ip_forward"] == "0"
    rules = firewall_rules().lower()
    assert "docker" not in rules
    assert "masquerade" not in rules or "172." not in rules


def test_securechat_verify_passes(site: Site) -> None:
    result = subprocess.run(
        [
            str(VERIFY),
            "all",
            "--url",
            site.url,
            "--ca",
            str(site.ca),
            "--only",
            "tls,socket,e2e",
            # CI machines are shared: one run saw a WebSocket handshake take over 10 s.
            "--timeout",
            "30",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "3 checks: 3 pass" in result.stdout


def test_the_ca_is_served_on_port_80(site: Site) -> None:
    http_port = os.environ.get("SECURECHAT_DOCKER_TEST_HTTP_PORT", "80")
    with urllib.request.urlopen(
        f"http://127.0.0.1:{http_port}/securechat-ca.fingerprint.txt", timeout=10
    ) as answer:
        page = answer.read().decode()
    assert "SHA-256 fingerprint: " in page


def test_migrations_run_once_per_up_and_do_nothing_the_second_time(site: Site) -> None:
    state = site.inspect("migrate")["State"]
    assert isinstance(state, dict)
    assert state["ExitCode"] == 0
    site.compose_run("up", "--detach", timeout=300)
    site.wait_healthy("front")
    logs = site.engine.docker("logs", site.container("migrate"), check=False)
    assert "schema already at" in logs, logs
    assert "administrator admin exists" in logs, logs


def test_no_acknowledged_message_is_lost_when_the_database_restarts(site: Site) -> None:
    asyncio.run(_messages_survive(site))


async def _messages_survive(site: Site) -> None:
    context = ssl.create_default_context(cafile=str(site.ca))
    alice, bob = (
        ChatClient(site.url, ssl_context=context),
        ChatClient(site.url, ssl_context=context),
    )
    password = secrets.token_urlsafe(16)
    names = [f"dk{secrets.token_hex(4)}" for _ in range(2)]
    try:
        for client, name in ((alice, names[0]), (bob, names[1])):
            await client.register(name, password)
            await client.login(name, password)
        conversation = (await alice.create_direct(bob.user_id))["id"]
        await alice.connect()
        sent = await _send(alice, conversation, "before restart", 30)

        # A clean restart (docker restart: SIGTERM, InnoDB shuts down).
        site.engine.docker("restart", "--time", "60", site.container("db"))
        site.wait_healthy("db")
        sent += await _send_retrying(alice, conversation, "after restart", 10)

        # A crash: SIGKILL to mariadbd from the host; the restart policy brings it back.
        restarts = _restart_count(site)
        pid = int(site.engine.docker("inspect", "--format", "{{.State.Pid}}", site.container("db")))
        os.kill(pid, 9)
        _wait_restarted(site, restarts)
        site.wait_healthy("db")
        sent += await _send_retrying(alice, conversation, "after kill", 10)

        history = await bob.catch_up({conversation: 0})
        texts = [message.text for message in history.get(conversation, [])]
        assert texts == sent, f"{len(sent)} acknowledged, {len(texts)} in the history"
    finally:
        for client in (alice, bob):
            await client.close()


async def _send(client: ChatClient, conversation: str, label: str, count: int) -> list[str]:
    texts = []
    for number in range(count):
        text = f"{label} {number}"
        ack = await client.send_text(conversation, text)
        assert ack.get("ok"), ack
        texts.append(text)
    return texts


async def _send_retrying(
    client: ChatClient, conversation: str, label: str, count: int
) -> list[str]:
    """Messages right after the database came back: an unacknowledged one is sent again (as a
    client would); only acknowledged ones count."""
    texts = []
    for number in range(count):
        text = f"{label} {number}"
        for _attempt in range(30):
            ack = await client.send_text(conversation, text)
            if ack.get("ok"):
                texts.append(text)
                break
            await asyncio.sleep(1)
        else:
            raise AssertionError(f"{text!r} was never acknowledged: {ack}")
    return texts


def _restart_count(site: Site) -> int:
    return int(site.engine.docker("inspect", "--format", "{{.RestartCount}}", site.container("db")))


def _wait_restarted(site: Site, before: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _restart_count(site) > before:
            return
        time.sleep(0.5)
    raise AssertionError("the restart policy did not restart the killed database")
