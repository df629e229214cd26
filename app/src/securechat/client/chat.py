"""The reference client: the whole protocol (docs/protocol.md) in Python.

Used by the tests, `securechat admin create`, the verify tool and the benchmarks. One
`ChatClient` is one logged-in user: HTTP for requests, Socket.IO for real time.
"""

from __future__ import annotations

import ssl
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import aiohttp
import socketio

from securechat.client.crypto import (
    CryptoError,
    IdentityKeys,
    PublicKeys,
    Signer,
    decrypt_envelope,
    derive_keys,
    encrypt_envelope,
    new_epoch_key,
    open_key_blob,
    seal_key_blob,
    unwrap_epoch_key,
    wrap_epoch_key,
)
from securechat.client.encoding import b64decode, b64encode
from securechat.client.events import EventInbox
from securechat.client.files import (
    FileEncryptor,
    FileRef,
    decrypt_stream,
    encrypted_size,
    file_content,
)
from securechat.client.http import ApiError, HttpApi
from securechat.client.reactions import ReactionOp, reaction_content
from securechat.client.registration import build_registration
from securechat.client.safety import safety_number
from securechat.protocol import KDF_ITERATIONS

SERVER_EVENTS = (
    "message:new",
    "message:read",
    "typing:start",
    "typing:stop",
    "user:online",
    "user:offline",
    "conversation:updated",
    "key:changed",
    "session:revoked",
)


@dataclass(frozen=True)
class Received:
    """A message as a client shows it: verified and decrypted, or marked undecryptable."""

    conversation_id: str
    seq: int
    message_id: str
    sender_id: str
    content: dict[str, Any] | None
    error: str | None = None

    @property
    def text(self) -> str | None:
        return None if self.content is None else self.content.get("text")


