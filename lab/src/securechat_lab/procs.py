"""Processes the lab started, named by PID *and* start time, so a reused PID is never signalled.

The lab only ever signals a process whose /proc entry still has the recorded start time.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROC = Path("/proc")


@dataclass(frozen=True)
class Proc:
    pid: int
    start: int  # clock ticks after boot, field 22 of /proc/PID/stat

    @classmethod
    def of(cls, pid: int) -> Proc | None:
        stat = _stat(pid)
        return None if stat is None else cls(pid, int(stat[19]))

    @classmethod
    def from_json(cls, data: Any) -> Proc | None:
        if isinstance(data, dict) and isinstance(data.get("pid"), int):
            return cls(int(data["pid"]), int(data.get("start", 0)))
        return None

    def to_json(self) -> dict[str, int]:
        return {"pid": self.pid, "start": self.start}

    def alive(self) -> bool:
        stat = _stat(self.pid)
        # A zombie has exited; only its parent's wait() is missing.
        return stat is not None and int(stat[19]) == self.start and stat[0] != "Z"

    def signal(self, signum: int) -> bool:
        """Send `signum` if this is still the recorded process; False if it is gone."""
        if not self.alive():
            return False
        try:
            os.kill(self.pid, signum)
        except ProcessLookupError:
            return False
        return True

    def wait_gone(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.alive():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True

    def kill(self, timeout: float = 5.0) -> None:
        """SIGKILL and wait until it is gone (bounded)."""
        self.signal(signal.SIGKILL)
        self.wait_gone(timeout)


def _stat(pid: int) -> list[str] | None:
    """Fields 3.. of /proc/PID/stat (state first), split after the parenthesised command."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return text[text.rindex(")") + 2 :].split()


def children(pid: int) -> list[int]:
    """PIDs whose parent is `pid` (the nspawn process is a subreaper for the container)."""
    found: list[int] = []
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None and int(stat[1]) == pid:
                found.append(int(entry.name))
    return found


def pid_namespace(pid: int) -> str | None:
    try:
        return os.readlink(PROC / str(pid) / "ns" / "pid")
    except OSError:
        return None


def rooted_at(directory: Path) -> list[int]:
    """PIDs whose root directory is `directory` (a container's processes, in any namespace).

    /proc/PID/root resolves into the process's own mount namespace, and the container's root
    is a bind mount of its tree: same device and inode."""
    try:
        target = os.stat(directory)
    except FileNotFoundError:
        return []
    found: list[int] = []
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            try:
                root = os.stat(entry / "root")
            except OSError:
                continue
            if (root.st_dev, root.st_ino) == (target.st_dev, target.st_ino):
                found.append(int(entry.name))
    return found
