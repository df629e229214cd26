"""Conversations over HTTP, in process: creation rules and hostile requests."""

from __future__ import annotations

import base64
import copy
import os
import uuid
from typing import Any

import pytest
from starlette.testclient import TestClient

from securechat.client.crypto import PublicKeys, Signer, new_epoch_key, wrap_epoch_key
from tests.api.test_accounts import bearer, login, register


class Party:
    def __init__(self, api: TestClient) -> None:
        account = register(api)
        self.name = account["name"]
        self.user_id: str = account["user"]["id"]
        self.identity = account["registration"].identity
        self.token = login(api, self.name)
        self.headers = bearer(self.token)

    @property
    def signer(self) -> Signer:
        return Signer(self.user_id, 1, self.identity)

    @property
    def public(self) -> PublicKeys:
        return self.identity.public(self.user_id, 1)


def creation(creator: Party, members: list[Party], kind: str = "group") -> dict[str, Any]:
    cid = str(uuid.uuid4())
    key = new_epoch_key()
    return {
        "id": cid,
        "kind": kind,
        "title": "ops" if kind == "group" else None,
        "members": [m.user_id for m in members],
        "epoch_keys": [wrap_epoch_key(key, cid, 1, creator.signer, m.public) for m in members],
    }


@pytest.fixture
def people(api: TestClient) -> tuple[Party, Party, Party]:
    return Party(api), Party(api), Party(api)


def test_create_and_list(api: TestClient, people: tuple[Party, Party, Party]) -> None:
    alice, bob, carol = people
    body = creation(alice, [alice, bob])
    response = api.post("/api/v1/conversations", json=body, headers=alice.headers)
    assert response.status_code == 201, response.text
    listed = api.get("/api/v1/conversations", headers=bob.headers).json()["conversations"]
    assert [c["id"] for c in listed] == [body["id"]]
    assert api.get("/api/v1/conversations", headers=carol.headers).json() == {"conversations": []}
    keys = api.get(f"/api/v1/conversations/{body['id']}/keys", headers=bob.headers).json()["keys"]
    assert len(keys) == 1
    assert keys[0]["recipient_id"] == bob.user_id
    assert keys[0]["wrapper_id"] == alice.user_id


def _hostile(alice: Party, bob: Party, carol: Party) -> list[tuple[str, dict[str, Any], int, str]]:
    base = creation(alice, [alice, bob])
    cases: list[tuple[str, dict[str, Any], int, str]] = []

    def case(name: str, status: int, field: str, **changes: Any) -> None:
        body = copy.deepcopy(base)
        body.update(changes)
        cases.append((name, body, status, field))

    case("without me", 422, "members", members=[bob.user_id, carol.user_id])
    case("user twice", 422, "members", members=[alice.user_id, bob.user_id, bob.user_id])
    case("unknown user", 422, "members", members=[alice.user_id, str(uuid.uuid4())])
    case("no wraps", 422, "epoch_keys", epoch_keys=[])
    case("wrap missing", 422, "epoch_keys", epoch_keys=base["epoch_keys"][:1])
    case(
        "wrap twice", 422, "epoch_keys[2]", epoch_keys=[*base["epoch_keys"], base["epoch_keys"][1]]
    )
    stranger = copy.deepcopy(base["epoch_keys"][1])
    stranger["recipient_id"] = carol.user_id
    case("wrap for a stranger", 422, "epoch_keys[1]", epoch_keys=[base["epoch_keys"][0], stranger])
    stale = copy.deepcopy(base["epoch_keys"][1])
    stale["recipient_key_version"] = 2
    case("old key version", 422, "epoch_keys[1]", epoch_keys=[base["epoch_keys"][0], stale])
    case("title with controls", 422, "title", title="ops\u202e")
    case("title too long", 422, "title", title="x" * 101)
    case("group without title", 422, "title", title=None)
    case("direct with title", 422, "members", kind="direct", title="x")
    case(
        "direct with three",
        422,
        "members",
        kind="direct",
        title=None,
        members=[alice.user_id, bob.user_id, carol.user_id],
    )
    case("unknown kind", 422, "kind", kind="channel")
    case("bad id", 422, "id", id="../../x")
    case("too many members", 422, "members", members=[str(uuid.uuid4()) for _ in range(1001)])
    return cases


def test_hostile_creations(api: TestClient, people: tuple[Party, Party, Party]) -> None:
    alice, bob, carol = people
    for name, body, status, field in _hostile(alice, bob, carol):
        response = api.post("/api/v1/conversations", json=body, headers=alice.headers)
        assert response.status_code == status, (name, response.text)
        assert response.json()["error"]["field"] == field, name
    # Nothing was created by any of them.
    assert api.get("/api/v1/conversations", headers=alice.headers).json() == {"conversations": []}


