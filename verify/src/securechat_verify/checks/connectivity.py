"""`connectivity`: the chat's name resolves, its port and every host's expected ports answer,
and plain http:// redirects to https://."""

from __future__ import annotations

import http.client
import socket
import ssl
from urllib.parse import urlsplit

from securechat_verify.checks import Check
from securechat_verify.net import (
    PortState,
    TcpResult,
    describe,
    http_request,
    netloc,
    resolve,
    tcp_connect,
)
from securechat_verify.result import Finding, Severity, failed, passed, skipped, warned
from securechat_verify.target import Target

HTTP_PORT = 80
REDIRECT_STATUSES = frozenset({301, 302, 307, 308})
REDIRECT_BLOCK = "server { listen 80; server_name NAME; return 301 https://$host$request_uri; }"


def resolution_hint(hostname: str) -> str:
    if hostname.rstrip(".").lower().endswith(".local"):
        return (
            f"{hostname} is an mDNS name: check that avahi-daemon runs on the server and "
            "publishes it, that UDP 5353 is not blocked, and that nss-mdns (mdns4_minimal in "
            "/etc/nsswitch.conf) is installed on this machine and on the clients"
        )
    return (
        f"add {hostname} to the LAN's DNS (an A/AAAA record), or to /etc/hosts on this machine "
        "and on every client"
    )


def unreachable_hint(result: TcpResult, what: str) -> str:
    where = f"port {result.port} of {result.host}"
    if result.state is PortState.REFUSED:
        return (
            f"nothing accepts connections on {where}: start {what} (systemctl status), check "
            "the address and port it listens on, or the firewall that rejects the port"
        )
    if result.state is PortState.TIMEOUT:
        return (
            f"no answer from {where}: a firewall drops the packets or the host is down; open "
            "the port to the clients' network"
        )
    if result.state is PortState.UNREACHABLE:
        return f"no route to {result.host}: check the address and the network (routes, VLAN)"
    if result.state is PortState.UNRESOLVED:
        return resolution_hint(result.host)
    return f"check that {what} runs and listens on {where}"


def _port_finding(result: TcpResult, what: str) -> Finding:
    label = f"{result.host}:{result.port}"
    if result.is_open:
        return passed(
            f"{label} accepts connections ({result.connect_ms} ms)",
            target=label,
            connect_ms=result.connect_ms or 0.0,
            address=result.address or "",
        )
    return failed(
        f"{label} does not accept connections: {result.state} ({result.detail})",
        unreachable_hint(result, what),
        target=label,
    )


def check_redirect(target: Target, port: int = HTTP_PORT) -> Finding:
    """`GET http://<hostname>[:port]/` must redirect to an https:// URL."""
    url = f"http://{netloc(target.hostname, port, 'http')}/"
    hint = f"make the front redirect plain HTTP to HTTPS, e.g. nginx: {REDIRECT_BLOCK}"
    try:
        response = http_request(url, timeout=target.timeout)
    except (OSError, ssl.SSLError, http.client.HTTPException) as error:
        return failed(
            f"{url} does not answer: {describe(error)}",
            "port 80 is expected to answer: add the port-80 server block to the front "
            f"({REDIRECT_BLOCK}) and open the port, or remove 80 from the host's expected ports",
            target=url,
        )
    location = response.header("location") or ""
    if response.status not in REDIRECT_STATUSES:
        return failed(
            f"{url} answers {response.status} instead of redirecting to https://",
            hint,
            target=url,
        )
    if urlsplit(location).scheme != "https":
        return failed(
            f"{url} redirects ({response.status}) to {location or 'nowhere'}, not to https://",
            hint,
            target=url,
        )
    if (urlsplit(location).hostname or "").lower() != target.hostname.lower():
        return warned(
            f"{url} redirects to another host: {location}",
            "redirect to the same name (return 301 https://$host$request_uri), so that the "
            "certificate and the browser's origin match",
            target=url,
            status=response.status,
        )
    return passed(
        f"{url} redirects ({response.status}) to {location}",
        target=url,
        status=response.status,
        location=location,
    )


def run(target: Target) -> list[Finding]:
    findings: list[Finding] = []
    hostname = target.hostname
    if not hostname:
        return [failed(f"no host name in {target.url}", "give the chat's URL: https://NAME[:PORT]")]
    try:
        addresses = resolve(hostname, target.port)
    except (socket.gaierror, UnicodeError) as error:
        return [
            failed(
                f"{hostname} does not resolve: {describe(error)}",
                resolution_hint(hostname),
                target=hostname,
            )
        ]
    findings.append(
        passed(
            f"{hostname} resolves to {', '.join(addresses)}",
            target=hostname,
            addresses=", ".join(addresses),
        )
    )

    front = "the TLS front (nginx)" if target.is_https else "the chat server"
    findings.append(_port_finding(tcp_connect(hostname, target.port, target.timeout), front))
    for host in target.hosts:
        for port in sorted(host.expected_ports):
            if (host.address, port) == (hostname, target.port):
                continue  # the chat URL itself, tested just above
            what = f"the service expected on port {port} of {host.name}"
            findings.append(_port_finding(tcp_connect(host.address, port, target.timeout), what))

    if target.is_https:
        expected = {port for host in target.hosts for port in host.expected_ports}
        if HTTP_PORT in expected:
            findings.append(check_redirect(target))
        else:
            findings.append(
                skipped(
                    "http→https redirect not checked: no host lists port 80 among its expected "
                    "ports (list it to have the redirect checked)",
                    target=f"http://{hostname}/",
                )
            )
    return findings


CHECK = Check(
    id="connectivity",
    title="Name resolution, open ports and the http→https redirect",
    severity=Severity.CRITICAL,
    run=run,
)
