"""The caller's block list."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from securechat.api.common import Operation, authenticate, components, hub, json_response


async def list_blocks(request: Request) -> Response:
    ctx = await authenticate(request)
    parts = components(request)
    return json_response({"blocks": await parts.db(lambda db: parts.blocks.list_for(db, ctx))})


async def block(request: Request) -> Response:
    ctx = await authenticate(request)
    user_id = request.path_params["user_id"]
    parts = components(request)
    created = await parts.db(lambda db: parts.blocks.block(db, ctx, user_id))
    if created:
        # From now on neither sees the other's presence: tell both sides the other went away.
        events = hub(request)
        await events.to_users("user:offline", {"user_id": ctx.user_id}, [user_id])
        await events.to_users("user:offline", {"user_id": user_id}, [ctx.user_id])
    return Response(status_code=204)


async def unblock(request: Request) -> Response:
    ctx = await authenticate(request)
    user_id = request.path_params["user_id"]
    parts = components(request)
    await parts.db(lambda db: parts.blocks.unblock(db, ctx, user_id))
    return Response(status_code=204)


BLOCK = "/blocks/{user_id:uuid_str}"
OPERATIONS = (
    Operation("GET", "/blocks", list_blocks, "Users the caller has blocked"),
    Operation("PUT", BLOCK, block, "Block a user (idempotent)", status=204),
    Operation("DELETE", BLOCK, unblock, "Unblock a user (idempotent)", status=204),
)
