"""What a check reports: findings with a status, a one-line summary and a fix hint."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum


class Severity(StrEnum):
    """How much a failure of the check matters; a `warning` check never fails the run."""

    CRITICAL = "critical"
    WARNING = "warning"


class Status(StrEnum):
    PASS = "pass"  # noqa: S105 - a status, not a password
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"
    ERROR = "error"  # the check could not run (not a verdict on the deployment)


# Worst first: a check's status is the worst of its findings.
STATUS_ORDER = (Status.FAIL, Status.ERROR, Status.WARN, Status.PASS, Status.SKIP)

Metric = float | int | str | bool


@dataclass(frozen=True)
class Finding:
    status: Status
    summary: str
    hint: str | None = None
    target: str | None = None
    metrics: dict[str, Metric] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status in (Status.WARN, Status.FAIL, Status.ERROR) and not self.hint:
            raise ValueError(f"a {self.status} finding needs a fix hint: {self.summary}")


def passed(summary: str, target: str | None = None, **metrics: Metric) -> Finding:
    return Finding(Status.PASS, summary, None, target, dict(metrics))


def failed(summary: str, hint: str, target: str | None = None, **metrics: Metric) -> Finding:
    return Finding(Status.FAIL, summary, hint, target, dict(metrics))


def warned(summary: str, hint: str, target: str | None = None, **metrics: Metric) -> Finding:
    return Finding(Status.WARN, summary, hint, target, dict(metrics))


def skipped(summary: str, target: str | None = None) -> Finding:
    return Finding(Status.SKIP, summary, None, target)


def errored(summary: str, hint: str, target: str | None = None) -> Finding:
    return Finding(Status.ERROR, summary, hint, target)


def worst(statuses: Iterable[Status]) -> Status:
    found = set(statuses)
    for status in STATUS_ORDER:
        if status in found:
            return status
    return Status.SKIP


@dataclass(frozen=True)
class CheckResult:
    check_id: str
    title: str
    severity: Severity
    findings: tuple[Finding, ...]
    duration_ms: float

    @property
    def status(self) -> Status:
        status = worst(f.status for f in self.findings)
        # A failing warning-level check is reported as a warning, never as a failure.
        if self.severity is Severity.WARNING and status is Status.FAIL:
            return Status.WARN
        return status
