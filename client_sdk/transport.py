"""How segment() reaches the server: the image API over HTTP (httpx) or gRPC, sync and async. Each call takes
the seconds left to its caller's deadline (client_sdk.retry decides about trying again)."""

from __future__ import annotations

import base64
import json
import ssl
from pathlib import Path
from typing import Any

import grpc
import httpx

from client_sdk.errors import RETRY_AFTER_MS, SegServingError, Timeout, Unavailable, error_for, error_for_grpc
from client_sdk.images import decode_png
from client_sdk.result import SegResult
from segcore.proto.segmentation_pb2 import SegmentRequest, SegmentResponse

SEGMENT_METHOD = "/segserving.v1.Segmentation/Segment"
MAX_MESSAGE = 512 * 2**20


API_KEY_ENV = "SEGSERVING_API_KEY"  # the key an SDK client sends when none is given in code


def base_url(endpoint: str) -> str:
    """'host:port' or a URL -> 'http://host:port' (hostnames and IPv6 welcome)."""
    return endpoint.rstrip("/") if "://" in endpoint else f"http://{endpoint}"


def grpc_target(endpoint: str) -> str:
    return endpoint.split("://", 1)[-1].rstrip("/")


Verify = bool | str  # True: the system's CAs; a path: that PEM bundle; False: no check (HTTP only)


def http_verify(verify: Verify) -> bool | ssl.SSLContext:
    """httpx's verify= for `verify` (a CA bundle path becomes an SSL context)."""
    return ssl.create_default_context(cafile=verify) if isinstance(verify, str) else verify


def grpc_channel_args(endpoint: str, verify: Verify) -> tuple[str, grpc.ChannelCredentials | None]:
    """(target, credentials): TLS credentials for an https:// endpoint, None (plaintext) otherwise."""
    if not endpoint.startswith("https://"):
        return grpc_target(endpoint), None
    if verify is False:
        raise ValueError("gRPC over TLS always verifies the server: pass verify='ca.pem' instead of False")
    roots = Path(verify).read_bytes() if isinstance(verify, str) else None
    return grpc_target(endpoint), grpc.ssl_channel_credentials(root_certificates=roots)


def http_error(response: httpx.Response) -> SegServingError:
    """The typed error for a non-2xx response, with the server's message."""
    code = ""
    try:
        doc = response.json()
        message, code = doc.get("error") or doc.get("err_msg") or response.text, str(doc.get("code", ""))
    except (ValueError, AttributeError):  # not JSON, or JSON that is not an object (a proxy's page)
        message = response.text or response.reason_phrase
    return error_for(code, response.status_code, str(message), retry_after(response.headers))