class ChatClient:
    def __init__(
        self,
        base_url: str,
        *,
        ssl_context: ssl.SSLContext | None = None,
        min_kdf_iterations: int = KDF_ITERATIONS,
        origin: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = HttpApi(base_url, ssl_context=ssl_context)
        self.events = EventInbox()
        self._ssl_context = ssl_context
        self._min_iterations = min_kdf_iterations
        self._origin = origin
        self._sio: socketio.AsyncClient | None = None
        self._keys: dict[tuple[str, int], PublicKeys] = {}
        self._epoch_keys: dict[tuple[str, int], bytes] = {}
        self.user: dict[str, Any] = {}
        self.identity: IdentityKeys | None = None

    # -- accounts -------------------------------------------------------------------------

    @property
    def user_id(self) -> str:
        return str(self.user["id"])

    @property
    def signer(self) -> Signer:
        if self.identity is None:
            raise RuntimeError("log in first")
        return Signer(self.user_id, int(self.user["key_version"]), self.identity)

    async def register(self, username: str, password: str) -> dict[str, Any]:
        kdf = (await self.http.call("POST", "/auth/prelogin", {"username": username}))["kdf"]
        iterations = max(int(kdf["iterations"]), self._min_iterations)
        registration = build_registration(
            username, password, iterations=iterations, min_iterations=self._min_iterations
        )
        answer = await self.http.call("POST", "/auth/register", registration.request)
        return dict(answer["user"])

    async def login(self, username: str, password: str) -> None:
        """Prelogin, derive, log in, fetch the key blob and unlock it."""
        kdf = (await self.http.call("POST", "/auth/prelogin", {"username": username}))["kdf"]
        salt = b64decode(kdf["salt"], field="kdf.salt")
        derived = derive_keys(
            password, salt, int(kdf["iterations"]), min_iterations=self._min_iterations
        )
        answer = await self.http.call(
            "POST",
            "/auth/login",
            {"username": username, "auth_key": b64encode(derived.auth_key)},
        )
        self.http.token = answer["token"]
        me = await self.http.call("GET", "/accounts/me")
        self.user = me["user"]
        self.identity = open_key_blob(
            derived.wrap_key, self.user_id, int(self.user["key_version"]), me["key_blob"]
        )

    @property
    def token(self) -> str | None:
        return self.http.token

    async def logout(self) -> None:
        await self.http.call("POST", "/auth/logout")
        self.http.token = None

    async def delete_account(self, password: str) -> None:
        """Delete this account for good (the password confirms it)."""
        kdf = (await self.http.call("GET", "/accounts/me"))["kdf"]
        derived = derive_keys(
            password,
            b64decode(kdf["salt"], field="kdf.salt"),
            int(kdf["iterations"]),
            min_iterations=self._min_iterations,
        )
        await self.http.call("DELETE", "/accounts/me", {"auth_key": b64encode(derived.auth_key)})
        self.http.token = None

    async def rotate_identity(self, password: str) -> None:
        """Replace the identity keys (a key change); contacts get `key:changed`."""
        me = await self.http.call("GET", "/accounts/me")
        kdf = me["kdf"]
        derived = derive_keys(
            password,
            b64decode(kdf["salt"], field="kdf.salt"),
            int(kdf["iterations"]),
            min_iterations=self._min_iterations,
        )
        identity = IdentityKeys.generate()
        version = int(self.user["key_version"]) + 1
        answer = await self.http.call(
            "PUT",
            "/accounts/me/keys",
            {
                "key_version": version,
                "keys": identity.public(self.user_id, version).to_json(),
                "key_blob": seal_key_blob(derived.wrap_key, self.user_id, version, identity),
            },
        )
        self.user, self.identity = answer["user"], identity

    async def find_user(self, username: str) -> dict[str, Any]:
        users = (await self.http.call("GET", f"/users?prefix={username}"))["users"]
        for user in users:
            if user["username"] == username:
                return dict(user)
        raise LookupError(f"no user {username}")

    async def public_keys(self, user_id: str, key_version: int | None = None) -> PublicKeys:
        if key_version is None:
            user = await self.http.call("GET", f"/users/{user_id}")
            key_version = int(user["key_version"])
        cached = self._keys.get((user_id, key_version))
        if cached is None:
            found = await self.http.call("GET", f"/users/{user_id}/keys/{key_version}")
            cached = PublicKeys.from_json(user_id, key_version, found)
            self._keys[(user_id, key_version)] = cached
        return cached

    async def safety_number(self, other_user_id: str) -> str:
        mine = self.signer.public
        theirs = await self.public_keys(other_user_id)
        return safety_number(mine, theirs)

    # -- conversations --------------------------------------------------------------------

    async def create_direct(self, other_user_id: str) -> dict[str, Any]:
        return await self._create("direct", None, [self.user_id, other_user_id])

    async def create_group(self, title: str, member_ids: list[str]) -> dict[str, Any]:
        return await self._create("group", title, sorted({self.user_id, *member_ids}))

    async def conversation(self, conversation_id: str) -> dict[str, Any]:
        return dict(await self.http.call("GET", f"/conversations/{conversation_id}"))

    async def conversations(self) -> list[dict[str, Any]]:
        return list((await self.http.call("GET", "/conversations"))["conversations"])

    async def set_members(self, conversation_id: str, member_ids: list[str]) -> dict[str, Any]:
        """Start a new epoch with this member set (add/remove members, or rotate)."""
        current = await self.conversation(conversation_id)
        epoch = int(current["epoch"]) + 1
        members = sorted(set(member_ids))
        wraps = await self._wraps(conversation_id, epoch, new_epoch_key(), members)
        body = {"epoch": epoch, "members": members, "epoch_keys": wraps}
        return dict(await self.http.call("POST", f"/conversations/{conversation_id}/epochs", body))

    async def rotate(self, conversation_id: str) -> dict[str, Any]:
        current = await self.conversation(conversation_id)
        return await self.set_members(conversation_id, [m["user_id"] for m in current["members"]])

    async def leave(self, conversation_id: str) -> None:
        await self.http.call("POST", f"/conversations/{conversation_id}/leave")

    async def _create(self, kind: str, title: str | None, members: list[str]) -> dict[str, Any]:
        conversation_id = str(uuid.uuid4())
        wraps = await self._wraps(conversation_id, 1, new_epoch_key(), members)
        body = {
            "id": conversation_id,
            "kind": kind,
            "title": title,
            "members": members,
            "epoch_keys": wraps,
        }
        return dict(await self.http.call("POST", "/conversations", body))

    async def _wraps(
        self, conversation_id: str, epoch: int, epoch_key: bytes, members: list[str]
    ) -> list[dict[str, object]]:
        wraps = []
        for member in members:
            recipient = await self.public_keys(member)
            wraps.append(wrap_epoch_key(epoch_key, conversation_id, epoch, self.signer, recipient))
        self._epoch_keys[(conversation_id, epoch)] = epoch_key
        return wraps

    async def epoch_key(self, conversation_id: str, epoch: int) -> bytes:
        cached = self._epoch_keys.get((conversation_id, epoch))
        if cached is not None:
            return cached
        keys = (await self.http.call("GET", f"/conversations/{conversation_id}/keys"))["keys"]
        for wrap in keys:
            if int(wrap["epoch"]) != epoch:
                continue
            wrapper = await self.public_keys(wrap["wrapper_id"], int(wrap["wrapper_key_version"]))
            key = unwrap_epoch_key(wrap, conversation_id, epoch, wrapper, self.signer)
            self._epoch_keys[(conversation_id, epoch)] = key
            return key
        raise CryptoError(f"no key for epoch {epoch} of this conversation")

    # -- messages -------------------------------------------------------------------------

    async def encrypt_content(
        self,
        conversation_id: str,
        content: dict[str, object],
        *,
        message_id: str | None = None,
        files: list[str] | None = None,
    ) -> dict[str, object]:
        """An envelope at the current epoch (rotating first when a rotation is pending)."""
        conversation = await self.conversation(conversation_id)
        if conversation["rotation_required"]:
            conversation = await self.rotate(conversation_id)
        epoch = int(conversation["epoch"])
        key = await self.epoch_key(conversation_id, epoch)
        envelope = encrypt_envelope(
            content, conversation_id, epoch, key, self.signer, message_id=message_id
        )
        if files:
            envelope["files"] = files
        return envelope

    async def encrypt_text(
        self, conversation_id: str, text: str, *, message_id: str | None = None
    ) -> dict[str, object]:
        content: dict[str, object] = {"type": "text", "text": text}
        return await self.encrypt_content(conversation_id, content, message_id=message_id)

    async def send_content(
        self, conversation_id: str, content: dict[str, object], *, files: list[str] | None = None
    ) -> dict[str, Any]:
        """Encrypt and send; on `epoch_stale` re-read the conversation and try once more."""
        message_id = str(uuid.uuid4())
        for attempt in (1, 2):
            envelope = await self.encrypt_content(
                conversation_id, content, message_id=message_id, files=files
            )
            ack = await self.send_envelope(envelope)
            if ack.get("ok") or attempt == 2 or ack["error"]["code"] != "epoch_stale":
                return ack
        raise AssertionError("unreachable")

    async def send_text(self, conversation_id: str, text: str) -> dict[str, Any]:
        return await self.send_content(conversation_id, {"type": "text", "text": text})

    async def react(
        self, conversation_id: str, target_message_id: str, emoji: str, op: ReactionOp = "add"
    ) -> dict[str, Any]:
        return await self.send_content(
            conversation_id, reaction_content(target_message_id, emoji, op)
        )

    # -- files ----------------------------------------------------------------------------

    async def upload_file(
        self,
        conversation_id: str,
        path: Path,
        *,
        mime: str = "application/octet-stream",
        caption: str | None = None,
    ) -> dict[str, Any]:
        """Encrypt `path` chunk by chunk while uploading it, then share it in a message."""
        size = path.stat().st_size
        encryptor = FileEncryptor()
        with path.open("rb") as source:
            records = encryptor.encrypt_stream(source)
            stored = await self.http.upload(
                f"/conversations/{conversation_id}/files", _aiter(records), encrypted_size(size)
            )
        if stored["sha256"] != encryptor.sha256:
            raise CryptoError("the server stored something else than was sent")
        content = file_content(stored["id"], path.name, mime, encryptor, caption)
        ack = await self.send_content(conversation_id, content, files=[stored["id"]])
        return {"file": stored, "ack": ack}

    async def download_file(self, ref: FileRef, destination: Path) -> Path:
        """Fetch, verify and decrypt a shared file into `destination`, streaming both ways.

        The ciphertext is spooled to a temporary file first and the plaintext is written
        beside the destination; it replaces the destination only when every record and the
        whole-file hash checked out.
        """
        with tempfile.TemporaryDirectory(dir=destination.parent) as scratch:
            blob = Path(scratch) / "blob"
            await self.http.download(f"/files/{ref.file_id}", blob)
            plain = Path(scratch) / "plain"
            with blob.open("rb") as source, plain.open("wb") as sink:
                for chunk in decrypt_stream(_read_chunks(source), ref.key, ref.sha256):
                    sink.write(chunk)
            plain.replace(destination)
        return destination

    # -- blocking -------------------------------------------------------------------------

    async def block(self, user_id: str) -> None:
        await self.http.call("PUT", f"/blocks/{user_id}")

    async def unblock(self, user_id: str) -> None:
        await self.http.call("DELETE", f"/blocks/{user_id}")

    async def blocks(self) -> list[dict[str, Any]]:
        return list((await self.http.call("GET", "/blocks"))["blocks"])

    async def send_envelope(self, envelope: dict[str, object]) -> dict[str, Any]:
        """Send over the socket when connected, else over HTTP; returns the ack."""
        if self._sio is not None and self._sio.connected:
            ack: dict[str, Any] = await self._sio.call("message:send", envelope, timeout=30)
            return ack
        path = f"/conversations/{envelope['conversation_id']}/messages"
        try:
            return dict(await self.http.call("POST", path, envelope))
        except ApiError as error:
            return {"ok": False, "error": error.body.get("error", {}) if error.body else {}}

    async def decrypt(self, message: dict[str, Any]) -> Received:
        conversation_id, seq = str(message["conversation_id"]), int(message["seq"])
        base = (conversation_id, seq, str(message["message_id"]), str(message["sender_id"]))
        try:
            key = await self.epoch_key(conversation_id, int(message["epoch"]))
            sender = await self.public_keys(
                str(message["sender_id"]), int(message["sender_key_version"])
            )
            return Received(*base, content=decrypt_envelope(message, key, sender))
        except (CryptoError, ApiError) as error:
            return Received(*base, content=None, error=str(error))

    async def history(
        self,
        conversation_id: str,
        *,
        before: int | None = None,
        after: int | None = None,
        limit: int = 50,
    ) -> tuple[list[Received], bool]:
        query = f"?limit={limit}"
        query += f"&before={before}" if before is not None else ""
        query += f"&after={after}" if after is not None else ""
        page = await self.http.call("GET", f"/conversations/{conversation_id}/messages{query}")
        return [await self.decrypt(m) for m in page["messages"]], bool(page["has_more"])

    async def catch_up(self, since: dict[str, int]) -> dict[str, list[Received]]:
        """Everything after the given seq per conversation, following `has_more`."""
        found: dict[str, list[Received]] = {}
        pending = dict(since)
        while pending:
            answer = await self.http.call("POST", "/sync", {"since": pending})
            pending = {}
            for conversation_id, page in answer["conversations"].items():
                messages = [await self.decrypt(m) for m in page["messages"]]
                found.setdefault(conversation_id, []).extend(messages)
                if page["has_more"] and messages:
                    pending[conversation_id] = messages[-1].seq
        return found

    # -- real time ------------------------------------------------------------------------

    async def connect(self, *, transports: list[str] | None = None) -> None:
        http_session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=self._ssl_context or True)
        )
        sio = socketio.AsyncClient(reconnection=False, http_session=http_session)
        for name in SERVER_EVENTS:
            sio.on(name, self._recorder(name))
        headers = {"Origin": self._origin} if self._origin else {}
        try:
            await sio.connect(
                self.base_url,
                auth={"token": self.http.token},
                headers=headers,
                transports=transports or ["websocket"],
                wait_timeout=10,
            )
        except BaseException:
            await http_session.close()
            raise
        self._sio = sio

    def _recorder(self, name: str) -> Any:
        async def record(data: Any) -> None:
            await self.events.put(name, data)

        return record

    async def emit(self, event: str, data: Any) -> dict[str, Any]:
        if self._sio is None:
            raise RuntimeError("connect first")
        ack: dict[str, Any] = await self._sio.call(event, data, timeout=30)
        return ack

    @property
    def connected(self) -> bool:
        return self._sio is not None and self._sio.connected

    async def disconnect(self) -> None:
        if self._sio is not None:
            await self._sio.disconnect()
            if self._sio.eio.http is not None:
                await self._sio.eio.http.close()
            self._sio = None

    async def close(self) -> None:
        await self.disconnect()
        await self.http.close()


async def _aiter(items: Iterator[bytes]) -> AsyncIterator[bytes]:
    for item in items:
        yield item


def _read_chunks(source: BinaryIO, size: int = 1 << 16) -> Iterator[bytes]:
    while chunk := source.read(size):
        yield chunk
