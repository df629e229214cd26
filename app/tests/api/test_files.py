"""Encrypted file blobs over HTTP: limits, permissions, garbage collection, hostile uploads."""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from securechat.cli import main
from securechat.client.crypto import encrypt_envelope
from tests.api.test_conversations import Party, creation
from tests.conftest import RunningServer, server_environment

BLOB = os.urandom(1000)


def upload(api: TestClient, party: Party, cid: str, body: bytes = BLOB, **headers: str) -> Any:
    sent = {"Content-Type": "application/octet-stream", **party.headers, **headers}
    return api.post(f"/api/v1/conversations/{cid}/files", content=body, headers=sent)


def group_of(api: TestClient, *people: Party) -> str:
    body = creation(people[0], list(people))
    assert (
        api.post("/api/v1/conversations", json=body, headers=people[0].headers).status_code == 201
    )
    return str(body["id"])


def share(api: TestClient, party: Party, cid: str, file_ids: list[str]) -> Any:
    keys = api.get(f"/api/v1/conversations/{cid}/keys", headers=party.headers).json()["keys"]
    assert keys
    envelope = encrypt_envelope({"type": "text", "text": "file"}, cid, 1, bytes(32), party.signer)
    envelope["files"] = file_ids
    return api.post(f"/api/v1/conversations/{cid}/messages", json=envelope, headers=party.headers)


@pytest.fixture
def people(api: TestClient) -> tuple[Party, Party, Party]:
    return Party(api), Party(api), Party(api)


def test_upload_download_and_permissions(
    api: TestClient, people: tuple[Party, Party, Party]
) -> None:
    alice, bob, carol = people
    cid = group_of(api, alice, bob)
    response = upload(api, alice, cid)
    assert response.status_code == 201, response.text
    stored = response.json()
    assert stored["size"] == len(BLOB)
    file_id = stored["id"]
    path = f"/api/v1/files/{file_id}"
    # Before it is shared, only the uploader may fetch it.
    assert api.get(path, headers=bob.headers).status_code == 404
    own = api.get(path, headers=alice.headers)
    assert own.content == BLOB
    assert share(api, alice, cid, [file_id]).status_code == 201
    fetched = api.get(path, headers=bob.headers)
    assert fetched.status_code == 200
    assert fetched.content == BLOB
    assert fetched.headers["content-type"] == "application/octet-stream"
    assert fetched.headers["content-disposition"].startswith("attachment;")
    assert fetched.headers["x-content-type-options"] == "nosniff"
    assert api.get(path, headers=carol.headers).status_code == 404
    assert api.get(f"/api/v1/files/{uuid.uuid4()}", headers=alice.headers).status_code == 404
    assert api.get("/api/v1/files/..%2F..%2Fetc%2Fpasswd", headers=alice.headers).status_code == 404


def test_hostile_uploads(make_client: Any, people: tuple[Party, Party, Party]) -> None:
    api = make_client(SECURECHAT_MAX_UPLOAD_BYTES="4096", SECURECHAT_UPLOAD_QUOTA_BYTES="6000")
    alice, bob, carol = (Party(api) for _ in range(3))
    cid = group_of(api, alice, bob)
    assert upload(api, carol, cid).status_code == 404  # not a member
    assert upload(api, alice, str(uuid.uuid4())).status_code == 404
    assert upload(api, alice, cid, body=os.urandom(5000)).status_code == 413
    assert upload(api, alice, cid, body=b"x" * 27).status_code == 422
    assert upload(api, alice, cid, **{"Content-Type": "text/html"}).status_code == 415
    assert upload(api, alice, cid, body=os.urandom(4000)).status_code == 201
    over = upload(api, alice, cid, body=os.urandom(4000))
    assert over.status_code == 413
    assert over.json()["error"]["code"] == "quota_exceeded"
    chunked = api.post(
        f"/api/v1/conversations/{cid}/files",
        content=iter([b"a" * 100]),
        headers={"Content-Type": "application/octet-stream", **alice.headers},
    )
    assert chunked.status_code == 411


def test_sharing_rules(api: TestClient, people: tuple[Party, Party, Party]) -> None:
    alice, bob, _ = people
    first = group_of(api, alice, bob)
    second = group_of(api, alice, bob)
    mine = upload(api, alice, first).json()["id"]
    theirs = upload(api, bob, first).json()["id"]
    for cid, files in ((first, [theirs]), (second, [mine]), (first, [str(uuid.uuid4())])):
        response = share(api, alice, cid, files)
        assert response.status_code == 422, response.text
        assert response.json()["error"]["field"] == "files[0]"
    assert share(api, alice, first, [mine, mine]).status_code == 201


