"""The server's errors: one class per kind of failure, each mapped once to an HTTP status, a gRPC status code, a
stable snake_case `code` for JSON bodies and gRPC metadata, and Paddle Serving's `err_no` (the HTTP status)."""

from __future__ import annotations

from typing import ClassVar


class ServingError(Exception):
    """A failure to report to the caller; subclasses fix its status and code."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal"
    grpc_code: ClassVar[str] = "INTERNAL"

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[type[ServingError], tuple[str, float | None]]:
        return type(self), (self.message, self.retry_after)

    @property
    def err_no(self) -> int:
        """Paddle Serving's Response.err_no (its own server leaves it 0 and fails the transport; ours fills both)."""
        return self.status


class InvalidInput(ServingError):
    """The request is malformed: bad JSON or protobuf, unknown feed, wrong shape, corrupt image, bad option."""

    status, code, grpc_code = 400, "invalid_input", "INVALID_ARGUMENT"


class Unauthenticated(ServingError):
    status, code, grpc_code = 401, "unauthenticated", "UNAUTHENTICATED"


class PermissionDenied(ServingError):
    status, code, grpc_code = 403, "permission_denied", "PERMISSION_DENIED"


class NotFound(ServingError):
    """No such model (or route)."""

    status, code, grpc_code = 404, "not_found", "NOT_FOUND"


class MethodNotAllowed(ServingError):
    status, code, grpc_code = 405, "method_not_allowed", "UNIMPLEMENTED"


class TooLarge(ServingError):
    """Body, inflated body or image dimensions over the server's limits."""

    status, code, grpc_code = 413, "too_large", "RESOURCE_EXHAUSTED"


class RequestTimeout(ServingError):
    """The request head did not arrive within the header-read timeout (a slow or stalled client)."""

    status, code, grpc_code = 408, "request_timeout", "DEADLINE_EXCEEDED"


class HeadersTooLarge(ServingError):
    """The request line and headers are over --max_header_bytes."""

    status, code, grpc_code = 431, "headers_too_large", "RESOURCE_EXHAUSTED"


class UnsupportedMedia(ServingError):
    """Not an image format the server decodes, or a Content-Encoding it does not speak."""

    status, code, grpc_code = 415, "unsupported_media_type", "INVALID_ARGUMENT"


class Unprocessable(ServingError):
    """Well-formed input the operation cannot use (an ID photo without a face, a photo too small)."""

    status, code, grpc_code = 422, "unprocessable", "FAILED_PRECONDITION"


class Busy(ServingError):
    """The model's queue is full; `retry_after` says when to try again."""

    status, code, grpc_code = 429, "busy", "RESOURCE_EXHAUSTED"


class RateLimited(ServingError):
    """The caller's API key is over --rate_limit; `retry_after` says when its next request is allowed."""

    status, code, grpc_code = 429, "rate_limited", "RESOURCE_EXHAUSTED"


class InternalError(ServingError):
    """Inference or encoding failed, or the worker died: not the caller's fault."""


class Unavailable(ServingError):
    """Not ready, draining, or no worker could be started."""

    status, code, grpc_code = 503, "unavailable", "UNAVAILABLE"


class DeadlineExceeded(ServingError):
    status, code, grpc_code = 504, "deadline_exceeded", "DEADLINE_EXCEEDED"


ERRORS: tuple[type[ServingError], ...] = (
    InvalidInput, Unauthenticated, PermissionDenied, NotFound, MethodNotAllowed, RequestTimeout, TooLarge,
    HeadersTooLarge, UnsupportedMedia, Unprocessable, Busy, RateLimited, InternalError, Unavailable, DeadlineExceeded,
)  # fmt: skip
BY_CODE: dict[str, type[ServingError]] = {cls.code: cls for cls in ERRORS}
BY_STATUS: dict[int, type[ServingError]] = {cls.status: cls for cls in reversed(ERRORS)}
RETRY_AFTER_MS = "retry-after-ms"  # the precise retry hint: HTTP header beside Retry-After, and gRPC trailing metadata
GRPC_METADATA_KEY = "segserving-error-code"  # the `code` travels in gRPC trailing metadata under this key


def error_for(code: str, message: str, retry_after: float | None = None) -> ServingError:
    """Rebuild an error from its code (e.g. a worker's Result); unknown codes are internal errors."""
    return BY_CODE.get(code, InternalError)(message, retry_after)
