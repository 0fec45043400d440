"""Reading request bodies within --max_body_size, without buffering more than the limit."""

from __future__ import annotations

from starlette.requests import Request

from server.errors import ServingError


def too_large(limit: int) -> ServingError:
    return ServingError(413, f"request body is larger than the server's limit of {limit} bytes (--max_body_size)")


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body; 413 as soon as Content-Length or the bytes received pass `limit`."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise ServingError(400, f"invalid Content-Length {declared!r}")
        if int(declared) > limit:
            raise too_large(limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)
