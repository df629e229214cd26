"""Security headers on every response, including errors, static files and Socket.IO."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from securechat.security.headers import (
    CONTENT_SECURITY_POLICY,
    content_security_policy,
    import_map_hashes,
    inline_script_hash,
)


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/css/app.css",
        "/vendor/uqr-0.1.3/index.mjs",
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


# -- Content-Security-Policy and the browser client's import map -----------------------------

STATIC = Path(__file__).resolve().parents[2] / "src" / "securechat" / "static"
IMPORT_MAP = re.compile(r'<script type="importmap">(.*?)</script>', re.DOTALL)


def expected_import_map_hash() -> str:
    """Computed here independently of the server: SHA-256 of the script's text, base64."""
    found = IMPORT_MAP.findall((STATIC / "index.html").read_text(encoding="utf-8"))
    assert len(found) == 1, "index.html must carry exactly one inline import map"
    digest = hashlib.sha256(found[0].encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"


def script_src(csp: str) -> list[str]:
    directives = {d.split()[0]: d.split()[1:] for d in csp.split(";") if d.strip()}
    return directives["script-src"]


@pytest.mark.parametrize("path", ["/", "/index.html", "/api/v1/health", "/api/v1/health?token=x"])
def test_csp_allows_the_import_map_by_hash(api: TestClient, path: str) -> None:
    csp = api.get(path).headers["content-security-policy"]
    assert script_src(csp) == ["'self'", expected_import_map_hash()]
    assert "'unsafe-inline'" not in csp
    assert "'unsafe-eval'" not in csp
    assert "'strict-dynamic'" not in csp


def test_index_is_the_browser_client(api: TestClient) -> None:
    response = api.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert '<script type="module" src="/js/main.js"></script>' in page
    assert '<link rel="stylesheet" href="/css/app.css">' in page
    # The import map is the only inline script.
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", page, re.DOTALL)
    inline = [attrs for attrs, text in scripts if text.strip()]
    assert inline == [' type="importmap"']
    assert re.search(r"\son[a-z]+\s*=", page) is None  # no inline event handlers
    assert "style=" not in page


def test_vendored_modules_are_served_as_javascript(api: TestClient) -> None:
    imports = json.loads(IMPORT_MAP.findall(api.get("/").text)[0])["imports"]
    for url in imports.values():
        response = api.get(url)
        assert response.status_code == 200, url
        assert response.headers["content-type"].split(";")[0] == "text/javascript", url
        assert response.headers["x-content-type-options"] == "nosniff"


def test_content_security_policy_takes_only_hash_sources() -> None:
    source = "'sha256-" + base64.b64encode(bytes(32)).decode() + "'"
    policy = content_security_policy([source, source])
    assert f"script-src 'self' {source};" in policy
    assert content_security_policy() == CONTENT_SECURITY_POLICY
    assert "script-src 'self';" in CONTENT_SECURITY_POLICY
    for bad in ("'unsafe-inline'", "https://cdn.example", "'sha256-x'; script-src *", "*"):
        with pytest.raises(ValueError, match="hash source"):
            content_security_policy([bad])


def test_only_import_maps_are_hashed() -> None:
    page = (
        '<script type="importmap">{"imports": {}}</script>'
        "<script>alert(1)</script>"
        '<script type="module">alert(2)</script>'
        '<script type="importmap" src="/map.json"></script>'
        '<script type="importmap">\r\n{}\r\n</script>'
    )
    assert import_map_hashes(page) == [
        inline_script_hash('{"imports": {}}'),
        inline_script_hash("\n{}\n"),
    ]
    digest = base64.b64encode(hashlib.sha256(b'{"imports": {}}').digest()).decode()
    assert inline_script_hash('{"imports": {}}') == f"'sha256-{digest}'"
