"""`e2e` through the real server over TLS: round trip, safety numbers, ciphertext only, cleanup."""

from __future__ import annotations

import sqlite3
from typing import Any

from securechat_verify.checks.e2e import run
from securechat_verify.result import Status
from securechat_verify.target import Target


def test_round_trip_and_cleanup(tls_server: Any) -> None:
    target = Target(url=tls_server.url, ca_file=tls_server.ca_file, min_kdf_iterations=1000)
    findings = run(target)
    assert [f.status for f in findings] == [Status.PASS] * 4, findings
    assert findings[0].metrics["delivery_ms"] > 0
    database = tls_server.env["SECURECHAT_DATABASE_URL"].removeprefix("sqlite:///")
    with sqlite3.connect(database) as connection:
        left = connection.execute(
            "SELECT COUNT(*) FROM users WHERE username LIKE 'verify-%'"
        ).fetchone()
    assert left == (0,)


def test_wrong_ca_cannot_run(tls_server: Any, pki: Any) -> None:
    target = Target(url=tls_server.url, ca_file=pki.other_ca.cert_file, min_kdf_iterations=1000)
    findings = run(target)
    assert findings[0].status is Status.ERROR
    assert "tls" in (findings[0].hint or "")
