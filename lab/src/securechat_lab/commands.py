"""Running the system tools the lab drives (ip, nsenter, iptables, debootstrap, ssh-keygen)."""

from __future__ import annotations

import shutil
import subprocess
import sys


class LabError(RuntimeError):
    """Something the lab cannot do; the message says what and, where it helps, how to fix it."""


def run(*command: str, check: bool = True, timeout: float = 120.0) -> str:
    """stdout of `command`; LabError with stderr's tail when it fails and `check`."""
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, check=False, timeout=timeout
        )
    except FileNotFoundError as exc:
        raise LabError(f"{command[0]} is not installed") from exc
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"{' '.join(command)} did not finish within {timeout:.0f} s") from exc
    if check and result.returncode != 0:
        tail = " | ".join(result.stderr.strip().splitlines()[-5:])
        raise LabError(f"{' '.join(command)} failed ({result.returncode}): {tail}")
    return result.stdout


def succeeds(*command: str, timeout: float = 30.0) -> bool:
    try:
        return (
            subprocess.run(
                command,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=False,
                timeout=timeout,
            ).returncode
            == 0
        )
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return False


def require(*tools: str) -> None:
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        raise LabError(
            f"missing tools: {', '.join(missing)} "
            "(apt-get install debootstrap systemd-container iproute2 openssh-client util-linux)"
        )


def log(message: str) -> None:
    """Progress goes to stderr; results (status, JSON) go to stdout."""
    print(f"securechat-lab: {message}", file=sys.stderr, flush=True)