def test_conversation_id_reuse_is_a_conflict(
    api: TestClient, people: tuple[Party, Party, Party]
) -> None:
    alice, bob, carol = people
    body = creation(alice, [alice, bob])
    assert api.post("/api/v1/conversations", json=body, headers=alice.headers).status_code == 201
    again = creation(carol, [carol, bob])
    again["id"] = body["id"]
    response = api.post("/api/v1/conversations", json=again, headers=carol.headers)
    assert response.status_code == 409


def test_strangers_cannot_touch_a_group(
    api: TestClient, people: tuple[Party, Party, Party]
) -> None:
    alice, bob, carol = people
    body = creation(alice, [alice, bob])
    cid = body["id"]
    api.post("/api/v1/conversations", json=body, headers=alice.headers)
    attempts = [
        ("GET", f"/api/v1/conversations/{cid}", None),
        ("PATCH", f"/api/v1/conversations/{cid}", {"title": "mine now"}),
        ("POST", f"/api/v1/conversations/{cid}/leave", None),
        ("PUT", f"/api/v1/conversations/{cid}/members/{carol.user_id}", {"role": "admin"}),
        ("GET", f"/api/v1/conversations/{cid}/keys", None),
        ("GET", f"/api/v1/conversations/{cid}/messages", None),
    ]
    for method, path, json_body in attempts:
        response = api.request(method, path, json=json_body, headers=carol.headers)
        assert response.status_code == 404, (method, path, response.text)
    # A member who is not admin is told no, clearly.
    response = api.patch(f"/api/v1/conversations/{cid}", json={"title": "x"}, headers=bob.headers)
    assert response.status_code == 403
    # The last admin cannot step down.
    response = api.put(
        f"/api/v1/conversations/{cid}/members/{alice.user_id}",
        json={"role": "member"},
        headers=alice.headers,
    )
    assert response.status_code == 409


@pytest.mark.parametrize(
    "query",
    ["?limit=0", "?limit=201", "?limit=abc", "?before=-1", "?before=1&after=1", "?after=1e3"],
)
def test_history_query_validation(
    api: TestClient, people: tuple[Party, Party, Party], query: str
) -> None:
    alice, bob, _ = people
    body = creation(alice, [alice, bob])
    api.post("/api/v1/conversations", json=body, headers=alice.headers)
    response = api.get(f"/api/v1/conversations/{body['id']}/messages{query}", headers=alice.headers)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"


def test_history_over_http(api: TestClient, people: tuple[Party, Party, Party]) -> None:
    alice, bob, carol = people
    body = creation(alice, [alice, bob])
    api.post("/api/v1/conversations", json=body, headers=alice.headers)
    acks = []
    for _ in range(3):
        envelope = {
            "v": 1,
            "suite": "p256-v1",
            "conversation_id": body["id"],
            "epoch": 1,
            "message_id": str(uuid.uuid4()),
            "sender_id": alice.user_id,
            "sender_key_version": 1,
            "nonce": base64.b64encode(os.urandom(12)).decode(),
            "ciphertext": base64.b64encode(os.urandom(40)).decode(),
            "signature": base64.b64encode(os.urandom(64)).decode(),
        }
        sent = api.post(
            f"/api/v1/conversations/{body['id']}/messages", json=envelope, headers=alice.headers
        )
        assert sent.status_code == 201, sent.text
        acks.append(
            {**envelope, "seq": sent.json()["seq"], "server_time": sent.json()["server_time"]}
        )
    url = f"/api/v1/conversations/{body['id']}/messages"
    page = api.get(url + "?limit=2", headers=bob.headers)
    assert page.status_code == 200
    assert page.headers["content-type"] == "application/json"
    assert page.json() == {"messages": acks[1:], "has_more": True}
    assert api.get(url + "?before=2", headers=bob.headers).json() == {
        "messages": acks[:1],
        "has_more": False,
    }
    stranger = api.get(url, headers=carol.headers)
    assert stranger.status_code == 404
    assert stranger.json()["error"]["code"] == "not_found"
    for headers in ({}, {"Authorization": "Bearer nope"}):
        refused = api.get(url + "?limit=0", headers=headers)  # authentication comes first
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "unauthorized"


def test_sync_validation(api: TestClient, people: tuple[Party, Party, Party]) -> None:
    alice = people[0]
    for body in ({"since": {"x": 1}}, {"since": {str(uuid.uuid4()): -1}}, {"since": []}, {}):
        response = api.post("/api/v1/sync", json=body, headers=alice.headers)
        assert response.status_code == 422, body


