from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

from rich.console import Console

from securechat_verify import __version__
from securechat_verify.output import render_table, to_json, write_junit
from securechat_verify.result import (
    CheckResult,
    Finding,
    Severity,
    errored,
    failed,
    passed,
    skipped,
    warned,
)
from securechat_verify.target import Target

TARGET = Target(url="https://chat.example.lan")


def result(
    check_id: str, *findings: Finding, severity: Severity = Severity.CRITICAL, ms: float = 12.34
) -> CheckResult:
    return CheckResult(check_id, f"The {check_id} check", severity, findings, ms)


RESULTS = [
    result("connectivity", passed("chat.example.lan resolves", "chat.example.lan", addresses=1)),
    result(
        "tls",
        passed("chain verifies"),
        failed("certificate expires in 3 days", "renew it with the site CA", "front1:443"),
    ),
    result("webcrypto", warned("CSP allows inline styles", "drop 'unsafe-inline'")),
    result(
        "socket",
        failed("no WebSocket upgrade", "forward Upgrade headers"),
        severity=Severity.WARNING,
    ),
    result("e2e", errored("could not log in", "create the test account")),
    result("isolation", skipped("no host to inspect: give -i or --local")),
]


def table_text(results: list[CheckResult]) -> str:
    buffer = io.StringIO()
    render_table(results, Console(file=buffer, width=200, color_system=None), target=TARGET)
    return buffer.getvalue()


def test_table_lists_every_finding_with_status_target_and_hints() -> None:
    text = table_text(RESULTS)
    assert f"securechat-verify {__version__} — https://chat.example.lan" in text
    for check_id in ("connectivity", "tls", "webcrypto", "socket", "e2e", "isolation"):
        assert check_id in text
    for line in (
        "chain verifies",
        "certificate expires in 3 days",
        "front1:443",
        "hint: renew it with the site CA",
        "hint: drop 'unsafe-inline'",
        "hint: forward Upgrade headers",
        "hint: create the test account",
        "no host to inspect: give -i or --local",
    ):
        assert line in text
    # The failing finding of a warning-level check is shown as a warning.
    socket_line = next(line for line in text.splitlines() if "no WebSocket upgrade" in line)
    assert "warn" in socket_line
    assert "fail" not in socket_line
    assert "6 checks: 1 pass, 2 warn, 1 fail, 1 error, 1 skip" in text


def test_table_does_not_interpret_markup_in_findings() -> None:
    text = table_text([result("tls", failed("server says [bold]hi[/bold]", "fix [red]x[/red]"))])
    assert "server says [bold]hi[/bold]" in text
    assert "fix [red]x[/red]" in text


def test_table_status_colours() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, width=200, force_terminal=True, color_system="standard")
    render_table(RESULTS, console)
    assert "\x1b[" in buffer.getvalue()


def test_json_has_the_same_data() -> None:
    data = to_json(RESULTS, TARGET)
    json.dumps(data, allow_nan=False)
    assert data["version"] == __version__
    assert data["url"] == "https://chat.example.lan"
    assert data["exit_code"] == 1
    assert data["summary"] == {"checks": 6, "pass": 1, "warn": 2, "fail": 1, "error": 1, "skip": 1}
    tls = data["checks"][1]
    assert tls == {
        "id": "tls",
        "title": "The tls check",
        "severity": "critical",
        "status": "fail",
        "duration_ms": 12.3,
        "findings": [
            {
                "status": "pass",
                "summary": "chain verifies",
                "hint": None,
                "target": None,
                "metrics": {},
            },
            {
                "status": "fail",
                "summary": "certificate expires in 3 days",
                "hint": "renew it with the site CA",
                "target": "front1:443",
                "metrics": {},
            },
        ],
    }
    assert data["checks"][0]["findings"][0]["metrics"] == {"addresses": 1}
    socket = data["checks"][3]
    assert (socket["severity"], socket["status"]) == ("warning", "warn")
    assert socket["findings"][0]["status"] == "warn"


def test_json_is_strict_even_with_non_finite_metrics() -> None:
    data = to_json([result("tls", passed("ok", latency=float("nan"), ratio=float("inf")))], TARGET)
    text = json.dumps(data, allow_nan=False)
    assert json.loads(text)["checks"][0]["findings"][0]["metrics"] == {
        "latency": "nan",
        "ratio": "inf",
    }


def test_junit(tmp_path: Path) -> None:
    path = tmp_path / "report.xml"
    write_junit(RESULTS, path)
    suite = ET.parse(path).getroot()
    assert suite.tag == "testsuite"
    assert suite.get("name") == "securechat-verify"
    assert (
        suite.get("tests"),
        suite.get("failures"),
        suite.get("errors"),
        suite.get("skipped"),
    ) == (
        "6",
        "1",
        "1",
        "1",
    )
    cases = {case.get("classname"): case for case in suite.iter("testcase")}
    assert list(cases) == [f"securechat_verify.{r.check_id}" for r in RESULTS]
    assert cases["securechat_verify.connectivity"].find("failure") is None

    failure = cases["securechat_verify.tls"].find("failure")
    assert failure is not None
    assert failure.get("message") == "certificate expires in 3 days"
    assert failure.text == "renew it with the site CA"

    webcrypto = cases["securechat_verify.webcrypto"]
    assert [child.tag for child in webcrypto] == ["system-out"]
    assert "hint: drop 'unsafe-inline'" in (webcrypto.findtext("system-out") or "")
    # A failing warning-level check is a passed test case with its output.
    socket = cases["securechat_verify.socket"]
    assert [child.tag for child in socket] == ["system-out"]
    assert "[warn] no WebSocket upgrade" in (socket.findtext("system-out") or "")

    error = cases["securechat_verify.e2e"].find("error")
    assert error is not None
    assert error.get("message") == "could not log in"
    assert error.text == "create the test account"

    skip = cases["securechat_verify.isolation"].find("skipped")
    assert skip is not None
    assert skip.get("message") == "no host to inspect: give -i or --local"
    assert cases["securechat_verify.tls"].get("time") == "0.012"


def test_junit_several_failures_and_hostile_text(tmp_path: Path) -> None:
    path = tmp_path / "report.xml"
    hostile = 'banner \x00\x1b[31m <tag> & "quotes"'
    write_junit([result("tls", failed(hostile, "hint one"), failed("second", "hint two"))], path)
    failure = ET.parse(path).getroot().find("testcase/failure")
    assert failure is not None
    assert failure.get("message") == (
        '2 findings: banner \ufffd\ufffd[31m <tag> & "quotes"; second'
    )
    assert failure.text == "hint one\nhint two"


def test_totals_line_singular_and_empty() -> None:
    assert "1 check: 1 pass" in table_text([result("tls", passed("ok"))])
    assert "0 checks: none run" in table_text([])
