"""`SshRunner`: the ssh command line it builds, and `sudo -n` for privileged commands only.

`subprocess.run` is replaced by a fake ssh that checks the command line and answers from the
remote argv, so the real runner, inventory and checks run end to end without a host.
"""

from __future__ import annotations

import shlex
import subprocess
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from securechat_verify.checks import isolation, services
from securechat_verify.inventory import target_from_inventory
from securechat_verify.remote import LocalRunner, SshRunner
from securechat_verify.result import Finding, Status
from securechat_verify.target import Host

NFT = ("nft", "-j", "list", "ruleset")
SUDO_NFT = ("sudo", "-n", "--", *NFT)


@dataclass
class FakeSsh:
    """Stands in for `subprocess.run`: records each ssh command line and its remote argv."""

    answers: dict[tuple[str, ...], tuple[int, str, str]] = field(default_factory=dict)
    commands: list[list[str]] = field(default_factory=list)
    remote: list[tuple[str, ...]] = field(default_factory=list)

    def __call__(self, command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        assert command[0] == "ssh"
        assert kwargs["capture_output"]
        assert kwargs["text"]
        assert not kwargs["check"]
        self.commands.append(command)
        separator = command.index("--")
        # The remote shell joins and splits the quoted words: do the same.
        argv = tuple(shlex.split(" ".join(command[separator + 1 :])))
        self.remote.append(argv)
        code, stdout, stderr = self.answers.get(argv, (0, "", ""))
        return subprocess.CompletedProcess(command, code, stdout, stderr)


@pytest.fixture
def fake_ssh(monkeypatch: pytest.MonkeyPatch) -> FakeSsh:
    fake = FakeSsh()
    monkeypatch.setattr("securechat_verify.remote.subprocess.run", fake)
    return fake


def test_the_ssh_command_line(fake_ssh: FakeSsh) -> None:
    runner = SshRunner("ops@10.0.0.5", 2222, "/keys/site", ("-o", "ProxyJump=bastion"))
    result = runner.run(["sh", "-c", "echo 'a b' $HOME; rm -rf /"], 7.9)
    assert result.returncode == 0
    assert fake_ssh.commands == [
        [
            "ssh",
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=7",
            "-p",
            "2222",
            "-o",
            "ProxyJump=bastion",
            "-i",
            "/keys/site",
            "ops@10.0.0.5",
            "--",
            "sh",
            "-c",
            "'echo '\"'\"'a b'\"'\"' $HOME; rm -rf /'",
        ]
    ]
    # The remote shell sees exactly the argv, one word each.
    assert fake_ssh.remote == [("sh", "-c", "echo 'a b' $HOME; rm -rf /")]


def test_privileged_commands_use_sudo_only_with_become(fake_ssh: FakeSsh) -> None:
    become = SshRunner("ops@10.0.0.5", become=True)
    become.run(list(NFT), 5, privileged=True)
    become.run(["cat", "/etc/resolv.conf"], 5)
    become.run(["cat", "/etc/resolv.conf"], 5, privileged=False)
    plain = SshRunner("ops@10.0.0.5")
    plain.run(list(NFT), 5, privileged=True)
    assert fake_ssh.remote == [
        SUDO_NFT,
        ("cat", "/etc/resolv.conf"),
        ("cat", "/etc/resolv.conf"),
        NFT,
    ]


def test_the_user_and_description() -> None:
    assert SshRunner("ops@10.0.0.5").user == "ops"
    assert SshRunner("10.0.0.5").user is None
    assert SshRunner("@10.0.0.5").user is None
    assert SshRunner("ops@10.0.0.5", become=True).description == "ssh ops@10.0.0.5"


def test_the_local_runner_ignores_privileged() -> None:
    result = LocalRunner().run(["id", "-u"], 10, privileged=True)
    assert result.returncode == 0
    assert result.stdout.strip().isdigit()


# --- end to end: the example inventory's ops user with ansible_become ------------------------


@pytest.fixture
def example_host(tmp_path: Path) -> Host:
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "hosts.yml").write_text(
        textwrap.dedent(
            """\
            all:
              children:
                securechat_app:
                  hosts:
                    app1: {ansible_host: 192.168.50.10}
              vars:
                ansible_user: ops
                ansible_become: true
            """
        )
    )
    (tmp_path / "group_vars/all.yml").write_text("securechat_public_url: https://chat.lan\n")
    (host,) = target_from_inventory(tmp_path).hosts
    return host


