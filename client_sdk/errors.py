"""Typed exceptions carrying the server's message."""

from __future__ import annotations


class SegServingError(Exception):
    """Base class: `status` is the HTTP status (or the HTTP equivalent of a gRPC code), 0 if none."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class InvalidInput(SegServingError, ValueError):
    """The request was refused as malformed: bad image, unknown feed or fetch name, wrong shape, too large."""


class ModelNotFound(SegServingError, LookupError):
    """The server does not serve that model."""


class ServerBusy(SegServingError):
    """The server's queue is full (429); `retry_after` is the server's hint in seconds."""

    def __init__(self, message: str, status: int = 429, retry_after: float | None = None) -> None:
        super().__init__(message, status)
        self.retry_after = retry_after


class Timeout(SegServingError, TimeoutError):
    """The request's deadline passed (server 504 or client-side timeout)."""


class Unavailable(SegServingError, ConnectionError):
    """The server is not ready, shutting down, or cannot be reached."""


class AuthError(SegServingError, PermissionError):
    """The server refused the credentials (401/403)."""


class ServerError(SegServingError):
    """The server failed while handling the request (5xx)."""


def error_for_status(status: int, message: str, retry_after: float | None = None) -> SegServingError:
    """The exception for an HTTP status."""
    if status in (400, 413, 415, 422):
        return InvalidInput(message, status)
    if status == 404:
        return ModelNotFound(message, status)
    if status == 429:
        return ServerBusy(message, status, retry_after)
    if status == 504:
        return Timeout(message, status)
    if status == 503:
        return Unavailable(message, status)
    if status in (401, 403):
        return AuthError(message, status)
    return ServerError(message, status)


GRPC_TO_HTTP = {
    "INVALID_ARGUMENT": 400,
    "NOT_FOUND": 404,
    "RESOURCE_EXHAUSTED": 429,
    "DEADLINE_EXCEEDED": 504,
    "UNAVAILABLE": 503,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
}


def error_for_grpc(code_name: str, message: str) -> SegServingError:
    """The exception for a gRPC status code name. RESOURCE_EXHAUSTED means 413 when the message says so."""
    status = GRPC_TO_HTTP.get(code_name, 500)
    if code_name == "RESOURCE_EXHAUSTED" and ("limit" in message or "larger" in message):
        status = 413
    return error_for_status(status, message)
