from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from securechat_lab import image


def fake_debootstrap_tree(root: Path) -> Path:
    for directory in ("etc/apt/sources.list.d", "etc/ssh/sshd_config.d", "var/lib/dbus",
                      "var/cache/apt/archives", "root"):  # fmt: skip
        (root / directory).mkdir(parents=True)
    (root / "etc/apt/sources.list").write_text("deb http://mirror.example/debian bookworm main\n")
    (root / "etc/apt/sources.list.d/extra.list").write_text("deb http://x.example/ y main\n")
    (root / "etc/resolv.conf").write_text("nameserver 192.0.2.53\n")
    (root / "etc/ssh/ssh_host_ed25519_key").write_text("shared\n")
    (root / "etc/machine-id").write_text("0123456789abcdef0123456789abcdef\n")
    (root / "var/lib/dbus/machine-id").write_text("0123456789abcdef0123456789abcdef\n")
    (root / "var/cache/apt/archives/python3_3.11.deb").write_bytes(b"deb")
    return root


def test_base_looks_air_gapped(tmp_path: Path) -> None:
    tree = fake_debootstrap_tree(tmp_path / "base")
    image._prepare_base(tree)
    assert (tree / "etc/apt/sources.list").read_text() == ""
    assert list((tree / "etc/apt/sources.list.d").iterdir()) == []
    assert "nameserver" not in (tree / "etc/resolv.conf").read_text()
    assert list((tree / "etc/ssh").glob("ssh_host_*")) == []
    assert (
        "PermitRootLogin prohibit-password"
        in (tree / "etc/ssh/sshd_config.d/securechat-lab.conf").read_text()
    )
    assert not (tree / "var/lib/dbus/machine-id").exists()
    assert list((tree / "var/cache/apt/archives").iterdir()) == []


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs ssh-keygen")
def test_each_host_gets_its_own_identity(tmp_path: Path) -> None:
    base = fake_debootstrap_tree(tmp_path / "base")
    image._prepare_base(base)
    public_key = tmp_path / "id.pub"
    public_key.write_text("ssh-ed25519 AAAA lab\n")
    ids = []
    for name, address in (("app1", "10.231.5.11"), ("db1", "10.231.5.12")):
        tree = tmp_path / name
        shutil.copytree(base, tree, symlinks=True)
        image.personalize(tree, name, address, public_key)
        assert (tree / "etc/hostname").read_text() == f"{name}\n"
        assert f"{address}\t{name}\n" in (tree / "etc/hosts").read_text()
        machine_id = (tree / "etc/machine-id").read_text().strip()
        assert len(machine_id) == 32
        int(machine_id, 16)
        ids.append(machine_id)
        assert (tree / "etc/ssh/ssh_host_ed25519_key").is_file()
        authorized = tree / "root/.ssh/authorized_keys"
        assert authorized.read_text() == "ssh-ed25519 AAAA lab\n"
        assert authorized.stat().st_mode & 0o777 == 0o600
        assert (tree / "root/.ssh").stat().st_mode & 0o777 == 0o700
    assert ids[0] != ids[1]
    assert (tmp_path / "app1/etc/ssh/ssh_host_ed25519_key").read_bytes() != (
        tmp_path / "db1/etc/ssh/ssh_host_ed25519_key"
    ).read_bytes()


def test_a_docker_host_remounts_its_cgroups_writable_at_every_boot(tmp_path: Path) -> None:
    tree = fake_debootstrap_tree(tmp_path / "docker1")
    image.allow_containers(tree)
    image.allow_containers(tree)  # idempotent
    units = tree / "etc/systemd/system"
    unit = (units / image.CGROUPS_UNIT).read_text()
    assert "mount -o remount,bind,rw" in unit
    assert "Before=sysinit.target containerd.service docker.service" in unit
    link = units / "sysinit.target.wants" / image.CGROUPS_UNIT
    assert link.readlink() == Path("/etc/systemd/system") / image.CGROUPS_UNIT
