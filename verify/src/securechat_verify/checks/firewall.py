"""`firewall`: from where the tool runs, each host answers on its expected ports and on no other
port of a fixed list of usual services."""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from securechat_verify.checks import Check
from securechat_verify.net import PortState, TcpResult, resolve, tcp_connect
from securechat_verify.result import Finding, Severity, failed, passed, skipped
from securechat_verify.target import Host, Target

# Probed on every host, besides its expected ports.
PROBE_PORTS: tuple[int, ...] = (22, 80, 443, 3306, 5432, 6379, 8000, 8080, 8443, 9000)
SERVICES: dict[int, str] = {
    22: "SSH",
    80: "HTTP",
    443: "HTTPS",
    3306: "MariaDB",
    5432: "PostgreSQL",
    6379: "Redis",
    8000: "the chat server (securechat serve)",
    8080: "an alternative HTTP service",
    8443: "an alternative HTTPS service",
    9000: "PHP-FPM/MinIO/Portainer",
}
# Who should reach the service when it runs at all.
ALLOWED_FROM: dict[int, str] = {
    22: "the administrators' addresses only",
    3306: "app hosts only",
    5432: "app hosts only",
    6379: "app hosts only",
    8000: "the TLS front only (clients go through HTTPS)",
}
PROBE_TIMEOUT = 1.5  # seconds; a filtered port costs this much (ports are probed in parallel)


def service_name(port: int) -> str:
    return SERVICES.get(port, "an unlisted service")


def _unexpected(host: Host, result: TcpResult) -> Finding:
    port = result.port
    allowed = ALLOWED_FROM.get(port, "the hosts that need it only, or stop the service")
    return failed(
        f"{port} {service_name(port)} answers from here on {host.name} ({result.host}): "
        f"the firewall must allow it from {allowed}",
        f"block port {port} on {host.name} for this network (nftables/ufw: allow it from "
        f"{allowed}), or stop the service; if this machine is meant to reach it, add {port} "
        "to the host's expected ports",
        target=f"{result.host}:{port}",
    )


def _missing(host: Host, result: TcpResult) -> Finding:
    port = result.port
    reason = {
        PortState.REFUSED: "connection refused: the service is down or the firewall rejects",
        PortState.TIMEOUT: "no answer: the firewall drops the packets or the host is down",
        PortState.UNREACHABLE: "no route to the host",
        PortState.UNRESOLVED: "the address does not resolve",
    }.get(result.state, result.detail)
    return failed(
        f"expected port {port} ({service_name(port)}) does not answer on {host.name} "
        f"({result.host}): {reason}",
        f"start the service on port {port} of {host.name} and open the port in its firewall "
        "for this network, or remove it from the host's expected ports",
        target=f"{result.host}:{port}",
    )


def probe_host(
    host: Host, timeout: float = PROBE_TIMEOUT, probe_ports: Iterable[int] = PROBE_PORTS
) -> list[Finding]:
    """TCP-probe `probe_ports` and the host's expected ports on every address of
    `host.address` (an IPv6 address may be open where the IPv4 rules close it)."""
    if not host.expected_ports:
        return [
            skipped(
                f"{host.name}: no expected ports defined, so no port can be judged",
                target=host.address,
            )
        ]
    try:
        addresses = resolve(host.address)
    except (OSError, UnicodeError) as error:
        return [
            failed(
                f"{host.name}: {host.address} does not resolve ({error})",
                "give the host's address as an IP address, or a name this machine resolves",
                target=host.address,
            )
        ]
    ports = sorted(set(probe_ports) | host.expected_ports)
    pairs = [(address, port) for address in addresses for port in ports]
    with ThreadPoolExecutor(max_workers=min(16, len(pairs))) as pool:
        results = list(pool.map(lambda pair: tcp_connect(pair[0], pair[1], timeout), pairs))
    findings: list[Finding] = []
    for result in results:
        if result.port in host.expected_ports and not result.is_open:
            findings.append(_missing(host, result))
        elif result.port not in host.expected_ports and result.is_open:
            findings.append(_unexpected(host, result))
    if not findings:
        open_ports = ", ".join(sorted({str(r.port) for r in results if r.is_open}, key=int))
        closed = sum(not r.is_open for r in results)
        findings.append(
            passed(
                f"{host.name} ({', '.join(addresses)}): only the expected ports answer "
                f"({open_ports}); {closed} other probes found closed or filtered ports",
                target=host.address,
                open_ports=open_ports,
                probed=len(results),
            )
        )
    return findings


def run(target: Target) -> list[Finding]:
    if not target.hosts:
        return [skipped("no hosts given: nothing to probe")]
    timeout = min(PROBE_TIMEOUT, target.timeout)
    findings: list[Finding] = []
    for host in target.hosts:
        findings.extend(probe_host(host, timeout))
    return findings


CHECK = Check(
    id="firewall",
    title="Only the expected ports answer on each host",
    severity=Severity.CRITICAL,
    run=run,
)
