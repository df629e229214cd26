"""One module per check; each exposes a `CHECK` with a stable id."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from securechat_verify.remote import CommandRunner
from securechat_verify.result import Finding, Severity, skipped
from securechat_verify.target import Host, Target

HostInspection = Callable[[Host, CommandRunner, float], list[Finding]]


def inspect_hosts(target: Target, inspect: HostInspection, no_runner: str) -> list[Finding]:
    """Run `inspect` on every host that can be reached with a command runner."""
    findings: list[Finding] = []
    for host in target.hosts:
        if host.runner is None:
            findings.append(skipped(no_runner, host.name))
        else:
            findings += inspect(host, host.runner, target.timeout)
    return findings


@dataclass(frozen=True)
class Check:
    id: str
    title: str
    severity: Severity
    run: Callable[[Target], list[Finding]]
