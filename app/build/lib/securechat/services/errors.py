"""The one error type services raise; HTTP and Socket.IO layers render it."""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """A refused request: a stable `code`, an HTTP `status`, a human `message`, maybe a `field`."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int = 400,
        field: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.field = field
        self.extra = extra or {}

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        body.update(self.extra)
        return body


def not_found(what: str = "conversation") -> ServiceError:
    # Used for "exists but you are not a member" too, so membership never leaks.
    return ServiceError("not_found", f"no such {what}", status=404)


def forbidden(message: str) -> ServiceError:
    return ServiceError("forbidden", message, status=403)


def conflict(code: str, message: str, **extra: Any) -> ServiceError:
    return ServiceError(code, message, status=409, extra=extra)


def invalid(field: str, message: str) -> ServiceError:
    return ServiceError("validation_error", message, status=422, field=field)
