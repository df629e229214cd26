"""Fakes at the true boundary: the command runner (SSH on a real deployment).

`FakeRunner({("ip", "-j", "route", "show", "default"): ok("[]"), ...})` answers each argv with
its recorded result and fails the test loudly on any command nobody recorded. `calls` lists
every argv run, `privileged` those a check ran with `privileged=True` (root needed).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from securechat_verify.remote import CommandResult

# A recorded answer: a result, a function computing one at call time (clocks), or an
# exception the runner raises (LocalRunner raises FileNotFoundError for a missing program).
Answer = CommandResult | Callable[[], CommandResult] | BaseException


def ok(stdout: str = "") -> CommandResult:
    return CommandResult(0, stdout, "")


def fails(returncode: int, stderr: str, stdout: str = "") -> CommandResult:
    return CommandResult(returncode, stdout, stderr)


class UnexpectedCommandError(AssertionError):
    pass


@dataclass
class FakeRunner:
    answers: Mapping[tuple[str, ...], Answer]
    description: str = "ssh fake-host"
    calls: list[tuple[str, ...]] = field(default_factory=list)
    privileged: list[tuple[str, ...]] = field(default_factory=list)

    def run(self, argv: list[str], timeout: float, *, privileged: bool = False) -> CommandResult:
        key = tuple(argv)
        self.calls.append(key)
        if privileged:
            self.privileged.append(key)
        if key not in self.answers:
            raise UnexpectedCommandError(
                f"unexpected command {argv!r}; recorded: {list(self.answers)}"
            )
        answer = self.answers[key]
        if isinstance(answer, BaseException):
            raise answer
        if callable(answer):
            return answer()
        return answer
