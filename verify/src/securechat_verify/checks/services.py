"""Services: the units of each host's roles run, disks have room, clocks agree, schema at head."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

from alembic.script import ScriptDirectory
from securechat.db.migrate import MIGRATIONS_DIR, head_revision

from securechat_verify.checks import Check, inspect_hosts
from securechat_verify.checks.isolation import (
    SSH_HINT,
    describe_failure,
    run_command,
    ssh_unreachable,
)
from securechat_verify.net import target_context
from securechat_verify.remote import CommandResult, CommandRunner
from securechat_verify.result import Finding, Severity, errored, failed, passed, skipped, warned
from securechat_verify.target import Host, Target

# The systemd unit each role runs.
ROLE_UNITS = {"app": "securechat", "front": "nginx", "db": "mariadb", "redis": "redis-server"}
DISK_PATHS = ("/", "/var/lib")
DISK_WARN_PERCENT = 10.0
DISK_WARN_KIB = 1024 * 1024  # 1 GiB
DISK_FAIL_PERCENT = 2.0
CLOCK_WARN_SECONDS = 2.0
CLOCK_FAIL_SECONDS = 30.0
HEALTH_PATH = "/api/v1/health"

NO_RUNNER = (
    "no SSH access in the inventory: units, disk space and clock not inspected "
    "(use -i with SSH or --local); schema and clock checked over HTTP only"
)
UPGRADE_HINT = "run securechat db upgrade (the app role runs migrations once per deployment)"
CLOCK_HINT = (
    "sync the clock of {host} to the site's LAN time source (chrony or systemd-timesyncd; "
    "an isolated site has no internet NTP) and check this machine's clock too (date -u): "
    "TLS validity and session expiry depend on it"
)
DISK_HINT = (
    "free space on {mount} of {host}: remove old backups and logs (journalctl --vacuum-size=200M, "
    "apt-get clean) or grow the filesystem; MariaDB and Redis stop writing when it is full"
)
# `df -P`: Filesystem 1024-blocks Used Available Capacity Mounted-on (names may hold spaces).
DF_LINE = re.compile(
    r"^(?P<fs>.+?)\s+(\d+)\s+(?P<used>\d+)\s+(?P<avail>\d+)\s+\d+%\s+(?P<mount>/.*)$"
)


# --- units --------------------------------------------------------------------------------


def unit_state(host: Host, runner: CommandRunner, timeout: float, unit: str) -> Finding:
    result = run_command(runner, ["systemctl", "is-active", unit], timeout)
    state = result.stdout.strip().splitlines()[0] if result.stdout.strip() else ""
    journal = f"journalctl -u {unit} -b --no-pager -n 100"
    if state in ("active", "reloading"):
        return passed(f"{unit} is {state}", host.name)
    if state in ("activating", "deactivating"):
        return warned(
            f"{unit} is {state}",
            f"if it does not settle (a restart loop), see why with `{journal}`",
            host.name,
        )
    if not state:
        return errored(
            f"cannot ask systemd about {unit} ({describe_failure(result)})",
            "the host must run systemd; check the SSH user can run systemctl",
            host.name,
        )
    return failed(
        f"{unit} is {state}",
        f"see why with `{journal}`, fix it, then `systemctl restart {unit}`",
        host.name,
    )


# --- disk space ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DiskUsage:
    mount: str
    used_kib: int
    available_kib: int

    @property
    def free_percent(self) -> float:
        total = self.used_kib + self.available_kib
        return 100.0 * self.available_kib / total if total else 0.0


def parse_df(text: str) -> list[DiskUsage]:
    usages: dict[str, DiskUsage] = {}
    for line in text.splitlines()[1:]:
        match = DF_LINE.match(line.strip())
        if match:
            usage = DiskUsage(match["mount"], int(match["used"]), int(match["avail"]))
            usages.setdefault(usage.mount, usage)  # / and /var/lib often share one filesystem
    return list(usages.values())


def disk_space(host: Host, runner: CommandRunner, timeout: float) -> list[Finding]:
    result = run_command(runner, ["df", "-P", "-k", *DISK_PATHS], timeout)
    usages = parse_df(result.stdout)
    if not usages:
        return [
            errored(
                f"cannot read disk usage ({describe_failure(result)})",
                "check that `df -P -k / /var/lib` works for the SSH user",
                host.name,
            )
        ]
    findings: list[Finding] = []
    for usage in usages:
        free_gib = usage.available_kib / (1024 * 1024)
        summary = f"disk {usage.mount}: {usage.free_percent:.1f}% free ({free_gib:.2f} GiB)"
        metrics = {"free_percent": round(usage.free_percent, 2), "free_kib": usage.available_kib}
        hint = DISK_HINT.format(mount=usage.mount, host=host.name)
        if usage.free_percent < DISK_FAIL_PERCENT:
            findings.append(failed(summary, hint, host.name, **metrics))
        elif usage.free_percent < DISK_WARN_PERCENT or usage.available_kib < DISK_WARN_KIB:
            findings.append(warned(summary, hint, host.name, **metrics))
        else:
            findings.append(passed(summary, host.name, **metrics))
    return findings


# --- clocks -------------------------------------------------------------------------------


def skew_verdict(
    label: str, estimate: float, bound: float, hint: str, target: str | None
) -> Finding:
    """`bound`: the least skew consistent with the measurement (round trip and resolution)."""
    summary = f"{label}: {estimate:+.3f} s from this machine"
    metrics = {"skew_seconds": round(estimate, 3)}
    if bound > CLOCK_FAIL_SECONDS:
        return failed(summary, hint, target, **metrics)
    if bound > CLOCK_WARN_SECONDS:
        return warned(summary, hint, target, **metrics)
    return passed(summary, target, **metrics)


def interval_distance(low: float, high: float, start: float, end: float) -> float:
    """Signed gap between the remote time range [low, high] and the local [start, end]."""
    if low > end:
        return low - end
    if high < start:
        return high - start
    return 0.0


def clock_skew(host: Host, runner: CommandRunner, timeout: float) -> Finding:
    before = time.time()
    result = run_command(runner, ["date", "+%s.%N"], timeout)
    after = time.time()
    return clock_finding(host, result, before, after)


def clock_finding(host: Host, result: CommandResult, before: float, after: float) -> Finding:
    try:
        remote = float(result.stdout.strip())
    except ValueError:
        return errored(
            f"cannot read the clock ({describe_failure(result)})",
            "check that `date +%s.%N` works on the host (GNU coreutils)",
            host.name,
        )
    # The remote clock was read somewhere between before and after: the midpoint is the
    # estimate, and only a distance outside that window is certainly skew.
    estimate = remote - (before + after) / 2
    bound = abs(interval_distance(remote, remote, before, after))
    return skew_verdict("clock", estimate, bound, CLOCK_HINT.format(host=host.name), host.name)


# --- schema and version over HTTP ---------------------------------------------------------


@dataclass(frozen=True)
class Health:
    body: dict[str, Any]
    date: str | None
    before: float
    after: float


class HealthError(Exception):
    pass


def fetch_health(target: Target) -> Health:
    """GET /api/v1/health (public) with the site CA; proxies from the environment ignored."""
    url = target.url.rstrip("/") + HEALTH_PATH
    if urlsplit(url).scheme not in ("http", "https"):
        raise HealthError(f"{url}: not an http(s) URL")
    handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]
    context = target_context(target)
    if context is not None:
        handlers.append(urllib.request.HTTPSHandler(context=context))
    opener = urllib.request.build_opener(*handlers)
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
    before = time.time()
    try:
        with opener.open(request, timeout=target.timeout) as response:
            raw = response.read()
            date = response.headers.get("Date")
    except urllib.error.HTTPError as error:
        error.close()
        raise HealthError(f"{url} answered HTTP {error.code}") from error
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise HealthError(f"cannot reach {url}: {reason}") from error
    after = time.time()
    try:
        body = json.loads(raw)
    except ValueError as error:
        raise HealthError(f"{url} did not answer JSON") from error
    if not isinstance(body, dict):
        raise HealthError(f"{url} did not answer a JSON object")
    return Health(body, date, before, after)


def known_revisions() -> set[str]:
    return {script.revision for script in ScriptDirectory(str(MIGRATIONS_DIR)).walk_revisions()}


def schema_at_head(target: Target, health: Health) -> Finding:
    schema = str(health.body.get("schema") or "")
    version = str(health.body.get("version") or "unknown")
    head = head_revision()
    where = target.hostname
    metrics = {"schema": schema, "head": head, "version": version}
    if not schema:
        return errored(
            f"the health answer of server {version} has no schema revision",
            "upgrade the server to the release of this tool (the bundle's securechat)",
            where,
        )
    if schema == head:
        return passed(f"schema {schema} at head; server version {version}", where, **metrics)
    if schema in known_revisions():
        return failed(
            f"schema {schema} is behind head {head}; server version {version}",
            UPGRADE_HINT,
            where,
            **metrics,
        )
    return warned(
        f"schema {schema} is unknown to this tool (head {head}): the server ({version}) is "
        "newer than securechat-verify",
        "install the securechat-verify of the deployed bundle, then check again",
        where,
        **metrics,
    )


def http_clock(target: Target, health: Health) -> Finding:
    """The HTTP Date header: the server's clock with one second resolution."""
    where = target.hostname
    if not health.date:
        return skipped("server clock: the health answer has no Date header", where)
    try:
        server = parsedate_to_datetime(health.date).timestamp()
    except (TypeError, ValueError):
        return skipped(f"server clock: unreadable Date header {health.date!r}", where)
    # Date truncates to the second: the server time was in [server, server + 1).
    estimate = server + 0.5 - (health.before + health.after) / 2
    bound = abs(interval_distance(server, server + 1, health.before, health.after))
    hint = CLOCK_HINT.format(host=f"the server behind {where}")
    return skew_verdict("server clock (HTTP Date)", estimate, bound, hint, where)


