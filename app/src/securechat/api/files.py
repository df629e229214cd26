"""Encrypted file upload (streamed to disk) and download (members of the sharing conversation)."""

from __future__ import annotations

import logging

from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, Response

from securechat.api.common import Operation, authenticate, components, json_response
from securechat.services.errors import ServiceError
from securechat.services.files import too_large
from securechat.storage import BlobTooLargeError

log = logging.getLogger(__name__)
UPLOAD_PATH = "/conversations/{conversation_id:uuid_str}/files"


def declared_length(request: Request) -> int:
    raw = request.headers.get("content-length")
    if raw is None or not raw.isdigit():
        raise ServiceError(
            "length_required", "send the encrypted file with a Content-Length header", status=411
        )
    return int(raw)


async def upload(request: Request) -> Response:
    ctx = await authenticate(request)
    conversation_id = request.path_params["conversation_id"]
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/octet-stream":
        raise ServiceError(
            "unsupported_media_type", "upload ciphertext as application/octet-stream", status=415
        )
    size = declared_length(request)
    parts = components(request)
    await parts.db(lambda db: parts.files.check_upload(db, ctx, conversation_id, size))
    try:
        blob = await parts.blobs.write(request.stream(), max_bytes=size)
    except BlobTooLargeError:
        raise too_large(size, what="the body") from None
    except ClientDisconnect:
        raise ServiceError("truncated", "the upload was interrupted", status=400) from None
    if blob.size != size:
        parts.blobs.delete(blob.name)
        raise ServiceError(
            "truncated", f"received {blob.size} of {size} declared bytes", status=400
        )
    try:
        stored = await parts.db(
            lambda db: parts.files.record_upload(
                db, ctx, conversation_id, name=blob.name, size=blob.size, sha256=blob.sha256
            )
        )
    except BaseException:
        parts.blobs.delete(blob.name)
        raise
    return json_response(stored, status=201)


async def download(request: Request) -> Response:
    ctx = await authenticate(request)
    file_id = request.path_params["file_id"]
    parts = components(request)
    stored = await parts.db(lambda db: parts.files.for_download(db, ctx, file_id))
    path = parts.blobs.path(stored.storage_name)
    if not path.is_file():
        log.error("file %s has a database row but no blob on disk (%s)", stored.id, path.name)
        raise ServiceError("not_found", "the file's content is missing on the server", status=404)
    return FileResponse(
        path,
        media_type="application/octet-stream",
        filename=f"{stored.id}.bin",  # the real name is inside the encrypted message
        content_disposition_type="attachment",
        headers={"X-Content-SHA256": stored.sha256},
    )


OPERATIONS = (
    Operation("POST", UPLOAD_PATH, upload, "Upload an encrypted file (streamed)", status=201),
    Operation("GET", "/files/{file_id:uuid_str}", download, "Download an encrypted file"),
)
