"""The lab's isolated bridge: 10.231.K.0/24 on `sclabK`, no uplink, no NAT, no routing.

The controller (this machine) is .1 on the bridge; hosts get .11 upward and no default route.
Bridged traffic normally never meets iptables, but once br_netfilter is loaded (dockerd loads
it) with /proc/sys/net/bridge/bridge-nf-call-iptables = 1, frames between two ports of the
bridge go through the FORWARD chain, whose policy dockerd sets to DROP: hosts then cannot reach
each other. So the lab inserts an ACCEPT for its own bridge (and, when iptables is there at all,
DROPs for anything routed into or out of it, so that even with ip_forward on the bridge stays
an island) and deletes exactly those rules on `down`. It changes no sysctl.
"""

from __future__ import annotations

import ipaddress
import json
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from securechat_lab.commands import LabError, log, run, succeeds

PREFIX: Final = 24
FIRST_HOST: Final = 11
INDEXES: Final = range(1, 255)
BRIDGE_PREFIX: Final = "sclab"
BRIDGE_NF: Final = Path("/proc/sys/net/bridge")
# (iptables binary, the sysctl that sends bridged frames of that family through it)
FIREWALLS: Final = (
    ("iptables", "bridge-nf-call-iptables"),
    ("ip6tables", "bridge-nf-call-ip6tables"),
)


def subnet(index: int) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(f"10.231.{index}.0/{PREFIX}")


def bridge_name(index: int) -> str:
    return f"{BRIDGE_PREFIX}{index}"


def controller_address(index: int) -> str:
    return f"10.231.{index}.1"


def host_address(index: int, position: int) -> str:
    return f"10.231.{index}.{FIRST_HOST + position}"


def used_indexes() -> set[int]:
    """Indexes whose subnet or bridge this machine already has (any interface, any route)."""
    used: set[int] = set()
    networks: list[ipaddress.IPv4Network] = []
    for link in json.loads(run("ip", "-j", "link", "show")):
        name = str(link.get("ifname", ""))
        if name.startswith(BRIDGE_PREFIX) and name[len(BRIDGE_PREFIX) :].isdigit():
            used.add(int(name[len(BRIDGE_PREFIX) :]))
    for entry in json.loads(run("ip", "-j", "-4", "addr", "show")):
        for info in entry.get("addr_info", []):
            networks.append(
                ipaddress.IPv4Network(f"{info['local']}/{info.get('prefixlen', 32)}", strict=False)
            )
    for route in json.loads(run("ip", "-j", "-4", "route", "show", "table", "all")):
        destination = route.get("dst", "")
        if destination and destination != "default":
            try:
                networks.append(ipaddress.IPv4Network(destination, strict=False))
            except ValueError:
                continue
    for index in INDEXES:
        if any(subnet(index).overlaps(network) for network in networks):
            used.add(index)
    return used


def choose_index(taken: Iterable[int], preferred: int | None = None) -> int:
    """`preferred` (the lab's index last time, so its addresses stay) if free, else the lowest."""
    busy = set(taken)
    if preferred is not None and preferred in INDEXES and preferred not in busy:
        return preferred
    for index in INDEXES:
        if index not in busy:
            return index
    raise LabError("no free 10.231.K.0/24 subnet: `securechat-lab down` unused labs")


def create_bridge(index: int) -> None:
    bridge = bridge_name(index)
    run("ip", "link", "add", bridge, "type", "bridge")
    run("ip", "addr", "add", f"{controller_address(index)}/{PREFIX}", "dev", bridge)
    run("ip", "link", "set", bridge, "up")


def bridge_exists(bridge: str) -> bool:
    return succeeds("ip", "link", "show", "dev", bridge)


def delete_bridge(bridge: str) -> None:
    """The bridge and any veth still attached to it (a crashed container's)."""
    if not bridge_exists(bridge):
        return
    for port in json.loads(run("ip", "-j", "link", "show", "master", bridge)):
        run("ip", "link", "delete", str(port["ifname"]), check=False)
    run("ip", "link", "delete", bridge)


def bridge_ports(bridge: str) -> list[str]:
    if not bridge_exists(bridge):
        return []
    return [
        str(port["ifname"])
        for port in json.loads(run("ip", "-j", "link", "show", "master", bridge))
    ]


@dataclass(frozen=True)
class Rule:
    """One rule in the FORWARD chain of `binary` (iptables or ip6tables)."""

    binary: str
    spec: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"binary": self.binary, "spec": list(self.spec)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Rule:
        return cls(str(data["binary"]), tuple(str(part) for part in data["spec"]))


def forward_rules(lab: str, bridge: str) -> list[Rule]:
    """The rules the lab needs on this machine now (none when iptables is not installed)."""
    comment = ("-m", "comment", "--comment", f"securechat-lab {lab}")
    rules: list[Rule] = []
    for binary, sysctl in FIREWALLS:
        if shutil.which(binary) is None:
            continue
        rules.append(Rule(binary, ("-i", bridge, "!", "-o", bridge, *comment, "-j", "DROP")))
        rules.append(Rule(binary, ("-o", bridge, "!", "-i", bridge, *comment, "-j", "DROP")))
        if _enabled(BRIDGE_NF / sysctl):
            rules.append(Rule(binary, ("-i", bridge, "-o", bridge, *comment, "-j", "ACCEPT")))
    return rules


def _enabled(path: Path) -> bool:
    try:
        return path.read_text().strip() == "1"
    except OSError:
        return False  # br_netfilter not loaded: bridged frames skip iptables


def rule_present(rule: Rule) -> bool:
    return succeeds(rule.binary, "-w", "-C", "FORWARD", *rule.spec)


def add_rule(rule: Rule) -> None:
    if not rule_present(rule):
        run(rule.binary, "-w", "-I", "FORWARD", "1", *rule.spec)


def delete_rule(rule: Rule) -> None:
    """Delete exactly this rule (every copy of it); nothing when it is gone already."""
    if shutil.which(rule.binary) is None:
        # Uninstalled since `up`: the rule may still be in the kernel, and only the user can tell.
        log(f"{rule.binary} is not installed: cannot remove FORWARD rule {' '.join(rule.spec)}")
        return
    while rule_present(rule):
        run(rule.binary, "-w", "-D", "FORWARD", *rule.spec)