def _delete(api: TestClient, party: Party, password: str | None = None) -> int:
    from tests.api.test_accounts import auth_key_for

    key = auth_key_for(api, party.name, *(password,) if password else ())
    response = api.request(
        "DELETE", "/api/v1/accounts/me", json={"auth_key": key}, headers=party.headers
    )
    return response.status_code


def test_account_deletion(
    api: TestClient, people: tuple[Party, Party, Party], migrated_url: str
) -> None:
    from sqlalchemy import create_engine, text

    from securechat.client.crypto import encrypt_envelope

    alice, bob, carol = people
    body = creation(alice, [alice, bob])
    cid = body["id"]
    api.post("/api/v1/conversations", json=body, headers=alice.headers)
    envelope = encrypt_envelope({"type": "text", "text": "x"}, cid, 1, bytes(32), alice.signer)
    sent = api.post(f"/api/v1/conversations/{cid}/messages", json=envelope, headers=alice.headers)
    assert sent.status_code == 201

    assert _delete(api, alice, "wrong password") == 401
    assert _delete(api, carol) == 204  # shares nothing: removed outright
    assert api.get("/api/v1/accounts/me", headers=carol.headers).status_code == 401
    assert api.get(f"/api/v1/users/{carol.user_id}", headers=bob.headers).status_code == 404

    # alice leaves a message behind: her row stays as a tombstone whose keys still verify it.
    assert _delete(api, alice) == 204
    conversation = api.get(f"/api/v1/conversations/{cid}", headers=bob.headers).json()
    assert conversation["rotation_required"] is True
    assert [m["user_id"] for m in conversation["members"]] == [bob.user_id]
    assert api.get(f"/api/v1/users/{alice.user_id}/keys/1", headers=bob.headers).status_code == 200

    # bob deletes too: the conversation is purged with its messages.
    assert _delete(api, bob) == 204
    engine = create_engine(migrated_url)
    with engine.connect() as connection:
        for table in ("conversations", "messages", "epochs", "epoch_keys", "conversation_members"):
            count = connection.execute(
                text(
                    f"SELECT COUNT(*) FROM {table} WHERE "
                    + ("id" if table == "conversations" else "conversation_id")
                    + " = :c"
                ),
                {"c": cid},
            ).scalar_one()
            assert count == 0, table
    engine.dispose()


def test_deletion_keeps_an_admin_and_cannot_be_blocked_by_a_lookalike_name(
    api: TestClient, people: tuple[Party, Party, Party]
) -> None:
    alice, bob, carol = people
    body = creation(alice, [alice, bob, carol])
    api.post("/api/v1/conversations", json=body, headers=alice.headers)
    # Someone registers the name a tombstone of alice would have had under the old scheme.
    from tests.api.test_accounts import register

    register(api, "deleted-" + alice.user_id.replace("-", "")[:23])
    from securechat.client.crypto import encrypt_envelope

    envelope = encrypt_envelope(
        {"type": "text", "text": "x"}, body["id"], 1, bytes(32), alice.signer
    )
    api.post(f"/api/v1/conversations/{body['id']}/messages", json=envelope, headers=alice.headers)
    assert _delete(api, alice) == 204  # alice's messages stay: a tombstone, named safely
    conversation = api.get(f"/api/v1/conversations/{body['id']}", headers=bob.headers).json()
    assert [m["role"] for m in conversation["members"]].count("admin") == 1


def test_a_disabled_member_does_not_freeze_a_group(
    api: TestClient, people: tuple[Party, Party, Party], migrated_url: str
) -> None:
    from securechat.admin import set_disabled
    from securechat.client.crypto import new_epoch_key, wrap_epoch_key
    from securechat.settings import Settings
    from tests.conftest import server_environment

    alice, bob, carol = people
    body = creation(alice, [alice, bob, carol])
    cid = body["id"]
    api.post("/api/v1/conversations", json=body, headers=alice.headers)
    set_disabled(Settings.from_env(server_environment(migrated_url)), carol.name, disabled=True)
    key = new_epoch_key()
    rotation = {
        "epoch": 2,
        "members": sorted(p.user_id for p in (alice, bob, carol)),
        "epoch_keys": [
            wrap_epoch_key(key, cid, 2, bob.signer, p.public) for p in (alice, bob, carol)
        ],
    }
    response = api.post(f"/api/v1/conversations/{cid}/epochs", json=rotation, headers=bob.headers)
    assert response.status_code == 200, response.text
