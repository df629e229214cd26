"""Network isolation: no way out of the LAN, read from each host's own configuration.

Every command here only reads local state: `ip route show`/`ip route get` consult the
routing table over netlink (no packet leaves the host), the resolver and apt files are read
with `cat`, the firewall with `nft list`. Nothing is ever sent to an outside address.

Only `nft -j list ruleset` needs root: it is the one command run with `privileged=True`, so
over SSH with `ansible_become` it runs as `sudo -n -- nft -j list ruleset`; everything else
runs as the SSH user.
"""

from __future__ import annotations

import ipaddress
import json
import re
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from securechat_verify.checks import Check, inspect_hosts
from securechat_verify.remote import CommandResult, CommandRunner, SshRunner
from securechat_verify.result import Finding, Severity, errored, failed, passed, skipped
from securechat_verify.target import Host, Target

NO_RUNNER = "no SSH access in the inventory; use -i with SSH or --local"

# Public addresses whose route is looked up (never contacted): two anycast resolvers.
OUTSIDE_ADDRESSES = ("1.1.1.1", "8.8.8.8", "2001:4860:4860::8888")

# `ip route get` errors that mean "no way there": no route at all, or an unreachable,
# blackhole or prohibit route; the last one means the kernel has no IPv6 at all.
NO_ROUTE_ERRORS = {
    "Network is unreachable": "no route",
    "No route to host": "unreachable route",
    "Invalid argument": "blackhole route",
    "Permission denied": "prohibit route",
    "Address family not supported by protocol": "IPv6 disabled",
}
# Route types that drop instead of forwarding: a default route of these types is isolation.
DROPPING_ROUTE_TYPES = frozenset({"unreachable", "blackhole", "prohibit", "throw"})

# Addresses that never leave the site: RFC 1918, CGNAT (RFC 6598), link-local, ULA.
LAN_NETWORKS = tuple(
    ipaddress.ip_network(net)
    for net in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "169.254.0.0/16",
        "fc00::/7",
        "fe80::/10",
    )
)
# Names reserved for private use (RFC 8375 home.arpa, ICANN .internal, mDNS .local, .lan).
LAN_NAME_SUFFIXES = (".internal", ".home.arpa", ".local", ".lan")
RESOLVED_STUBS = frozenset({"127.0.0.53", "127.0.0.54"})

ROUTE_HINT = "remove the gateway from netplan (securechat netplan role: leave the gateway unset)"
RESOLVER_HINT = (
    "point /etc/resolv.conf (or systemd-resolved's DNS=) at the LAN resolver only; "
    "the securechat netplan role sets nameservers to LAN addresses"
)
# Where the bundle role unpacks bundles, one directory per bundle; its apt source is
# `deb [signed-by=/usr/share/keyrings/securechat-bundle.gpg] file:BUNDLE_ROOT/<name>/apt ./`.
BUNDLE_ROOT = "/opt/securechat/bundles"
APT_OUTSIDE_HINT = (
    "remove it; the bundle role leaves only the bundle repository "
    f"(deb [signed-by=/usr/share/keyrings/securechat-bundle.gpg] "
    f"file:{BUNDLE_ROOT}/<bundle name>/apt ./)"
)
APT_TRUSTED_HINT = (
    "drop trusted=yes and use [signed-by=/usr/share/keyrings/securechat-bundle.gpg] "
    "(the bundle role installs that key)"
)
FIREWALL_HINT = (
    "the firewall role sets a default-deny output chain "
    "(an inet output chain with policy drop that accepts LAN destinations only)"
)
NFT_ARGV = ["nft", "-j", "list", "ruleset"]
NFT_PATH = "/usr/sbin/nft"
ROOT_HINT = (
    "listing the nftables ruleset needs root: over SSH, set ansible_become: true for the host "
    f"and give the SSH user passwordless sudo for `{NFT_PATH} -j list ruleset` only, or "
    "connect as root (ansible_user: root); with --local, run the tool under sudo"
)
SUDO_HINT = (
    "give the {user} user passwordless sudo for `" + NFT_PATH + " -j list ruleset` only, "
    "e.g. the sudoers line `{user} ALL=(root) NOPASSWD: " + NFT_PATH + " -j list ruleset` "
    "(visudo -f /etc/sudoers.d/securechat-verify), or connect as root (ansible_user: root)"
)
# `sudo -n` refusing: a password would be needed, or the policy does not allow the command.
SUDO_REFUSALS = (
    "a password is required",
    "is not allowed to execute",
    "may not run sudo",
    "is not in the sudoers file",
)
# The shell could not find sudo itself (bash: "sudo: command not found", dash: "sudo: not
# found", zsh: "command not found: sudo"); "sudo: nft: command not found" is sudo reporting a
# missing nft instead.
SUDO_MISSING = re.compile(
    r"(^|[\s:])sudo: (command )?not found|command not found: sudo$", re.MULTILINE
)
SSH_HINT = "check the SSH destination, key and host key (ssh -o BatchMode=yes HOST true)"

