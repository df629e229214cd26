"""What a lab made, on disk, so that `down` can undo it even after a crash.

/var/lib/securechat-lab/
    .lock                 held while a lab reserves its subnet (several labs start at once)
    subnets.json          the index each lab name had last time, reused when free
    <name>/state.json     the lab: layout, index, bridge, hosts, the firewall rules it added
    <name>/<host>/        the host's root tree
    <name>/<host>.run     PIDs (and start times) of its supervisor and current systemd-nspawn
    <name>/<host>.log     the supervisor's log and the host's console

Each object is recorded *before* it is made, so a crash leaves nothing unrecorded.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from securechat_lab.commands import LabError
from securechat_lab.network import Rule

NAME_PATTERN: Final = re.compile(r"^[a-z][a-z0-9-]{0,23}$")
STATE_FILE: Final = "state.json"


def check_name(name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise LabError(
            f"lab name {name!r} is not valid: lower-case letters, digits and '-', "
            "starting with a letter, at most 24 characters"
        )
    return name


@dataclass
class HostState:
    name: str
    machine: str  # the nspawn machine name, unique on this machine (it names the veth)
    address: str
    groups: list[str]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "machine": self.machine,
            "address": self.address,
            "groups": self.groups,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HostState:
        return cls(
            str(data["name"]), str(data["machine"]), str(data["address"]), list(data["groups"])
        )


@dataclass
class LabState:
    name: str
    layout: str
    index: int
    bridge: str
    directory: Path
    hosts: list[HostState] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    inventory: str | None = None  # the inventory directory written for the lab

    def tree(self, host: str) -> Path:
        return self.directory / host

    def runfile(self, host: str) -> Path:
        return self.directory / f"{host}.run"

    def logfile(self, host: str) -> Path:
        return self.directory / f"{host}.log"

    def host(self, name: str) -> HostState:
        for host in self.hosts:
            if host.name == name:
                return host
        raise LabError(
            f"lab {self.name} has no host {name!r}: {', '.join(h.name for h in self.hosts)}"
        )

    def save(self) -> None:
        data = {
            "name": self.name,
            "layout": self.layout,
            "index": self.index,
            "bridge": self.bridge,
            "hosts": [host.to_json() for host in self.hosts],
            "rules": [rule.to_json() for rule in self.rules],
            "inventory": self.inventory,
        }
        self.directory.mkdir(parents=True, exist_ok=True)
        partial = self.directory / f".{STATE_FILE}.partial"
        partial.write_text(json.dumps(data, indent=2) + "\n")
        partial.replace(self.directory / STATE_FILE)

    @classmethod
    def load(cls, directory: Path) -> LabState:
        path = directory / STATE_FILE
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise LabError(f"no lab {directory.name!r} (no {path})") from None
        except ValueError as exc:
            raise LabError(f"{path} is damaged: {exc}") from exc
        return cls(
            name=str(data["name"]),
            layout=str(data["layout"]),
            index=int(data["index"]),
            bridge=str(data["bridge"]),
            directory=directory,
            hosts=[HostState.from_json(host) for host in data.get("hosts", [])],
            rules=[Rule.from_json(rule) for rule in data.get("rules", [])],
            inventory=data.get("inventory"),
        )


def lab_names(state_root: Path) -> list[str]:
    if not state_root.is_dir():
        return []
    return sorted(p.parent.name for p in state_root.glob(f"*/{STATE_FILE}"))


def recorded_indexes(state_root: Path) -> set[int]:
    """Indexes reserved by labs that have state (up, starting, or crashed and not yet down)."""
    found: set[int] = set()
    for name in lab_names(state_root):
        with contextlib.suppress(LabError):
            found.add(LabState.load(state_root / name).index)
    return found


@contextlib.contextmanager
def locked(state_root: Path) -> Iterator[None]:
    """Serialise subnet reservation between concurrent `up`s (and `down`s)."""
    state_root.mkdir(parents=True, exist_ok=True)
    with (state_root / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def previous_index(state_root: Path, name: str) -> int | None:
    try:
        value = json.loads((state_root / "subnets.json").read_text()).get(name)
    except (FileNotFoundError, ValueError, AttributeError):
        return None
    return value if isinstance(value, int) else None


def remember_index(state_root: Path, name: str, index: int) -> None:
    path = state_root / "subnets.json"
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        data = {}
    if not isinstance(data, dict):
        data = {}
    data[name] = index
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    partial.replace(path)
