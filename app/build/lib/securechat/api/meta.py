"""Health and the OpenAPI document, generated from the same operation list as the routes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from securechat import __version__
from securechat.api.common import Operation, components, json_response

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "field": {"type": "string"},
            },
        }
    },
}


async def health(request: Request) -> Response:
    parts = components(request)
    return json_response({"status": "ok", "version": __version__, "schema": parts.schema_revision})


def _openapi_path(path: str) -> str:
    # Starlette's "{name:convertor}" becomes OpenAPI's "{name}".
    return "/".join(
        segment.split(":", 1)[0] + "}" if segment.startswith("{") else segment
        for segment in path.split("/")
    )


def _path_parameters(path: str) -> list[str]:
    return [segment[1:-1].split(":")[0] for segment in path.split("/") if segment.startswith("{")]


def _operation_doc(operation: Operation, schemas: dict[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "summary": operation.summary,
        "operationId": operation.handler.__name__,
        "responses": {
            str(operation.status): {"description": "success; shapes in docs/protocol.md"},
            "default": {
                "description": "error",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            },
        },
    }
    parameters = [
        {
            "name": segment[1:-1].split(":")[0],
            "in": "path",
            "required": True,
            "schema": {"type": "string"},
        }
        for segment in operation.path.split("/")
        if segment.startswith("{")
    ]
    parameters += [
        {"name": name, "in": "query", "required": False, "schema": {"type": "string"}}
        for name in operation.query
    ]
    if parameters:
        doc["parameters"] = parameters
    if operation.auth:
        doc["security"] = [{"bearer": []}]
    if operation.body is not None:
        name = operation.body.__name__
        schema = operation.body.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[name] = schema
        doc["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}},
        }
    return doc


def openapi_document(operations: Sequence[Operation], prefix: str) -> dict[str, Any]:
    schemas: dict[str, Any] = {"Error": ERROR_SCHEMA}
    paths: dict[str, dict[str, Any]] = {}
    for operation in operations:
        path = paths.setdefault(prefix + _openapi_path(operation.path), {})
        path[operation.method.lower()] = _operation_doc(operation, schemas)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Secure Chat M2M API",
            "version": __version__,
            "description": "End-to-end encrypted chat; the protocol is docs/protocol.md.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
