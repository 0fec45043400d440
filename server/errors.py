"""The one error type that crosses from workers and the dataplane to the transports."""

from __future__ import annotations

from dataclasses import dataclass

GRPC_CODES = {  # HTTP status -> grpc.StatusCode name
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    413: "RESOURCE_EXHAUSTED",
    415: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


@dataclass
class ServingError(Exception):
    """A failure with the HTTP status to answer with and a message for the caller."""

    status: int
    message: str
    retry_after: float | None = None

    def __str__(self) -> str:
        return self.message

    @property
    def grpc_code(self) -> str:
        return GRPC_CODES.get(self.status, "INTERNAL")
