"""Fake checks for the runner, output and CLI tests: no network, no real check modules.

`make_check("tls", failed("bad", "fix it"))` reports the given findings; `install(monkeypatch,
...)` makes `securechat-verify all` load these fakes (every other id gets a passing fake).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from securechat_verify import cli
from securechat_verify.checks import Check
from securechat_verify.registry import CHECK_IDS, CheckUnavailable
from securechat_verify.result import Finding, Severity, passed
from securechat_verify.target import Target

PEM_CERT = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"


class Recorder:
    """Which checks ran, and the target they saw."""

    def __init__(self) -> None:
        self.ran: list[str] = []
        self.targets: list[Target] = []


def make_check(
    check_id: str,
    *findings: Finding,
    severity: Severity = Severity.CRITICAL,
    recorder: Recorder | None = None,
) -> Check:
    chosen = list(findings) or [passed(f"{check_id} is fine")]

    def run(target: Target) -> list[Finding]:
        if recorder is not None:
            recorder.ran.append(check_id)
            recorder.targets.append(target)
        return list(chosen)

    return Check(id=check_id, title=f"The {check_id} check", severity=severity, run=run)


def check_running(check_id: str, run: Callable[[Target], list[Finding]]) -> Check:
    return Check(id=check_id, title=f"The {check_id} check", severity=Severity.CRITICAL, run=run)


def raising_check(check_id: str, exc: BaseException) -> Check:
    def run(_target: Target) -> list[Finding]:
        raise exc

    return check_running(check_id, run)


def install(
    monkeypatch: pytest.MonkeyPatch,
    *checks: Check,
    recorder: Recorder | None = None,
    unavailable: tuple[str, ...] = (),
) -> None:
    """Make the CLI load `checks`; other ids pass, ids in `unavailable` cannot be loaded."""
    by_id = {check_id: make_check(check_id, recorder=recorder) for check_id in CHECK_IDS}
    by_id.update({check.id: check for check in checks})

    def load_check(check_id: str) -> Check:
        if check_id in unavailable:
            raise CheckUnavailable(check_id, "ModuleNotFoundError: No module named 'nothing'")
        return by_id[check_id]

    monkeypatch.setattr(cli, "load_check", load_check)