def firewall_finding(host: Host) -> Finding:
    assert host.runner is not None
    findings = isolation.check_host(host, host.runner, 5)
    (found,) = [f for f in findings if f.summary.startswith("outbound firewall")]
    return found


def test_only_the_nft_listing_runs_under_sudo(fake_ssh: FakeSsh, example_host: Host) -> None:
    ruleset = (
        '{"nftables": [{"table": {"family": "inet", "name": "t"}}, {"chain": {"family": "inet",'
        ' "table": "t", "name": "out", "type": "filter", "hook": "output", "policy": "drop"}}]}'
    )
    fake_ssh.answers[SUDO_NFT] = (0, ruleset, "")
    firewall = firewall_finding(example_host)
    assert firewall.status is Status.PASS, firewall
    assert SUDO_NFT in fake_ssh.remote
    assert NFT not in fake_ssh.remote
    others = [argv for argv in fake_ssh.remote if argv != SUDO_NFT]
    assert len(others) == len(fake_ssh.remote) - 1
    assert not any("sudo" in argv for argv in others)
    (sudo_command,) = [c for c in fake_ssh.commands if tuple(c[-len(SUDO_NFT) :]) == SUDO_NFT]
    assert sudo_command[-len(SUDO_NFT) - 2 :] == ["ops@192.168.50.10", "--", *SUDO_NFT]


def test_services_never_uses_sudo(fake_ssh: FakeSsh, example_host: Host) -> None:
    assert example_host.runner is not None
    services.check_host(example_host, example_host.runner, 5)
    assert fake_ssh.remote
    assert not any("sudo" in argv for argv in fake_ssh.remote)


def test_a_sudo_password_prompt_is_an_error_naming_the_ssh_user(
    fake_ssh: FakeSsh, example_host: Host
) -> None:
    fake_ssh.answers[SUDO_NFT] = (1, "", "sudo: a password is required\n")
    firewall = firewall_finding(example_host)
    assert firewall.status is Status.ERROR
    assert firewall.summary == (
        "outbound firewall: sudo -n refused to list the nftables ruleset "
        "(exit 1: sudo: a password is required)"
    )
    assert firewall.hint is not None
    assert "give the ops user passwordless sudo for `/usr/sbin/nft -j list ruleset`" in (
        firewall.hint
    )
    assert "`ops ALL=(root) NOPASSWD: /usr/sbin/nft -j list ruleset`" in firewall.hint
    assert firewall.hint.endswith("or connect as root (ansible_user: root)")


def test_the_hint_names_another_ssh_user(fake_ssh: FakeSsh) -> None:
    runner = SshRunner("admin@10.0.0.5", become=True)
    fake_ssh.answers[SUDO_NFT] = (1, "", "sudo: a password is required\n")
    firewall = firewall_finding(Host("app1", "10.0.0.5", runner=runner))
    assert firewall.hint is not None
    assert "`admin ALL=(root) NOPASSWD: /usr/sbin/nft -j list ruleset`" in firewall.hint


def test_root_needs_no_sudo(fake_ssh: FakeSsh, tmp_path: Path, example_host: Host) -> None:
    # example_host wrote its inventory to tmp_path: the same, connecting as root.
    hosts = tmp_path / "hosts.yml"
    hosts.write_text(hosts.read_text().replace("ansible_user: ops", "ansible_user: root"))
    (host,) = target_from_inventory(tmp_path).hosts
    fake_ssh.answers[NFT] = (1, "", "Error: syntax error\n")
    firewall = firewall_finding(host)
    assert NFT in fake_ssh.remote
    assert SUDO_NFT not in fake_ssh.remote
    assert firewall.summary.startswith("outbound firewall: `nft -j list ruleset` failed")
