"""`tls`: the chain validates against the site CA, the certificate covers every name clients use
and is not about to expire, TLS 1.0/1.1 are refused, and HTTPS answers carry HSTS."""

from __future__ import annotations

import datetime as dt
import http.client
import ipaddress
import re
import ssl
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509

from securechat_verify.checks import Check
from securechat_verify.net import (
    chain_only_context,
    describe,
    http_request,
    legacy_tls_context,
    tls_handshake,
    unverified_context,
)
from securechat_verify.result import (
    Finding,
    Severity,
    errored,
    failed,
    passed,
    skipped,
    warned,
)
from securechat_verify.target import Target

EXPIRY_WARNING_DAYS = 30
HSTS_MIN_SECONDS = 180 * 86400
HSTS_HEADER = 'add_header Strict-Transport-Security "max-age=31536000; includeSubDomains" always;'

# OpenSSL X509_V_ERR_* codes that need their own advice.
_NOT_YET_VALID = 9
_EXPIRED = 10
_SELF_SIGNED_LEAF = 18
_UNTRUSTED_ISSUER = frozenset({2, 19, 20, 21})
_INVALID_PURPOSE = 26

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


# --- names --------------------------------------------------------------------------------


def is_loopback_host(hostname: str) -> bool:
    """Hosts whose plain-http pages browsers still treat as secure contexts (W3C Secure
    Contexts: localhost, *.localhost, 127.0.0.0/8 and ::1)."""
    name = hostname.rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    address = _ip(name)
    return address is not None and address.is_loopback


def _ip(name: str) -> IpAddress | None:
    try:
        return ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return None


def _ascii_name(name: str) -> str | None:
    name = name.rstrip(".").lower()
    try:
        return name if name.isascii() else name.encode("idna").decode("ascii")
    except UnicodeError:
        return None


def dns_name_matches(pattern: str, hostname: str) -> bool:
    """RFC 6125 §6.4 as browsers apply it: exact (case-insensitive) match, or a wildcard that is
    the whole left-most label, stands for exactly one label, and has at least two labels after
    it (`*.chat.lan` covers `a.chat.lan`, never `chat.lan`, `a.b.chat.lan`; `*.lan` covers
    nothing)."""
    pattern = pattern.rstrip(".").lower()
    host = _ascii_name(hostname)
    if not pattern or not host or _ip(host) is not None:
        return False
    if "*" not in pattern:
        return pattern == host
    if not pattern.startswith("*."):
        return False
    suffix = pattern[2:]
    if "*" in suffix or "." not in suffix:
        return False
    label, _, rest = host.partition(".")
    return bool(label) and rest == suffix


@dataclass(frozen=True)
class SubjectAltNames:
    dns: tuple[str, ...]
    ips: tuple[IpAddress, ...]
    present: bool

    @classmethod
    def of(cls, certificate: x509.Certificate) -> SubjectAltNames:
        try:
            extension = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        except x509.ExtensionNotFound:
            return cls((), (), present=False)
        names = extension.value
        ips = tuple(
            ip
            for ip in names.get_values_for_type(x509.IPAddress)
            if isinstance(ip, ipaddress.IPv4Address | ipaddress.IPv6Address)
        )
        return cls(tuple(names.get_values_for_type(x509.DNSName)), ips, present=True)

    def covers(self, name: str) -> bool:
        address = _ip(name)
        if address is not None:
            return address in self.ips  # IP addresses only match iPAddress entries
        return any(dns_name_matches(pattern, name) for pattern in self.dns)

    def describe(self) -> str:
        entries = [f"DNS:{name}" for name in self.dns] + [f"IP:{ip}" for ip in self.ips]
        return ", ".join(entries) or "nothing"


def _san_spec(names: Sequence[str]) -> str:
    return ",".join(f"IP:{_ip(n)}" if _ip(n) is not None else f"DNS:{n}" for n in names)


def name_findings(certificate: x509.Certificate, names: Sequence[str]) -> list[Finding]:
    sans = SubjectAltNames.of(certificate)
    reissue = (
        "reissue the certificate from the site CA with a subjectAltName for every name and "
        f"address clients use (e.g. openssl … -addext 'subjectAltName={_san_spec(names)}'), "
        "then reload the front"
    )
    if not sans.present:
        return [
            failed(
                "the certificate has no subjectAltName: browsers ignore the Common Name",
                reissue,
            )
        ]
    findings: list[Finding] = []
    for name in names:
        if sans.covers(name):
            findings.append(passed(f"the certificate covers {name}", target=name))
        else:
            findings.append(
                failed(
                    f"the certificate does not cover {name} (it covers {sans.describe()})",
                    reissue,
                    target=name,
                )
            )
    return findings


