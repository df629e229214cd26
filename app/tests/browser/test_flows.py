"""End-to-end flows of the browser client's user interface, in real Chromium against the real
server: registration, direct and group conversations, typing, read receipts, reactions,
encrypted files, blocking, safety numbers, the admin dashboard and the secure-context
explanation. Screenshots of the main screens go to artifacts/screenshots/."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import struct
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from securechat.admin import create_admin
from securechat.client.chat import ChatClient
from securechat.settings import Settings

if TYPE_CHECKING:
    from playwright.sync_api import (
        Browser,
        BrowserContext,
        ConsoleMessage,
        Locator,
        Page,
        WebSocketRoute,
    )

    from tests.browser.conftest import WebServer

pytestmark = pytest.mark.slow

SCREENSHOTS = Path(__file__).resolve().parents[3] / "artifacts" / "screenshots"
PASSWORD = "correct horse battery staple"
TIMEOUT = 20_000
PHONE = {"width": 390, "height": 844}

RESOURCE_ERROR = re.compile(
    r"^Failed to load resource: the server responded with a status of (\d+)"
)


class Users:
    """Browser contexts, one per user, on the chat; collects console errors, CSP violations
    and uncaught page errors of all of them. HTTP refusals a test provokes on purpose (a wrong
    password…) are declared with `expect_refusal`; Chromium logs them as console errors."""

    def __init__(self, browser: Browser, web_server: WebServer) -> None:
        self.browser = browser
        self.web_server = web_server
        self.contexts: list[BrowserContext] = []
        self.problems: list[str] = []
        self.refusals: set[tuple[int, str]] = set()

    def expect_refusal(self, status: int, path: str) -> None:
        self.refusals.add((status, path))

    def _watch(self, tab: Page) -> None:
        def on_console(message: ConsoleMessage) -> None:
            url = message.location.get("url", "")
            if url.endswith("/favicon.ico"):
                return
            refused = RESOURCE_ERROR.match(message.text)
            if refused and any(
                int(refused.group(1)) == status and url.endswith(path)
                for status, path in self.refusals
            ):
                return
            if message.type == "error" or "Content Security Policy" in message.text:
                self.problems.append(f"console {message.type}: {message.text} {url}")

        tab.on("console", on_console)
        tab.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))

    def open(self, *, viewport: dict[str, int] | None = None, init_script: str = "") -> Page:
        context = self.browser.new_context(viewport=viewport or {"width": 1280, "height": 800})
        context.set_default_timeout(TIMEOUT)
        if init_script:
            context.add_init_script(init_script)
        self.contexts.append(context)
        tab = context.new_page()
        self._watch(tab)
        tab.goto(self.web_server.url + "/")
        return tab

    def close(self) -> None:
        for context in self.contexts:
            context.close()


def expect(locator: Locator | Page) -> Any:
    from playwright.sync_api import expect as playwright_expect

    playwright_expect.set_options(timeout=TIMEOUT)
    return playwright_expect(locator)


@pytest.fixture
def users(browser: Browser, web_server: WebServer) -> Iterator[Users]:
    opened = Users(browser, web_server)
    yield opened
    opened.close()
    assert not opened.problems, opened.problems


def shot(tab: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def register(tab: Page, username: str, password: str = PASSWORD) -> None:
    tab.get_by_role("tab", name="Create account").click()
    form = tab.get_by_role("form", name="Create an account")
    form.get_by_label("Username").fill(username)
    form.get_by_label("Password", exact=True).fill(password)
    form.get_by_label("Repeat the password").fill(password)
    form.get_by_role("button", name="Create account").click()
    expect(tab.get_by_role("button", name="New chat")).to_be_visible()


def log_in(tab: Page, username: str, password: str = PASSWORD) -> None:
    form = tab.get_by_role("form", name="Log in")
    form.get_by_label("Username").fill(username)
    form.get_by_label("Password").fill(password)
    form.get_by_role("button", name="Log in").click()
    expect(tab.get_by_role("button", name="New chat")).to_be_visible()


def start_direct(tab: Page, other: str) -> None:
    tab.get_by_role("button", name="New chat").click()
    dialog = tab.get_by_role("dialog", name="New chat")
    dialog.get_by_label("Search users").fill(other)
    dialog.get_by_role("button", name=f"Chat with {other}").click()
    expect(tab.locator(".conversation-title")).to_have_text(other)


def open_conversation(tab: Page, title: str) -> None:
    tab.locator(".conversation-link", has_text=title).click()
    expect(tab.locator(".conversation-title")).to_have_text(title)


def send(tab: Page, text: str) -> None:
    box = tab.get_by_label("Message", exact=True)
    box.fill(text)
    box.press("Enter")


def message(tab: Page, text: str) -> Locator:
    return tab.locator("li.message", has_text=text)


def png_bytes(width: int = 40, height: int = 30) -> bytes:
    """A small valid PNG (a colour gradient) without any imaging library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    rows = b"".join(
        b"\x00" + b"".join(bytes((x * 6, y * 8, 160)) for x in range(width)) for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def database_dump(web_server: WebServer) -> bytes:
    """Every value of every table of the server's SQLite database, as bytes."""
    url = web_server.server.env["SECURECHAT_DATABASE_URL"]
    path = url.removeprefix("sqlite:///")
    connection = sqlite3.connect(path)
    try:
        return "\n".join(connection.iterdump()).encode()
    finally:
        connection.close()


def assert_only_ciphertext(web_server: WebServer, secrets: list[str]) -> None:
    dump = database_dump(web_server)
    assert b"INSERT INTO" in dump
    for secret in secrets:
        assert secret.encode() not in dump, f"plaintext {secret!r} found in the database"
    uploads = Path(web_server.server.env["SECURECHAT_UPLOAD_DIR"])
    for blob in uploads.rglob("*"):
        if blob.is_file():
            content = blob.read_bytes()
            for secret in secrets:
                assert secret.encode() not in content, f"plaintext {secret!r} in {blob}"


UNLABELLED_CONTROLS = """() => [...document.querySelectorAll(
    "button, input, select, textarea, a[href], [role=tab], [role=switch]")]
  .filter((el) => el.type !== "hidden" && el.getClientRects().length)
  .filter((el) => {
    const byId = (el.getAttribute("aria-labelledby") || "").split(" ").filter(Boolean)
      .map((id) => document.getElementById(id)?.textContent.trim()).join("");
    const byLabel = [...(el.labels || [])].map((label) => label.textContent.trim()).join("");
    return !(el.getAttribute("aria-label") || byId || byLabel || el.textContent.trim() || el.title);
  })
  .map((el) => el.tagName + "." + el.className)"""


def assert_controls_labelled(tab: Page) -> None:
    assert tab.evaluate(UNLABELLED_CONTROLS) == []


def rotate_keys(web_server: WebServer, username: str) -> None:
    """Give `username` new identity keys with the reference client (a key change)."""

    async def run() -> None:
        client = ChatClient(web_server.url)
        try:
            await client.login(username, PASSWORD)
            await client.rotate_identity(PASSWORD)
        finally:
            await client.close()

    # Playwright's sync API owns this thread's event loop; the async client runs in another.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, run()).result(timeout=60)


def test_secure_context_explanation(users: Users) -> None:
    """Without crypto.subtle (plain http to a LAN address) the page explains the fix."""
    tab = users.open(init_script="delete Crypto.prototype.subtle;")
    heading = tab.get_by_role("heading", name="This page cannot encrypt your messages yet")
    expect(heading).to_be_visible()
    expect(tab.get_by_text("https://", exact=False).first).to_be_visible()
    expect(tab.get_by_text("site CA certificate")).to_be_visible()
    expect(tab.get_by_text("localhost", exact=False).first).to_be_visible()
    shot(tab, "insecure-context")


def test_registration_rules_and_login_errors(users: Users) -> None:
    users.expect_refusal(401, "/api/v1/auth/login")
    users.expect_refusal(409, "/api/v1/auth/register")
    tab = users.open()
    expect(tab.get_by_role("form", name="Log in")).to_be_visible()
    shot(tab, "login")
    tab.get_by_role("tab", name="Create account").click()
    form = tab.get_by_role("form", name="Create an account")
    expect(form.get_by_text("3 to 32 characters")).to_be_visible()
    form.get_by_label("Username").fill("-bad")
    expect(form.get_by_text("Start with a letter or a digit.")).to_be_visible()
    form.get_by_label("Password", exact=True).fill("short")
    expect(form.get_by_text("Use at least 12 characters (now 5).")).to_be_visible()
    form.get_by_label("Password", exact=True).fill("aaaaaaaaaaaa")
    expect(form.get_by_text("Many repeated characters.")).to_be_visible()
    form.get_by_label("Password", exact=True).fill(PASSWORD)
    expect(form.locator(".strength-text")).to_contain_text("bits of entropy")
    shot(tab, "register")
    register(tab, "frank")
    tab.get_by_role("button", name="Log out").click()
    # A wrong password answers invalid_credentials, shown next to the form.
    form = tab.get_by_role("form", name="Log in")
    form.get_by_label("Username").fill("frank")
    form.get_by_label("Password").fill("not the right password")
    form.get_by_role("button", name="Log in").click()
    expect(form.get_by_role("alert")).to_have_text("Wrong username or password.")
    # Taking an existing username answers username_taken.
    tab.get_by_role("tab", name="Create account").click()
    form = tab.get_by_role("form", name="Create an account")
    form.get_by_label("Username").fill("frank")
    form.get_by_label("Password", exact=True).fill(PASSWORD)
    form.get_by_label("Repeat the password").fill(PASSWORD)
    form.get_by_role("button", name="Create account").click()
    expect(form.get_by_role("alert")).to_contain_text("already taken")


def test_direct_conversation(users: Users, web_server: WebServer, tmp_path: Path) -> None:
    alice = users.open()
    bob = users.open()
    register(alice, "alice")
    register(bob, "bob")

    start_direct(alice, "bob")
    send(alice, "Hello Bob, canary-direct-one")
    expect(message(alice, "canary-direct-one").locator(".delivery")).to_have_text("Sent")

    # Bob sees the conversation with an unread count, opens it, and reads the message.
    link = bob.locator(".conversation-link", has_text="alice")
    expect(link.locator(".unread-badge")).to_have_text("1")
    expect(bob).to_have_title(re.compile(r"^\(1\) "))
    open_conversation(bob, "alice")
    expect(message(bob, "canary-direct-one")).to_be_visible()
    expect(message(alice, "canary-direct-one").locator(".delivery")).to_have_text("Read")
    expect(link.locator(".unread-badge")).to_have_text("")

    # Presence and typing.
    expect(alice.locator(".conversation-subtitle")).to_have_text("Online")
    bob.get_by_label("Message", exact=True).press_sequentially("Hi Al", delay=30)
    expect(alice.locator(".typing-line")).to_have_text("bob is typing…")
    # Enter sends, Shift+Enter starts a new line.
    box = bob.get_by_label("Message", exact=True)
    box.fill("")
    box.type("Hi Alice, canary-direct-two")
    box.press("Shift+Enter")
    box.type("second line")
    box.press("Enter")
    expect(box).to_have_value("")
    expect(message(alice, "canary-direct-two")).to_contain_text("second line")
    expect(alice.locator(".typing-line")).to_have_text("")

    # Reactions: add from the picker, counts on both sides, toggle off by clicking the chip.
    bobs = message(alice, "canary-direct-two")
    bobs.hover()
    bobs.get_by_role("button", name="Add a reaction").click()
    bobs.get_by_role("button", name="React with 👍").click()
    expect(bobs.locator(".reaction-chip")).to_have_text("👍1")
    expect(message(bob, "canary-direct-two").locator(".reaction-chip")).to_have_text("👍1")
    message(bob, "canary-direct-two").locator(".reaction-chip").click()
    expect(message(alice, "canary-direct-two").locator(".reaction-chip")).to_have_text("👍2")
    message(bob, "canary-direct-two").locator(".reaction-chip").click()
    expect(message(alice, "canary-direct-two").locator(".reaction-chip")).to_have_text("👍1")
    shot(alice, "conversation")
    assert_controls_labelled(alice)

    # An encrypted file: uploaded by Alice, downloaded and decrypted by Bob, byte for byte.
    payload = b"canary-file-content " + bytes(range(256)) * 700  # about 180 KiB, 3 chunks
    alice.get_by_label("Choose files to send").set_input_files(
        files=[{"name": "notes.bin", "mimeType": "application/octet-stream", "buffer": payload}]
    )
    card = bob.locator(".file-card", has_text="notes.bin")
    expect(card).to_be_visible()
    with bob.expect_download() as download_info:
        card.get_by_role("button", name="Download notes.bin").click()
    download = download_info.value
    assert download.suggested_filename == "notes.bin"
    saved = tmp_path / "notes.bin"
    download.save_as(saved)
    assert saved.read_bytes() == payload

    # An image is previewed from the decrypted Blob in a reserved box.
    alice.get_by_label("Choose files to send").set_input_files(
        files=[{"name": "canary-picture.png", "mimeType": "image/png", "buffer": png_bytes()}]
    )
    preview = bob.locator(".file-card", has_text="canary-picture.png").locator("img")
    expect(preview).to_be_visible()
    assert preview.evaluate("img => img.complete && img.naturalWidth") == 40
    assert preview.get_attribute("src").startswith("blob:")

    # Safety number: 12 groups of 5 digits, a QR code drawn as SVG, the verified toggle.
    alice.get_by_role("button", name="About bob").click()
    info = alice.get_by_role("dialog", name="About bob")
    info.get_by_role("button", name="Show safety number").click()
    safety = alice.get_by_role("dialog", name="Safety number with bob")
    groups = safety.locator(".safety-group")
    expect(groups).to_have_count(12)
    for text in groups.all_inner_texts():
        assert re.fullmatch(r"\d{5}", text)
    expect(safety.locator("svg.qr-code path")).to_have_count(1)
    safety.get_by_label("Mark bob as verified").check()
    expect(safety.get_by_label("Mark bob as verified")).to_be_checked()
    shot(alice, "safety-number")
    assert_controls_labelled(alice)
    # Both sides see the same number.
    bob.get_by_role("button", name="About alice").click()
    bob.get_by_role("dialog", name="About alice").get_by_role(
        "button", name="Show safety number"
    ).click()
    bob_groups = bob.get_by_role("dialog", name="Safety number with alice").locator(".safety-group")
    expect(bob_groups).to_have_count(12)
    bob_groups_before = bob_groups.all_inner_texts()
    assert bob_groups_before == groups.all_inner_texts()
    bob.keyboard.press("Escape")
    bob.keyboard.press("Escape")
    expect(bob.get_by_role("dialog")).to_have_count(0)
    alice.keyboard.press("Escape")
    expect(info.get_by_text("Safety number verified.")).to_be_visible()

    # Blocking: Bob's message is refused with the server's explanation; unblocking reopens.
    info.get_by_role("button", name="Block bob").click()
    expect(info.get_by_role("button", name="Unblock bob")).to_be_visible()
    alice.keyboard.press("Escape")
    expect(alice.locator(".banner", has_text="You blocked bob")).to_be_visible()
    send(bob, "canary-blocked-message")
    expect(bob.locator(".composer .error-slot")).to_contain_text("does not accept messages")
    refused = message(bob, "canary-blocked-message")
    expect(refused.locator(".delivery")).to_have_text("Not sent")
    alice.get_by_role("button", name="About bob").click()
    info = alice.get_by_role("dialog", name="About bob")
    info.get_by_role("button", name="Unblock bob").click()
    expect(info.get_by_role("button", name="Block bob")).to_be_visible()
    alice.keyboard.press("Escape")
    expect(alice.locator(".banner", has_text="You blocked bob")).to_have_count(0)
    send(bob, "canary-after-unblock")
    expect(message(alice, "canary-after-unblock")).to_be_visible()
    # The refused message goes out with the retry button once the block is lifted.
    refused.get_by_role("button", name="Retry sending this message").click()
    expect(refused.locator(".delivery")).to_have_text("Read")
    expect(message(alice, "canary-blocked-message")).to_be_visible()

    # Phone width: one pane at a time with a back button.
    bob.set_viewport_size(PHONE)
    expect(bob.locator(".sidebar")).to_be_hidden()
    shot(bob, "phone-conversation")
    bob.get_by_role("button", name="Back to conversations").click()
    expect(bob.locator(".sidebar")).to_be_visible()
    expect(bob.locator(".conversation")).to_have_count(0)
    shot(bob, "phone-list")

    # Bob's keys change: Alice sees a warning until she verifies the new safety number;
    # Bob's session, whose keys are gone, ends.
    rotate_keys(web_server, "bob")
    banner = alice.locator(".banner", has_text="bob's security key changed")
    expect(banner).to_be_visible()
    expect(bob.get_by_role("form", name="Log in").get_by_role("alert")).to_contain_text(
        "keys were changed"
    )
    banner.get_by_role("button", name="Verify safety number").click()
    safety = alice.get_by_role("dialog", name="Safety number with bob")
    expect(safety.locator(".safety-group")).to_have_count(12)
    assert safety.locator(".safety-group").all_inner_texts() != bob_groups_before
    expect(safety.get_by_label("Mark bob as verified")).not_to_be_checked()
    safety.get_by_label("Mark bob as verified").check()
    alice.keyboard.press("Escape")
    expect(banner).to_have_count(0)

    assert_only_ciphertext(
        web_server,
        ["canary-direct-one", "canary-direct-two", "canary-file-content", "canary-picture"],
    )


DROP_FILE = """(el, [name, text]) => {
  const data = new DataTransfer();
  data.items.add(new File([text], name, {type: "text/plain"}));
  for (const type of ["dragenter", "dragover", "drop"]) {
    el.dispatchEvent(new DragEvent(type, {dataTransfer: data, bubbles: true, cancelable: true}));
  }
}"""


def test_group_with_member_removal(users: Users, web_server: WebServer) -> None:
    carol = users.open()
    dave = users.open()
    erin = users.open()
    for tab, name in ((carol, "carol"), (dave, "dave"), (erin, "erin")):
        register(tab, name)

    carol.get_by_role("button", name="New group").click()
    dialog = carol.get_by_role("dialog", name="New group")
    dialog.get_by_label("Group name").fill("Night shift")
    for name in ("dave", "erin"):
        dialog.get_by_label("Add members").fill(name)
        dialog.get_by_role("button", name=f"Add {name}").click()
        expect(dialog.locator(".chip", has_text=name)).to_be_visible()
    dialog.get_by_role("button", name="Create group").click()
    expect(carol.locator(".conversation-title")).to_have_text("Night shift")
    send(carol, "Welcome, canary-group-one")

    for tab in (dave, erin):
        open_conversation(tab, "Night shift")
        expect(message(tab, "canary-group-one")).to_be_visible()
    send(dave, "Thanks, canary-group-two")
    expect(message(carol, "canary-group-two").locator(".message-sender")).to_have_text("dave")
    expect(message(carol, "canary-group-one").locator(".delivery")).to_have_text("Read by 2")

    # Carol renames the group and removes Erin.
    carol.get_by_role("button", name="Settings of Night shift").click()
    settings = carol.get_by_role("dialog", name="Group settings")
    settings.get_by_label("Group name").fill("Night shift ops")
    settings.get_by_role("button", name="Rename").click()
    expect(carol.locator(".conversation-title")).to_have_text("Night shift ops")
    expect(dave.locator(".conversation-title")).to_have_text("Night shift ops")
    shot(carol, "group-settings")
    settings.get_by_role("button", name="Remove erin from the group").click()
    expect(settings.locator(".member-row", has_text="erin")).to_have_count(0)
    carol.keyboard.press("Escape")

    # Erin's client drops the conversation; new messages are under a key Erin never gets.
    expect(erin.locator(".conversation-link")).to_have_count(0)
    expect(erin.locator(".conversation")).to_have_count(0)
    send(carol, "After the removal, canary-group-secret")
    expect(message(dave, "canary-group-secret")).to_be_visible()
    erin.wait_for_timeout(500)
    assert "canary-group-secret" not in erin.content()

    # Files can be dropped onto the conversation.
    carol.locator(".conversation").evaluate(DROP_FILE, ["dropped.txt", "canary-dropped-file"])
    expect(dave.locator(".file-card", has_text="dropped.txt")).to_be_visible()

    # Erin, added back, reads the first epoch again but never the one she was not part of.
    carol.get_by_role("button", name="Settings of Night shift ops").click()
    settings = carol.get_by_role("dialog", name="Group settings")
    settings.get_by_label("Add a member").fill("erin")
    settings.get_by_role("button", name="Add erin").click()
    expect(settings.locator(".member-row", has_text="erin")).to_be_visible()
    carol.keyboard.press("Escape")
    open_conversation(erin, "Night shift ops")
    expect(message(erin, "canary-group-one")).to_be_visible()
    expect(erin.locator(".is-undecryptable").first).to_be_visible()
    assert "canary-group-secret" not in erin.content()

    # Dave leaves; Carol stays alone with the history.
    dave.get_by_role("button", name="Settings of Night shift ops").click()
    leave = dave.get_by_role("dialog", name="Group settings").get_by_role(
        "button", name="Leave group"
    )
    leave.click()
    dave.get_by_role("button", name="Click again to leave the group").click()
    expect(dave.locator(".conversation-link")).to_have_count(0)
    expect(carol.locator(".conversation-subtitle")).to_contain_text("2 members")

    # Group titles are metadata the server knows by design (protocol §1); content is not.
    assert_only_ciphertext(
        web_server,
        ["canary-group-one", "canary-group-two", "canary-group-secret", "canary-dropped-file"],
    )


def test_history_scrolls_back(users: Users) -> None:
    """Older messages are loaded when scrolled to the top, keeping the reading position."""
    gina = users.open()
    hank = users.open()
    register(gina, "gina")
    register(hank, "hank")
    start_direct(gina, "hank")
    for number in range(1, 61):
        send(gina, f"history message {number:03d}")
    expect(message(gina, "history message 060").locator(".delivery")).to_have_text("Sent")
    # Keys live in memory only: after a reload Hank logs in again and gets the newest page.
    hank.reload()
    log_in(hank, "hank")
    open_conversation(hank, "gina")
    expect(message(hank, "history message 011")).to_be_attached()
    expect(message(hank, "history message 010")).to_have_count(0)
    expect(message(hank, "history message 060")).to_be_in_viewport()
    scroller = hank.locator(".message-scroll")
    scroller.evaluate("el => { el.scrollTop = 0; el.dispatchEvent(new Event('scroll')); }")
    expect(message(hank, "history message 001")).to_be_attached()
    # The page loaded above did not move what was on screen: message 021 is still visible.
    expect(message(hank, "history message 001")).not_to_be_in_viewport()
    expect(message(hank, "history message 011")).to_be_in_viewport()
    for _ in range(10):
        scroller.evaluate("el => { el.scrollTop = 0; el.dispatchEvent(new Event('scroll')); }")
        if message(hank, "history message 001").count():
            break
        hank.wait_for_timeout(300)
    expect(message(hank, "history message 001")).to_be_attached()
    expect(hank.locator(".history-status")).to_have_text(
        "This is the beginning of the conversation."
    )
    expect(hank.locator(".day-separator")).to_have_count(1)


def test_admin_dashboard(users: Users, web_server: WebServer) -> None:
    # The browser refuses fewer than 600,000 iterations, so the admin is made with them.
    env = {**web_server.server.env, "SECURECHAT_KDF_ITERATIONS": "600000"}
    create_admin(Settings.from_env(env), "root", PASSWORD)
    users.expect_refusal(403, "/api/v1/auth/login")  # the disabled account
    user = users.open()
    register(user, "ivan")
    admin = users.open()
    log_in(admin, "root")
    admin.get_by_role("button", name="Admin").click()
    expect(admin.get_by_role("heading", name="Administration")).to_be_visible()
    table = admin.locator(".admin-table")
    expect(table.get_by_role("rowheader", name="ivan")).to_be_visible()
    admin.get_by_label("Search users").fill("iva")
    expect(table.locator("tbody tr")).to_have_count(1)
    shot(admin, "admin-users")

    admin.get_by_role("button", name="Disable ivan").click()
    expect(table.locator("tr", has_text="ivan")).to_contain_text("Disabled")
    # The disabled user's open session ends at once, with the reason shown.
    form = user.get_by_role("form", name="Log in")
    expect(form.get_by_role("alert")).to_have_text("Your account was disabled by an administrator.")
    form.get_by_label("Username").fill("ivan")
    form.get_by_label("Password").fill(PASSWORD)
    form.get_by_role("button", name="Log in").click()
    expect(form.get_by_role("alert")).to_contain_text("disabled")
    admin.get_by_role("button", name="Enable ivan").click()
    expect(table.locator("tr", has_text="ivan")).to_contain_text("Active")
    admin.get_by_role("button", name="Make ivan an admin").click()
    expect(admin.get_by_role("button", name="Remove admin rights of ivan")).to_be_visible()

    admin.get_by_role("tab", name="Statistics").click()
    expect(admin.locator(".stat", has_text="Users")).to_be_visible()
    shot(admin, "admin-stats")

    admin.get_by_role("tab", name="Audit trail").click()
    audit = admin.locator(".audit-table")
    expect(audit.locator("tbody tr").first).to_be_visible()
    admin.get_by_label("Event").select_option("admin.user_disabled")
    admin.get_by_label("Actor").fill("root")
    admin.get_by_role("button", name="Apply filters").click()
    expect(audit.locator("tbody tr")).to_have_count(1)
    expect(audit.locator("tbody tr")).to_contain_text("ivan")
    shot(admin, "admin-audit")


FAKE_NOTIFICATIONS = """
window.__notes = [];
window.__hidden = false;
Object.defineProperty(Document.prototype, "hidden", {get: () => window.__hidden});
Object.defineProperty(Document.prototype, "visibilityState", {
  get: () => (window.__hidden ? "hidden" : "visible"),
});
window.Notification = class extends EventTarget {
  static permission = "default";
  static async requestPermission() {
    this.permission = "granted";
    return "granted";
  }
  constructor(title, options) {
    super();
    window.__notes.push({title, body: options.body});
  }
  close() {}
};
"""


def test_notifications_while_hidden(users: Users) -> None:
    """While the tab is hidden, new messages raise a desktop notification (after the user
    allowed them from the button; never asked on load) and count in the title."""
    jane = users.open(init_script=FAKE_NOTIFICATIONS)
    kim = users.open()
    register(jane, "jane")
    register(kim, "kim")
    assert jane.evaluate("Notification.permission") == "default"
    jane.get_by_role("button", name="Enable desktop notifications").click()
    expect(jane.get_by_role("button", name="Enable desktop notifications")).to_be_hidden()
    jane.evaluate("window.__hidden = true; document.dispatchEvent(new Event('visibilitychange'))")
    start_direct(kim, "jane")
    send(kim, "canary-notified")
    expect(jane).to_have_title("(1) Secure Chat M2M")
    jane.wait_for_function("window.__notes.length > 0")
    notes = jane.evaluate("window.__notes")
    assert notes[0]["title"] == "Message from kim"
    assert "canary" not in str(notes)  # no content in the operating system's notification list
    jane.evaluate("window.__hidden = false; document.dispatchEvent(new Event('visibilitychange'))")
    open_conversation(jane, "kim")
    expect(jane).to_have_title("Secure Chat M2M")


class SocketSwitch:
    """Routes a page's Socket.IO WebSockets through Playwright so a test can cut them (the
    browser's offline mode leaves open WebSockets alone)."""

    def __init__(self, tab: Page) -> None:
        self.tab = tab
        self.online = True
        self.routes: list[WebSocketRoute] = []
        # The routing is installed into pages as they load.
        tab.route_web_socket(re.compile(r"/socket\.io/"), self._route)
        tab.reload()

    def _route(self, route: WebSocketRoute) -> None:
        if not self.online:
            route.close(code=1001, reason="offline")
            return
        route.connect_to_server()
        self.routes.append(route)

    def set_online(self, online: bool) -> None:
        self.online = online
        self.tab.context.set_offline(not online)  # no HTTP (long-polling) either
        if not online:
            for route in self.routes:
                route.close(code=1001, reason="offline")
            self.routes.clear()


def test_messages_sent_after_reconnect(users: Users) -> None:
    """A message written while the connection is down waits as "Sending…" and goes out by
    itself once the connection is back."""
    lena = users.open()
    mike = users.open()
    switch = SocketSwitch(lena)
    register(lena, "lena")
    register(mike, "mike")
    start_direct(lena, "mike")
    send(lena, "canary-before-offline")
    open_conversation(mike, "lena")
    switch.set_online(False)
    expect(lena.locator(".connection")).not_to_have_text("Online")
    send(lena, "canary-while-offline")
    waiting = message(lena, "canary-while-offline")
    expect(waiting.locator(".delivery")).to_have_text("Sending…")
    switch.set_online(True)
    expect(lena.locator(".connection")).to_have_text("Online")
    expect(message(mike, "canary-while-offline")).to_be_visible()
    expect(waiting.locator(".delivery")).to_have_text("Read")
