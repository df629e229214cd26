"""Running inspection commands on a host: over SSH, or on this machine (`--local`).

This is the boundary tests fake: everything behind it is a real command's output.
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

    def run(self, argv: list[str], timeout: float) -> CommandResult: ...


class LocalRunner:
    description = "this machine"

    def run(self, argv: list[str], timeout: float) -> CommandResult:
        completed = subprocess.run(  # noqa: S603 - argv lists built by the checks, no shell
            argv, capture_output=True, text=True, timeout=timeout, check=False
        )
        return CommandResult(completed.returncode, completed.stdout, completed.stderr)


@dataclass(frozen=True)
class SshRunner:
    """`ssh` with batch mode: keys or an agent only, never a password prompt."""

    destination: str  # user@host or host
    port: int = 22
    identity_file: str | None = None
    extra_options: tuple[str, ...] = ()

    @property
    def description(self) -> str:
        return f"ssh {self.destination}"

    def run(self, argv: list[str], timeout: float) -> CommandResult:
        command = ["ssh", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={int(timeout)}"]
        command += ["-p", str(self.port), *self.extra_options]
        if self.identity_file:
            command += ["-i", self.identity_file]
        command += [self.destination, "--", *(shlex.quote(arg) for arg in argv)]
        completed = subprocess.run(  # noqa: S603 - fixed ssh argv, remote args quoted
            command, capture_output=True, text=True, timeout=timeout + 5, check=False
        )
        return CommandResult(completed.returncode, completed.stdout, completed.stderr)
