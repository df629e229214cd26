from __future__ import annotations

import json
from pathlib import Path

import pytest

from securechat_lab.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, main
from securechat_lab.layouts import LAYOUTS, runs_containers
from securechat_lab.nspawn import CONTAINER_OPTIONS, command, netplan_configured
from securechat_lab.settings import Settings


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SECURECHAT_LAB_STATE", str(tmp_path / "state"))
    monkeypatch.setenv("SECURECHAT_LAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SECURECHAT_LAB_KEYS", str(tmp_path / "keys"))
    monkeypatch.setenv("SECURECHAT_LAB_REPO", str(tmp_path / "repo"))


def test_status_without_labs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status"]) == EXIT_OK
    assert capsys.readouterr().out == "no labs\n"
    assert main(["status", "--json"]) == EXIT_OK
    assert json.loads(capsys.readouterr().out) == []


def test_unknown_lab(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "nope"]) == EXIT_FAILED
    assert "no lab 'nope'" in capsys.readouterr().err


def test_bad_name_and_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["up", "single", "--name", "Bad Name"]) == EXIT_FAILED
    assert "not valid" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["up", "triple"])
    assert exit_info.value.code == EXIT_USAGE
    with pytest.raises(SystemExit) as exit_info:
        main(["down"])
    assert exit_info.value.code == EXIT_USAGE


def test_settings_from_the_environment(tmp_path: Path) -> None:
    settings = Settings.from_environ()
    assert settings.state_root == tmp_path / "state"
    assert settings.inventory_root == tmp_path / "repo" / "inventory"
    assert settings.verify_command == tmp_path / "repo" / ".venv" / "bin" / "securechat-verify"
    assert settings.private_key == tmp_path / "keys" / "id_ed25519"


def test_machine_names_fit_an_interface_name() -> None:
    # nspawn names the host side of the veth vb-<machine>: at most 15 characters.
    for hosts in LAYOUTS.values():
        for host in hosts:
            assert len(f"vb-{host.name}-254") <= 15


def test_nspawn_command(tmp_path: Path) -> None:
    argv = command(tmp_path, "chat1-3", "chat1", "sclab3")
    for flag in ("--boot", "--register=no", "--keep-unit", "--network-bridge=sclab3",
                 "--machine=chat1-3", "--resolv-conf=off"):  # fmt: skip
        assert flag in argv
    assert not netplan_configured(tmp_path)
    (tmp_path / "etc" / "netplan").mkdir(parents=True)
    (tmp_path / "etc" / "netplan" / "60-securechat.yaml").write_text("network: {}\n")
    assert netplan_configured(tmp_path)


def test_only_a_docker_host_may_run_containers(tmp_path: Path) -> None:
    plain = command(tmp_path, "chat1-3", "chat1", "sclab3")
    docker = command(tmp_path, "docker1-3", "docker1", "sclab3", containers=True)
    assert not set(CONTAINER_OPTIONS) & set(plain)
    assert set(CONTAINER_OPTIONS) <= set(docker)
    assert [spec.name for spec in LAYOUTS["docker"] if runs_containers(spec.groups)] == ["docker1"]
    for name, hosts in LAYOUTS.items():
        if name != "docker":
            assert not any(runs_containers(spec.groups) for spec in hosts)
