"""`services`: recorded unit states, disk usage and clocks; the schema from the real server,
and from a small local HTTP server for the answers a healthy server cannot give."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from securechat.db.migrate import head_revision

from fakes import FakeRunner, fails, ok
from securechat_verify.checks import services
from securechat_verify.checks.services import CHECK
from securechat_verify.remote import CommandResult
from securechat_verify.result import Finding, Status
from securechat_verify.target import Host, Target

DF_HEADER = "Filesystem     1024-blocks     Used Available Capacity Mounted on\n"
DF = ("df", "-P", "-k", "/", "/var/lib")
DATE = ("date", "+%s.%N")


def df_line(filesystem: str, used: int, available: int, mount: str) -> str:
    size = used + available
    capacity = round(100 * used / size)
    return f"{filesystem:<14} {size:>11} {used:>8} {available:>9} {capacity:>7}% {mount}\n"


ROOT_OK = df_line("/dev/vda1", 10_486_816, 18_752_420, "/")
VARLIB_OK = df_line("/dev/vdb1", 20_000_000, 80_000_000, "/var/lib")


def clock(offset: float) -> Callable[[], CommandResult]:
    return lambda: ok(f"{time.time() + offset:.9f}\n")


def active(unit: str) -> tuple[tuple[str, ...], CommandResult]:
    return ("systemctl", "is-active", unit), ok("active\n")


def inactive(unit: str, state: str = "inactive") -> tuple[tuple[str, ...], CommandResult]:
    return ("systemctl", "is-active", unit), fails(3, "", stdout=f"{state}\n")


def host_with(roles: set[str], *units: tuple[tuple[str, ...], Any], **answers: Any) -> Host:
    recorded: dict[tuple[str, ...], Any] = {
        DF: ok(DF_HEADER + ROOT_OK + VARLIB_OK),
        DATE: clock(0),
        **dict(units),
    }
    if "df" in answers:
        recorded[DF] = answers["df"]
    if "date" in answers:
        recorded[DATE] = answers["date"]
    return Host("node1", "10.0.0.10", frozenset(roles), runner=FakeRunner(recorded))


def inspect(host: Host) -> list[Finding]:
    assert host.runner is not None
    return services.check_host(host, host.runner, 5.0)


def by_summary(findings: list[Finding], start: str) -> Finding:
    (match,) = [f for f in findings if f.summary.startswith(start)]
    return match


# --- units --------------------------------------------------------------------------------


def test_every_role_unit_active_passes() -> None:
    units = [active(u) for u in ("securechat", "nginx", "mariadb", "redis-server")]
    findings = inspect(host_with({"app", "front", "db", "redis"}, *units))
    assert [f.status for f in findings] == [Status.PASS] * 7, findings
    assert [f.summary for f in findings[:4]] == [
        "securechat is active",  # app
        "mariadb is active",  # db
        "nginx is active",  # front
        "redis-server is active",  # redis
    ]


def test_an_inactive_or_failed_unit_fails_with_a_journal_hint() -> None:
    host = host_with(
        {"app", "front", "db"},
        active("securechat"),
        inactive("nginx"),
        inactive("mariadb", "failed"),
    )
    findings = inspect(host)
    nginx = by_summary(findings, "nginx")
    assert nginx.status is Status.FAIL
    assert nginx.summary == "nginx is inactive"
    assert nginx.hint is not None
    assert "journalctl -u nginx" in nginx.hint
    mariadb = by_summary(findings, "mariadb")
    assert mariadb.status is Status.FAIL
    assert mariadb.summary == "mariadb is failed"
    assert mariadb.hint is not None
    assert "journalctl -u mariadb" in mariadb.hint
    assert by_summary(findings, "securechat").status is Status.PASS


def test_a_unit_in_a_restart_loop_warns() -> None:
    unit = (("systemctl", "is-active", "securechat"), fails(3, "", stdout="activating\n"))
    warning = by_summary(inspect(host_with({"app"}, unit)), "securechat")
    assert warning.status is Status.WARN
    assert warning.hint is not None
    assert "journalctl -u securechat" in warning.hint


def test_no_systemctl_is_an_error() -> None:
    unit = (("systemctl", "is-active", "redis-server"), fails(127, "systemctl: not found\n"))
    error = by_summary(inspect(host_with({"redis"}, unit)), "cannot ask systemd")
    assert error.status is Status.ERROR
    assert error.hint


# --- disk space ---------------------------------------------------------------------------


def disk(findings: list[Finding], mount: str) -> Finding:
    return by_summary(findings, f"disk {mount}:")


def test_disk_thresholds() -> None:
    low = df_line("/dev/vdb1", 92_000_000, 8_000_000, "/var/lib")  # 8% free, 7.6 GiB
    findings = inspect(host_with(set(), df=ok(DF_HEADER + ROOT_OK + low)))
    assert disk(findings, "/").status is Status.PASS
    var_lib = disk(findings, "/var/lib")
    assert var_lib.status is Status.WARN
    assert var_lib.metrics["free_percent"] == 8.0
    assert var_lib.hint is not None
    assert "/var/lib of node1" in var_lib.hint

    full = df_line("/dev/vdb1", 99_000_000, 1_000_000, "/var/lib")  # 1% free
    findings = inspect(host_with(set(), df=ok(DF_HEADER + ROOT_OK + full)))
    assert disk(findings, "/var/lib").status is Status.FAIL

    small = df_line("/dev/vda1", 3_000_000, 900_000, "/")  # 23% free but under 1 GiB
    findings = inspect(host_with(set(), df=ok(DF_HEADER + small + VARLIB_OK)))
    assert disk(findings, "/").status is Status.WARN


def test_one_filesystem_is_reported_once() -> None:
    shared = DF_HEADER + ROOT_OK + ROOT_OK
    findings = inspect(host_with(set(), df=ok(shared)))
    assert [f.summary for f in findings if f.summary.startswith("disk")] == [
        "disk /: 64.1% free (17.88 GiB)"
    ]


def test_a_missing_var_lib_still_reports_the_root_filesystem() -> None:
    partial = fails(1, "df: /var/lib: No such file or directory\n", stdout=DF_HEADER + ROOT_OK)
    findings = inspect(host_with(set(), df=partial))
    assert disk(findings, "/").status is Status.PASS


# --- clocks -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offset", "status"),
    [(0.0, Status.PASS), (1.5, Status.PASS), (5.0, Status.WARN), (-45.0, Status.FAIL)],
)
def test_clock_skew(offset: float, status: Status) -> None:
    skew = by_summary(inspect(host_with(set(), date=clock(offset))), "clock")
    assert skew.status is status
    assert skew.metrics["skew_seconds"] == pytest.approx(offset, abs=0.5)
    if status is not Status.PASS:
        assert skew.hint is not None
        assert "node1" in skew.hint
        assert "TLS" in skew.hint


def test_a_slow_round_trip_is_not_skew() -> None:
    def slow() -> CommandResult:
        read = time.time()  # the remote clock is read at the start of a 2.5 s round trip
        time.sleep(2.5)
        return ok(f"{read:.9f}\n")

    skew = by_summary(inspect(host_with(set(), date=slow)), "clock")
    assert skew.status is Status.PASS  # the midpoint is 1.25 s off, but within the window


def test_an_unreachable_ssh_host_is_one_error() -> None:
    refused = fails(255, "ssh: connect to host 10.0.0.10 port 22: Connection timed out\r\n")
    runner = FakeRunner({DATE: refused})
    host = Host("node1", "10.0.0.10", frozenset({"app"}), runner=runner)
    (error,) = inspect(host)
    assert error.status is Status.ERROR
    assert "timed out" in error.summary
    assert runner.calls == [DATE]


# --- schema and server clock over HTTP ----------------------------------------------------


def test_the_real_server_is_at_head(http_server: Any) -> None:
    findings = CHECK.run(Target(url=http_server.url))
    schema = by_summary(findings, "schema")
    assert schema.status is Status.PASS
    assert schema.metrics["schema"] == head_revision()
    assert schema.summary.startswith(f"schema {head_revision()} at head; server version ")
    assert schema.target == "127.0.0.1"
    server_clock = by_summary(findings, "server clock (HTTP Date)")
    assert server_clock.status is Status.PASS


def test_the_real_server_over_tls_with_the_site_ca(tls_server: Any) -> None:
    findings = CHECK.run(Target(url=tls_server.url, ca_file=tls_server.ca_file))
    assert by_summary(findings, "schema").status is Status.PASS


def test_a_wrong_ca_is_an_error(tls_server: Any, pki: Any) -> None:
    findings = CHECK.run(Target(url=tls_server.url, ca_file=pki.other_ca.cert_file))
    (error,) = findings
    assert error.status is Status.ERROR
    assert "CERTIFICATE_VERIFY_FAILED" in error.summary
    assert error.hint


def test_hosts_are_inspected_next_to_the_real_server(http_server: Any) -> None:
    inspected = host_with({"app"}, active("securechat"))
    without = Host("db1", "10.0.0.11", frozenset({"db"}))
    findings = CHECK.run(Target(url=http_server.url, hosts=(inspected, without)))
    assert [(f.target, f.status) for f in findings] == [
        ("node1", Status.PASS),  # securechat active
        ("node1", Status.PASS),  # disk /
        ("node1", Status.PASS),  # disk /var/lib
        ("node1", Status.PASS),  # clock
        ("db1", Status.SKIP),
        ("127.0.0.1", Status.PASS),  # schema
        ("127.0.0.1", Status.PASS),  # server clock over HTTP: db1 has no runner
    ]
    assert "no SSH access in the inventory" in findings[4].summary


class FakeHealth:
    """A tiny HTTP server on 127.0.0.1 answering /api/v1/health with a given body and Date."""

    def __init__(self) -> None:
        self.body: dict[str, Any] = {}
        self.date_offset = 0.0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                payload = json.dumps(owner.body).encode()
                status = 200 if self.path == "/api/v1/health" else 404
                self.send_response_only(status)
                self.send_header("Date", formatdate(time.time() + owner.date_offset, usegmt=True))
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def fake_health() -> Iterator[FakeHealth]:
    server = FakeHealth()
    try:
        yield server
    finally:
        server.close()


def test_a_schema_behind_head_fails(fake_health: FakeHealth) -> None:
    fake_health.body = {"status": "ok", "version": "0.9.0", "schema": "0001"}
    schema = by_summary(CHECK.run(Target(url=fake_health.url)), "schema")
    assert schema.status is Status.FAIL
    assert schema.summary == f"schema 0001 is behind head {head_revision()}; server version 0.9.0"
    assert schema.hint == (
        "run securechat db upgrade (the app role runs migrations once per deployment)"
    )
    assert schema.metrics["version"] == "0.9.0"


def test_a_schema_unknown_to_this_tool_warns(fake_health: FakeHealth) -> None:
    fake_health.body = {"status": "ok", "version": "9.0.0", "schema": "0099"}
    schema = by_summary(CHECK.run(Target(url=fake_health.url)), "schema")
    assert schema.status is Status.WARN
    assert "newer than securechat-verify" in schema.summary
    assert schema.hint


@pytest.mark.parametrize(
    ("offset", "status"), [(0.0, Status.PASS), (6.0, Status.WARN), (-120.0, Status.FAIL)]
)
def test_the_server_clock_from_the_date_header(
    fake_health: FakeHealth, offset: float, status: Status
) -> None:
    fake_health.body = {"status": "ok", "version": "1.0.0", "schema": head_revision()}
    fake_health.date_offset = offset
    server_clock = by_summary(CHECK.run(Target(url=fake_health.url)), "server clock")
    assert server_clock.status is status
    assert server_clock.metrics["skew_seconds"] == pytest.approx(offset, abs=1.5)


def test_no_server_is_an_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"  # bound, never listening: refused
        (error,) = CHECK.run(Target(url=url, timeout=2))
    assert error.status is Status.ERROR
    assert error.summary.startswith(f"schema: cannot reach {url}/api/v1/health")
    assert error.hint
