"""The Debian 12 base image (debootstrap minbase, cached) and the per-host copies made from it.

The base carries nothing host-specific and no SSH key: machine-id, host keys, hostname and
authorized_keys are written into each copy, so the cache survives a new lab key and no two
hosts share an identity.
"""

from __future__ import annotations

import fcntl
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Final

from securechat_lab.commands import LabError, log, run

SUITE: Final = "bookworm"
INCLUDE: Final = "systemd,systemd-sysv,dbus,openssh-server,python3,iproute2,sudo"
# Written last into the base: a base without it is unfinished and is rebuilt.
COMPLETE_MARK: Final = ".securechat-lab-base"
SSHD_CONFIG: Final = """\
# securechat-lab: root logs in with the lab key only.
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
"""


def base_image(cache_dir: Path, mirror: str) -> Path:
    """The cached base tree, built once (about a minute); concurrent `up`s build it once."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    base = cache_dir / f"base-{SUITE}"
    with (cache_dir / ".base.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second `up` waits for the first build
        if (base / COMPLETE_MARK).is_file():
            return base
        if base.exists():
            shutil.rmtree(base)  # an unfinished base from an older run
        log(f"debootstrap {SUITE} minbase into {base} (once, about a minute)")
        partial = Path(tempfile.mkdtemp(prefix=f"base-{SUITE}.", dir=cache_dir))
        try:
            partial.chmod(0o755)  # it becomes the hosts' "/": mkdtemp's 0700 would lock out users
            debootstrap = ["debootstrap", "--variant=minbase", f"--include={INCLUDE}", SUITE]
            run(*debootstrap, str(partial), mirror, timeout=1800)
            _prepare_base(partial)
            (partial / COMPLETE_MARK).write_text(f"debootstrap {SUITE} minbase +{INCLUDE}\n")
            partial.rename(base)  # atomic: a base is either complete or absent
        finally:
            if partial.exists():
                shutil.rmtree(partial)
    return base


def _prepare_base(tree: Path) -> None:
    """Make the tree look like an air-gapped host: no apt source, no resolver, no identity."""
    apt = tree / "etc" / "apt"
    # debootstrap leaves the build mirror in sources.list; a real air-gapped host has no source.
    (apt / "sources.list").write_text("")
    for source in (apt / "sources.list.d").glob("*"):
        source.unlink()
    for deb in (tree / "var" / "cache" / "apt" / "archives").glob("*.deb"):
        deb.unlink()  # 100 MB less in every host copy
    # debootstrap copies this machine's resolver in; the hosts have none until netplan sets one.
    resolv = tree / "etc" / "resolv.conf"
    resolv.unlink(missing_ok=True)
    resolv.write_text("# no resolver on the air-gapped lab LAN\n")
    # Host keys made by openssh-server's postinst would be shared by every host.
    for key in (tree / "etc" / "ssh").glob("ssh_host_*"):
        key.unlink()
    (tree / "etc" / "ssh" / "sshd_config.d" / "securechat-lab.conf").write_text(SSHD_CONFIG)
    (tree / "etc" / "machine-id").write_text("")
    (tree / "var" / "lib" / "dbus" / "machine-id").unlink(missing_ok=True)


def make_host_tree(
    base: Path,
    tree: Path,
    hostname: str,
    address: str,
    public_key: Path,
    *,
    containers: bool = False,
) -> None:
    """A copy of `base` at `tree` with its own name, machine-id, host keys and root's key;
    with `containers`, able to run Docker containers."""
    if tree.exists():
        raise LabError(f"{tree} exists already: `securechat-lab down` the lab that owns it")
    tree.parent.mkdir(parents=True, exist_ok=True)
    partial = tree.with_name(f".{tree.name}.partial")
    if partial.exists():
        shutil.rmtree(partial)
    # --reflink=auto: instant on btrfs/xfs, a plain copy elsewhere (a few seconds).
    run("cp", "-a", "--reflink=auto", str(base), str(partial), timeout=600)
    personalize(partial, hostname, address, public_key)
    if containers:
        allow_containers(partial)
    partial.rename(tree)


# A real Docker host has writable cgroup hierarchies; nspawn mounts the (v1) hierarchies of
# the host read-only in the container, and remounts them so at every boot. runc creates one
# cgroup per container: make the bind mounts writable again, before containerd and dockerd.
CGROUPS_UNIT: Final = "securechat-lab-cgroups.service"
CGROUPS_UNIT_TEXT: Final = """\
# Written by securechat-lab: lets Docker run in this lab host (a real host needs none of it).
[Unit]
Description=securechat-lab: writable cgroup hierarchies for Docker
DefaultDependencies=no
Before=sysinit.target containerd.service docker.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'for d in /sys/fs/cgroup/*/; do mount -o remount,bind,rw "$d"; done'

[Install]
WantedBy=sysinit.target
"""


def allow_containers(tree: Path) -> None:
    """Let the host run Docker containers: its cgroup hierarchies writable at every boot."""
    units = tree / "etc" / "systemd" / "system"
    wants = units / "sysinit.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    (units / CGROUPS_UNIT).write_text(CGROUPS_UNIT_TEXT)
    link = wants / CGROUPS_UNIT
    link.unlink(missing_ok=True)
    link.symlink_to(f"/etc/systemd/system/{CGROUPS_UNIT}")


def personalize(tree: Path, hostname: str, address: str, public_key: Path) -> None:
    etc = tree / "etc"
    (etc / "hostname").write_text(f"{hostname}\n")
    (etc / "hosts").write_text(
        "127.0.0.1\tlocalhost\n"
        f"{address}\t{hostname}\n"
        "::1\tlocalhost ip6-localhost ip6-loopback\n"
        "ff02::1\tip6-allnodes\n"
        "ff02::2\tip6-allrouters\n"
    )
    # A fresh random id per host (32 hex digits); dbus would otherwise keep the base's.
    (etc / "machine-id").write_text(f"{uuid.uuid4().hex}\n")
    (tree / "var" / "lib" / "dbus" / "machine-id").unlink(missing_ok=True)
    for key in (etc / "ssh").glob("ssh_host_*"):
        key.unlink()
    run("ssh-keygen", "-A", "-f", str(tree))  # -A -f PREFIX writes PREFIX/etc/ssh/ssh_host_*
    ssh_dir = tree / "root" / ".ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    ssh_dir.chmod(0o700)
    authorized = ssh_dir / "authorized_keys"
    authorized.write_text(public_key.read_text())
    authorized.chmod(0o600)
