"""The lab's SSH key (ed25519, made once) and the ssh options every lab connection uses.

Host keys change with every `up` (each host gets fresh ones), so known_hosts is not used: the
lab is a throwaway network that only this machine can reach.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Final

from securechat_lab.commands import run, succeeds

SSH_OPTIONS: Final = (
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "IdentitiesOnly=yes",
)
# What the inventory passes to Ansible (ansible_ssh_common_args), the same options.
COMMON_ARGS: Final = shlex.join(SSH_OPTIONS)


def ensure_key(private_key: Path) -> Path:
    """The key pair at `private_key` (+ .pub), made on first use; the private key is 0600."""
    if not private_key.is_file():
        private_key.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        command = ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "securechat-lab"]
        run(*command, "-f", str(private_key))
    os.chmod(private_key, 0o600)
    return private_key


def ssh_command(
    private_key: Path, address: str, remote: str | None = None, *, batch: bool = True
) -> list[str]:
    """ssh as root to `address`; `remote` is one shell command line, as ssh sends it."""
    command = ["ssh", *SSH_OPTIONS, "-o", "LogLevel=ERROR", "-i", str(private_key)]
    if batch:
        command += ["-o", "BatchMode=yes", "-o", "ConnectTimeout=3"]
    command.append(f"root@{address}")
    if remote is not None:
        command += ["--", remote]
    return command


def ssh_ready(private_key: Path, address: str) -> bool:
    return succeeds(*ssh_command(private_key, address, "true"), timeout=10)