def test_unshared_files_are_collected(make_client: Any, migrated_url: str, tmp_path: Path) -> None:
    uploads = tmp_path / "blobs"
    api = make_client(SECURECHAT_UPLOAD_DIR=str(uploads), SECURECHAT_FILE_GRACE_SECONDS="0")
    alice, bob = Party(api), Party(api)
    cid = group_of(api, alice, bob)
    kept = upload(api, alice, cid).json()["id"]
    dropped = upload(api, alice, cid).json()["id"]
    share(api, alice, cid, [kept])
    assert len(list(uploads.iterdir())) == 2
    env = server_environment(
        migrated_url, SECURECHAT_UPLOAD_DIR=str(uploads), SECURECHAT_FILE_GRACE_SECONDS="0"
    )
    result = CliRunner().invoke(main, ["files", "gc"], env=env)
    assert result.exit_code == 0
    assert len(list(uploads.iterdir())) == 1
    assert api.get(f"/api/v1/files/{kept}", headers=bob.headers).status_code == 200
    assert api.get(f"/api/v1/files/{dropped}", headers=alice.headers).status_code == 404


def test_blocked_direct_conversation_refuses_uploads(
    api: TestClient, people: tuple[Party, Party, Party]
) -> None:
    alice, bob, _ = people
    body = creation(alice, [alice, bob], kind="direct")
    api.post("/api/v1/conversations", json=body, headers=alice.headers)
    assert api.put(f"/api/v1/blocks/{alice.user_id}", headers=bob.headers).status_code == 204
    response = upload(api, alice, body["id"])
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "blocked"


def test_block_api_hostile(api: TestClient, people: tuple[Party, Party, Party]) -> None:
    alice = people[0]
    assert api.put(f"/api/v1/blocks/{alice.user_id}", headers=alice.headers).status_code == 422
    assert api.put(f"/api/v1/blocks/{uuid.uuid4()}", headers=alice.headers).status_code == 404
    assert api.put("/api/v1/blocks/not-a-uuid", headers=alice.headers).status_code in (404, 405)
    assert api.delete(f"/api/v1/blocks/{uuid.uuid4()}", headers=alice.headers).status_code == 204
    assert api.get("/api/v1/blocks").status_code == 401


def test_truncated_upload_leaves_nothing(server: RunningServer) -> None:
    """A client that dies mid-upload: no row, no blob, no partial file left behind."""
    import asyncio

    from tests.helpers import new_user

    async def prepare() -> tuple[str, str]:
        alice = await new_user(server.url, "alice", connect=False)
        bob = await new_user(server.url, "bob", connect=False)
        cid = (await alice.create_direct(bob.user_id))["id"]
        token = str(alice.token)
        await asyncio.gather(alice.close(), bob.close())
        return cid, token

    cid, token = asyncio.run(prepare())
    uploads = Path(server.env["SECURECHAT_UPLOAD_DIR"])
    before = set(uploads.iterdir())
    host = urlsplit(server.url)
    with socket.create_connection((host.hostname, host.port)) as connection:
        connection.sendall(
            (
                f"POST /api/v1/conversations/{cid}/files HTTP/1.1\r\nHost: {host.netloc}\r\n"
                f"Authorization: Bearer {token}\r\nContent-Type: application/octet-stream\r\n"
                "Content-Length: 500000\r\n\r\n"
            ).encode()
            + os.urandom(70_000)
        )
    import time

    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and set(uploads.iterdir()) != before:
        time.sleep(0.05)
    assert set(uploads.iterdir()) == before


def test_missing_blob_is_a_json_404(make_client: Any, tmp_path: Path) -> None:
    uploads = tmp_path / "blobs-missing"
    api = make_client(SECURECHAT_UPLOAD_DIR=str(uploads))
    alice, bob = Party(api), Party(api)
    cid = group_of(api, alice, bob)
    file_id = upload(api, alice, cid).json()["id"]
    for blob in uploads.iterdir():
        blob.unlink()
    response = api.get(f"/api/v1/files/{file_id}", headers=alice.headers)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_leftovers_are_swept(tmp_path: Path) -> None:
    import time

    from securechat.storage import BlobStore

    store = BlobStore(tmp_path)
    store.ensure()
    (tmp_path / "aaaa").write_bytes(b"known")
    (tmp_path / "bbbb").write_bytes(b"orphan")
    (tmp_path / ".partial-cccc").write_bytes(b"crash")
    (tmp_path / "dddd").write_bytes(b"young orphan")
    old = time.time() - 7200
    for name in ("aaaa", "bbbb", ".partial-cccc"):
        os.utime(tmp_path / name, (old, old))
    removed = store.sweep({"aaaa"}, 3600)
    assert sorted(removed) == [".partial-cccc", "bbbb"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["aaaa", "dddd"]
