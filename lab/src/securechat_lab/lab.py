"""A lab's life cycle: up (image, bridge, hosts, inventory), down, status, reboot.

`up` records every object in the lab's state before making it, and on any failure undoes
everything with `down`, which works from the state alone (also after a crash or a reboot of
this machine's processes).
"""

from __future__ import annotations

import os
import shlex
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from securechat_bundle.debian import DebianError, host_mirror

from securechat_lab import hosts, image, inventory, network
from securechat_lab.bundle import choose_bundle
from securechat_lab.commands import LabError, log, require, run
from securechat_lab.layouts import layout, runs_containers
from securechat_lab.procs import rooted_at
from securechat_lab.settings import Settings
from securechat_lab.sshkey import ensure_key, ssh_command
from securechat_lab.state import (
    STATE_FILE,
    HostState,
    LabState,
    check_name,
    lab_names,
    locked,
    previous_index,
    recorded_indexes,
    remember_index,
)

TOOLS = ("debootstrap", "systemd-nspawn", "nsenter", "ip", "ssh", "ssh-keygen", "setsid", "cp")
LOG_TAIL_LINES = 15


def _require_root() -> None:
    if os.geteuid() != 0:
        raise LabError("the lab needs root (bridges, network namespaces, systemd-nspawn)")


def _reserve(settings: Settings, name: str, layout_name: str) -> LabState:
    """Choose a free subnet and record the lab, under the lock other `up`s wait on."""
    directory = settings.state_root / name
    specs = layout(layout_name)
    with locked(settings.state_root):
        if (directory / STATE_FILE).exists():
            raise LabError(f"lab {name} exists (up, or crashed): securechat-lab down {name}")
        if directory.exists():
            raise LabError(f"{directory} exists without a lab state: remove it by hand")
        taken = network.used_indexes() | recorded_indexes(settings.state_root)
        index = network.choose_index(taken, previous_index(settings.state_root, name))
        lab = LabState(
            name=name,
            layout=layout_name,
            index=index,
            bridge=network.bridge_name(index),
            directory=directory,
            hosts=[
                HostState(
                    name=spec.name,
                    # Unique on this machine (veth vb-<machine>, at most 15 characters).
                    machine=f"{spec.name}-{index}",
                    address=network.host_address(index, position),
                    groups=list(spec.groups),
                )
                for position, spec in enumerate(specs)
            ],
        )
        lab.save()
        remember_index(settings.state_root, name, index)
    return lab


def up(
    settings: Settings,
    layout_name: str,
    name: str | None = None,
    bundle_path: Path | None = None,
    fingerprint: str | None = None,
) -> LabState:
    """Boot the layout's hosts on a new isolated bridge and write the lab's inventory."""
    name = check_name(name or layout_name)
    layout(layout_name)  # an unknown layout fails before anything is made
    _require_root()
    require(*TOOLS)
    bundle = choose_bundle(bundle_path, fingerprint, settings.dist_dir)
    key = ensure_key(settings.private_key)
    base = image.base_image(settings.cache_dir, _mirror())
    lab = _reserve(settings, name, layout_name)
    log(f"lab {name}: {network.subnet(lab.index)} on bridge {lab.bridge}")
    try:
        network.create_bridge(lab.index)
        lab.rules = network.forward_rules(name, lab.bridge)
        lab.save()
        for rule in lab.rules:
            network.add_rule(rule)
        for host in lab.hosts:
            log(f"{host.name}: copying the base image")
            image.make_host_tree(
                base,
                lab.tree(host.name),
                host.name,
                host.address,
                key.with_suffix(".pub"),
                containers=runs_containers(host.groups),
            )
        for host in lab.hosts:
            hosts.start(lab, host)
        for host in lab.hosts:
            hosts.wait_ssh(lab, host, key)
            log(f"{host.name}: up at {host.address}")
        _check_peers(lab, key)
        directory = settings.inventory_root / f"lab-{name}"
        lab.inventory = str(directory)
        lab.save()
        inventory.write(
            directory,
            lab=name,
            hosts=[inventory.InventoryHost(h.name, h.address, tuple(h.groups)) for h in lab.hosts],
            index=lab.index,
            private_key=key,
            bundle=bundle,
            verify_command=settings.verify_command,
        )
    except BaseException:
        log(f"lab {name}: up failed; removing what it made")
        _print_log_tails(lab)
        down(settings, name)
        raise
    return lab


