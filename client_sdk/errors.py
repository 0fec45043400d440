"""Typed exceptions carrying the server's message, chosen by the server's error `code` (JSON bodies' "code",
gRPC trailing metadata `segserving-error-code`), else by the HTTP status or gRPC status code."""

from __future__ import annotations


class SegServingError(Exception):
    """Base class: `status` is the HTTP status (or the HTTP equivalent of a gRPC code), 0 if none; `code` is the
    server's stable error code (e.g. "too_large", "busy"), "" if the answer carried none."""

    def __init__(self, message: str, status: int = 0, code: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


class InvalidInput(SegServingError, ValueError):
    """The request was refused as malformed: bad image, unknown feed or fetch name, wrong shape, too large."""


class ModelNotFound(SegServingError, LookupError):
    """The server does not serve that model."""


class ServerBusy(SegServingError):
    """The server is overloaded (code "busy") or the API key is over its rate limit ("rate_limited"), both 429;
    `retry_after` is the server's hint in seconds."""

    def __init__(self, message: str, status: int = 429, code: str = "busy", retry_after: float | None = None) -> None:
        super().__init__(message, status, code)
        self.retry_after = retry_after


class Timeout(SegServingError, TimeoutError):
    """The request's deadline passed (server 504 or client-side timeout)."""


class Unavailable(SegServingError, ConnectionError):
    """The server is not ready, shutting down, or cannot be reached."""


class AuthError(SegServingError, PermissionError):
    """The server refused the credentials (401/403)."""


class ServerError(SegServingError):
    """The server failed while handling the request (5xx)."""


# The server's error codes (server/errors.py; tests/client_sdk/test_errors.py keeps the two in step).
CODES: dict[str, type[SegServingError]] = {
    "invalid_input": InvalidInput,
    "too_large": InvalidInput,
    "headers_too_large": InvalidInput,
    "request_timeout": Timeout,
    "unsupported_media_type": InvalidInput,
    "unprocessable": InvalidInput,
    "method_not_allowed": InvalidInput,
    "not_found": ModelNotFound,
    "busy": ServerBusy,
    "rate_limited": ServerBusy,
    "deadline_exceeded": Timeout,
    "unavailable": Unavailable,
    "unauthenticated": AuthError,
    "permission_denied": AuthError,
    "internal": ServerError,
}
STATUS_CODES = {400: "invalid_input", 401: "unauthenticated", 403: "permission_denied", 404: "not_found",
                405: "method_not_allowed", 408: "request_timeout", 413: "too_large", 415: "unsupported_media_type",
                422: "unprocessable", 429: "busy", 431: "headers_too_large", 500: "internal", 503: "unavailable",
                504: "deadline_exceeded"}  # fmt: skip
CODE_STATUS = {code: status for status, code in STATUS_CODES.items()}
GRPC_TO_HTTP = {
    "INVALID_ARGUMENT": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "UNIMPLEMENTED": 405,
    # Our server marks its own overload "busy" in the metadata; without that, RESOURCE_EXHAUSTED is gRPC's
    # message-size limit (a request or answer too large), not a reason to retry.
    "RESOURCE_EXHAUSTED": 413,
    "FAILED_PRECONDITION": 422,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}
GRPC_METADATA_KEY = "segserving-error-code"
RETRY_AFTER_MS = "retry-after-ms"  # the server's precise retry hint: an HTTP header and gRPC trailing metadata


def error_for(code: str, status: int, message: str, retry_after: float | None = None) -> SegServingError:
    """The exception for the server's error `code`; an unknown or missing code falls back on the HTTP status."""
    code = code if code in CODES else STATUS_CODES.get(status, "internal" if status >= 500 else "invalid_input")
    kind = CODES[code]
    if kind is ServerBusy:
        return ServerBusy(message, status or 429, code, retry_after)
    return kind(message, status, code)


def error_for_grpc(code_name: str, message: str, metadata: dict[str, str] | None = None) -> SegServingError:
    """The exception for a gRPC failure: the server's code from the trailing metadata (its HTTP status too), else
    the gRPC status code."""
    metadata = metadata or {}
    code = metadata.get(GRPC_METADATA_KEY, "")
    status = CODE_STATUS.get(code) or GRPC_TO_HTTP.get(code_name, 500)
    hint = metadata.get(RETRY_AFTER_MS, "")
    return error_for(code, status, message, int(hint) / 1000 if hint.isdigit() else None)
