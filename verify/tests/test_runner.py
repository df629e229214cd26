from __future__ import annotations

import threading

import pytest

from fake_checks import check_running, make_check, raising_check
from securechat_verify.result import Finding, Severity, Status, failed, passed, warned
from securechat_verify.runner import run_checks
from securechat_verify.target import Target

TARGET = Target(url="https://chat.example.lan")


def test_results_come_back_in_the_given_order_with_their_findings() -> None:
    checks = [
        make_check("tls", failed("expired", "renew it", "chat.example.lan")),
        make_check("connectivity"),
        make_check("socket", warned("slow", "look at the proxy"), severity=Severity.WARNING),
    ]
    results = run_checks(checks, TARGET, concurrency=3)
    assert [r.check_id for r in results] == ["tls", "connectivity", "socket"]
    assert [r.status for r in results] == [Status.FAIL, Status.PASS, Status.WARN]
    assert results[0].findings == (failed("expired", "renew it", "chat.example.lan"),)
    assert results[0].title == "The tls check"
    assert results[2].severity is Severity.WARNING
    assert all(r.duration_ms >= 0 for r in results)


def test_duration_is_measured() -> None:
    def slow(_target: Target) -> list[Finding]:
        threading.Event().wait(0.05)
        return [passed("ok")]

    (result,) = run_checks([check_running("tls", slow)], TARGET)
    assert result.duration_ms >= 45


def test_an_exception_becomes_one_error_finding_with_a_bug_hint() -> None:
    results = run_checks([raising_check("tls", KeyError("boom")), make_check("socket")], TARGET)
    assert [r.status for r in results] == [Status.ERROR, Status.PASS]
    (finding,) = results[0].findings
    assert finding.status is Status.ERROR
    assert finding.hint is not None
    assert finding.hint.startswith(
        "this is a bug in securechat-verify or an unexpected environment: KeyError: "
    )
    assert "boom" in finding.hint


def test_a_huge_exception_message_is_truncated() -> None:
    (result,) = run_checks([raising_check("tls", RuntimeError("x" * 10_000))], TARGET)
    assert result.findings[0].hint is not None
    assert len(result.findings[0].hint) < 500


@pytest.mark.parametrize(
    ("returned", "problem"),
    [
        ([], "no findings"),
        (None, "NoneType instead of a list"),
        (["not a finding"], "something other than findings"),
    ],
)
def test_a_check_breaking_its_contract_is_an_error(returned: object, problem: str) -> None:
    check = check_running("tls", lambda _target: returned)  # type: ignore[arg-type,return-value]
    (result,) = run_checks([check], TARGET)
    assert result.status is Status.ERROR
    assert problem in result.findings[0].summary


def test_checks_run_in_parallel() -> None:
    barrier = threading.Barrier(2, timeout=5)

    def meet(_target: Target) -> list[Finding]:
        barrier.wait()  # returns only once both checks are running at the same time
        return [passed("met")]

    results = run_checks([check_running("tls", meet), check_running("socket", meet)], TARGET)
    assert [r.status for r in results] == [Status.PASS, Status.PASS]


def test_concurrency_one_runs_checks_one_at_a_time() -> None:
    barrier = threading.Barrier(2, timeout=0.2)

    def meet(_target: Target) -> list[Finding]:
        barrier.wait()
        return [passed("met")]

    checks = [check_running("tls", meet), check_running("socket", meet)]
    results = run_checks(checks, TARGET, concurrency=1)
    # Alone, the first check's wait times out (BrokenBarrierError), then the barrier stays broken.
    assert [r.status for r in results] == [Status.ERROR, Status.ERROR]
    assert "BrokenBarrierError" in (results[0].findings[0].hint or "")


def test_progress_lines() -> None:
    lines: list[str] = []
    run_checks(
        [make_check("tls"), make_check("socket", failed("no", "fix"))],
        TARGET,
        progress=lines.append,
    )
    assert "running tls…" in lines
    assert "running socket…" in lines
    done = [line for line in lines if not line.startswith("running")]
    assert sorted(line.split(" (")[0] for line in done) == ["socket: fail", "tls: pass"]
    assert all(line.endswith(" ms)") for line in done)
    assert len(lines) == 4


def test_no_checks_no_results() -> None:
    assert run_checks([], TARGET) == []


def test_concurrency_must_be_positive() -> None:
    with pytest.raises(ValueError, match="concurrency"):
        run_checks([make_check("tls")], TARGET, concurrency=0)
