"""The process exit codes of `securechat-verify`, for scripts and CI.

| code | name                  | meaning                                                      |
| ---- | --------------------- | ------------------------------------------------------------ |
| 0    | `EXIT_OK`             | every selected check passed (warnings and skips allowed)     |
| 1    | `EXIT_FAILED`         | at least one check failed                                    |
| 2    | `EXIT_USAGE`          | usage or configuration error: nothing was checked            |
| 3    | `EXIT_COULD_NOT_RUN`  | no check failed, but at least one could not run (`error`)    |

A failure wins over an error: 1 tells that the deployment is wrong whatever else happened.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from securechat_verify.result import CheckResult, Status

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2
EXIT_COULD_NOT_RUN: Final = 3


def exit_code_for(results: Sequence[CheckResult]) -> int:
    """The exit code for a run; a run that checked nothing could not run."""
    statuses = {result.status for result in results}
    if Status.FAIL in statuses:
        return EXIT_FAILED
    if Status.ERROR in statuses or not results:
        return EXIT_COULD_NOT_RUN
    return EXIT_OK
