"""`isolation`: recorded host outputs for each broken setup, and the real routing table of a
network namespace (no packet is ever sent: `ip route get` only consults the table)."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from fakes import FakeRunner, fails, ok
from securechat_verify.checks import isolation
from securechat_verify.checks.isolation import APT_SCRIPT, CHECK, default_routes, outside_route
from securechat_verify.remote import CommandResult, LocalRunner
from securechat_verify.result import Finding, Status
from securechat_verify.target import Host, Target

URL = "https://chat.site.internal"
UNREACHABLE = fails(2, "RTNETLINK answers: Network is unreachable\n")

DEFAULT_V4 = ("ip", "-j", "route", "show", "default")
DEFAULT_V6 = ("ip", "-j", "-6", "route", "show", "default")
GET_1111 = ("ip", "-j", "route", "get", "1.1.1.1")
GET_8888 = ("ip", "-j", "route", "get", "8.8.8.8")
GET_V6 = ("ip", "-j", "-6", "route", "get", "2001:4860:4860::8888")
RESOLV = ("cat", "/etc/resolv.conf")
RESOLVECTL = ("resolvectl", "dns")
APT = ("sh", "-c", APT_SCRIPT)
NFT = ("nft", "-j", "list", "ruleset")

GATEWAY_ROUTE = json.dumps(
    [
        {
            "dst": "default",
            "gateway": "192.168.1.1",
            "dev": "enp1s0",
            "protocol": "dhcp",
            "prefsrc": "192.168.1.20",
            "metric": 100,
            "flags": [],
        }
    ]
)
GATEWAY_ROUTE_V6 = json.dumps(
    [
        {
            "dst": "default",
            "gateway": "fe80::1",
            "dev": "enp1s0",
            "protocol": "ra",
            "metric": 1024,
            "flags": [],
            "pref": "medium",
        }
    ]
)


def route_get(address: str) -> str:
    return json.dumps(
        [
            {
                "dst": address,
                "gateway": "192.168.1.1",
                "dev": "enp1s0",
                "prefsrc": "192.168.1.20",
                "flags": [],
                "uid": 0,
                "cache": [],
            }
        ]
    )


# The source the bundle role writes (roles/bundle/templates/securechat-bundle.list.j2).
BUNDLE_URI = "file:/opt/securechat/bundles/securechat-m2m-1.0.0/apt"
BUNDLE_LIST = (
    "### /etc/apt/sources.list.d/securechat-bundle.list\n"
    "# Ansible managed\n"
    "# The only apt source of this host: the Secure Chat M2M offline bundle securechat-m2m-1.0.0.\n"
    f"deb [signed-by=/usr/share/keyrings/securechat-bundle.gpg] {BUNDLE_URI} ./\n"
)
DEBIAN_LIST = "### /etc/apt/sources.list\ndeb http://deb.debian.org/debian bookworm main\n"
DEBIAN_SOURCES = (
    "### /etc/apt/sources.list.d/debian.sources\n"
    "Types: deb\n"
    "URIs: http://deb.debian.org/debian\n"
    "Suites: bookworm bookworm-updates\n"
    "Components: main\n"
    "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
    "\n"
    "Types: deb\n"
    "URIs: http://deb.debian.org/debian-security\n"
    "Suites: bookworm-security\n"
    "Components: main\n"
    "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
)
BUNDLE_SOURCES = (
    "### /etc/apt/sources.list.d/securechat-bundle.sources\n"
    "# deb822 form of the bundle repository\n"
    "Types: deb\n"
    f"URIs: {BUNDLE_URI}\n"
    "Suites: ./\n"
    "Signed-By: /usr/share/keyrings/securechat-bundle.gpg\n"
)


def nft_ruleset(*chains: dict[str, Any], rules: tuple[dict[str, Any], ...] = ()) -> str:
    meta = {
        "metainfo": {
            "version": "1.0.6",
            "release_name": "Lester Gooch #5",
            "json_schema_version": 1,
        }
    }
    tables = {(c["family"], c["table"]) for c in chains}
    items: list[dict[str, Any]] = [meta]
    items += [
        {"table": {"family": family, "name": name, "handle": n}}
        for n, (family, name) in enumerate(sorted(tables), 1)
    ]
    items += [{"chain": chain} for chain in chains]
    items += [{"rule": rule} for rule in rules]
    return json.dumps({"nftables": items})


def output_chain(policy: str, family: str = "inet") -> dict[str, Any]:
    return {
        "family": family,
        "table": "securechat",
        "name": "output",
        "handle": 2,
        "type": "filter",
        "hook": "output",
        "prio": 0,
        "policy": policy,
    }


INPUT_CHAIN = {
    "family": "inet",
    "table": "securechat",
    "name": "input",
    "handle": 1,
    "type": "filter",
    "hook": "input",
    "prio": 0,
    "policy": "drop",
}


def rule(expr: list[dict[str, Any]], family: str = "inet", handle: int = 10) -> dict[str, Any]:
    return {
        "family": family,
        "table": "securechat",
        "chain": "output",
        "handle": handle,
        "expr": expr,
    }


LAN_RULES = (
    rule(
        [{"match": {"op": "==", "left": {"meta": {"key": "oif"}}, "right": "lo"}}, {"accept": None}]
    ),
    rule(
        [
            {
                "match": {
                    "op": "in",
                    "left": {"ct": {"key": "state"}},
                    "right": ["established", "related"],
                }
            },
            {"accept": None},
        ],
        handle=11,
    ),
    rule(
        [
            {
                "match": {
                    "op": "==",
                    "left": {"payload": {"protocol": "ip", "field": "daddr"}},
                    "right": {"prefix": {"addr": "10.0.0.0", "len": 8}},
                }
            },
            {"accept": None},
        ],
        handle=12,
    ),
)
DROP_OUTPUT = nft_ruleset(INPUT_CHAIN, output_chain("drop"), rules=LAN_RULES)

CLEAN: dict[tuple[str, ...], Any] = {
    DEFAULT_V4: ok("[]\n"),
    DEFAULT_V6: ok("[]\n"),
    GET_1111: UNREACHABLE,
    GET_8888: UNREACHABLE,
    GET_V6: UNREACHABLE,
    RESOLV: ok("# netplan\nnameserver 10.0.0.2\nsearch site.internal\n"),
    APT: ok(BUNDLE_LIST),
    NFT: ok(DROP_OUTPUT),
}


def host_findings(**changes: Any) -> list[Finding]:
    answers = {**CLEAN, **{KEYS[name]: value for name, value in changes.items()}}
    host = Host("app1", "10.0.0.10", frozenset({"app"}), runner=FakeRunner(answers))
    return CHECK.run(Target(url=URL, hosts=(host,)))


KEYS = {
    "default_v4": DEFAULT_V4,
    "default_v6": DEFAULT_V6,
    "get_1111": GET_1111,
    "get_8888": GET_8888,
    "get_v6": GET_V6,
    "resolv": RESOLV,
    "resolvectl": RESOLVECTL,
    "apt": APT,
    "nft": NFT,
}


def finding(findings: list[Finding], label: str) -> Finding:
    (match,) = [f for f in findings if f.summary.startswith(label)]
    return match


def only_failure(findings: list[Finding]) -> Finding:
    bad = [f for f in findings if f.status is not Status.PASS]
    assert len(bad) == 1, bad
    return bad[0]


# --- recorded outputs ---------------------------------------------------------------------


def test_a_clean_host_passes_every_sub_check() -> None:
    findings = host_findings()
    assert [f.status for f in findings] == [Status.PASS] * 7, findings
    assert {f.target for f in findings} == {"app1"}
    assert CHECK.id == "isolation"
    assert CHECK.severity == "critical"


def test_a_default_route_fails_with_the_netplan_hint() -> None:
    findings = host_findings(
        default_v4=ok(GATEWAY_ROUTE),
        get_1111=ok(route_get("1.1.1.1")),
        get_8888=ok(route_get("8.8.8.8")),
    )
    default = finding(findings, "default route")
    assert default.status is Status.FAIL
    assert "default via 192.168.1.1 dev enp1s0" in default.summary
    assert default.hint is not None
    assert "leave the gateway unset" in default.hint
    route = finding(findings, "route to 1.1.1.1")
    assert route.status is Status.FAIL
    assert "1.1.1.1 via 192.168.1.1 dev enp1s0" in route.summary
    assert finding(findings, "route to 8.8.8.8").status is Status.FAIL
    assert finding(findings, "route to 2001:").status is Status.PASS


def test_an_ipv6_default_route_fails_too() -> None:
    default = only_failure(host_findings(default_v6=ok(GATEWAY_ROUTE_V6)))
    assert default.summary == "default route: default via fe80::1 dev enp1s0"
    assert default.hint is not None
    assert "netplan" in default.hint


def test_an_unreachable_default_route_is_isolation() -> None:
    findings = host_findings(
        default_v4=ok('[{"type":"unreachable","dst":"default","flags":[]}]'),
        get_1111=fails(2, "RTNETLINK answers: No route to host\n"),
        get_8888=fails(2, "RTNETLINK answers: No route to host\n"),
    )
    assert all(f.status is Status.PASS for f in findings), findings
    assert "unreachable default" in finding(findings, "default route").summary


def test_a_route_lookup_that_fails_otherwise_is_an_error_not_a_pass() -> None:
    findings = host_findings(get_8888=fails(127, "bash: line 1: ip: command not found\n"))
    error = only_failure(findings)
    assert error.status is Status.ERROR
    assert error.summary.startswith("route to 8.8.8.8")
    assert error.hint


def test_a_public_resolver_fails() -> None:
    resolver = only_failure(host_findings(resolv=ok("nameserver 10.0.0.2\nnameserver 8.8.8.8\n")))
    assert resolver.status is Status.FAIL
    assert "8.8.8.8" in resolver.summary
    assert "10.0.0.2" not in resolver.summary
    assert resolver.hint is not None
    assert "LAN resolver" in resolver.hint


def test_the_resolved_stub_passes_with_a_lan_upstream() -> None:
    upstream = "Global:\nLink 2 (enp1s0): 10.0.0.2 fd00:53::2\n"
    findings = host_findings(
        resolv=ok("nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch .\n"),
        resolvectl=ok(upstream),
    )
    resolver = finding(findings, "resolvers")
    assert resolver.status is Status.PASS
    assert "upstream: 10.0.0.2, fd00:53::2" in resolver.summary


def test_the_resolved_stub_fails_with_a_public_upstream() -> None:
    upstream = "Global: 1.1.1.1#cloudflare-dns.com\nLink 2 (enp1s0): 10.0.0.2\n"
    resolver = only_failure(
        host_findings(resolv=ok("nameserver 127.0.0.53\n"), resolvectl=ok(upstream))
    )
    assert resolver.status is Status.FAIL
    assert "1.1.1.1 (systemd-resolved upstream)" in resolver.summary


def test_the_resolved_stub_without_resolvectl_is_tolerated() -> None:
    findings = host_findings(
        resolv=ok("nameserver 127.0.0.53\n"),
        resolvectl=FileNotFoundError(2, "No such file or directory"),
    )
    resolver = finding(findings, "resolvers")
    assert resolver.status is Status.PASS
    assert "upstream unknown" in resolver.summary


def test_the_bundle_roles_apt_source_passes() -> None:
    apt = finding(host_findings(), "apt sources")
    assert apt.status is Status.PASS
    assert apt.summary == f"apt sources: {BUNDLE_URI} (bundle or LAN only)"
    apt = finding(host_findings(apt=ok(BUNDLE_SOURCES)), "apt sources")
    assert apt.status is Status.PASS


def test_an_internet_apt_source_fails() -> None:
    apt = only_failure(host_findings(apt=ok(BUNDLE_LIST + DEBIAN_LIST)))
    assert apt.status is Status.FAIL
    assert "http://deb.debian.org/debian (/etc/apt/sources.list)" in apt.summary
    assert "file:" not in apt.summary
    assert apt.hint is not None
    assert "points outside the bundle: remove it" in apt.hint
    assert "bundle role leaves only the bundle repository" in apt.hint
    assert (
        "deb [signed-by=/usr/share/keyrings/securechat-bundle.gpg] "
        "file:/opt/securechat/bundles/<bundle name>/apt ./" in apt.hint
    )
    assert "/var/lib/securechat" not in apt.hint


@pytest.mark.parametrize(
    "uri",
    [
        BUNDLE_URI,
        "file:/opt/securechat/bundles/securechat-m2m-bf5fdb2-dirty/apt",
        "file:///opt/securechat/bundles/securechat-m2m-1.0.0/apt/",
        "copy:/media/usb/apt",
        "cdrom:[Debian GNU/Linux 12]/",
        "http://10.0.0.5/debian",
        "https://mirror.site.internal/debian",
        "http://[fd00::5]:8080/debian",
    ],
)
def test_local_and_lan_apt_sources_are_the_bundles(uri: str) -> None:
    assert isolation.is_bundle_uri(uri)


@pytest.mark.parametrize(
    "uri",
    [
        "http://deb.debian.org/debian",
        "https://deb.debian.org/debian-security",
        "HTTPS://DEB.DEBIAN.ORG/debian",
        "https://evil.example.com/opt/securechat/bundles/securechat-m2m-1.0.0/apt",
        "http://8.8.8.8/opt/securechat/bundles/x/apt",
        "http://10.0.0.5.evil.example.com/debian",
        "http://chat.lan.evil.example.com/debian",
        "http://localhost.evil.example.com/debian",
        "http://10.0.0.5@evil.example.com/debian",
        "http://[::1",
        "http://[2001:4860:4860::8888]/debian",
        "mirror+http://10.0.0.5/mirrors.txt",
        "mirror+file:/etc/apt/mirrors.txt",
        "tor+https://deb.debian.org/debian",
        "opt/securechat/bundles/securechat-m2m-1.0.0/apt",
    ],
)
def test_other_apt_sources_point_outside_the_bundle(uri: str) -> None:
    assert not isolation.is_bundle_uri(uri)
    listing = f"### /etc/apt/sources.list.d/extra.list\ndeb {uri} bookworm main\n"
    apt = only_failure(host_findings(apt=ok(BUNDLE_LIST + listing)))
    assert apt.status is Status.FAIL
    assert apt.metrics["outside"] == 1


def test_an_internet_deb822_source_fails() -> None:
    apt = only_failure(host_findings(apt=ok(BUNDLE_SOURCES + DEBIAN_SOURCES)))
    assert apt.status is Status.FAIL
    assert "http://deb.debian.org/debian " in apt.summary
    assert "http://deb.debian.org/debian-security" in apt.summary
    assert apt.metrics["outside"] == 2


def test_disabled_and_ignored_apt_files_do_not_count() -> None:
    disabled = DEBIAN_SOURCES.replace("Types: deb\n", "Types: deb\nEnabled: no\n")
    leftovers = (
        "### /etc/apt/sources.list.d/debian.list.save\n"
        "deb http://deb.debian.org/debian bookworm main\n"
        "### /etc/apt/sources.list\n"
        "# deb http://deb.debian.org/debian bookworm main\n"
        "deb [signed-by=/usr/share/keyrings/site.gpg] http://10.0.0.5/debian bookworm main\n"
    )
    findings = host_findings(apt=ok(BUNDLE_SOURCES + disabled + leftovers))
    apt = finding(findings, "apt sources")
    assert apt.status is Status.PASS
    assert apt.summary == (
        f"apt sources: {BUNDLE_URI}, http://10.0.0.5/debian (bundle or LAN only)"
    )


def test_trusted_yes_fails_even_for_the_bundle() -> None:
    trusted = (
        "### /etc/apt/sources.list.d/securechat-bundle.list\n"
        f"deb [ arch=amd64 trusted=yes ] {BUNDLE_URI} ./\n"
    )
    apt = only_failure(host_findings(apt=ok(trusted)))
    assert apt.status is Status.FAIL
    assert "trusted=yes" in apt.summary
    assert apt.hint is not None
    assert "signed-by" in apt.hint


def test_trusted_yes_in_deb822_fails() -> None:
    apt = only_failure(host_findings(apt=ok(BUNDLE_SOURCES + "Trusted: yes\n")))
    assert apt.status is Status.FAIL
    assert apt.metrics == {"outside": 0, "trusted": 1}


def test_an_accept_output_policy_fails() -> None:
    ruleset = nft_ruleset(INPUT_CHAIN, output_chain("accept"), rules=LAN_RULES)
    firewall = only_failure(host_findings(nft=ok(ruleset)))
    assert firewall.status is Status.FAIL
    assert "IPv4 and IPv6 outbound policy is accept" in firewall.summary
    assert firewall.hint is not None
    assert firewall.hint.startswith("outbound policy is accept: the firewall role sets")


def test_a_final_drop_rule_counts_as_default_deny() -> None:
    final_drop = rule([{"counter": {"packets": 0, "bytes": 0}}, {"drop": None}], handle=20)
    ruleset = nft_ruleset(output_chain("accept"), rules=(*LAN_RULES, final_drop))
    findings = host_findings(nft=ok(ruleset))
    assert finding(findings, "outbound firewall").status is Status.PASS


def test_an_unconditional_accept_rule_defeats_a_drop_policy() -> None:
    accept_all = rule([{"counter": {"packets": 3, "bytes": 180}}, {"accept": None}], handle=20)
    ruleset = nft_ruleset(output_chain("drop"), rules=(*LAN_RULES, accept_all))
    assert only_failure(host_findings(nft=ok(ruleset))).status is Status.FAIL


def test_an_ipv4_only_output_chain_leaves_ipv6_open() -> None:
    ruleset = nft_ruleset(output_chain("drop", family="ip"))
    firewall = only_failure(host_findings(nft=ok(ruleset)))
    assert firewall.summary.startswith("outbound firewall: IPv6 outbound policy is accept")


def test_no_nftables_fails() -> None:
    for answer in (
        fails(127, "bash: line 1: nft: command not found\n"),
        FileNotFoundError(2, "No such file or directory"),
    ):
        firewall = only_failure(host_findings(nft=answer))
        assert firewall.status is Status.FAIL
        assert firewall.summary == "outbound firewall: nftables is not installed"
        assert firewall.hint is not None
        assert "default-deny output chain" in firewall.hint


def test_an_empty_ruleset_or_no_output_chain_fails() -> None:
    empty = nft_ruleset()
    firewall = only_failure(host_findings(nft=ok(empty)))
    assert firewall.summary == "outbound firewall: no nftables ruleset loaded"
    firewall = only_failure(host_findings(nft=ok(nft_ruleset(INPUT_CHAIN))))
    assert firewall.summary.startswith("outbound firewall: no output chain")


def test_listing_the_ruleset_without_root_is_an_error_with_a_root_hint() -> None:
    denied = fails(1, "netlink: Error: cache initialization failed: Operation not permitted\n")
    firewall = only_failure(host_findings(nft=denied))
    assert firewall.status is Status.ERROR
    assert firewall.summary == "outbound firewall: not allowed to list the nftables ruleset"
    assert firewall.hint == isolation.ROOT_HINT
    assert "ansible_become: true" in firewall.hint
    assert "/usr/sbin/nft -j list ruleset" in firewall.hint
    assert "ansible_user: root" in firewall.hint
    assert "--local, run the tool under sudo" in firewall.hint


@pytest.mark.parametrize(
    "stderr",
    [
        "sudo: a password is required\n",
        "Sorry, user ops is not allowed to execute '/usr/sbin/nft -j list ruleset' as root on "
        "app1.\n",
        "Sorry, user ops may not run sudo on app1.\n",
        "ops is not in the sudoers file.  This incident will be reported.\n",
    ],
)
def test_sudo_refusing_is_an_error_with_the_sudoers_hint(stderr: str) -> None:
    firewall = only_failure(host_findings(nft=fails(1, stderr)))
    assert firewall.status is Status.ERROR
    assert firewall.summary.startswith("outbound firewall: sudo -n refused to list the nftables")
    assert firewall.hint == (
        "give the ops user passwordless sudo for `/usr/sbin/nft -j list ruleset` only, e.g. the "
        "sudoers line `ops ALL=(root) NOPASSWD: /usr/sbin/nft -j list ruleset` "
        "(visudo -f /etc/sudoers.d/securechat-verify), or connect as root (ansible_user: root)"
    )


@pytest.mark.parametrize(
    ("stderr", "returncode"),
    [
        ("bash: line 1: sudo: command not found\n", 127),
        ("sh: 1: sudo: not found\n", 127),
        ("zsh:1: command not found: sudo\n", 127),
    ],
)
def test_a_missing_sudo_is_not_a_missing_nftables(stderr: str, returncode: int) -> None:
    firewall = only_failure(host_findings(nft=fails(returncode, stderr)))
    assert firewall.status is Status.ERROR
    assert firewall.summary.startswith("outbound firewall: sudo is not installed on the host")
    assert firewall.hint is not None
    assert firewall.hint.startswith("install sudo (apt install sudo, from the bundle) and give")


def test_a_missing_nft_behind_sudo_is_a_missing_nftables() -> None:
    firewall = only_failure(host_findings(nft=fails(1, "sudo: nft: command not found\n")))
    assert firewall.status is Status.FAIL
    assert firewall.summary == "outbound firewall: nftables is not installed"


def test_an_unreachable_ssh_host_is_one_error() -> None:
    refused = fails(255, "ssh: connect to host 10.0.0.10 port 22: Connection refused\r\n")
    runner = FakeRunner({DEFAULT_V4: refused})
    host = Host("app1", "10.0.0.10", runner=runner)
    (error,) = CHECK.run(Target(url=URL, hosts=(host,)))
    assert error.status is Status.ERROR
    assert "Connection refused" in error.summary
    assert runner.calls == [DEFAULT_V4]


def test_hosts_without_a_runner_are_skipped() -> None:
    hosts = (Host("db1", "10.0.0.11", frozenset({"db"})),)
    (skip,) = CHECK.run(Target(url=URL, hosts=hosts))
    assert skip.status is Status.SKIP
    assert skip.summary == "no SSH access in the inventory; use -i with SSH or --local"
    assert skip.target == "db1"


def test_only_reading_commands_are_run_and_only_nft_needs_root() -> None:
    runner = FakeRunner(CLEAN)
    isolation.check_host(Host("app1", "10.0.0.10", runner=runner), runner, 5.0)
    assert runner.calls == list(CLEAN)
    assert runner.privileged == [NFT]


# --- the real routing table of a network namespace -----------------------------------------


class NetnsRunner:
    """LocalRunner inside a network namespace: `ip netns exec NS argv`."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.description = f"netns {namespace}"

    def run(self, argv: list[str], timeout: float, *, privileged: bool = False) -> CommandResult:
        # The namespace tests run as root already: privileged needs nothing more.
        return LocalRunner().run(
            ["ip", "netns", "exec", self.namespace, *argv], timeout, privileged=privileged
        )


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=10)


