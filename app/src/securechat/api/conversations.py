"""Conversations, epochs, members, keys, history, sending over HTTP and catch-up."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response

from securechat.api.common import (
    Operation,
    authenticate,
    bearer_token,
    components,
    hub,
    json_response,
    parse_body,
    query_int,
)
from securechat.schemas import (
    MAX_INT,
    CreateConversationRequest,
    Envelope,
    NewEpochRequest,
    RenameRequest,
    RoleRequest,
    SyncRequest,
)
from securechat.services.conversations import Change
from securechat.services.errors import ServiceError
from securechat.services.messages import HISTORY_DEFAULT_LIMIT, HISTORY_MAX_LIMIT, SendRequest


async def _announce(request: Request, change: Change) -> None:
    events = hub(request)
    await events.to_users("conversation:updated", change.conversation, change.notify)
    removed = {"id": change.conversation["id"], "removed": True}
    await events.to_users("conversation:updated", removed, change.removed)


async def list_conversations(request: Request) -> Response:
    ctx = await authenticate(request)
    parts = components(request)
    found = await parts.db(lambda db: parts.conversations.list_for(db, ctx))
    return json_response({"conversations": found})


async def create_conversation(request: Request) -> Response:
    ctx = await authenticate(request)
    body = await parse_body(request, CreateConversationRequest)
    parts = components(request)
    change = await parts.db(lambda db: parts.conversations.create(db, ctx, body))
    await _announce(request, change)
    return json_response(change.conversation, status=201)


async def get_conversation(request: Request) -> Response:
    ctx = await authenticate(request)
    conversation_id = request.path_params["conversation_id"]
    parts = components(request)
    return json_response(
        await parts.db(lambda db: parts.conversations.get(db, ctx, conversation_id))
    )


async def rename_conversation(request: Request) -> Response:
    ctx = await authenticate(request)
    body = await parse_body(request, RenameRequest)
    conversation_id = request.path_params["conversation_id"]
    parts = components(request)
    change = await parts.db(
        lambda db: parts.conversations.rename(db, ctx, conversation_id, body.title)
    )
    await _announce(request, change)
    return json_response(change.conversation)


async def new_epoch(request: Request) -> Response:
    ctx = await authenticate(request)
    body = await parse_body(request, NewEpochRequest)
    conversation_id = request.path_params["conversation_id"]
    parts = components(request)
    change = await parts.db(
        lambda db: parts.conversations.new_epoch(db, ctx, conversation_id, body)
    )
    await _announce(request, change)
    return json_response(change.conversation)


async def leave_conversation(request: Request) -> Response:
    ctx = await authenticate(request)
    conversation_id = request.path_params["conversation_id"]
    parts = components(request)
    change = await parts.db(lambda db: parts.conversations.leave(db, ctx, conversation_id))
    await _announce(request, change)
    return Response(status_code=204)


async def set_member_role(request: Request) -> Response:
    ctx = await authenticate(request)
    body = await parse_body(request, RoleRequest)
    conversation_id = request.path_params["conversation_id"]
    user_id = request.path_params["user_id"]
    parts = components(request)
    change = await parts.db(
        lambda db: parts.conversations.set_role(db, ctx, conversation_id, user_id, body.role)
    )
    await _announce(request, change)
    return json_response(change.conversation)


async def epoch_keys(request: Request) -> Response:
    ctx = await authenticate(request)
    conversation_id = request.path_params["conversation_id"]
    parts = components(request)
    keys = await parts.db(lambda db: parts.conversations.keys_for(db, ctx, conversation_id))
    return json_response({"keys": keys})


async def history(request: Request) -> Response:
    token = bearer_token(request)
    conversation_id = request.path_params["conversation_id"]
    parts = components(request)

    def page(db: Session) -> dict[str, Any]:
        # Authentication and the page share one transaction (one worker thread, one pooled
        # connection): the busiest read of the API pays for one checkout, not two. The query
        # is read after authenticating, as everywhere else.
        ctx = parts.accounts.authenticate(db, token)
        before = query_int(request, "before", low=1, high=MAX_INT, default=None)
        after = query_int(request, "after", low=0, high=MAX_INT, default=None)
        limit = query_int(
            request, "limit", low=1, high=HISTORY_MAX_LIMIT, default=HISTORY_DEFAULT_LIMIT
        )
        assert limit is not None
        return parts.messages.history(
            db, ctx, conversation_id, before=before, after=after, limit=limit
        )

    # orjson: the stdlib encoder took a tenth of a page's CPU (docs/benchmarks.md, S6). The page
    # is strings and integers only, so both encode it alike.
    return Response(orjson.dumps(await parts.db(page)), media_type="application/json")


async def send_message(request: Request) -> Response:
    ctx = await authenticate(request)
    envelope = await parse_body(request, Envelope)
    if envelope.conversation_id != request.path_params["conversation_id"]:
        raise ServiceError(
            "validation_error",
            "conversation_id: does not match the URL",
            status=422,
            field="conversation_id",
        )
    parts = components(request)
    stored = await parts.writer.submit(SendRequest(ctx.user_id, envelope))
    if not stored.duplicate:
        await hub(request).to_users("message:new", stored.message, stored.recipients)
    return json_response(stored.ack(), status=201)


async def sync(request: Request) -> Response:
    ctx = await authenticate(request)
    body = await parse_body(request, SyncRequest)
    parts = components(request)
    return json_response(
        await parts.db(lambda db: parts.messages.sync(db, ctx, dict(body.since), body.limit))
    )


CONVERSATION = "/conversations/{conversation_id:uuid_str}"

OPERATIONS = (
    Operation(
        "GET", "/conversations", list_conversations, "Conversations the caller is a member of"
    ),
    Operation(
        "POST",
        "/conversations",
        create_conversation,
        "Create a direct conversation or a group",
        CreateConversationRequest,
        status=201,
    ),
    Operation("GET", CONVERSATION, get_conversation, "One conversation"),
    Operation("PATCH", CONVERSATION, rename_conversation, "Rename a group (admins)", RenameRequest),
    Operation(
        "POST",
        CONVERSATION + "/epochs",
        new_epoch,
        "New epoch: rotation or membership change",
        NewEpochRequest,
    ),
    Operation("POST", CONVERSATION + "/leave", leave_conversation, "Leave a group", status=204),
    Operation(
        "PUT",
        CONVERSATION + "/members/{user_id:uuid_str}",
        set_member_role,
        "Change a member's role (admins)",
        RoleRequest,
    ),
    Operation("GET", CONVERSATION + "/keys", epoch_keys, "The caller's wrapped epoch keys"),
    Operation(
        "GET",
        CONVERSATION + "/messages",
        history,
        "History page",
        query=("before", "after", "limit"),
    ),
    Operation(
        "POST",
        CONVERSATION + "/messages",
        send_message,
        "Send an envelope (same ack as Socket.IO)",
        Envelope,
        status=201,
    ),
    Operation(
        "POST", "/sync", sync, "Catch up: messages after a seq per conversation", SyncRequest
    ),
)
