"""The checks `securechat-verify` knows, in display order, loaded lazily.

Each check lives in `securechat_verify.checks.<module>` and exposes a module-level `CHECK`.
Modules are imported only when a check is wanted, so a check whose dependencies are missing
(Playwright, say) does not stop the others.
"""

from __future__ import annotations

import importlib
from typing import Final

from securechat_verify.checks import Check
from securechat_verify.result import Finding, Severity, errored

CHECK_IDS: Final = (
    "connectivity",
    "tls",
    "webcrypto",
    "socket",
    "e2e",
    "isolation",
    "firewall",
    "services",
)

# check id -> module under securechat_verify.checks
CHECK_MODULES: Final[dict[str, str]] = {
    "connectivity": "connectivity",
    "tls": "tls",
    "webcrypto": "webcrypto",
    "socket": "realtime",
    "e2e": "e2e",
    "isolation": "isolation",
    "firewall": "firewall",
    "services": "services",
}


class CheckUnavailable(Exception):
    """A check's module cannot be imported, or does not define a proper `CHECK`."""

    def __init__(self, check_id: str, reason: str) -> None:
        super().__init__(f"check {check_id!r} is unavailable: {reason}")
        self.check_id = check_id
        self.reason = reason


def load_check(check_id: str) -> Check:
    """Import the module of `check_id` and return its `CHECK`; `CheckUnavailable` if it cannot."""
    module_name = CHECK_MODULES.get(check_id)
    if module_name is None:
        raise CheckUnavailable(check_id, f"unknown check id; known: {', '.join(CHECK_IDS)}")
    qualified = f"securechat_verify.checks.{module_name}"
    try:
        module = importlib.import_module(qualified)
    except Exception as exc:  # any import-time failure (missing dependency, syntax error, ...)
        raise CheckUnavailable(
            check_id, f"cannot import {qualified}: {type(exc).__name__}: {exc}"
        ) from exc
    check = getattr(module, "CHECK", None)
    if not isinstance(check, Check):
        raise CheckUnavailable(check_id, f"{qualified} defines no CHECK of type Check")
    if check.id != check_id:
        raise CheckUnavailable(check_id, f"{qualified}.CHECK has id {check.id!r}")
    return check


def all_checks() -> list[Check]:
    """Every check in display order; `CheckUnavailable` if one of them cannot be loaded."""
    return [load_check(check_id) for check_id in CHECK_IDS]


def unavailable_check(check_id: str, reason: str) -> Check:
    """A stand-in for a check that cannot be loaded: it reports `error` when run."""

    def run(_target: object) -> list[Finding]:
        return [
            errored(
                f"the {check_id} check could not be loaded: {reason}",
                "reinstall securechat-verify with its dependencies "
                "(pip install --force-reinstall securechat-verify), "
                "or skip this check with --skip " + check_id,
            )
        ]

    return Check(
        id=check_id, title=f"{check_id} (unavailable)", severity=Severity.CRITICAL, run=run
    )


__all__ = [
    "CHECK_IDS",
    "CHECK_MODULES",
    "CheckUnavailable",
    "all_checks",
    "load_check",
    "unavailable_check",
]
