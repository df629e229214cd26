"""`webcrypto`: the chat page is a secure context, its CSP names no remote source, and (with
Chromium) every Web Crypto primitive of the protocol works in the deployed page."""

from __future__ import annotations

import base64
import hashlib
import http.client
import ipaddress
import socket
from importlib import resources
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from playwright.sync_api import sync_playwright

from securechat_verify.checks import Check
from securechat_verify.net import describe, http_request, target_context
from securechat_verify.result import Finding, Severity, errored, failed, passed, skipped
from securechat_verify.target import Target

# CSP source expressions that name nothing remote.
LOCAL_SOURCES = {"'self'", "'none'", "blob:", "data:", "'strict-dynamic'", "'report-sample'"}
UNSAFE_SOURCES = {"'unsafe-inline'", "'unsafe-eval'", "'unsafe-hashes'", "'wasm-unsafe-eval'"}
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",  # the tool may run as root on a host
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--no-default-browser-check",
]
HTTP_HINT = (
    "browsers give crypto.subtle only to secure contexts: serve the chat over https "
    "(the TLS front) and have clients trust the site CA, or use http://localhost"
)


def run(target: Target) -> list[Finding]:
    findings = [_secure_context(target)]
    page = _fetch_page(target)
    if isinstance(page, Finding):
        return [*findings, page]
    findings.append(_csp(page.get("content-security-policy"), target))
    findings.append(_browser_probes(target))
    return findings


def _secure_context(target: Target) -> Finding:
    if target.is_https:
        return passed("https: a secure context once the certificate is trusted", target.url)
    if _is_loopback(target.hostname):
        return passed("http to a loopback address is a secure context", target.url)
    return failed(f"plain http to {target.hostname} is not a secure context", HTTP_HINT, target.url)


def _is_loopback(hostname: str) -> bool:
    """Browsers treat localhost, *.localhost, 127.0.0.0/8 and ::1 as potentially trustworthy."""
    if hostname == "localhost" or hostname.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def _fetch_page(target: Target) -> dict[str, str] | Finding:
    try:
        response = http_request(target.url, context=target_context(target), timeout=target.timeout)
    except (OSError, http.client.HTTPException) as error:
        return errored(
            f"could not load the chat page: {describe(error)}",
            "run the connectivity and tls checks first; fix what they report",
            target.url,
        )
    return response.headers


def _csp(policy: str | None, target: Target) -> Finding:
    if not policy:
        return failed(
            "the page has no Content-Security-Policy",
            "the server sends a strict CSP on every response; make sure the proxy does not drop it",
            target.url,
        )
    remote: list[str] = []
    unsafe: list[str] = []
    for directive in policy.split(";"):
        name, *sources = directive.split()
        for source in sources:
            if source.lower() in UNSAFE_SOURCES:
                unsafe.append(f"{name} {source}")
            elif source.lower() not in LOCAL_SOURCES and not source.startswith(("'nonce-", "'sha")):
                remote.append(f"{name} {source}")
    if remote or unsafe:
        return failed(
            "the CSP allows " + ", ".join(remote + unsafe),
            "remove remote and unsafe sources: everything is served by the chat server itself",
            target.url,
        )
    return passed("the CSP names no remote source and allows no inline script", target.url)


def _spki_pin(target: Target) -> str | None:
    """The server key's SPKI hash, so Chromium trusts exactly the certificate the tls check
    validated against the site CA (Chromium does not read our CA file)."""
    if not target.is_https:
        return None
    context = target_context(target)
    if context is None:
        return None
    address = (target.hostname, target.port)
    with (
        socket.create_connection(address, timeout=target.timeout) as raw,
        context.wrap_socket(raw, server_hostname=target.hostname) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    if der is None:
        return None
    public = x509.load_der_x509_certificate(der).public_key()
    spki = public.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


def _browser_probes(target: Target) -> Finding:
    chromium = target.chromium
    if chromium is None or not Path(chromium).exists():
        return skipped("Chromium is not installed here: in-browser Web Crypto probes skipped")
    try:
        report = _run_probes(target, Path(chromium))
    except Exception as error:
        return errored(
            f"could not run Chromium: {type(error).__name__}: {error}",
            "check that /usr/bin/chromium starts (`chromium --headless=new --version`)",
            target.url,
        )
    timings = {f"{name}_ms": value for name, value in report.get("timings", {}).items()}
    if not report.get("isSecureContext") or not report.get("subtle"):
        return failed(
            "the page is not a secure context in Chromium", HTTP_HINT, target.url, **timings
        )
    if report.get("errors"):
        problems = ", ".join(f"{k}: {v}" for k, v in report["errors"].items())
        return failed(
            f"Web Crypto probes failed: {problems}",
            "use a current Chromium or Firefox; the protocol needs P-256 ECDH/ECDSA, AES-GCM, "
            "PBKDF2 and HKDF",
            target.url,
            **timings,
        )
    pbkdf2 = report["timings"].get("pbkdf2_sha256_600k")
    return passed(
        f"isSecureContext, all Web Crypto probes pass (PBKDF2 600k: {pbkdf2} ms)",
        target.url,
        **timings,
    )


def _run_probes(target: Target, chromium: Path) -> dict[str, Any]:
    probe = resources.files("securechat_verify").joinpath("probes/webcrypto.js").read_text()
    args = list(CHROMIUM_ARGS)
    pin = _spki_pin(target)
    if pin:
        args.append(f"--ignore-certificate-errors-spki-list={pin}")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=args)
        try:
            page = browser.new_page()
            page.goto(target.url, timeout=target.timeout * 1000, wait_until="load")
            result: dict[str, Any] = page.evaluate(probe)
            return result
        finally:
            browser.close()


CHECK = Check(
    id="webcrypto",
    title="Web Crypto in a secure context, strict CSP",
    severity=Severity.CRITICAL,
    run=run,
)
