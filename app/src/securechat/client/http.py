"""HTTP transport of the reference client: JSON in, JSON out, errors as ApiError."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp


class ApiError(Exception):
    """The server refused a request; `code` is the protocol's error code."""

    def __init__(self, status: int, body: Any) -> None:
        error = body.get("error", {}) if isinstance(body, dict) else {}
        self.status = status
        self.code: str = error.get("code", "http_error")
        self.field: str | None = error.get("field")
        self.body = body
        super().__init__(f"{status} {self.code}: {error.get('message', body)}")


class HttpApi:
    def __init__(self, base_url: str, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        connector = aiohttp.TCPConnector(ssl=ssl_context if ssl_context is not None else True)
        self.session = aiohttp.ClientSession(connector=connector)
        self.token: str | None = None

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        headers = {"Accept": "application/json", **self._auth()}
        async with self.session.request(
            method, f"{self.base_url}/api/v1{path}", json=body, headers=headers
        ) as response:
            data = await response.json(content_type=None) if response.status != 204 else None
            if response.status >= 400:
                raise ApiError(response.status, data)
            return data

    async def upload(self, path: str, body: AsyncIterator[bytes], size: int) -> Any:
        """POST a streamed octet body of exactly `size` bytes."""
        headers = {
            "Content-Type": "application/octet-stream",
            "Content-Length": str(size),
            **self._auth(),
        }
        async with self.session.post(
            f"{self.base_url}/api/v1{path}", data=body, headers=headers
        ) as response:
            data = await response.json(content_type=None)
            if response.status >= 400:
                raise ApiError(response.status, data)
            return data

    async def download(self, path: str, destination: Path) -> None:
        """GET a binary body into `destination`, chunk by chunk."""
        async with self.session.get(
            f"{self.base_url}/api/v1{path}", headers=self._auth()
        ) as response:
            if response.status >= 400:
                raise ApiError(response.status, await response.json(content_type=None))
            with destination.open("wb") as sink:
                async for chunk in response.content.iter_chunked(1 << 16):
                    sink.write(chunk)

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    async def close(self) -> None:
        await self.session.close()
