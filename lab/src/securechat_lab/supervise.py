"""The supervisor of one lab host: keeps its systemd-nspawn running across reboots.

A reboot inside the container makes systemd-nspawn exit with status 133 (there is no systemd
unit here to restart it), so this small process, started detached by `up`, boots the tree
again and gives every new container its first address. It stops when nspawn exits for any
other reason (poweroff, kill) or after SIGTERM (from `down`, which then powers the host off).

Run as `python -m securechat_lab.supervise ...`; it writes `RUNFILE` (its own and the current
nspawn's PID and start time) for `down`, `status` and `reboot`. stdout is the host's log.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from securechat_lab import cgroups, nspawn, runfile
from securechat_lab.commands import LabError
from securechat_lab.procs import Proc
from securechat_lab.runfile import RunInfo

CONFIGURE_ATTEMPTS = 3


def _log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} securechat-lab supervise: {message}", flush=True)


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m securechat_lab.supervise")
    parser.add_argument("--tree", type=Path, required=True)
    parser.add_argument("--machine", required=True)
    parser.add_argument("--hostname", required=True)
    parser.add_argument("--bridge", required=True)
    parser.add_argument("--address", required=True)
    parser.add_argument("--prefix", type=int, default=24)
    parser.add_argument("--runfile", type=Path, required=True)
    parser.add_argument("--containers", action="store_true", help="the host runs Docker")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    stopping = False

    def on_term(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True  # no new boot; `down` powers the current one off

    signal.signal(signal.SIGTERM, on_term)
    cgroups.enter_own(args.machine)
    me = Proc.of(os.getpid())
    command = nspawn.command(
        args.tree, args.machine, args.hostname, args.bridge, containers=args.containers
    )
    boots = 0
    recorded: Proc | None = None  # the current container's PID 1, once seen
    while not stopping:
        _log(f"booting {args.hostname} ({args.machine}), boot {boots + 1}")
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=sys.stdout, stderr=subprocess.STDOUT
        )
        current = Proc.of(process.pid)
        runfile.write(args.runfile, RunInfo(me, current, None, boots))
        configured: Proc | None = None
        attempts = 0
        while process.poll() is None:
            init = nspawn.container_init(current) if current else None
            if init is not None and init != recorded:
                runfile.write(args.runfile, RunInfo(me, current, init, boots))
                recorded = init
            if init is not None and init != configured and attempts < CONFIGURE_ATTEMPTS:
                try:
                    nspawn.configure_network(init, args.address, args.prefix, args.tree)
                    _log(f"network ready: {args.address}/{args.prefix} (container pid {init.pid})")
                    configured, attempts = init, 0
                except LabError as exc:
                    attempts += 1
                    _log(f"network setup failed (attempt {attempts}): {exc}")
            time.sleep(0.3)
        _log(f"systemd-nspawn exited with status {process.returncode}")
        if process.returncode != nspawn.REBOOT_EXIT:
            break
        boots += 1
    runfile.write(args.runfile, RunInfo(me, None, recorded, boots))
    cgroups.remove_own(args.machine)  # the supervisor itself is the last process in it
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
