"""Accounts over HTTP, in process: registration, login, sessions, rate limits, hostile input."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from starlette.testclient import TestClient

from securechat.client.crypto import derive_keys
from securechat.client.registration import build_registration
from tests.conftest import TEST_KDF_ITERATIONS
from tests.helpers import PASSWORD, unique_name


def register(api: TestClient, name: str | None = None, password: str = PASSWORD) -> dict[str, Any]:
    name = name or unique_name()
    registration = build_registration(
        name, password, iterations=TEST_KDF_ITERATIONS, min_iterations=TEST_KDF_ITERATIONS
    )
    response = api.post("/api/v1/auth/register", json=registration.request)
    assert response.status_code == 201, response.text
    return {"name": name, "registration": registration, "user": response.json()["user"]}


def auth_key_for(api: TestClient, name: str, password: str = PASSWORD) -> str:
    kdf = api.post("/api/v1/auth/prelogin", json={"username": name}).json()["kdf"]
    derived = derive_keys(
        password,
        base64.b64decode(kdf["salt"]),
        kdf["iterations"],
        min_iterations=TEST_KDF_ITERATIONS,
    )
    return base64.b64encode(derived.auth_key).decode()


def login(api: TestClient, name: str, password: str = PASSWORD) -> str:
    response = api.post(
        "/api/v1/auth/login", json={"username": name, "auth_key": auth_key_for(api, name, password)}
    )
    assert response.status_code == 200, response.text
    return str(response.json()["token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_register_login_me_logout(api: TestClient) -> None:
    account = register(api)
    token = login(api, account["name"])
    me = api.get("/api/v1/accounts/me", headers=bearer(token))
    assert me.status_code == 200
    body = me.json()
    assert body["user"]["username"] == account["name"]
    assert body["key_blob"] == account["registration"].request["key_blob"]
    assert api.post("/api/v1/auth/logout", headers=bearer(token)).status_code == 204
    assert api.get("/api/v1/accounts/me", headers=bearer(token)).status_code == 401


def test_prelogin_does_not_reveal_who_exists(api: TestClient) -> None:
    account = register(api)
    real = api.post("/api/v1/auth/prelogin", json={"username": account["name"]}).json()
    assert real["kdf"]["salt"] == account["registration"].request["kdf"]["salt"]
    ghost = unique_name("ghost")
    first = api.post("/api/v1/auth/prelogin", json={"username": ghost}).json()
    second = api.post("/api/v1/auth/prelogin", json={"username": ghost}).json()
    assert first == second  # deterministic, like a real user's
    assert len(base64.b64decode(first["kdf"]["salt"])) == 16
    assert first["kdf"]["iterations"] == real["kdf"]["iterations"]


def test_wrong_password_and_unknown_user_look_the_same(api: TestClient) -> None:
    account = register(api)
    wrong = api.post(
        "/api/v1/auth/login",
        json={"username": account["name"], "auth_key": auth_key_for(api, account["name"], "nope")},
    )
    ghost = api.post(
        "/api/v1/auth/login",
        json={"username": unique_name("ghost"), "auth_key": base64.b64encode(bytes(32)).decode()},
    )
    assert wrong.status_code == ghost.status_code == 401
    assert wrong.json() == ghost.json()


def test_duplicate_username_is_a_conflict(api: TestClient) -> None:
    account = register(api)
    again = build_registration(
        account["name"],
        PASSWORD,
        iterations=TEST_KDF_ITERATIONS,
        min_iterations=TEST_KDF_ITERATIONS,
    )
    response = api.post("/api/v1/auth/register", json=again.request)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "username_taken"


def test_registration_with_too_few_iterations_is_refused(make_client: Any) -> None:
    api = make_client(SECURECHAT_KDF_ITERATIONS="2000")
    weak = build_registration(unique_name(), PASSWORD, iterations=1000, min_iterations=1000)
    response = api.post("/api/v1/auth/register", json=weak.request)
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "kdf.iterations"


def _mutate(request: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    import copy

    changed = copy.deepcopy(request)
    target = changed
    *parents, last = path.split(".")
    for part in parents:
        target = target[part]
    if value is _DELETE:
        del target[last]
    else:
        target[last] = value
    return changed


_DELETE = object()
HOSTILE_REGISTRATIONS = [
    ("username", "Alice", "username"),
    ("username", "a", "username"),
    ("username", "../../etc/passwd", "username"),
    ("username", "alice\u0430", "username"),  # Cyrillic look-alike
    ("username", "x" * 33, "username"),
    ("username", 123, "username"),
    ("user_id", "not-a-uuid", "user_id"),
    ("user_id", "00000000-0000-1000-8000-000000000000", "user_id"),  # not version 4
    ("auth_key", "!!!", "auth_key"),
    ("auth_key", base64.b64encode(bytes(31)).decode(), "auth_key"),
    ("auth_key", base64.urlsafe_b64encode(b"\xff" * 32).decode(), "auth_key"),
    ("auth_key", " " + base64.b64encode(bytes(32)).decode(), "auth_key"),
    ("auth_key", base64.b64encode(bytes(32)).decode()[:-2] + "B=", "auth_key"),  # stray bits
    ("kdf.iterations", "600000", "kdf.iterations"),
    ("kdf.iterations", True, "kdf.iterations"),
    ("kdf.iterations", 10**12, "kdf.iterations"),
    ("kdf.name", "md5", "kdf.name"),
    ("kdf.salt", base64.b64encode(bytes(8)).decode(), "kdf.salt"),
    ("keys.suite", "rsa-v0", "keys.suite"),
    ("keys.ecdh_public", base64.b64encode(b"\x04" + bytes(64)).decode(), "keys.ecdh_public"),
    ("keys.ecdsa_public", base64.b64encode(bytes(65)).decode(), "keys.ecdsa_public"),
    ("key_blob.nonce", base64.b64encode(bytes(16)).decode(), "key_blob.nonce"),
    ("key_blob.ciphertext", "A" * 100_000, "key_blob.ciphertext"),
    ("extra", "field", "extra"),
    ("keys", _DELETE, "keys"),
]


@pytest.mark.parametrize(("path", "value", "field"), HOSTILE_REGISTRATIONS)
def test_hostile_registrations_are_refused_naming_the_field(
    api: TestClient, path: str, value: Any, field: str
) -> None:
    registration = build_registration(
        unique_name(), PASSWORD, iterations=TEST_KDF_ITERATIONS, min_iterations=TEST_KDF_ITERATIONS
    )
    response = api.post("/api/v1/auth/register", json=_mutate(registration.request, path, value))
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["field"] == field


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"{not json", "application/json", 400),
        (b"[]", "application/json", 422),
        (b"null", "application/json", 422),
        (b'{"username": "alice"}', "text/plain", 415),
        ("\ud800".encode("utf-8", "surrogatepass"), "application/json", 400),
    ],
)
def test_malformed_bodies(api: TestClient, body: bytes, content_type: str, status: int) -> None:
    response = api.post(
        "/api/v1/auth/prelogin", content=body, headers={"Content-Type": content_type}
    )
    assert response.status_code == status
    assert "error" in response.json()


def test_oversized_request_is_413(make_client: Any) -> None:
    api = make_client(SECURECHAT_MAX_REQUEST_BYTES="2048")
    response = api.post("/api/v1/auth/prelogin", json={"username": "a" * 5000})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_login_is_rate_limited_per_account(make_client: Any) -> None:
    api = make_client(SECURECHAT_RATE_LOGIN_FAILURES_PER_ACCOUNT="3")
    account = register(api)
    bad = {"username": account["name"], "auth_key": base64.b64encode(bytes(32)).decode()}
    statuses = [api.post("/api/v1/auth/login", json=bad).status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]
    # Even the right password is refused while the account is locked: guessing gets nowhere.
    good = {"username": account["name"], "auth_key": auth_key_for(api, account["name"])}
    locked = api.post("/api/v1/auth/login", json=good)
    assert locked.status_code == 429
    assert int(locked.headers["Retry-After"]) > 0
    assert locked.json()["error"]["code"] == "rate_limited"


def test_auth_endpoints_are_rate_limited_per_ip(make_client: Any) -> None:
    api = make_client(SECURECHAT_RATE_AUTH_PER_IP="5")
    statuses = [
        api.post("/api/v1/auth/prelogin", json={"username": "someone"}).status_code
        for _ in range(6)
    ]
    assert statuses == [200] * 5 + [429]


@pytest.mark.parametrize(
    "header",
    ["", "Bearer", "Bearer ", "Basic abc", "Bearer not-a-real-token", "Bearer " + "x" * 300],
)
def test_bad_bearer_tokens_are_401(api: TestClient, header: str) -> None:
    response = api.get("/api/v1/accounts/me", headers={"Authorization": header} if header else {})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize("name", ["token", "access_token", "auth", "Token"])
def test_token_in_query_string_is_refused(api: TestClient, name: str) -> None:
    account = register(api)
    token = login(api, account["name"])
    response = api.get(f"/api/v1/accounts/me?{name}={token}")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "token_in_url"


def test_key_change_and_directory(api: TestClient) -> None:
    from securechat.client.crypto import IdentityKeys, seal_key_blob

    account = register(api)
    token = login(api, account["name"])
    user_id = account["user"]["id"]
    identity = IdentityKeys.generate()
    wrap_key = account["registration"].derived.wrap_key
    body = {
        "key_version": 2,
        "keys": identity.public(user_id, 2).to_json(),
        "key_blob": seal_key_blob(wrap_key, user_id, 2, identity),
    }
    response = api.put("/api/v1/accounts/me/keys", json=body, headers=bearer(token))
    assert response.status_code == 200, response.text
    assert response.json()["user"]["key_version"] == 2
    replay = api.put("/api/v1/accounts/me/keys", json=body, headers=bearer(token))
    assert replay.status_code == 409
    old = api.get(f"/api/v1/users/{user_id}/keys/1", headers=bearer(token)).json()
    new = api.get(f"/api/v1/users/{user_id}/keys/2", headers=bearer(token)).json()
    assert old["ecdsa_public"] == account["registration"].request["keys"]["ecdsa_public"]
    assert new["ecdsa_public"] == body["keys"]["ecdsa_public"]
    found = api.get(f"/api/v1/users?prefix={account['name'][:4]}", headers=bearer(token)).json()
    assert account["name"] in [u["username"] for u in found["users"]]
    assert api.get(f"/api/v1/users/{user_id}/keys/3", headers=bearer(token)).status_code == 404


def test_directory_prefix_with_like_wildcards_matches_literally(api: TestClient) -> None:
    token = login(api, register(api)["name"])
    response = api.get("/api/v1/users?prefix=%25", headers=bearer(token))
    assert response.status_code == 200
    assert response.json()["users"] == []


def test_password_change_ends_other_sessions(api: TestClient) -> None:
    import os

    from securechat.client.crypto import seal_key_blob

    account = register(api)
    first = login(api, account["name"])
    second = login(api, account["name"])
    salt = os.urandom(16)
    new_keys = derive_keys(
        "a new long password", salt, TEST_KDF_ITERATIONS, min_iterations=TEST_KDF_ITERATIONS
    )
    user_id = account["user"]["id"]
    body = {
        "auth_key": auth_key_for(api, account["name"]),
        "new_auth_key": base64.b64encode(new_keys.auth_key).decode(),
        "kdf": {
            "name": "pbkdf2-sha256",
            "iterations": TEST_KDF_ITERATIONS,
            "salt": base64.b64encode(salt).decode(),
        },
        "key_blob": seal_key_blob(new_keys.wrap_key, user_id, 1, account["registration"].identity),
    }
    assert (
        api.put("/api/v1/accounts/me/password", json=body, headers=bearer(first)).status_code == 204
    )
    assert api.get("/api/v1/accounts/me", headers=bearer(second)).status_code == 401
    assert api.get("/api/v1/accounts/me", headers=bearer(first)).status_code == 200
    login(api, account["name"], "a new long password")


def test_parallel_guesses_cannot_pass_the_lockout(make_client: Any) -> None:
    from concurrent.futures import ThreadPoolExecutor

    api = make_client(SECURECHAT_RATE_LOGIN_FAILURES_PER_ACCOUNT="5")
    account = register(api)
    bad = {"username": account["name"], "auth_key": base64.b64encode(bytes(32)).decode()}
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(
            pool.map(lambda _: api.post("/api/v1/auth/login", json=bad).status_code, range(20))
        )
    assert statuses.count(401) <= 5
    assert statuses.count(429) >= 15


@pytest.mark.parametrize("path", ["/api/v1/users/{id}/keys/99999999999999999999999"])
def test_huge_numbers_are_refused_cleanly(api: TestClient, path: str) -> None:
    account = register(api)
    token = login(api, account["name"])
    response = api.get(path.format(id=account["user"]["id"]), headers=bearer(token))
    assert response.status_code == 422
    cid = "00000000-0000-4000-8000-000000000000"
    response = api.get(f"/api/v1/conversations/{cid}/messages?limit=\u00b2", headers=bearer(token))
    assert response.status_code == 422
