"""A cgroup of its own for each lab host.

Without machined, systemd-nspawn puts its container in `payload/` below the cgroup it was
started in. Started from the same cgroup, every lab host shared one `payload/` tree, and the
hosts' systemds created and removed the same unit cgroups: one host's `systemctl reload
nftables` failed with status 219/CGROUP while another's reload ran. The supervisor of each host
moves itself into `securechat-lab/<machine>` first, in every hierarchy nspawn uses for the
container (name=systemd and the unified one on a hybrid host, the root of a cgroup v2 host), so
nspawn, and the container below it, start there.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Final

CGROUP_FS: Final = Path("/sys/fs/cgroup")
PARENT: Final = "securechat-lab"


def hierarchies(base: Path = CGROUP_FS) -> list[Path]:
    """The roots of the hierarchies nspawn places containers in, on this machine."""
    if (base / "cgroup.controllers").exists():  # cgroup v2 only
        return [base]
    return [
        root for root in (base / "systemd", base / "unified") if (root / "cgroup.procs").exists()
    ]


def enter_own(machine: str, base: Path = CGROUP_FS) -> None:
    """Move this process into securechat-lab/<machine> of every hierarchy."""
    for root in hierarchies(base):
        group = root / PARENT / machine
        group.mkdir(parents=True, exist_ok=True)
        (group / "cgroup.procs").write_text(f"{os.getpid()}\n")


def remove_own(machine: str, base: Path = CGROUP_FS) -> None:
    """Leave securechat-lab/<machine> for the root and remove it, with what nspawn and the
    container left below it; a cgroup that still has processes stays (rmdir refuses it)."""
    for root in hierarchies(base):
        group = root / PARENT / machine
        if not group.is_dir():
            continue
        (root / "cgroup.procs").write_text(f"{os.getpid()}\n")
        below = sorted((p for p in group.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts))
        for directory in [*below, group, group.parent]:  # the parent when no other host has one
            with contextlib.suppress(OSError):
                directory.rmdir()
