"""`webcrypto` against the real server, and its verdicts on broken setups."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from securechat_verify.checks.webcrypto import _csp, _secure_context, run
from securechat_verify.result import Status
from securechat_verify.target import Target

CHROMIUM = Path("/usr/bin/chromium")
needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium not installed")


def test_plain_http_to_a_lan_name_is_not_a_secure_context() -> None:
    finding = _secure_context(Target(url="http://chat.example.lan"))
    assert finding.status is Status.FAIL
    assert "https" in (finding.hint or "")
    assert _secure_context(Target(url="http://127.0.0.2:8000")).status is Status.PASS
    assert _secure_context(Target(url="http://app.localhost")).status is Status.PASS


@pytest.mark.parametrize(
    ("policy", "status"),
    [
        ("default-src 'self'; img-src 'self' blob: data:", Status.PASS),
        ("default-src 'self'; script-src 'self' https://cdn.example.com", Status.FAIL),
        ("default-src *", Status.FAIL),
        ("script-src 'self' 'unsafe-inline'", Status.FAIL),
        ("connect-src 'self' wss:", Status.FAIL),
        (None, Status.FAIL),
        ("", Status.FAIL),
    ],
)
def test_csp_verdicts(policy: str | None, status: Status) -> None:
    assert _csp(policy, Target(url="https://chat.lan")).status is status


@needs_chromium
@pytest.mark.chromium
def test_deployed_page_over_https(tls_server: Any) -> None:
    target = Target(url=tls_server.url, ca_file=tls_server.ca_file, chromium=CHROMIUM)
    findings = run(target)
    assert [f.status for f in findings] == [Status.PASS] * 3, findings
    assert findings[2].metrics["pbkdf2_sha256_600k_ms"] > 0


def test_without_chromium_the_probes_are_skipped(http_server: Any) -> None:
    findings = run(Target(url=http_server.url, chromium=Path("/nonexistent/chromium")))
    assert [f.status for f in findings] == [Status.PASS, Status.PASS, Status.SKIP]
