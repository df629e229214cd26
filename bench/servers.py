"""What the bench scripts share about the servers they start (run.py, scaleout.py)."""

from __future__ import annotations

import subprocess
import time
import urllib.request
from pathlib import Path


def wait_healthy(
    process: subprocess.Popen[bytes], url: str, log: Path, timeout: float = 60
) -> None:
    """Return once `url` answers its health check; stop with the server's log if it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited:\n{log.read_text(errors='replace')}")
        try:
            with urllib.request.urlopen(url + "/api/v1/health", timeout=2) as answer:  # noqa: S310
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"the server did not start:\n{log.read_text(errors='replace')}")