# --- validity -----------------------------------------------------------------------------


def expiry_finding(certificate: x509.Certificate, now: dt.datetime | None = None) -> Finding:
    now = now or dt.datetime.now(dt.UTC)
    not_before = certificate.not_valid_before_utc
    not_after = certificate.not_valid_after_utc
    days_left = round((not_after - now).total_seconds() / 86400, 1)
    until = not_after.strftime("%Y-%m-%d %H:%M UTC")
    renew = "renew it from the site CA, install it on the front and reload (nginx -s reload)"
    if now < not_before:
        return failed(
            f"the certificate is not valid before {not_before:%Y-%m-%d %H:%M} UTC",
            "check the clocks of this machine, the server and the CA (timedatectl, NTP), or "
            "reissue the certificate with a start date in the past",
            days_left=days_left,
        )
    if now >= not_after:
        return failed(f"the certificate expired on {until}", renew, days_left=days_left)
    if days_left < EXPIRY_WARNING_DAYS:
        return warned(
            f"the certificate expires in {days_left} days ({until})",
            f"{renew} before {until}",
            days_left=days_left,
        )
    return passed(f"the certificate is valid until {until}", days_left=days_left)


def chain_hint(error: ssl.SSLCertVerificationError, target: Target) -> str:
    code = error.verify_code
    ca = f"the site CA {target.ca_file}" if target.ca_file else "a CA this machine trusts"
    if code == _EXPIRED:
        return (
            "the certificate (or a CA of its chain) has expired: renew it from the site CA, "
            "install it on the front and reload"
        )
    if code == _NOT_YET_VALID:
        return "the certificate is not valid yet: check the clocks (timedatectl, NTP)"
    if code == _SELF_SIGNED_LEAF:
        return (
            "the front serves a self-signed certificate: install one issued by the site CA, "
            "or give the CA that clients trust (--ca)"
        )
    if code in _UNTRUSTED_ISSUER:
        return (
            f"the certificate is not issued by {ca}: give the CA that clients trust (--ca), or "
            "reissue the certificate from it; if an intermediate CA signs it, make the front "
            "send the full chain (nginx ssl_certificate = certificate followed by intermediates)"
        )
    if code == _INVALID_PURPOSE:
        return "reissue the certificate with extendedKeyUsage serverAuth"
    return f"fix the certificate chain so that it leads from the server certificate to {ca}"


# --- protocol versions and headers ----------------------------------------------------------


def legacy_protocols_finding(target: Target) -> Finding:
    context, why = legacy_tls_context()
    label = f"{target.hostname}:{target.port}"
    if context is None:
        return skipped(f"TLS 1.0/1.1 refusal not checked: {why}", target=label)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            session = tls_handshake(
                target.hostname, target.port, context, target.timeout, target.hostname
            )
    except ssl.SSLError as error:
        return passed(f"TLS 1.0 and 1.1 are refused ({describe(error)})", target=label)
    except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError) as error:
        return passed(f"TLS 1.0 and 1.1 are refused (connection closed: {error})", target=label)
    except OSError as error:
        return errored(
            f"the TLS 1.0/1.1 probe got no answer: {describe(error)}",
            "run again; if it persists, check the connectivity findings for this port",
            target=label,
        )
    return failed(
        f"the server accepts {session.version} ({session.cipher})",
        "allow TLS 1.2 and 1.3 only: nginx `ssl_protocols TLSv1.2 TLSv1.3;` in every server "
        "block listening with ssl, then reload",
        target=label,
        tls_version=session.version,
    )


_MAX_AGE = re.compile(r"(?:^|;)\s*max-age\s*=\s*\"?(\d+)\"?\s*(?:;|$)", re.IGNORECASE)


