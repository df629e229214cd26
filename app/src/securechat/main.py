"""The composition root: `create_app(settings)` builds the whole ASGI application."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import socketio
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.orm import Session
from starlette.applications import Starlette
from starlette.convertors import Convertor, register_url_convertor
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from securechat.api import accounts, admin, blocks, conversations, files
from securechat.api.common import Operation, error_response, guarded, json_response
from securechat.api.meta import health, openapi_document
from securechat.components import AuthLimits, Components
from securechat.db.engine import make_engine, make_session_factory
from securechat.db.migrate import check_schema
from securechat.db.writer import BatchingWriter
from securechat.protocol import UUID_RE
from securechat.realtime.hub import Hub
from securechat.realtime.managers import LocalManager, RedisManager
from securechat.realtime.namespace import ChatNamespace
from securechat.realtime.presence import LocalPresence, Presence
from securechat.realtime.redis_presence import RedisPresence, node_id
from securechat.security.audit import AuditLog
from securechat.security.headers import (
    SecurityMiddleware,
    content_security_policy,
    import_map_hashes,
)
from securechat.security.origins import OriginPolicy
from securechat.security.passwords import AuthKeyHasher
from securechat.security.ratelimit import SlidingWindowLimiter
from securechat.services.accounts import AccountService
from securechat.services.admin import AdminService
from securechat.services.blocks import BlockService
from securechat.services.conversations import ConversationService
from securechat.services.errors import ServiceError
from securechat.services.files import FileService
from securechat.services.lifecycle import record_startup
from securechat.services.messages import MessageService, SendRequest, Stored, store_batch
from securechat.settings import Settings
from securechat.storage import BlobStore

log = logging.getLogger(__name__)
API_PREFIX = "/api/v1"
LEFTOVER_SECONDS = 3600
UPLOAD_ROUTE = re.compile(API_PREFIX + r"/conversations/[0-9a-f-]{36}/files")
STATIC_DIR = Path(__file__).parent / "static"
OPERATIONS: tuple[Operation, ...] = (
    accounts.OPERATIONS
    + conversations.OPERATIONS
    + blocks.OPERATIONS
    + files.OPERATIONS
    + admin.OPERATIONS
)


class UuidStringConvertor(Convertor[str]):
    """Path segments that are lowercase UUIDv4 strings; anything else is a 404."""

    regex = UUID_RE.pattern.strip("^$")

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


# Commands to the presence store wait this long for Redis at most (not the pub/sub listener,
# which blocks by design).
REDIS_TIMEOUT_SECONDS = 5


def build_realtime(settings: Settings) -> tuple[socketio.AsyncManager, Presence]:
    """In memory for one process; through Redis when several processes share the work."""
    redis = settings.redis
    if redis is None:
        return LocalManager(), LocalPresence()
    manager = RedisManager(
        redis.url,
        channel=f"{redis.prefix}:socketio",
        logger=logging.getLogger("securechat.realtime.redis"),
        redis_options={"socket_connect_timeout": REDIS_TIMEOUT_SECONDS},
    )
    client = Redis.from_url(
        redis.url,
        decode_responses=True,
        socket_timeout=REDIS_TIMEOUT_SECONDS,
        socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
    )
    presence = RedisPresence(client, redis.prefix, redis.presence_ttl_seconds, node_id())
    return manager, presence


def build_components(
    settings: Settings, sio: socketio.AsyncServer, presence: Presence
) -> Components:
    engine = make_engine(settings.database_url)
    revision = check_schema(engine)  # refuse to serve an outdated schema
    session_factory = make_session_factory(engine)

    def apply(session: Session, batch: Sequence[SendRequest]) -> list[Stored | Exception]:
        return store_batch(session, batch, settings.max_ciphertext_bytes)

    limits = settings.rate_limits
    audit = AuditLog(settings.audit_key)
    return Components(
        settings=settings,
        engine=engine,
        session_factory=session_factory,
        accounts=AccountService(settings, AuthKeyHasher(settings.argon2), audit),
        conversations=ConversationService(audit),
        messages=MessageService(),
        blocks=BlockService(audit),
        files=FileService(settings, audit),
        admin=AdminService(audit),
        audit=audit,
        blobs=BlobStore(settings.upload_dir),
        presence=presence,
        writer=BatchingWriter(session_factory, apply, max_batch=settings.writer_max_batch),
        limits=AuthLimits(
            per_ip=SlidingWindowLimiter(limits.auth_per_ip, limits.auth_window_seconds),
            failures_per_account=SlidingWindowLimiter(
                limits.login_failures_per_account, limits.lockout_seconds
            ),
        ),
        hub=Hub(sio),
        schema_revision=revision,
    )


def create_app(settings: Settings) -> ASGIApp:
    """Build the application: Starlette for HTTP, python-socketio beside it, hardening around."""
    register_url_convertor("uuid_str", UuidStringConvertor())
    manager, presence = build_realtime(settings)
    sio = socketio.AsyncServer(
        client_manager=manager,
        async_mode="asgi",
        cors_allowed_origins=OriginPolicy(settings.allowed_origins),
        max_http_buffer_size=settings.max_request_bytes,
        logger=False,
        engineio_logger=False,
    )
    parts = build_components(settings, sio, presence)
    namespace = ChatNamespace(parts)
    sio.register_namespace(namespace)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        parts.blobs.ensure()
        await start_realtime(settings, manager, presence)
        await parts.db(lambda db: record_startup(db, parts.audit, settings, parts.schema_revision))
        parts.writer.start()
        tasks = [
            asyncio.create_task(namespace.run_sweeper(), name="session-sweeper"),
            asyncio.create_task(namespace.run_presence(), name="presence-heartbeat"),
            asyncio.create_task(run_maintenance(parts), name="maintenance"),
        ]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await parts.writer.stop()
            await presence.close()
            if isinstance(manager, RedisManager):
                await manager.close()
            parts.engine.dispose()

    api_routes: list[BaseRoute] = [
        Route(API_PREFIX + op.path, guarded(op.handler), methods=[op.method]) for op in OPERATIONS
    ]
    document = openapi_document(OPERATIONS, API_PREFIX)

    async def openapi(_request: Request) -> Response:
        return json_response(document)

    routes = [
        *api_routes,
        Route(API_PREFIX + "/openapi.json", openapi, methods=["GET"]),
        Route(API_PREFIX + "/health", guarded(health), methods=["GET"]),
        Mount("/", StaticFiles(directory=STATIC_DIR, html=True), name="static"),
    ]
    http_app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_error},
    )
    http_app.state.components = parts
    app = socketio.ASGIApp(sio, other_asgi_app=http_app, socketio_path="socket.io")
    return SecurityMiddleware(
        app, body_limit=partial(body_limit, settings), csp=content_security_policy(script_hashes())
    )


async def start_realtime(
    settings: Settings, manager: socketio.AsyncManager, presence: Presence
) -> None:
    """Refuse to start without the Redis that was configured, rather than serve a lone island."""
    try:
        await presence.start()
        if isinstance(manager, RedisManager):
            await manager.subscribe()
    except (RedisError, OSError, RuntimeError) as error:
        shown = settings.redis.masked_url() if settings.redis else "(none)"
        raise RuntimeError(f"cannot use Redis at {shown}: {error}") from None


def script_hashes(index: Path = STATIC_DIR / "index.html") -> list[str]:
    """The CSP hashes of the browser client's inline import map (its only inline script)."""
    if not index.is_file():
        return []
    return import_map_hashes(index.read_text(encoding="utf-8"))


