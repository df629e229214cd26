"""Security headers on every response, including errors, static files and Socket.IO."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/style.css",
        "/api/v1/health",
        "/api/v1/openapi.json",
        "/api/v1/nope",
        "/socket.io/?EIO=4&transport=polling",
    ],
)
def test_headers_everywhere(api: TestClient, path: str) -> None:
    response = api.get(path)
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "'unsafe-inline'" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"


def test_unknown_api_paths_are_json_404(api: TestClient) -> None:
    response = api.get("/api/v1/conversations/not-a-uuid")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    response = api.delete("/api/v1/auth/login")
    assert response.status_code == 405


def test_openapi_document_lists_every_operation(api: TestClient) -> None:
    document = api.get("/api/v1/openapi.json").json()
    assert document["openapi"].startswith("3.")
    assert "/api/v1/auth/register" in document["paths"]
    assert "/api/v1/conversations/{conversation_id}/messages" in document["paths"]
    register = document["paths"]["/api/v1/auth/register"]["post"]
    assert register["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "RegisterRequest"
    )
    assert "RegisterRequest" in document["components"]["schemas"]


def test_health_reports_the_schema(api: TestClient) -> None:
    from securechat.db.migrate import head_revision

    assert api.get("/api/v1/health").json()["schema"] == head_revision()