@pytest.fixture
def namespace() -> Iterator[str]:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("network namespaces need root and iproute2")
    name = f"scv-{secrets.token_hex(4)}"
    try:
        _ip("netns", "add", name)
    except subprocess.CalledProcessError as error:
        pytest.skip(f"`ip netns add` is not available here: {error.stderr.strip()}")
    try:
        _ip("-n", name, "link", "set", "lo", "up")
        yield name
    finally:
        # Deleting the namespace destroys the veth end inside it, and with it its peer.
        subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)


def route_findings(host: Host, runner: NetnsRunner) -> list[Finding]:
    routes = [default_routes(host, runner, 10)]
    routes += [outside_route(host, runner, 10, a) for a in isolation.OUTSIDE_ADDRESSES]
    return routes


@pytest.mark.netns
def test_route_sub_checks_in_a_network_namespace(namespace: str) -> None:
    runner = NetnsRunner(namespace)
    host = Host("netns", "10.213.77.2", runner=runner)
    isolated = route_findings(host, runner)
    assert [f.status for f in isolated] == [Status.PASS] * 4, isolated
    assert "none (no route)" in isolated[1].summary

    # A default route via a private peer address. The host end of the veth stays down and
    # nothing forwards: the route exists in the table only, and no packet is sent.
    tag = namespace.removeprefix("scv-")[:6]
    inside, outside = f"scv{tag}b", f"scv{tag}a"
    try:
        _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
        _ip("link", "set", inside, "netns", namespace)
        _ip("-n", namespace, "addr", "add", "10.213.77.2/24", "dev", inside)
        _ip("-n", namespace, "link", "set", inside, "up")
        _ip("-n", namespace, "route", "add", "default", "via", "10.213.77.1")
        routed = route_findings(host, runner)
    finally:
        subprocess.run(["ip", "link", "del", outside], check=False, capture_output=True)
    default, to_1111, to_8888, to_v6 = routed
    assert default.status is Status.FAIL
    assert default.summary == f"default route: default via 10.213.77.1 dev {inside}"
    assert default.hint is not None
    assert "netplan" in default.hint
    assert to_1111.status is Status.FAIL
    assert f"1.1.1.1 via 10.213.77.1 dev {inside}" in to_1111.summary
    assert to_8888.status is Status.FAIL
    assert to_v6.status is Status.PASS  # no IPv6 default route was added


def test_this_machine_has_a_default_route_and_fails() -> None:
    """LocalRunner on the machine running the tests: only the routing table is read."""
    table = LocalRunner().run(["ip", "-j", "route", "show", "default"], 10)
    if table.returncode != 0 or table.stdout.strip() in ("", "[]"):
        pytest.skip("this machine has no IPv4 default route")
    host = Host("local", "127.0.0.1", runner=LocalRunner())
    findings = CHECK.run(Target(url=URL, hosts=(host,), timeout=10))
    default = finding(findings, "default route")
    assert default.status is Status.FAIL
    assert default.target == "local"
    assert finding(findings, "route to 1.1.1.1").status is Status.FAIL