def hsts_finding(target: Target, context: ssl.SSLContext) -> Finding:
    hint = (
        "the server adds HSTS only to requests it sees as HTTPS: behind nginx send "
        "`X-Forwarded-Proto $scheme` from an address listed in SECURECHAT_FORWARDED_ALLOW_IPS "
        f"(--forwarded-allow-ips), or add it at the front: {HSTS_HEADER}"
    )
    try:
        response = http_request(target.url, context=context, timeout=target.timeout)
    except (OSError, ssl.SSLError, http.client.HTTPException) as error:
        return errored(
            f"could not read an HTTPS response from {target.url}: {describe(error)}",
            "check the front answers HTTPS requests on the chat's URL",
            target=target.url,
        )
    value = response.header("strict-transport-security")
    if not value:
        return failed(
            f"no Strict-Transport-Security header on {target.url} (HTTP {response.status})",
            hint,
            target=target.url,
        )
    match = _MAX_AGE.search(value)
    max_age = int(match.group(1)) if match else 0
    if max_age <= 0:
        return failed(
            f"Strict-Transport-Security without a positive max-age: {value}",
            f"send a max-age of a year: {HSTS_HEADER}",
            target=target.url,
        )
    if max_age < HSTS_MIN_SECONDS:
        return warned(
            f"Strict-Transport-Security max-age is only {max_age} s: {value}",
            f"send a max-age of a year: {HSTS_HEADER}",
            target=target.url,
            hsts_max_age=max_age,
        )
    return passed(f"Strict-Transport-Security: {value}", target=target.url, hsts_max_age=max_age)


# --- the check ------------------------------------------------------------------------------


def run(target: Target) -> list[Finding]:
    if not target.is_https:
        if is_loopback_host(target.hostname):
            return [
                skipped(
                    f"{target.url}: localhost over plain http is a secure context for browsers; "
                    "no TLS to check"
                )
            ]
        return [
            failed(
                f"{target.url} is not https",
                "serve the chat through the TLS front (nginx with the site certificate) and "
                "give its https:// URL: browsers expose Web Crypto only to https:// pages and "
                "http://localhost, and tokens must not cross the network in clear",
                target=target.url,
            )
        ]
    findings: list[Finding] = []
    if target.ca_file is None:
        findings.append(
            warned(
                "no site CA given: the chain is checked against this machine's trust store",
                "give the site CA that clients trust (--ca FILE) to check the chain they see",
            )
        )
    try:
        context = chain_only_context(target.ca_file)
    except (OSError, ssl.SSLError) as error:
        return [
            errored(
                f"cannot load the site CA {target.ca_file}: {describe(error)}",
                "give a readable PEM file holding the CA certificate",
            )
        ]
    host, port, label = target.hostname, target.port, f"{target.hostname}:{target.port}"
    trust = f"the site CA ({target.ca_file.name})" if target.ca_file else "the system trust store"
    try:
        session = tls_handshake(host, port, context, target.timeout, host)
        findings.append(passed(f"the certificate chain validates against {trust}", target=label))
        chain_ok = True
    except ssl.SSLCertVerificationError as error:
        findings.append(
            failed(
                f"the certificate chain does not validate against {trust}: {describe(error)}",
                chain_hint(error, target),
                target=label,
            )
        )
        chain_ok = False
        try:  # read what the server presents, to say what is wrong with it
            session = tls_handshake(host, port, unverified_context(), target.timeout, host)
        except (OSError, ssl.SSLError) as again:
            findings.append(
                errored(
                    f"could not read the server's certificate: {describe(again)}",
                    "run again; see the connectivity findings",
                    target=label,
                )
            )
            return findings
    except (OSError, ssl.SSLError) as error:
        findings.append(
            failed(
                f"no TLS handshake with {label}: {describe(error)}",
                f"port {port} must be served by the TLS front (nginx `listen {port} ssl;` with "
                "the site certificate); see the connectivity findings",
                target=label,
            )
        )
        return findings

    findings.append(
        passed(
            f"negotiated {session.version} with {session.cipher} ({session.handshake_ms} ms)",
            target=label,
            tls_version=session.version,
            cipher=session.cipher,
            handshake_ms=session.handshake_ms,
        )
    )
    if session.certificate_der is None:
        findings.append(
            failed("the server presented no certificate", "configure ssl_certificate", label)
        )
    else:
        try:
            certificate = x509.load_der_x509_certificate(session.certificate_der)
        except ValueError as error:
            findings.append(
                failed(
                    f"the server's certificate cannot be parsed: {error}",
                    "reissue the certificate from the site CA",
                    target=label,
                )
            )
        else:
            findings.extend(name_findings(certificate, target.names))
            findings.append(expiry_finding(certificate))
    findings.append(legacy_protocols_finding(target))
    findings.append(hsts_finding(target, context if chain_ok else unverified_context()))
    return findings


CHECK = Check(
    id="tls",
    title="TLS: chain, names, expiry, protocol versions, HSTS",
    severity=Severity.CRITICAL,
    run=run,
)
