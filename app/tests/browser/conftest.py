"""Browser tests: the static ES modules run in a real headless Chromium (Playwright, sync API)
against the real server, so they load exactly as the browser client loads them: same origin,
same Content-Security-Policy, a secure context (http://localhost)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from securechat.db.migrate import upgrade
from tests.conftest import RunningServer, server_environment, start_server, stop_server

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Modules under test, bound to these names in run_js() bodies.
MODULES = {
    "enc": "/js/encoding.js",
    "c": "/js/crypto.js",
    "files": "/js/files.js",
    "sha": "/js/sha256.js",
}
# A page of the server's origin that does not depend on the rest of the browser client
# (index.html and main.js are written by others and may change): the health JSON.
BLANK_PATH = "/api/v1/health"

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright


@dataclass(frozen=True)
class WebServer:
    """The real server over plain http, addressed as localhost (a secure context)."""

    url: str
    server: RunningServer


# Module scope, not session: while Playwright's sync API is started, its event loop counts as
# running on the main thread, so the asyncio tests of other directories could not run their
# own loops until it is stopped. One Chromium per test module costs about a second.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    """Playwright's sync API; every test of this directory is skipped without Chromium."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed")
    sync_api = pytest.importorskip("playwright.sync_api")
    manager = sync_api.sync_playwright().start()
    try:
        yield manager
    finally:
        manager.stop()


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    instance = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    try:
        yield instance
    finally:
        instance.close()


@pytest.fixture(scope="module")
def web_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebServer]:
    directory = tmp_path_factory.mktemp("browser-server")
    database_url = f"sqlite:///{directory / 'securechat.db'}"
    upgrade(database_url)  # what `securechat db upgrade` does
    env = server_environment(database_url, SECURECHAT_UPLOAD_DIR=str(directory / "uploads"))
    running = start_server(env, directory / "server.log")
    try:
        # start_server listens on 127.0.0.1; "localhost" is a secure context for Web Crypto
        # and resolves to the loopback address in Chromium.
        port = running.url.rsplit(":", 1)[1]
        yield WebServer(url=f"http://localhost:{port}", server=running)
    finally:
        stop_server(running)


def _is_csp_violation(text: str) -> bool:
    return "Content Security Policy" in text or "Content-Security-Policy" in text


@pytest.fixture
def page(browser: Browser, web_server: WebServer) -> Iterator[Page]:
    """A fresh context and page on the server's origin; fails the test on console errors
    (CSP violations included) and uncaught page errors."""
    context = browser.new_context()
    tab = context.new_page()
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        # The browser's own request for /favicon.ico (there is none) is not the code's fault.
        if message.location.get("url", "").endswith("/favicon.ico"):
            return
        if message.type == "error" or _is_csp_violation(message.text):
            problems.append(f"console {message.type}: {message.text} {message.location}")

    tab.on("console", on_console)
    tab.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    response = tab.goto(web_server.url + BLANK_PATH)
    assert response is not None
    assert response.ok
    # The modules run under the server's real policy: no eval, scripts from 'self' only.
    csp = response.headers.get("content-security-policy", "")
    assert "script-src 'self'" in csp
    assert "unsafe-eval" not in csp
    assert tab.evaluate("window.isSecureContext && !!crypto.subtle")
    try:
        yield tab
    finally:
        context.close()
    assert not problems, problems


def run_module(page: Page, module_path: str, body: str, arg: Any = None) -> Any:
    """Run ``body`` (an async function body) with the module at ``module_path`` as ``m`` and
    ``arg`` as ``arg``; return what it returns (JSON-serialisable values).

    The page's CSP forbids eval, so the body is not passed as a string to the page: it is part
    of the function Playwright evaluates (which the CSP does not govern), and the module is
    loaded with a same-origin dynamic import (allowed by ``script-src 'self'``).
    """
    source = f"async (arg) => {{ const m = await import({json.dumps(module_path)}); {body} }}"
    return page.evaluate(source, arg)


def run_js(page: Page, body: str, arg: Any = None) -> Any:
    """Like run_module, with every module under test bound: enc, c, files, sha."""
    imports = " ".join(
        f"const {name} = await import({json.dumps(path)});" for name, path in MODULES.items()
    )
    return page.evaluate(f"async (arg) => {{ {imports} {body} }}", arg)


@pytest.fixture
def js(page: Page) -> Callable[..., Any]:
    """``js(body, arg)``: run_js bound to this test's page."""

    def call(body: str, arg: Any = None) -> Any:
        return run_js(page, body, arg)

    return call
