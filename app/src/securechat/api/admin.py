"""The admin dashboard API: admin accounts only (403 otherwise); users, never content."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response

from securechat.api.common import (
    Operation,
    authenticate,
    components,
    hub,
    json_response,
    parse_body,
    query_int,
)
from securechat.realtime.hub import user_room
from securechat.schemas import MAX_INT, AdminRoleRequest
from securechat.services.accounts import AuthContext
from securechat.services.admin import require_admin
from securechat.services.errors import invalid

USER = "/admin/users/{user_id:uuid_str}"
QUERY_MAX = 32


async def admin_context(request: Request) -> AuthContext:
    ctx = await authenticate(request)
    require_admin(ctx.is_admin)
    return ctx


async def list_users(request: Request) -> Response:
    await admin_context(request)
    query = request.query_params.get("query", "").strip().lower()[:QUERY_MAX]
    offset = query_int(request, "offset", low=0, high=MAX_INT, default=0) or 0
    limit = query_int(request, "limit", low=1, high=200, default=50) or 50
    parts = components(request)
    return json_response(
        await parts.db(lambda db: parts.admin.list_users(db, query, offset, limit))
    )


async def _set_disabled(request: Request, *, disabled: bool) -> Response:
    ctx = await admin_context(request)
    user_id = request.path_params["user_id"]
    parts = components(request)
    ended = await parts.db(
        lambda db: parts.admin.set_disabled(db, ctx.user_id, user_id, disabled=disabled)
    )
    if disabled:
        await hub(request).revoke_sessions(ended, "disabled")
        await hub(request).disconnect_room(user_room(user_id))
    return Response(status_code=204)


async def disable_user(request: Request) -> Response:
    return await _set_disabled(request, disabled=True)


async def enable_user(request: Request) -> Response:
    return await _set_disabled(request, disabled=False)


async def reset_sessions(request: Request) -> Response:
    ctx = await admin_context(request)
    user_id = request.path_params["user_id"]
    parts = components(request)
    ended = await parts.db(lambda db: parts.admin.reset_sessions(db, ctx.user_id, user_id))
    await hub(request).revoke_sessions(ended, "reset")
    return Response(status_code=204)


async def set_role(request: Request) -> Response:
    ctx = await admin_context(request)
    body = await parse_body(request, AdminRoleRequest)
    user_id = request.path_params["user_id"]
    parts = components(request)
    await parts.db(
        lambda db: parts.admin.set_admin(db, ctx.user_id, user_id, is_admin=body.is_admin)
    )
    return Response(status_code=204)


async def stats(request: Request) -> Response:
    await admin_context(request)
    parts = components(request)
    online = await parts.presence.count()
    return json_response(
        await parts.db(
            lambda db: parts.admin.stats(db, online_now=online, schema=parts.schema_revision)
        )
    )


def _time(request: Request, name: str) -> datetime | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise invalid(
            name, f"{name}: expected an ISO 8601 time like 2026-11-25T16:00:00Z"
        ) from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)  # stored as naive UTC
    return moment


async def audit(request: Request) -> Response:
    await admin_context(request)
    params = request.query_params
    event = params.get("event") or None
    actor = params.get("actor_id") or None
    target = params.get("target_id") or None
    for name, value in (("event", event), ("actor_id", actor), ("target_id", target)):
        if value is not None and len(value) > 64:
            raise invalid(name, f"{name}: at most 64 characters")
    since, until = _time(request, "since"), _time(request, "until")
    before = query_int(request, "before", low=1, high=MAX_INT, default=None)
    limit = query_int(request, "limit", low=1, high=500, default=50) or 50
    parts = components(request)
    page = await parts.db(
        lambda db: parts.audit.search(
            db,
            event=event,
            actor_id=actor,
            target_id=target,
            since=since,
            until=until,
            before_id=before,
            limit=limit,
        )
    )
    return json_response(page)


OPERATIONS = (
    Operation(
        "GET", "/admin/users", list_users, "Users (no content)", query=("query", "offset", "limit")
    ),
    Operation(
        "POST",
        USER + "/disable",
        disable_user,
        "Disable an account; ends sessions and sockets",
        status=204,
    ),
    Operation("POST", USER + "/enable", enable_user, "Enable an account", status=204),
    Operation(
        "POST", USER + "/sessions/reset", reset_sessions, "End all of a user's sessions", status=204
    ),
    Operation(
        "PUT",
        USER + "/admin",
        set_role,
        "Promote or demote an admin (never the last)",
        AdminRoleRequest,
        status=204,
    ),
    Operation("GET", "/admin/stats", stats, "Server statistics"),
    Operation(
        "GET",
        "/admin/audit",
        audit,
        "Audit trail, newest first",
        query=("event", "actor_id", "target_id", "since", "until", "before", "limit"),
    ),
)