def body_limit(settings: Settings, path: str) -> int:
    """Uploads may be as large as the upload limit; every other request is small."""
    if UPLOAD_ROUTE.fullmatch(path):
        return settings.max_upload_bytes
    return settings.max_request_bytes


async def maintenance(parts: Components) -> None:
    """Expired sessions out; unshared files past their grace period deleted, rows then blobs."""
    await parts.db(parts.accounts.purge_expired_sessions)
    for name in await parts.db(parts.files.collect_garbage):
        parts.blobs.delete(name)
    # Leftovers of crashes: partial uploads, blobs whose row is gone. An hour's margin keeps
    # uploads in progress (their row is written when the body is complete) out of reach.
    known = await parts.db(parts.files.storage_names)
    leftovers = await asyncio.to_thread(parts.blobs.sweep, known, LEFTOVER_SECONDS)
    if leftovers:
        log.warning("removed %d leftover file(s) from the upload directory", len(leftovers))


async def run_maintenance(parts: Components) -> None:
    while True:
        try:
            await maintenance(parts)
        except Exception:
            log.exception("maintenance failed; retrying at the next interval")
        await asyncio.sleep(parts.settings.maintenance_seconds)


async def _http_error(_request: Request, exc: Any) -> Response:
    status = getattr(exc, "status_code", 500)
    code = {404: "not_found", 405: "method_not_allowed"}.get(status, "http_error")
    message = {404: "no such resource", 405: "method not allowed"}.get(status, "request refused")
    return error_response(ServiceError(code, message, status=status))
