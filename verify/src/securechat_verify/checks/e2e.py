"""`e2e`: two throwaway accounts exchange an encrypted message through the deployment with the
reference client; it arrives and decrypts, safety numbers agree, the server returns only
ciphertext, and the accounts are deleted afterwards."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time

import aiohttp
from securechat.client.chat import ChatClient
from securechat.client.crypto import CryptoError
from securechat.client.http import ApiError
from socketio.exceptions import SocketIOError

from securechat_verify.checks import Check
from securechat_verify.net import target_context
from securechat_verify.result import Finding, Severity, errored, failed, passed, warned
from securechat_verify.target import Target

PASSWORD_BYTES = 24
# What a deployment problem looks like from the client; anything else is a bug here.
ROUND_TRIP_ERRORS = (
    ApiError,
    CryptoError,
    OSError,
    TimeoutError,
    aiohttp.ClientError,
    SocketIOError,
)


def run(target: Target) -> list[Finding]:
    return asyncio.run(_run(target))


async def _run(target: Target) -> list[Finding]:
    context = target_context(target)
    tag = secrets.token_hex(4)
    password = secrets.token_urlsafe(PASSWORD_BYTES)
    alice = ChatClient(
        target.url, ssl_context=context, min_kdf_iterations=target.min_kdf_iterations
    )
    bob = ChatClient(target.url, ssl_context=context, min_kdf_iterations=target.min_kdf_iterations)
    findings: list[Finding] = []
    try:
        async with asyncio.timeout(target.timeout * 6):
            findings += await _exchange(target, alice, bob, tag, password)
    except ROUND_TRIP_ERRORS as error:
        findings.append(
            errored(
                f"the round trip did not complete: {type(error).__name__}: {error}",
                "run the connectivity, tls and socket checks; a 429 means the auth rate limit "
                "(SECURECHAT_RATE_AUTH_PER_IP) was hit by repeated runs: wait a minute; a KDF "
                "refusal means the server asks for fewer PBKDF2 iterations than clients accept",
                target.url,
            )
        )
    finally:
        findings.append(await _cleanup(target, password, alice, bob))
        await asyncio.gather(alice.close(), bob.close(), return_exceptions=True)
    return findings


async def _exchange(
    target: Target, alice: ChatClient, bob: ChatClient, tag: str, password: str
) -> list[Finding]:
    for client, name in ((alice, f"verify-{tag}-a"), (bob, f"verify-{tag}-b")):
        await client.register(name, password)
        await client.login(name, password)
    await bob.connect()
    conversation = await alice.create_direct(bob.user_id)
    cid = str(conversation["id"])
    marker = f"securechat-verify {secrets.token_hex(16)}"
    started = time.perf_counter()
    ack = await alice.send_text(cid, marker)
    if not ack.get("ok"):
        return [
            failed(
                f"the server refused the message: {ack.get('error')}",
                "see the server log",
                target.url,
            )
        ]
    message = await bob.events.wait(
        "message:new", lambda m: m.get("conversation_id") == cid, timeout=target.timeout
    )
    received = await bob.decrypt(message)
    elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
    findings: list[Finding] = []
    if received.text == marker:
        findings.append(
            passed(
                "a message arrived over Socket.IO and decrypted", target.url, delivery_ms=elapsed_ms
            )
        )
    else:
        findings.append(
            failed(
                f"the message did not decrypt: {received.error}",
                "client and server disagree on the protocol: deploy matching versions",
                target.url,
            )
        )
    if await alice.safety_number(bob.user_id) == await bob.safety_number(alice.user_id):
        findings.append(passed("both sides compute the same safety number", target.url))
    else:
        findings.append(
            failed(
                "the safety numbers differ",
                "a key was substituted: investigate at once",
                target.url,
            )
        )
    stored = json.dumps(await bob.http.call("GET", f"/conversations/{cid}/messages"))
    encodings = (marker.encode(), base64.b64encode(marker.encode()), marker.encode().hex().encode())
    if any(needle.decode() in stored for needle in encodings):
        findings.append(
            failed(
                "the server returned the plaintext",
                "this is not the Secure Chat server: stop using it",
                target.url,
            )
        )
    else:
        findings.append(passed("the server holds and returns only ciphertext", target.url))
    return findings


async def _cleanup(target: Target, password: str, *clients: ChatClient) -> Finding:
    left: list[str] = []
    for client in clients:
        if client.token is None:
            continue
        try:
            await client.disconnect()
            await client.delete_account(password)
        except (ApiError, OSError, TimeoutError):
            left.append(str(client.user.get("username", "?")))
    if left:
        return warned(
            f"could not delete the throwaway accounts {', '.join(left)}",
            "an admin can disable them: securechat admin disable <name>",
            target.url,
        )
    return passed("the throwaway accounts were deleted", target.url)


CHECK = Check(
    id="e2e",
    title="End-to-end encrypted round trip",
    severity=Severity.CRITICAL,
    run=run,
)
