"""A host's runfile: the processes its supervisor started, rewritten at every (re)boot.

Written only by the supervisor, read by `down`, `status` and `reboot`. The container's PID 1 is
recorded as well: were systemd-nspawn killed, its container would live on without it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from securechat_lab.procs import Proc


@dataclass(frozen=True)
class RunInfo:
    supervisor: Proc | None = None
    nspawn: Proc | None = None
    init: Proc | None = None  # the container's systemd, once seen
    boots: int = 0  # how many times the host rebooted


def read(path: Path) -> RunInfo:
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return RunInfo()
    if not isinstance(data, dict):
        return RunInfo()
    boots = data.get("boots", 0)
    return RunInfo(
        supervisor=Proc.from_json(data.get("supervisor")),
        nspawn=Proc.from_json(data.get("nspawn")),
        init=Proc.from_json(data.get("init")),
        boots=boots if isinstance(boots, int) else 0,
    )


def write(path: Path, info: RunInfo) -> None:
    data = {
        "supervisor": info.supervisor.to_json() if info.supervisor else None,
        "nspawn": info.nspawn.to_json() if info.nspawn else None,
        "init": info.init.to_json() if info.init else None,
        "boots": info.boots,
    }
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(data) + "\n")
    partial.replace(path)  # readers never see half a file
