"""Running inspection commands on a host: over SSH, or on this machine (`--local`).

This is the boundary tests fake: everything behind it is a real command's output.

A check marks the few commands that need root with `privileged=True` (today only
`nft -j list ruleset`). Over SSH with become (the inventory's `ansible_become`, SSH user not
root) those, and only those, run as `sudo -n -- COMMAND`: never a password prompt, and every
other command runs as the SSH user. On this machine (`--local`) commands run as the tool does.
"""

from __future__ import annotations

import shlex
import subprocess
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class CommandResult:
    returncode: int
    stdout: str
    stderr: str


class CommandRunner(Protocol):
    @property
    def description(self) -> str: ...  # read-only: SshRunner computes it

    def run(
        self, argv: list[str], timeout: float, *, privileged: bool = False
    ) -> CommandResult: ...


class LocalRunner:
    """This machine, as the user running the tool: `privileged` changes nothing (run the tool
    under sudo to list the ruleset)."""

    description = "this machine"

    def run(self, argv: list[str], timeout: float, *, privileged: bool = False) -> CommandResult:
        completed = subprocess.run(  # noqa: S603 - argv lists built by the checks, no shell
            argv, capture_output=True, text=True, timeout=timeout, check=False
        )
        return CommandResult(completed.returncode, completed.stdout, completed.stderr)


@dataclass(frozen=True)
class SshRunner:
    """`ssh` with batch mode: keys or an agent only, never a password prompt.

    `become`: privileged commands run through `sudo -n` (the inventory sets it from
    `ansible_become` when the SSH user is not root); other commands never do.
    """

    destination: str  # user@host or host
    port: int = 22
    identity_file: str | None = None
    extra_options: tuple[str, ...] = ()
    become: bool = False

    @property
    def description(self) -> str:
        return f"ssh {self.destination}"

    @property
    def user(self) -> str | None:
        """The SSH user when the destination names one (else ssh's own default)."""
        user, at, _host = self.destination.rpartition("@")
        return user if at and user else None

    def remote_argv(self, argv: list[str], *, privileged: bool = False) -> list[str]:
        """The command as the host runs it: behind `sudo -n --` when privileged and become."""
        return ["sudo", "-n", "--", *argv] if privileged and self.become else list(argv)

    def run(self, argv: list[str], timeout: float, *, privileged: bool = False) -> CommandResult:
        command = ["ssh", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={int(timeout)}"]
        command += ["-p", str(self.port), *self.extra_options]
        if self.identity_file:
            command += ["-i", self.identity_file]
        remote = self.remote_argv(argv, privileged=privileged)
        command += [self.destination, "--", *(shlex.quote(arg) for arg in remote)]
        completed = subprocess.run(  # noqa: S603 - fixed ssh argv, remote args quoted
            command, capture_output=True, text=True, timeout=timeout + 5, check=False
        )
        return CommandResult(completed.returncode, completed.stdout, completed.stderr)
