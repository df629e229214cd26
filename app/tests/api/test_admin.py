"""The admin dashboard API: admins only, no content, never the last admin."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from starlette.testclient import TestClient

from securechat.admin import create_admin
from securechat.settings import Settings
from tests.api.test_accounts import bearer, login, register
from tests.conftest import server_environment
from tests.helpers import unique_name

ADMIN_PASSWORD = "admin password for tests"


def admin_token(api: TestClient, migrated_url: str) -> tuple[str, str]:
    name = unique_name("admin")
    user_id = create_admin(
        Settings.from_env(server_environment(migrated_url)), name, ADMIN_PASSWORD
    )
    return user_id, login(api, name, ADMIN_PASSWORD)


def admin_endpoints(user_id: str) -> list[tuple[str, str, Any]]:
    user = f"/api/v1/admin/users/{user_id}"
    return [
        ("GET", "/api/v1/admin/users", None),
        ("POST", f"{user}/disable", None),
        ("POST", f"{user}/enable", None),
        ("POST", f"{user}/sessions/reset", None),
        ("PUT", f"{user}/admin", {"is_admin": True}),
        ("GET", "/api/v1/admin/stats", None),
        ("GET", "/api/v1/admin/audit", None),
    ]


def test_non_admins_get_403_everywhere(api: TestClient) -> None:
    account = register(api)
    token = login(api, account["name"])
    for method, path, body in admin_endpoints(account["user"]["id"]):
        response = api.request(method, path, json=body, headers=bearer(token))
        assert response.status_code == 403, (method, path)
        assert response.json()["error"]["code"] == "forbidden"
        anonymous = api.request(method, path, json=body)
        assert anonymous.status_code == 401


def test_admin_manages_users(api: TestClient, migrated_url: str) -> None:
    admin_id, token = admin_token(api, migrated_url)
    account = register(api)
    user_id = account["user"]["id"]
    user_token = login(api, account["name"])

    listed = api.get(f"/api/v1/admin/users?query={account['name']}", headers=bearer(token)).json()
    assert listed["total"] == 1
    row = listed["users"][0]
    assert row == {**row, "id": user_id, "disabled": False, "is_admin": False, "sessions": 1}
    assert set(row) == {
        "id",
        "username",
        "is_admin",
        "disabled",
        "key_version",
        "created_at",
        "sessions",
    }

    assert (
        api.post(f"/api/v1/admin/users/{user_id}/disable", headers=bearer(token)).status_code == 204
    )
    assert api.get("/api/v1/accounts/me", headers=bearer(user_token)).status_code == 401
    refused = api.post(
        "/api/v1/auth/login",
        json={"username": account["name"], "auth_key": _auth_key(api, account["name"])},
    )
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "account_disabled"
    assert (
        api.post(f"/api/v1/admin/users/{user_id}/enable", headers=bearer(token)).status_code == 204
    )
    user_token = login(api, account["name"])

    assert (
        api.post(f"/api/v1/admin/users/{user_id}/sessions/reset", headers=bearer(token)).status_code
        == 204
    )
    assert api.get("/api/v1/accounts/me", headers=bearer(user_token)).status_code == 401

    promote = api.put(
        f"/api/v1/admin/users/{user_id}/admin", json={"is_admin": True}, headers=bearer(token)
    )
    assert promote.status_code == 204
    user_token = login(api, account["name"])
    assert api.get("/api/v1/admin/stats", headers=bearer(user_token)).status_code == 200
    demote = api.put(
        f"/api/v1/admin/users/{user_id}/admin", json={"is_admin": False}, headers=bearer(token)
    )
    assert demote.status_code == 204
    assert api.get("/api/v1/admin/stats", headers=bearer(user_token)).status_code == 403

    for path in (
        f"/api/v1/admin/users/{uuid.uuid4()}/disable",
        f"/api/v1/admin/users/{uuid.uuid4()}/enable",
    ):
        assert api.post(path, headers=bearer(token)).status_code == 404
    _ = admin_id


def test_never_the_last_admin(make_client: Any, database_url: str) -> None:
    from securechat.db.migrate import upgrade

    upgrade(database_url)
    api = make_client()
    # Other tests in this module may have made admins: demote them all through the API first.
    admin_id, token = admin_token(api, database_url)
    others = api.get("/api/v1/admin/users?limit=200", headers=bearer(token)).json()["users"]
    for user in others:
        if user["is_admin"] and user["id"] != admin_id:
            api.put(
                f"/api/v1/admin/users/{user['id']}/admin",
                json={"is_admin": False},
                headers=bearer(token),
            )
    response = api.put(
        f"/api/v1/admin/users/{admin_id}/admin", json={"is_admin": False}, headers=bearer(token)
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "last_admin"
    response = api.post(f"/api/v1/admin/users/{admin_id}/disable", headers=bearer(token))
    assert response.status_code == 409


def test_stats_and_audit(api: TestClient, migrated_url: str) -> None:
    _, token = admin_token(api, migrated_url)
    stats = api.get("/api/v1/admin/stats", headers=bearer(token)).json()
    from securechat import __version__
    from securechat.db.migrate import head_revision

    assert stats["version"] == __version__
    assert stats["schema"] == head_revision()
    assert stats["users"] >= 1
    assert {"online_now", "messages_per_day", "storage_bytes", "uptime_seconds"} <= set(stats)

    account = register(api)
    login(api, account["name"])
    page = api.get(
        f"/api/v1/admin/audit?event=login.succeeded&actor_id={account['user']['id']}",
        headers=bearer(token),
    ).json()
    assert len(page["entries"]) == 1
    entry = page["entries"][0]
    assert entry["event"] == "login.succeeded"
    assert entry["ip"]
    first = api.get("/api/v1/admin/audit?limit=2", headers=bearer(token)).json()
    assert first["has_more"] is True
    before = first["entries"][-1]["id"]
    second = api.get(f"/api/v1/admin/audit?limit=2&before={before}", headers=bearer(token)).json()
    assert all(e["id"] < before for e in second["entries"])
    assert api.get("/api/v1/admin/audit?since=yesterday", headers=bearer(token)).status_code == 422
    recent = api.get("/api/v1/admin/audit?since=2000-01-01T00:00:00Z", headers=bearer(token))
    assert recent.status_code == 200


@pytest.mark.parametrize(
    "body", [{}, {"is_admin": "yes"}, {"is_admin": 1}, {"is_admin": True, "x": 1}]
)
def test_role_body_validation(api: TestClient, migrated_url: str, body: Any) -> None:
    admin_id, token = admin_token(api, migrated_url)
    response = api.put(f"/api/v1/admin/users/{admin_id}/admin", json=body, headers=bearer(token))
    assert response.status_code == 422


def _auth_key(api: TestClient, name: str) -> str:
    from tests.api.test_accounts import auth_key_for

    return auth_key_for(api, name)
