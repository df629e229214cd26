"""One module per check; each exposes a `CHECK` with a stable id."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from securechat_verify.result import Finding, Severity
from securechat_verify.target import Target


@dataclass(frozen=True)
class Check:
    id: str
    title: str
    severity: Severity
    run: Callable[[Target], list[Finding]]
