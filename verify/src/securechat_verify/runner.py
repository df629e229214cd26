"""Running checks: concurrently (they are independent), timed, never letting one crash the run."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from securechat_verify.checks import Check
from securechat_verify.result import CheckResult, Finding, errored
from securechat_verify.target import Target

Progress = Callable[[str], None]

_MAX_MESSAGE = 300
_BUG_HINT = "this is a bug in securechat-verify or an unexpected environment: "


def run_checks(
    checks: Sequence[Check],
    target: Target,
    *,
    concurrency: int = 4,
    progress: Progress | None = None,
) -> list[CheckResult]:
    """Run `checks` against `target`, at most `concurrency` at a time; results in `checks` order.

    `progress`, if given, receives short lines ("running tls…", "tls: pass (120 ms)"); calls
    are serialised, so it need not be thread-safe.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, not {concurrency}")
    if not checks:
        return []
    report = _serialised(progress)
    workers = min(concurrency, len(checks))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="securechat-check") as pool:
        futures = [pool.submit(_run_one, check, target, report) for check in checks]
        return [future.result() for future in futures]


def _serialised(progress: Progress | None) -> Progress:
    if progress is None:
        return lambda _line: None
    lock = threading.Lock()

    def report(line: str) -> None:
        with lock:
            progress(line)

    return report


def _run_one(check: Check, target: Target, report: Progress) -> CheckResult:
    report(f"running {check.id}…")
    start = time.perf_counter()
    try:
        findings = _validated(check, check.run(target))
    except Exception as exc:  # a crashing check becomes an `error` finding, never a crash
        findings = (errored(f"the {check.id} check crashed", _BUG_HINT + _describe(exc)),)
    duration_ms = (time.perf_counter() - start) * 1000
    result = CheckResult(check.id, check.title, check.severity, findings, duration_ms)
    report(f"{check.id}: {result.status} ({duration_ms:.0f} ms)")
    return result


def _validated(check: Check, findings: object) -> tuple[Finding, ...]:
    """The findings a check returned, or one `error` finding if it broke its contract."""
    if not isinstance(findings, list | tuple):
        problem = f"it returned {type(findings).__name__} instead of a list of findings"
    elif not findings:
        problem = "it returned no findings"
    elif not all(isinstance(finding, Finding) for finding in findings):
        problem = "it returned something other than findings"
    else:
        return tuple(findings)
    return (errored(f"the {check.id} check misbehaved: {problem}", _BUG_HINT + problem),)


def _describe(exc: BaseException) -> str:
    message = str(exc)
    if len(message) > _MAX_MESSAGE:
        message = message[: _MAX_MESSAGE - 1] + "…"
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