APT_SCRIPT = (
    "for f in /etc/apt/sources.list /etc/apt/sources.list.d/*; do "
    'if [ -f "$f" ]; then echo "### $f"; cat -- "$f" || exit 1; fi; '
    "done"
)


def run_command(
    runner: CommandRunner, argv: list[str], timeout: float, *, privileged: bool = False
) -> CommandResult:
    """Run argv; a missing program or a timeout becomes a failed result, never an exception.

    `privileged`: the command needs root (the runner may run it through `sudo -n`).
    """
    try:
        return runner.run(argv, timeout, privileged=privileged)
    except subprocess.TimeoutExpired:
        return CommandResult(124, "", f"{argv[0]}: timed out after {timeout:g} s")
    except OSError as error:  # LocalRunner: program not installed, not executable
        return CommandResult(127, "", f"{argv[0]}: {error.strerror or error}")


def not_installed(result: CommandResult) -> bool:
    text = result.stderr
    return result.returncode == 127 or (
        result.returncode != 0
        and ("command not found" in text or "No such file or directory" in text)
    )


def ssh_unreachable(runner: CommandRunner, result: CommandResult) -> bool:
    """ssh exits 255 when it could not run the command at all."""
    return result.returncode == 255 and runner.description.startswith("ssh ")


def describe_failure(result: CommandResult) -> str:
    text = (result.stderr.strip() or result.stdout.strip()).splitlines()
    return f"exit {result.returncode}: {text[-1] if text else 'no output'}"


def is_lan_address(text: str) -> bool:
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return False
    return any(address in network for network in LAN_NETWORKS)


