"""The inference routes as a plain ASGI adapter: request bytes to the DataPlane, Result bytes back.

These routes carry every request a client pays for, so they skip the per-request framework stack (middleware,
routing tables, dependency solving, response objects), which costs about as much CPU as the rest of the front
process together. Everything else (health, metrics, model info, OpenAPI) is served by the FastAPI app behind.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, NamedTuple
from urllib.parse import parse_qsl

from starlette.requests import Request

from server.codecs.errors import JSON, PROTO, error_body, json_error
from server.dataplane import DataPlane
from server.errors import (
    RETRY_AFTER_MS,
    InvalidInput,
    MethodNotAllowed,
    NotFound,
    RequestTimeout,
    ServingError,
    UnsupportedMedia,
)
from server.jobs import JobKind, Result, Transport
from server.rest.body import form_image, too_large

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PADDLE_PATHS = ("/GeneralModelService/inference", "/GeneralModelService/debug")


class ClientGone(ConnectionError):
    """The client disconnected before its body arrived."""


class Route(NamedTuple):
    """Which inference route a path is: paddle | id-photo | segment | v2, the model it names, its version."""

    name: str
    model: str | None = None
    version: str = ""


def _route(path: str) -> Route | None:
    """The inference route of `path`, else None."""
    if path in PADDLE_PATHS:
        return Route("paddle")
    if path == "/v1/id-photo":
        return Route("id-photo")
    if path.startswith("/v1/models/") and path.endswith("/segment"):
        name = path[len("/v1/models/") : -len("/segment")]
        return Route("segment", name) if name and "/" not in name else None
    if path.startswith("/v2/models/") and path.endswith("/infer"):
        name, _, version = path[len("/v2/models/") : -len("/infer")].partition("/versions/")
        if name and "/" not in name and "/" not in version and (version or "/versions/" not in path):
            return Route("v2", name, version)
    return None


def is_inference(path: str) -> bool:
    """Whether `path` is one of the inference routes (the work a caller pays for)."""
    return _route(path) is not None


class InferenceRoutes:
    """ASGI app: POST inference routes handled here, every other request passed to `fallback`."""

    def __init__(self, plane: DataPlane, fallback: ASGIApp) -> None:
        self.plane = plane
        self.fallback = fallback
        self.limit = plane.settings.max_body_size
        self.body_timeout = plane.settings.header_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = _route(scope["path"]) if scope["type"] == "http" else None
        if route is None:
            await self.fallback(scope, receive, send)
            return
        if scope["method"] != "POST":
            refusal = MethodNotAllowed(f"{scope['method']} is not allowed here: use POST")
            await send_response(send, refusal.status, json_error(refusal), JSON, {"Allow": "POST"})
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        params = dict(parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True))
        if route.version not in ("", "1"):
            missing = NotFound(f"model {route.model!r} has no version {route.version!r}; its only version is 1")
            await send_response(send, missing.status, json_error(missing), JSON, {})
            return
        kind, protocol, model = self._kind(route, headers, params)
        try:
            result = await self._handle(scope, receive, headers, params, kind, protocol, model)
        except ClientGone:
            return
        except ServingError as exc:
            body, content_type = error_body(exc, kind)
            headers = retry_headers(exc.retry_after)
            if isinstance(exc, RequestTimeout):  # the rest of a body that came too slowly is not worth reading
                headers["Connection"] = "close"
            await send_response(send, exc.status, body, content_type, headers)
            return
        await send_response(send, result.status, result.body, result.content_type, _result_headers(result))

    @staticmethod
    def _kind(route: Route, headers: dict[str, str], params: dict[str, str]) -> tuple[JobKind, str, str | None]:
        name, model = route.name, route.model
        if name == "paddle":
            proto = headers.get("content-type", "").split(";")[0].strip().lower() == PROTO
            return (JobKind.PADDLE_PROTO, "http-proto", params.get("model")) if proto else (
                JobKind.PADDLE_JSON, "http-json", params.get("model"))  # fmt: skip
        if name == "v2":
            return JobKind.KSERVE_V2, "kserve-v2", model
        if name == "id-photo":
            return JobKind.ID_PHOTO, "id-photo", params.pop("model", None)
        return JobKind.IMAGE, "image", model

    async def _handle(self, scope: Scope, receive: Receive, headers: dict[str, str], params: dict[str, str],
                      kind: JobKind, protocol: str, model: str | None) -> Result:  # fmt: skip
        job_params = dict(params) if kind in (JobKind.IMAGE, JobKind.ID_PHOTO) else {}
        transport = _transport(headers)
        is_form = headers.get("content-type", "").split(";")[0].strip().lower() == "multipart/form-data"

        async def body() -> bytes:
            # a body trickled in slowly would hold the connection: it must arrive within --header_timeout_ms
            try:
                async with asyncio.timeout(self.body_timeout):
                    if kind in (JobKind.IMAGE, JobKind.ID_PHOTO) and is_form:
                        return await form_image(Request(scope, receive), self.limit, job_params)
                    # Any other body on the image routes is taken as the image itself, whatever its Content-Type
                    # says (curl's --data-binary sends application/x-www-form-urlencoded): the worker sniffs the
                    # magic bytes and answers 415 naming the supported formats when they are not an image.
                    return await read_body(receive, headers, self.limit)
            except TimeoutError:
                raise RequestTimeout(f"request body not received within {self.body_timeout:g} s") from None

        # the body is read only once the request is admitted: an overloaded server refuses without reading it
        return await self.plane.infer(model, kind, body, job_params, protocol, transport=transport)


def _transport(headers: dict[str, str]) -> Transport:
    encoding = headers.get("content-encoding", "").strip().lower()
    if encoding not in ("", "identity", "gzip"):
        raise UnsupportedMedia(f"Content-Encoding {encoding!r} is not supported (use gzip or none)")
    header_length = headers.get("inference-header-content-length")
    if header_length is not None and not header_length.strip().isdigit():
        raise InvalidInput(f"Inference-Header-Content-Length must be a byte count, got {header_length!r}")
    return Transport(gzip_body=encoding == "gzip", gzip_reply="gzip" in headers.get("accept-encoding", "").lower(),
                     oip_header_length=int(header_length) if header_length is not None else None)  # fmt: skip


async def read_body(receive: Receive, headers: dict[str, str], limit: int) -> bytes:
    """The whole body; 413 as soon as Content-Length or the bytes received pass `limit`."""
    declared = headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise InvalidInput(f"invalid Content-Length {declared!r}")
        if int(declared) > limit:
            raise too_large(limit)
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body"):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def retry_headers(seconds: float | None) -> dict[str, str]:
    """Retry-After in whole seconds as HTTP defines it (at least 1), and Retry-After-Ms with the precise hint
    (the SDK's choice; sub-second hints matter under overload, where a 1 s wait would idle the workers)."""
    if seconds is None:
        return {}
    return {"Retry-After": str(max(1, math.ceil(seconds))), RETRY_AFTER_MS: str(max(1, round(seconds * 1000)))}


def _result_headers(result: Result) -> dict[str, str]:
    headers = dict(result.headers)
    if result.timings:
        headers["Server-Timing"] = ", ".join(f"{k};dur={v * 1000:.3f}" for k, v in result.timings.items())
    return headers


async def send_response(send: Send, status: int, body: bytes, content_type: str, headers: dict[str, str]) -> None:
    raw = [(b"content-type", content_type.encode("latin-1")), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