# --- the check ----------------------------------------------------------------------------


def check_host(host: Host, runner: CommandRunner, timeout: float) -> list[Finding]:
    before = time.time()
    date = run_command(runner, ["date", "+%s.%N"], timeout)
    after = time.time()
    if ssh_unreachable(runner, date):
        return [
            errored(
                f"cannot run commands over {runner.description} ({describe_failure(date)})",
                SSH_HINT,
                host.name,
            )
        ]
    units = [ROLE_UNITS[role] for role in sorted(host.roles) if role in ROLE_UNITS]
    findings = [unit_state(host, runner, timeout, unit) for unit in units]
    findings += disk_space(host, runner, timeout)
    findings.append(clock_finding(host, date, before, after))
    return findings


def run(target: Target) -> list[Finding]:
    findings = inspect_hosts(target, check_host, NO_RUNNER)
    try:
        health = fetch_health(target)
    except HealthError as error:
        findings.append(
            errored(
                f"schema: {error}",
                "check that the chat URL answers from here and that the CA file is the site CA",
                target.hostname,
            )
        )
        return findings
    findings.append(schema_at_head(target, health))
    if not target.hosts or any(host.runner is None for host in target.hosts):
        findings.append(http_clock(target, health))
    return findings


CHECK = Check(
    id="services",
    title="Services run, disks have room, clocks agree and the schema is at head",
    severity=Severity.CRITICAL,
    run=run,
)