def _mirror() -> str:
    """The Debian mirror of this machine's apt sources, read as the bundle build reads it."""
    try:
        return host_mirror()
    except DebianError as error:
        raise LabError(str(error)) from error


def _check_peers(lab: LabState, key: Path) -> None:
    """The first host reaches every other host's sshd (fails when the bridge filters)."""
    first, *others = lab.hosts
    for other in others:
        probe = f"import socket; socket.create_connection(({other.address!r}, 22), 3).close()"
        remote = shlex.join(["python3", "-c", probe])
        try:
            run(*ssh_command(key, first.address, remote), timeout=20)
        except LabError as exc:
            raise LabError(
                f"{first.name} cannot reach {other.name} ({other.address}:22) over {lab.bridge}; "
                "bridged traffic may be filtered (see docs/lab.md, bridge netfilter)"
            ) from exc


def _print_log_tails(lab: LabState) -> None:
    for host in lab.hosts:
        path = lab.logfile(host.name)
        if path.is_file():
            lines = path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
            log(f"{host.name}: last lines of {path}:\n  " + "\n  ".join(lines))


def down(settings: Settings, name: str) -> None:
    """Stop the lab's hosts and remove everything it made (from its state file)."""
    _require_root()
    lab = LabState.load(settings.state_root / check_name(name))
    with ThreadPoolExecutor(max_workers=max(1, len(lab.hosts))) as pool:
        list(pool.map(lambda host: hosts.stop(lab, host), lab.hosts))
    # Never delete a tree a process still runs in (its files would vanish under it).
    for host in lab.hosts:
        busy = rooted_at(lab.tree(host.name))
        if busy:
            raise LabError(
                f"processes still run in {lab.tree(host.name)}: {', '.join(map(str, busy))}; "
                f"end them, then `securechat-lab down {name}` again"
            )
    for rule in lab.rules:
        network.delete_rule(rule)
    network.delete_bridge(lab.bridge)
    if lab.inventory is not None:
        inventory.remove(Path(lab.inventory))
    _remove_directory(lab.directory)
    log(f"lab {name}: down")


def down_all(settings: Settings) -> list[str]:
    names = lab_names(settings.state_root)
    for name in names:
        down(settings, name)
    return names


def _remove_directory(directory: Path) -> None:
    """rm -rf the lab's directory, state file last, never into a mounted file system."""
    prefix = str(directory.resolve()) + "/"
    mounted = [
        line.split()[4]
        for line in Path("/proc/self/mountinfo").read_text().splitlines()
        if (line.split()[4] + "/").startswith(prefix)
    ]
    if mounted:
        raise LabError(f"mounted under {directory}: {', '.join(mounted)}; unmount, then down again")
    for entry in directory.iterdir():
        if entry.name == STATE_FILE:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    shutil.rmtree(directory)


@dataclass(frozen=True)
class LabStatus:
    name: str
    layout: str
    subnet: str
    bridge: str
    bridge_present: bool
    inventory: str | None
    hosts: list[hosts.HostStatus]


def status(settings: Settings, name: str) -> LabStatus:
    lab = LabState.load(settings.state_root / check_name(name))
    return LabStatus(
        name=lab.name,
        layout=lab.layout,
        subnet=str(network.subnet(lab.index)),
        bridge=lab.bridge,
        bridge_present=network.bridge_exists(lab.bridge),
        inventory=lab.inventory,
        hosts=[hosts.status(lab, host) for host in lab.hosts],
    )


def reboot(settings: Settings, name: str, host_name: str) -> None:
    _require_root()
    lab = LabState.load(settings.state_root / check_name(name))
    hosts.reboot(lab, lab.host(host_name), settings.private_key)


def ssh_argv(settings: Settings, name: str, host_name: str, remote: list[str]) -> list[str]:
    lab = LabState.load(settings.state_root / check_name(name))
    host = lab.host(host_name)
    # Like ssh itself: the words are joined with spaces into one remote command line.
    return ssh_command(
        settings.private_key, host.address, " ".join(remote) if remote else None, batch=False
    )
