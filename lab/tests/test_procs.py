from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from securechat_lab.procs import Proc, children, rooted_at
from securechat_lab.runfile import RunInfo, read, write


def test_a_process_is_its_pid_and_start_time() -> None:
    me = Proc.of(os.getpid())
    assert me is not None
    assert me.alive()
    assert not Proc(me.pid, me.start + 1).alive()  # a reused PID is someone else
    assert not Proc(me.pid, me.start + 1).signal(0)
    assert Proc.from_json(me.to_json()) == me
    assert Proc.from_json(None) is None


def test_children_and_waiting() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert child.pid in children(os.getpid())
        proc = Proc.of(child.pid)
        assert proc is not None
        assert not proc.wait_gone(0.2)
        proc.kill()
    finally:
        child.kill()
        child.wait()
    assert not proc.alive()


def test_nothing_runs_in_a_fresh_directory(tmp_path: Path) -> None:
    assert rooted_at(tmp_path) == []
    assert rooted_at(tmp_path / "missing") == []


def test_runfile_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "chat1.run"
    assert read(path) == RunInfo()
    me = Proc.of(os.getpid())
    info = RunInfo(supervisor=me, nspawn=me, init=None, boots=2)
    write(path, info)
    assert read(path) == info
    path.write_text("[1, 2]")
    assert read(path) == RunInfo()
