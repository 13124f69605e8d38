"""Errors from the API server, as one exception type with the Status it carried."""
from __future__ import annotations

from typing import Any


class KubeError(Exception):
    """A failure talking to the API server that is not an HTTP status (config, network)."""


class ApiError(KubeError):
    """An HTTP error status from the API server, with its ``Status`` body when it sent one."""

    def __init__(self, status: int, reason: str = "", message: str = "",
                 body: dict[str, Any] | None = None, *, method: str = "", path: str = "") -> None:
        self.status = status
        self.reason = reason
        self.message = message
        self.body = body or {}
        self.method = method
        self.path = path
        where = f"{method} {path}: " if method else ""
        super().__init__(f"{where}{status} {reason}: {message}".rstrip(": "))

    @classmethod
    def from_status(cls, status: int, body: dict[str, Any] | None, *, method: str = "",
                    path: str = "", fallback: str = "") -> "ApiError":
        body = body or {}
        return cls(status, body.get("reason", ""), body.get("message", fallback), body,
                   method=method, path=path)


def status_of(err: BaseException) -> int | None:
    return err.status if isinstance(err, ApiError) else None


def is_not_found(err: BaseException) -> bool:
    return status_of(err) == 404


def is_conflict(err: BaseException) -> bool:
    return status_of(err) == 409 and getattr(err, "reason", "") != "AlreadyExists"


def is_already_exists(err: BaseException) -> bool:
    return status_of(err) == 409 and getattr(err, "reason", "") == "AlreadyExists"


def is_gone(err: BaseException) -> bool:
    """410 Gone: the resourceVersion asked for was compacted away; relist."""
    return status_of(err) == 410


def is_forbidden(err: BaseException) -> bool:
    return status_of(err) == 403