def is_loopback(text: str) -> bool:
    try:
        return ipaddress.ip_address(text.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def is_lan_host(host: str) -> bool:
    name = host.lower().rstrip(".")
    return (
        is_lan_address(name)
        or is_loopback(name)
        or name == "localhost"
        or name.endswith(LAN_NAME_SUFFIXES)
    )


def _parse_ip_json(stdout: str) -> list[dict[str, Any]]:
    text = stdout.strip()
    if not text:
        return []
    data = json.loads(text)
    if not isinstance(data, list):
        raise ValueError("expected a JSON list")
    return [item for item in data if isinstance(item, dict)]


def describe_route(route: dict[str, Any]) -> str:
    parts = [str(route.get("dst", "?"))]
    if "gateway" in route:
        parts.append(f"via {route['gateway']}")
    if "dev" in route:
        parts.append(f"dev {route['dev']}")
    return " ".join(parts)


def _ip_failed(label: str, argv: list[str], result: CommandResult, host: Host) -> Finding:
    return errored(
        f"{label}: `{' '.join(argv)}` failed ({describe_failure(result)})",
        "install iproute2 on the host (apt install iproute2) and run the check again",
        host.name,
    )


def _ip_no_json(label: str, argv: list[str], host: Host) -> Finding:
    return errored(
        f"{label}: `{' '.join(argv)}` printed no JSON",
        "iproute2 5.x or newer is needed for `ip -j` (Debian 12 ships 6.1)",
        host.name,
    )


# --- default routes -----------------------------------------------------------------------


def default_routes(host: Host, runner: CommandRunner, timeout: float) -> Finding:
    """`ip route show default` for IPv4 and IPv6: a forwarding default route is a way out."""
    found: list[str] = []
    dropping: list[str] = []
    for family in ([], ["-6"]):
        argv = ["ip", "-j", *family, "route", "show", "default"]
        result = run_command(runner, argv, timeout)
        if ssh_unreachable(runner, result):
            return errored(
                f"cannot run commands over {runner.description} ({describe_failure(result)})",
                SSH_HINT,
                host.name,
            )
        if result.returncode != 0:
            if "Address family not supported" in result.stderr:
                continue  # no IPv6 in this kernel: no IPv6 default route either
            return _ip_failed("default route", argv, result, host)
        try:
            routes = _parse_ip_json(result.stdout)
        except ValueError:
            return _ip_no_json("default route", argv, host)
        for route in routes:
            kind = str(route.get("type", "unicast"))
            label = f"default via {route.get('gateway', '?')} dev {route.get('dev', '?')}"
            if kind in DROPPING_ROUTE_TYPES:
                dropping.append(f"{kind} default")
            else:
                found.append(label)
    if found:
        return failed(
            f"default route: {'; '.join(found)}",
            ROUTE_HINT,
            host.name,
            routes=len(found),
        )
    note = f" ({', '.join(dropping)})" if dropping else ""
    return passed(f"default route: none{note}", host.name)


# --- route lookups to outside addresses ---------------------------------------------------


def outside_route(host: Host, runner: CommandRunner, timeout: float, address: str) -> Finding:
    """`ip route get` only asks the kernel's routing table; no packet is sent."""
    family = ["-6"] if ":" in address else []
    argv = ["ip", "-j", *family, "route", "get", address]
    result = run_command(runner, argv, timeout)
    if result.returncode != 0:
        for message, meaning in NO_ROUTE_ERRORS.items():
            if message in result.stderr:
                return passed(f"route to {address}: none ({meaning})", host.name)
        return _ip_failed(f"route to {address}", argv, result, host)
    try:
        routes = _parse_ip_json(result.stdout)
    except ValueError:
        return _ip_no_json(f"route to {address}", argv, host)
    live = [r for r in routes if str(r.get("type", "unicast")) not in DROPPING_ROUTE_TYPES]
    if not live:
        return passed(f"route to {address}: none (dropping route)", host.name)
    return failed(
        f"route to {address}: {'; '.join(describe_route(r) for r in live)}",
        f"this host can route to the internet: {ROUTE_HINT}, and remove any static route "
        "that covers public addresses",
        host.name,
    )


# --- resolvers ----------------------------------------------------------------------------


def parse_resolv_conf(text: str) -> list[str]:
    servers: list[str] = []
    for line in text.splitlines():
        words = line.split("#", 1)[0].split(";", 1)[0].split()
        if len(words) >= 2 and words[0] == "nameserver":
            servers.append(words[1])
    return servers


def parse_resolvectl_dns(text: str) -> list[str]:
    """`resolvectl dns`: `Global: 10.0.0.2` and `Link 2 (eth0): 10.0.0.2 fe80::1%eth0` lines.

    Newer systemd adds `:port` (`[v6]:port` for IPv6) and `#server-name` suffixes.
    """
    servers: list[str] = []
    for line in text.splitlines():
        if ":" not in line or not (line.startswith("Global") or line.startswith("Link")):
            continue
        _, _, rest = line.partition("): ") if line.startswith("Link") else line.partition(": ")
        for word in rest.split():
            address = word.split("#", 1)[0]
            if address.startswith("["):
                address = address[1:].split("]", 1)[0]
            elif address.count(":") == 1:  # IPv4 with a port
                address = address.split(":", 1)[0]
            if address:
                servers.append(address)
    return servers


def resolvers(host: Host, runner: CommandRunner, timeout: float) -> Finding:
    result = run_command(runner, ["cat", "/etc/resolv.conf"], timeout)
    if result.returncode != 0:
        if "No such file or directory" in result.stderr:
            return passed("resolvers: no /etc/resolv.conf (no DNS resolution)", host.name)
        return errored(
            f"resolvers: cannot read /etc/resolv.conf ({describe_failure(result)})",
            "make /etc/resolv.conf readable by the SSH user (it is world-readable by default)",
            host.name,
        )
    servers = parse_resolv_conf(result.stdout)
    if not servers:
        return passed("resolvers: no nameserver line (glibc uses 127.0.0.1)", host.name)
    public = [server for server in servers if not _is_lan_dns(server)]
    notes: list[str] = []
    if any(server in RESOLVED_STUBS for server in servers):
        upstream, note = _resolved_upstream(runner, timeout)
        notes.append(note)
        public += [f"{u} (systemd-resolved upstream)" for u in upstream if not _is_lan_dns(u)]
    if public:
        return failed(
            f"resolvers: public resolver {', '.join(public)}",
            RESOLVER_HINT,
            host.name,
            public=len(public),
        )
    return passed(f"resolvers: {', '.join([*servers, *notes])} (LAN or loopback)", host.name)


def _is_lan_dns(server: str) -> bool:
    return is_lan_address(server) or is_loopback(server)


def _resolved_upstream(runner: CommandRunner, timeout: float) -> tuple[list[str], str]:
    """The servers behind systemd-resolved's stub; `resolvectl` may be absent or stopped."""
    result = run_command(runner, ["resolvectl", "dns"], timeout)
    if result.returncode != 0:
        return [], "systemd-resolved upstream unknown: resolvectl failed"
    upstream = parse_resolvectl_dns(result.stdout)
    shown = ", ".join(upstream) if upstream else "none"
    return upstream, f"systemd-resolved upstream: {shown}"


# --- apt sources --------------------------------------------------------------------------


@dataclass(frozen=True)
class AptSource:
    file: str
    uri: str
    trusted: bool


def parse_apt_files(text: str) -> list[AptSource]:
    """The `### path` + content stream of APT_SCRIPT; apt reads only *.list and *.sources."""
    sources: list[AptSource] = []
    chunks: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("### "):
            chunks.append((line[4:].strip(), []))
        elif chunks:
            chunks[-1][1].append(line)
    for path, lines in chunks:
        if path.endswith(".sources"):
            sources += parse_deb822(path, lines)
        elif path.endswith(".list") or path == "/etc/apt/sources.list":
            sources += parse_one_line(path, lines)
    return sources


def parse_one_line(path: str, lines: Iterable[str]) -> list[AptSource]:
    sources: list[AptSource] = []
    for raw in lines:
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        kind, _, rest = line.partition(" ")
        if kind not in ("deb", "deb-src"):
            continue
        options: dict[str, str] = {}
        rest = rest.strip()
        if rest.startswith("["):
            inside, _, rest = rest[1:].partition("]")
            for option in inside.split():
                key, _, value = option.partition("=")
                options[key.lower()] = value
        words = rest.split()
        if words:
            trusted = options.get("trusted", "no").lower() == "yes"
            sources.append(AptSource(path, words[0], trusted))
    return sources


def parse_deb822(path: str, lines: Iterable[str]) -> list[AptSource]:
    sources: list[AptSource] = []
    stanzas: list[dict[str, str]] = [{}]
    key = ""
    for line in lines:
        if line.startswith("#"):
            continue
        if not line.strip():
            if stanzas[-1]:
                stanzas.append({})
            continue
        if line[0] in " \t":  # continuation (a multi-line Signed-By key block)
            if key:
                stanzas[-1][key] += "\n" + line.strip()
            continue
        key, _, value = line.partition(":")
        key = key.strip().lower()
        stanzas[-1][key] = value.strip()
    for stanza in stanzas:
        if not stanza or stanza.get("enabled", "yes").lower() == "no":
            continue
        trusted = stanza.get("trusted", "no").lower() == "yes"
        sources += [AptSource(path, uri, trusted) for uri in stanza.get("uris", "").split()]
    return sources


def is_bundle_uri(uri: str) -> bool:
    """A source that cannot leave the site: a local one (`file:`, `copy:`, `cdrom:`; the
    bundle's is file:/opt/securechat/bundles/<name>/apt), or a repository on a LAN host.

    Any other http(s) source fails, as does apt's `mirror+…` method (its mirror list, not
    the URI, decides where apt goes).
    """
    try:
        parts = urlsplit(uri)
        hostname = parts.hostname or ""
    except ValueError:  # a malformed URI, like http://[::1: apt cannot use it either
        return False
    if parts.scheme in ("file", "copy", "cdrom"):
        return True
    if parts.scheme.startswith("mirror"):  # mirror+http, mirror+file: the list decides
        return False
    return is_lan_host(hostname)


def apt_sources(host: Host, runner: CommandRunner, timeout: float) -> Finding:
    result = run_command(runner, ["sh", "-c", APT_SCRIPT], timeout)
    if result.returncode != 0:
        return errored(
            f"apt sources: cannot read them ({describe_failure(result)})",
            "make /etc/apt/sources.list and /etc/apt/sources.list.d/* readable by the SSH user",
            host.name,
        )
    sources = parse_apt_files(result.stdout)
    outside = [s for s in sources if not is_bundle_uri(s.uri)]
    trusted = [s for s in sources if s.trusted]
    problems: list[str] = []
    hints: list[str] = []
    if outside:
        problems += [f"{s.uri} ({s.file}) points outside the bundle" for s in outside]
        hints.append(f"apt source {outside[0].uri} points outside the bundle: {APT_OUTSIDE_HINT}")
    if trusted:
        problems += [f"{s.uri} ({s.file}) is trusted=yes" for s in trusted]
        hints.append(f"apt source {trusted[0].uri} is unsigned: {APT_TRUSTED_HINT}")
    if problems:
        return failed(
            f"apt sources: {'; '.join(problems)}",
            "; ".join(hints),
            host.name,
            outside=len(outside),
            trusted=len(trusted),
        )
    if not sources:
        return passed("apt sources: none enabled", host.name)
    uris = ", ".join(dict.fromkeys(s.uri for s in sources))
    return passed(f"apt sources: {uris} (bundle or LAN only)", host.name)


# --- outbound firewall --------------------------------------------------------------------

VERDICTS = frozenset({"accept", "drop", "reject", "jump", "goto", "return", "queue", "continue"})
TERMINAL = frozenset({"accept", "drop", "reject"})
# Statements that do not make a rule conditional.
UNCONDITIONAL = frozenset({"counter", "log", "comment", "notrack"})
FAMILIES = {"inet": ("IPv4", "IPv6"), "ip": ("IPv4",), "ip6": ("IPv6",)}


def _rule_verdict(rule: dict[str, Any]) -> str | None:
    """The verdict of a rule that matches every packet, or None if it has a condition."""
    verdict: str | None = None
    for statement in rule.get("expr", []):
        if not isinstance(statement, dict) or len(statement) != 1:
            return None
        (name,) = statement
        if name in VERDICTS:
            verdict = name
        elif name not in UNCONDITIONAL:
            return None
    return verdict


def output_chains(ruleset: list[dict[str, Any]]) -> list[tuple[str, str, bool]]:
    """(family, "table chain", default-deny) for every base chain on the output hook."""
    chains: dict[tuple[str, str, str], dict[str, Any]] = {}
    rules: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for item in ruleset:
        if "chain" in item:
            chain = item["chain"]
            key = (chain.get("family", ""), chain.get("table", ""), chain.get("name", ""))
            chains[key] = chain
        elif "rule" in item:
            rule = item["rule"]
            key = (rule.get("family", ""), rule.get("table", ""), rule.get("chain", ""))
            rules.setdefault(key, []).append(rule)
    found: list[tuple[str, str, bool]] = []
    for key, chain in chains.items():
        if chain.get("hook") != "output" or chain.get("type") not in ("filter", "route"):
            continue
        verdicts = [v for v in map(_rule_verdict, rules.get(key, [])) if v in TERMINAL]
        final = verdicts[0] if verdicts else None  # the first unconditional verdict ends it
        if final is not None:
            deny = final in ("drop", "reject")
        else:
            deny = chain.get("policy", "accept") == "drop"
        found.append((key[0], f"{key[1]} {key[2]}", deny))
    return found


def _sudo_user(runner: CommandRunner) -> str:
    """The SSH user to name in the sudo hint ("ops", the example inventories', if unknown)."""
    return (runner.user if isinstance(runner, SshRunner) else None) or "ops"


def nft_failed(host: Host, runner: CommandRunner, result: CommandResult) -> Finding:
    """The finding for a failed `[sudo -n --] nft -j list ruleset`."""
    if SUDO_MISSING.search(result.stderr):
        return errored(
            "outbound firewall: sudo is not installed on the host "
            "(ansible_become is set, and listing the nftables ruleset needs root)",
            "install sudo (apt install sudo, from the bundle) and "
            + SUDO_HINT.format(user=_sudo_user(runner)),
            host.name,
        )
    if any(refusal in result.stderr for refusal in SUDO_REFUSALS):
        return errored(
            "outbound firewall: sudo -n refused to list the nftables ruleset "
            f"({describe_failure(result)})",
            SUDO_HINT.format(user=_sudo_user(runner)),
            host.name,
        )
    if not_installed(result):
        return failed(
            "outbound firewall: nftables is not installed",
            f"install nftables (from the bundle): {FIREWALL_HINT}",
            host.name,
        )
    if "Operation not permitted" in result.stderr or "must be root" in result.stderr:
        return errored(
            "outbound firewall: not allowed to list the nftables ruleset", ROOT_HINT, host.name
        )
    return errored(
        f"outbound firewall: `nft -j list ruleset` failed ({describe_failure(result)})",
        ROOT_HINT,
        host.name,
    )


def output_firewall(host: Host, runner: CommandRunner, timeout: float) -> Finding:
    result = run_command(runner, NFT_ARGV, timeout, privileged=True)
    if result.returncode != 0:
        return nft_failed(host, runner, result)
    try:
        data = json.loads(result.stdout or "{}")
        ruleset = [i for i in data.get("nftables", []) if isinstance(i, dict)]
    except (ValueError, AttributeError):
        return errored(
            "outbound firewall: `nft -j list ruleset` printed no JSON",
            "nftables 0.9 or newer is needed for `nft -j` (Debian 12 ships 1.0.6)",
            host.name,
        )
    return judge_ruleset(host, ruleset)


def judge_ruleset(host: Host, ruleset: list[dict[str, Any]]) -> Finding:
    chains = output_chains(ruleset)
    if not any("table" in item for item in ruleset):
        return failed("outbound firewall: no nftables ruleset loaded", FIREWALL_HINT, host.name)
    if not chains:
        return failed(
            "outbound firewall: no output chain (outbound traffic is not filtered)",
            FIREWALL_HINT,
            host.name,
        )
    open_families = [
        family
        for family in ("IPv4", "IPv6")
        if not any(deny and family in FAMILIES.get(fam, ()) for fam, _, deny in chains)
    ]
    names = ", ".join(
        f"{fam} {name} ({'drop' if deny else 'accept'})" for fam, name, deny in chains
    )
    if open_families:
        return failed(
            f"outbound firewall: {' and '.join(open_families)} outbound policy is accept "
            f"(output chains: {names})",
            f"outbound policy is accept: {FIREWALL_HINT}",
            host.name,
        )
    return passed(f"outbound firewall: default deny ({names})", host.name)


# --- the check ----------------------------------------------------------------------------


def check_host(host: Host, runner: CommandRunner, timeout: float) -> list[Finding]:
    first = default_routes(host, runner, timeout)
    if first.hint == SSH_HINT:  # the host is unreachable: every other command would fail too
        return [first]
    findings = [first]
    findings += [outside_route(host, runner, timeout, a) for a in OUTSIDE_ADDRESSES]
    findings.append(resolvers(host, runner, timeout))
    findings.append(apt_sources(host, runner, timeout))
    findings.append(output_firewall(host, runner, timeout))
    return findings


def run(target: Target) -> list[Finding]:
    findings = inspect_hosts(target, check_host, NO_RUNNER)
    if not target.hosts:
        findings.append(skipped("no hosts in the inventory; use -i with SSH or --local"))
    return findings


CHECK = Check(
    id="isolation",
    title="Hosts have no route, resolver, package source or open firewall to the outside",
    severity=Severity.CRITICAL,
    run=run,
)
