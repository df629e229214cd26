"""Request parsing, authentication and error rendering shared by every endpoint."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from securechat.components import Components
from securechat.realtime.hub import Hub
from securechat.schemas import Shape, validate
from securechat.services.accounts import AuthContext, unauthorized
from securechat.services.errors import ServiceError

log = logging.getLogger(__name__)

ShapeT = TypeVar("ShapeT", bound=Shape)
Handler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class Operation:
    """One endpoint: the route and its OpenAPI description come from the same record."""

    method: str
    path: str
    handler: Handler
    summary: str
    body: type[Shape] | None = None
    auth: bool = True
    status: int = 200
    query: tuple[str, ...] = ()


def components(request: Request) -> Components:
    found: Components = request.app.state.components
    return found


def hub(request: Request) -> Hub:
    return components(request).hub


def error_response(error: ServiceError, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": error.to_json()}, status_code=error.status, headers=headers)


def json_response(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status)


async def parse_body(request: Request, model: type[ShapeT]) -> ShapeT:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise ServiceError(
            "unsupported_media_type", "send the body as Content-Type: application/json", status=415
        )
    raw = await request.body()
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ServiceError("validation_error", "the body is not valid JSON", status=400) from None
    return validate(model, data)


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token or len(token) > 256:
        raise unauthorized()
    return token.strip()


async def authenticate(request: Request) -> AuthContext:
    token = bearer_token(request)
    parts = components(request)
    return await parts.db(lambda db: parts.accounts.authenticate(db, token))


def query_int(
    request: Request, name: str, *, low: int, high: int, default: int | None
) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 20 or not low <= int(raw) <= high:
        raise ServiceError(
            "validation_error",
            f"{name}: must be a whole number from {low} to {high}",
            status=422,
            field=name,
        )
    return int(raw)


def client_ip(request: Request) -> str:
    # uvicorn's proxy-headers support has already replaced this with X-Forwarded-For when the
    # peer is a trusted proxy (SECURECHAT_FORWARDED_ALLOW_IPS / --forwarded-allow-ips).
    return request.client.host if request.client else "unknown"


def guarded(handler: Handler) -> Handler:
    """Turn service errors into JSON error answers, and anything else into a logged 500."""

    async def run(request: Request) -> Response:
        try:
            return await handler(request)
        except ServiceError as error:
            headers = (
                {"Retry-After": str(error.extra["retry_after"])}
                if error.code == "rate_limited"
                else None
            )
            return error_response(error, headers)
        except Exception:
            log.exception("unhandled error in %s %s", request.method, request.url.path)
            return error_response(ServiceError("internal_error", "internal error", status=500))

    return run
