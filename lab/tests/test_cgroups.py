"""Each lab host's supervisor gets a cgroup of its own (a fake cgroup tree: plain files)."""

from __future__ import annotations

import os
from pathlib import Path

from securechat_lab import cgroups


def hybrid(tmp_path: Path) -> Path:
    for root in ("systemd", "unified", "cpu"):
        (tmp_path / root).mkdir()
        (tmp_path / root / "cgroup.procs").write_text("")
    return tmp_path


def test_a_hybrid_host_uses_the_systemd_and_unified_hierarchies(tmp_path: Path) -> None:
    base = hybrid(tmp_path)
    assert cgroups.hierarchies(base) == [base / "systemd", base / "unified"]


def test_a_cgroup_v2_host_uses_its_root(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("cpu memory pids\n")
    assert cgroups.hierarchies(tmp_path) == [tmp_path]


def test_enter_then_remove(tmp_path: Path) -> None:
    base = hybrid(tmp_path)
    cgroups.enter_own("app1-3", base)
    for root in ("systemd", "unified"):
        group = base / root / "securechat-lab" / "app1-3"
        assert (group / "cgroup.procs").read_text() == f"{os.getpid()}\n"
        (group / "payload" / "init.scope").mkdir(parents=True)  # what nspawn would make
    assert not (base / "cpu" / "securechat-lab").exists()
    # A real cgroup directory holds only virtual files; here the fake cgroup.procs files would
    # make rmdir fail, so remove them as the kernel would not need to.
    for procs in base.rglob("securechat-lab/**/cgroup.procs"):
        procs.unlink()
    cgroups.remove_own("app1-3", base)
    for root in ("systemd", "unified"):
        assert not (base / root / "securechat-lab" / "app1-3").exists()
        assert (base / root / "cgroup.procs").read_text() == f"{os.getpid()}\n"