def retry_after(headers: httpx.Headers | dict[str, str]) -> float | None:
    """The server's hint in seconds: Retry-After-Ms (ours, precise) else Retry-After (whole seconds; an HTTP-date,
    as a proxy may send, is ignored)."""
    for name, scale in ((RETRY_AFTER_MS, 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is not None:
            try:
                return max(0.0, float(value) / scale)
            except ValueError:
                continue
    return None


def _bounded(timeout: float) -> float:
    """A per-attempt timeout: what is left of the caller's deadline, never zero or negative."""
    return max(timeout, 0.001)


def transport_error(exc: Exception, timeout: float) -> SegServingError:
    if isinstance(exc, httpx.TimeoutException):
        return Timeout(f"no answer within {timeout:.3g} s ({type(exc).__name__})")
    return Unavailable(f"cannot reach the server: {exc}")


def result_from_json(body: bytes) -> SegResult:
    doc = json.loads(body)
    probability = None
    if doc.get("probability"):
        probability = decode_png(base64.b64decode(doc["probability"])).astype("float32") / 255.0
    return SegResult(
        label_map=decode_png(base64.b64decode(doc["label_map"])),
        model=doc.get("model", ""),
        class_names=doc.get("class_names"),
        num_classes=doc.get("num_classes"),
        probability=probability,
        probability_class=doc.get("probability_class"),
        timings_ms=doc.get("timings_ms", {}),
    )


def result_from_proto(message: SegmentResponse) -> SegResult:
    probability = decode_png(message.probability_png).astype("float32") / 255.0 if message.probability_png else None
    return SegResult(
        label_map=decode_png(message.label_png),
        model=message.model,
        class_names=list(message.class_names) or None,
        num_classes=message.num_classes or None,
        probability=probability,
        probability_class=message.probability_class if message.probability_png else None,
        timings_ms=dict(message.timings_ms),
    )


def grpc_error(exc: grpc.RpcError) -> SegServingError:
    code = exc.code() if hasattr(exc, "code") else None
    details = exc.details() if hasattr(exc, "details") else str(exc)
    # (key, value) pairs: namedtuples from grpc, plain tuples from grpc.aio (the stubs know only the former)
    trailing: Any = exc.trailing_metadata() if hasattr(exc, "trailing_metadata") else ()
    metadata = {str(key): value for key, value in trailing or () if isinstance(value, str)}
    return error_for_grpc(code.name if code is not None else "UNKNOWN", details or str(exc), metadata)


def segment_request(model: str, data: bytes, options: dict[str, str]) -> bytes:
    return SegmentRequest(model=model, image=data, options=options).SerializeToString()


IMAGE_HEADERS = {"Content-Type": "application/octet-stream"}


class HttpTransport:
    """Image API over HTTP/1.1 with a pooled httpx client."""

    def __init__(self, endpoint: str, headers: dict[str, str], verify: Verify = True) -> None:
        self._client = httpx.Client(base_url=base_url(endpoint), headers=headers,
                                    verify=http_verify(verify))  # fmt: skip

    def _call(self, method: str, path: str, timeout: float, **request: Any) -> bytes:
        """The 200 body of one request, or the typed error."""
        try:
            response = self._client.request(method, path, timeout=_bounded(timeout), **request)
        except httpx.TransportError as exc:
            raise transport_error(exc, timeout) from None
        if response.status_code != 200:
            raise http_error(response)
        return response.content

    def post_image(self, path: str, data: bytes, params: dict[str, str], timeout: float) -> bytes:
        """POST image bytes; the 200 body, or the typed error."""
        return self._call("POST", path, timeout, content=data, params=params, headers=IMAGE_HEADERS)

    def segment(self, model: str, data: bytes, options: dict[str, str], timeout: float) -> SegResult:
        body = self.post_image(f"/v1/models/{model}/segment", data, {**options, "output": "json"}, timeout)
        return result_from_json(body)

    def get(self, path: str, timeout: float) -> bytes:
        """GET; the 200 body, or the typed error."""
        return self._call("GET", path, timeout)

    def close(self) -> None:
        self._client.close()


class AsyncHttpTransport:
    """Image API over HTTP/1.1 with a pooled httpx.AsyncClient."""

    def __init__(self, endpoint: str, headers: dict[str, str], verify: Verify = True) -> None:
        self._client = httpx.AsyncClient(base_url=base_url(endpoint), headers=headers,
                                         verify=http_verify(verify))  # fmt: skip

    async def _call(self, method: str, path: str, timeout: float, **request: Any) -> bytes:
        """The 200 body of one request, or the typed error."""
        try:
            response = await self._client.request(method, path, timeout=_bounded(timeout), **request)
        except httpx.TransportError as exc:
            raise transport_error(exc, timeout) from None
        if response.status_code != 200:
            raise http_error(response)
        return response.content

    async def post_image(self, path: str, data: bytes, params: dict[str, str], timeout: float) -> bytes:
        """POST image bytes; the 200 body, or the typed error."""
        return await self._call("POST", path, timeout, content=data, params=params, headers=IMAGE_HEADERS)

    async def segment(self, model: str, data: bytes, options: dict[str, str], timeout: float) -> SegResult:
        body = await self.post_image(f"/v1/models/{model}/segment", data, {**options, "output": "json"}, timeout)
        return result_from_json(body)

    async def get(self, path: str, timeout: float) -> bytes:
        """GET; the 200 body, or the typed error."""
        return await self._call("GET", path, timeout)

    async def close(self) -> None:
        await self._client.aclose()


_GRPC_OPTIONS = [("grpc.max_receive_message_length", MAX_MESSAGE), ("grpc.max_send_message_length", MAX_MESSAGE)]


class GrpcTransport:
    """Image API over gRPC (segserving.v1.Segmentation) on one channel."""

    def __init__(self, endpoint: str, headers: dict[str, str], verify: Verify = True) -> None:
        self._metadata = tuple((k.lower(), v) for k, v in headers.items())
        target, credentials = grpc_channel_args(endpoint, verify)
        self._channel = (
            grpc.secure_channel(target, credentials, options=_GRPC_OPTIONS)
            if credentials
            else grpc.insecure_channel(target, options=_GRPC_OPTIONS)
        )
        self._call: grpc.UnaryUnaryMultiCallable[bytes, SegmentResponse] = self._channel.unary_unary(
            SEGMENT_METHOD, request_serializer=None, response_deserializer=SegmentResponse.FromString
        )

    def segment(self, model: str, data: bytes, options: dict[str, str], timeout: float) -> SegResult:
        try:
            message = self._call(segment_request(model, data, options), timeout=_bounded(timeout),
                                 metadata=self._metadata)  # fmt: skip
        except grpc.RpcError as exc:
            raise grpc_error(exc) from None
        return result_from_proto(message)

    def close(self) -> None:
        self._channel.close()


class AsyncGrpcTransport:
    """Image API over gRPC with grpc.aio."""

    def __init__(self, endpoint: str, headers: dict[str, str], verify: Verify = True) -> None:
        self._metadata = tuple((k.lower(), v) for k, v in headers.items())
        self._endpoint, self._credentials = grpc_channel_args(endpoint, verify)
        self._channel: grpc.aio.Channel | None = None

    async def segment(self, model: str, data: bytes, options: dict[str, str], timeout: float) -> SegResult:
        if self._channel is None:  # grpc.aio channels bind to the running loop: create lazily
            self._channel = (
                grpc.aio.secure_channel(self._endpoint, self._credentials, options=_GRPC_OPTIONS)
                if self._credentials
                else grpc.aio.insecure_channel(self._endpoint, options=_GRPC_OPTIONS)
            )
        call: grpc.aio.UnaryUnaryMultiCallable[bytes, SegmentResponse] = self._channel.unary_unary(
            SEGMENT_METHOD, request_serializer=None, response_deserializer=SegmentResponse.FromString
        )
        try:
            message = await call(segment_request(model, data, options), timeout=_bounded(timeout),
                                 metadata=self._metadata)  # fmt: skip
        except grpc.RpcError as exc:
            raise grpc_error(exc) from None
        return result_from_proto(message)

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
