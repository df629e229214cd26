"""securechat-lab: air-gapped Debian 12 hosts on this machine for the Ansible collection.

    securechat-lab up LAYOUT [--name NAME] [--bundle PATH --fingerprint FPR]
    securechat-lab down NAME | --all
    securechat-lab status [NAME] [--json]
    securechat-lab ssh NAME HOST [COMMAND...]
    securechat-lab reboot NAME HOST

Exit codes: 0 done, 1 the lab could not do it (message on stderr), 2 bad usage.
Progress goes to stderr; results (status, JSON) to stdout.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Final

from securechat_lab import lab
from securechat_lab.commands import LabError
from securechat_lab.layouts import LAYOUTS, LayoutError
from securechat_lab.settings import Settings
from securechat_lab.state import lab_names

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="securechat-lab",
        description="Air-gapped Debian 12 hosts (systemd-nspawn on an isolated bridge) "
        "for testing the Secure Chat Ansible collection.",
        epilog="docs/lab.md has the details.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", help="boot a lab and write inventory/lab-NAME")
    up.add_argument("layout", choices=sorted(LAYOUTS))
    up.add_argument("--name", help="lab name (default: the layout); one subnet per lab")
    up.add_argument("--bundle", type=Path, help="bundle tarball (default: newest in dist/)")
    up.add_argument("--fingerprint", help="pinned signing key fingerprint of --bundle")

    down = commands.add_parser("down", help="stop a lab and remove all it made")
    target = down.add_mutually_exclusive_group(required=True)
    target.add_argument("name", nargs="?")
    target.add_argument(
        "--all", action="store_true", help="every lab on this machine, other people's too"
    )

    status = commands.add_parser("status", help="labs, hosts, addresses, processes")
    status.add_argument("name", nargs="?")
    status.add_argument("--json", action="store_true", help="the same as JSON")

    ssh = commands.add_parser("ssh", help="ssh to a lab host as root")
    ssh.add_argument("name")
    ssh.add_argument("host")
    ssh.add_argument("remote", nargs=argparse.REMAINDER, help="command to run (default: a shell)")

    reboot = commands.add_parser("reboot", help="reboot one host cleanly and wait for sshd")
    reboot.add_argument("name")
    reboot.add_argument("host")
    return parser


def _print_status(statuses: list[lab.LabStatus]) -> None:
    if not statuses:
        print("no labs")
    for entry in statuses:
        bridge = "present" if entry.bridge_present else "MISSING"
        print(f"{entry.name} ({entry.layout}): {entry.subnet} on {entry.bridge} ({bridge})")
        print(f"  inventory: {entry.inventory or '(not written)'}")
        for host in entry.hosts:
            state = f"running (nspawn pid {host.nspawn_pid})" if host.running else "STOPPED"
            if host.orphaned:
                state += ", but its container still runs (`down` ends it)"
            if host.running and not host.supervised:
                state += ", supervisor gone (a reboot would not come back)"
            if host.reboots:
                state += f", rebooted {host.reboots}x"
            print(f"  {host.name:<7} {host.address:<14} {state}  [{', '.join(host.groups)}]")


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "up":
        created = lab.up(settings, args.layout, args.name, args.bundle, args.fingerprint)
        print(f"lab {created.name} is up: inventory {created.inventory}")
        for host in created.hosts:
            print(f"  {host.name:<7} {host.address:<14} [{', '.join(host.groups)}]")
    elif args.command == "down":
        if args.all:
            names = lab.down_all(settings)
            print(f"down: {', '.join(names) or 'no labs'}")
        else:
            lab.down(settings, args.name)
    elif args.command == "status":
        names = [args.name] if args.name else lab_names(settings.state_root)
        statuses = [lab.status(settings, name) for name in names]
        if args.json:
            print(json.dumps([dataclasses.asdict(entry) for entry in statuses], indent=2))
        else:
            _print_status(statuses)
    elif args.command == "ssh":
        remote = args.remote[1:] if args.remote[:1] == ["--"] else args.remote
        argv = lab.ssh_argv(settings, args.name, args.host, remote)
        sys.stdout.flush()
        os.execvp(argv[0], argv)  # noqa: S606 - the user's interactive ssh session
    elif args.command == "reboot":
        lab.reboot(settings, args.name, args.host)
        print(f"{args.host} of lab {args.name} rebooted and answers on SSH")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return run(args, Settings.from_environ())
    except (LabError, LayoutError) as exc:
        print(f"securechat-lab: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_FAILED
