"""Accounts: prelogin, register, login, logout, own keys and password, user directory."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response

from securechat.api.common import (
    Operation,
    authenticate,
    client_ip,
    components,
    hub,
    json_response,
    parse_body,
)
from securechat.schemas import (
    DeleteAccountRequest,
    KeyChangeRequest,
    LoginRequest,
    PasswordChangeRequest,
    PreloginRequest,
    RegisterRequest,
)
from securechat.services.accounts import LoginRefusedError
from securechat.services.conversations import contacts_of
from securechat.services.errors import ServiceError, invalid

SEARCH_PREFIX_MAX = 32
MAX_KEY_VERSION = 2**31 - 1


def _rate_limited(retry_after: int) -> ServiceError:
    return ServiceError(
        "rate_limited",
        f"too many attempts; try again in {retry_after} seconds",
        status=429,
        extra={"retry_after": retry_after},
    )


def _limit_ip(request: Request) -> None:
    wait = components(request).limits.per_ip.hit(client_ip(request))
    if wait is not None:
        raise _rate_limited(wait)


async def prelogin(request: Request) -> Response:
    _limit_ip(request)
    body = await parse_body(request, PreloginRequest)
    parts = components(request)
    return json_response(await parts.db(lambda db: parts.accounts.prelogin(db, body.username)))


async def register(request: Request) -> Response:
    _limit_ip(request)
    body = await parse_body(request, RegisterRequest)
    parts = components(request)
    ip = client_ip(request)
    user = await parts.db(lambda db: parts.accounts.register(db, body, ip=ip))
    return json_response({"user": user}, status=201)


async def login(request: Request) -> Response:
    _limit_ip(request)
    body = await parse_body(request, LoginRequest)
    parts = components(request)
    failures = parts.limits.failures_per_account
    # Every attempt counts before the password is checked (a success clears the count), so
    # guesses sent in parallel cannot all slip past the limit; a locked account costs no argon2.
    ip = client_ip(request)
    wait = failures.hit(body.username)
    if wait is not None:
        await parts.db(lambda db: parts.accounts.login_failed(db, body.username, "locked", ip))
        raise _rate_limited(wait)
    try:
        answer = await parts.db(
            lambda db: parts.accounts.login(db, body.username, body.auth_key, ip=ip)
        )
    except LoginRefusedError as error:
        reason = error.code
        await parts.db(lambda db: parts.accounts.login_failed(db, body.username, reason, ip))
        raise
    failures.reset(body.username)
    return json_response(answer)


async def logout(request: Request) -> Response:
    ctx = await authenticate(request)
    parts = components(request)
    await parts.db(lambda db: parts.accounts.logout(db, ctx))
    await hub(request).revoke_sessions([ctx.session_id], "logout")
    return Response(status_code=204)


async def me(request: Request) -> Response:
    ctx = await authenticate(request)
    parts = components(request)
    return json_response(await parts.db(lambda db: parts.accounts.me(db, ctx)))


async def change_keys(request: Request) -> Response:
    ctx = await authenticate(request)
    body = await parse_body(request, KeyChangeRequest)
    parts = components(request)

    def work(db: Session) -> tuple[dict[str, Any], set[str]]:
        user = parts.accounts.change_keys(db, ctx, body)
        return user, contacts_of(db, ctx.user_id)

    user, contacts = await parts.db(work)
    event = {"user_id": ctx.user_id, "key_version": body.key_version}
    await hub(request).to_users("key:changed", event, contacts | {ctx.user_id})
    return json_response({"user": user})


async def change_password(request: Request) -> Response:
    ctx = await authenticate(request)
    body = await parse_body(request, PasswordChangeRequest)
    parts = components(request)
    ended = await parts.db(lambda db: parts.accounts.change_password(db, ctx, body))
    await hub(request).revoke_sessions(ended, "password_changed")
    return Response(status_code=204)


async def delete_account(request: Request) -> Response:
    ctx = await authenticate(request)
    body = await parse_body(request, DeleteAccountRequest)
    parts = components(request)
    deletion = await parts.db(lambda db: parts.accounts.delete_account(db, ctx, body.auth_key))
    await hub(request).revoke_sessions(deletion.sessions, "deleted")
    for name in deletion.blobs:
        parts.blobs.delete(name)
    return Response(status_code=204)


async def search_users(request: Request) -> Response:
    await authenticate(request)
    prefix = request.query_params.get("prefix", "").strip().lower()
    if not prefix or len(prefix) > SEARCH_PREFIX_MAX:
        raise invalid("prefix", f"prefix: give 1 to {SEARCH_PREFIX_MAX} characters")
    parts = components(request)
    return json_response(
        {"users": await parts.db(lambda db: parts.accounts.search_users(db, prefix))}
    )


async def get_user(request: Request) -> Response:
    await authenticate(request)
    user_id = request.path_params["user_id"]
    parts = components(request)
    return json_response(await parts.db(lambda db: parts.accounts.public_user(db, user_id)))


async def get_user_key(request: Request) -> Response:
    await authenticate(request)
    user_id, version = request.path_params["user_id"], request.path_params["key_version"]
    if version > MAX_KEY_VERSION:
        raise invalid("key_version", f"key_version: at most {MAX_KEY_VERSION}")
    parts = components(request)
    return json_response(
        await parts.db(lambda db: parts.accounts.key_version(db, user_id, version))
    )


OPERATIONS = (
    Operation(
        "POST",
        "/auth/prelogin",
        prelogin,
        "KDF parameters for a username",
        PreloginRequest,
        auth=False,
    ),
    Operation(
        "POST",
        "/auth/register",
        register,
        "Create an account",
        RegisterRequest,
        auth=False,
        status=201,
    ),
    Operation(
        "POST",
        "/auth/login",
        login,
        "Log in with auth_key; returns a session token",
        LoginRequest,
        auth=False,
    ),
    Operation("POST", "/auth/logout", logout, "End this session (its sockets too)", status=204),
    Operation("GET", "/accounts/me", me, "Own account, KDF parameters, public keys and key blob"),
    Operation(
        "DELETE",
        "/accounts/me",
        delete_account,
        "Delete the caller's account (confirmed with auth_key)",
        DeleteAccountRequest,
        status=204,
    ),
    Operation(
        "PUT",
        "/accounts/me/keys",
        change_keys,
        "Replace identity keys (new key version)",
        KeyChangeRequest,
    ),
    Operation(
        "PUT",
        "/accounts/me/password",
        change_password,
        "Change password: new auth key, re-wrapped blob",
        PasswordChangeRequest,
        status=204,
    ),
    Operation(
        "GET",
        "/users",
        search_users,
        "Public key directory: users by username prefix",
        query=("prefix",),
    ),
    Operation("GET", "/users/{user_id:uuid_str}", get_user, "One user's public keys"),
    Operation(
        "GET",
        "/users/{user_id:uuid_str}/keys/{key_version:int}",
        get_user_key,
        "A past or current key version",
    ),
)
