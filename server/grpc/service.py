"""gRPC services: Paddle Serving's GeneralModelService (raw Request bytes straight to a worker, Response bytes
straight back), SegServing's image-level Segmentation service, and the Open Inference Protocol's
GRPCInferenceService (server.grpc.oip_service)."""

from __future__ import annotations

from typing import Any, NoReturn

import grpc
from google.protobuf.message import DecodeError

from segcore.proto.segmentation_pb2 import SegmentRequest
from server.auth import credential, refusal
from server.dataplane import DataPlane
from server.errors import (
    GRPC_METADATA_KEY,
    RETRY_AFTER_MS,
    InvalidInput,
    RateLimited,
    ServingError,
    Unauthenticated,
    error_for,
)
from server.grpc import oip_service
from server.jobs import JobKind
from server.ratelimit import RateLimiter

SERVICE = "baidu.paddle_serving.predictor.general_model.GeneralModelService"
SEGMENTATION = "segserving.v1.Segmentation"


async def _abort(context: grpc.aio.ServicerContext, error: ServingError) -> NoReturn:
    """End the call with the error's gRPC status, its message, its `code` and any retry hint in the trailing
    metadata."""
    trailing: tuple[tuple[str, str], ...] = ((GRPC_METADATA_KEY, error.code),)
    if error.retry_after is not None:
        trailing += ((RETRY_AFTER_MS, str(max(1, round(error.retry_after * 1000)))),)
    await context.abort(getattr(grpc.StatusCode, error.grpc_code), error.message, trailing_metadata=trailing)
    raise AssertionError("context.abort returned")  # it raises; this tells the type checker


async def _admit(plane: DataPlane, limiter: RateLimiter | None, context: grpc.aio.ServicerContext) -> dict[str, Any]:
    """The call's metadata, after its `authorization` (Bearer) or `x-api-key` passed (UNAUTHENTICATED if not)
    and its key is within --rate_limit (RESOURCE_EXHAUSTED with a retry hint if not)."""
    metadata = {k: v for k, v in context.invocation_metadata() or () if isinstance(v, str)}
    keys = plane.settings.api_keys
    if not keys.enabled:
        return metadata
    presented = credential(metadata.get("authorization"), metadata.get("x-api-key"))
    identity = keys.identify(presented)
    if identity is None:
        await _abort(context, Unauthenticated(refusal(presented)))
    if limiter is not None:
        try:
            limiter.check(identity)
        except RateLimited as exc:
            plane.metrics.rate_limited("grpc")
            await _abort(context, exc)
    return metadata


def build_server(plane: DataPlane, address: str, limiter: RateLimiter | None = None) -> grpc.aio.Server:
    """A grpc.aio server for `plane` bound to `address` (e.g. unix:/path/grpc.sock); not started. `limiter`
    applies --rate_limit per API key (shared with the HTTP side)."""
    limit = plane.settings.max_body_size

    async def inference(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        selected = (await _admit(plane, limiter, context)).get("model")
        model = selected if isinstance(selected, str) else None
        try:
            result = await plane.infer(model, JobKind.PADDLE_PROTO, request, {}, "grpc", context.time_remaining())
        except ServingError as exc:
            await _abort(context, exc)
        if result.status != 200:  # the Response with err_no/err_msg goes out too, as a Paddle Serving client expects
            error = error_for(result.code, result.message)
            context.set_code(getattr(grpc.StatusCode, error.grpc_code))
            context.set_details(error.message)
            context.set_trailing_metadata(((GRPC_METADATA_KEY, error.code),))
        return result.body

    async def segment(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        await _admit(plane, limiter, context)
        try:
            message = SegmentRequest.FromString(request)
        except DecodeError as exc:
            await _abort(context, InvalidInput(f"not a SegmentRequest: {exc}"))
        params = {**message.options, "output": "proto"}
        try:
            result = await plane.infer(message.model or None, JobKind.IMAGE, message.image, params, "grpc-image",
                                       context.time_remaining())  # fmt: skip
        except ServingError as exc:
            await _abort(context, exc)
        if result.status != 200:
            await _abort(context, error_for(result.code, result.message))
        return result.body

    handler: grpc.RpcMethodHandler[bytes, bytes] = grpc.unary_unary_rpc_method_handler(
        inference
    )  # no (de)serializers: bytes in, bytes out
    server = grpc.aio.server(
        options=[("grpc.max_receive_message_length", limit), ("grpc.max_send_message_length", limit)],
    )
    segment_handler: grpc.RpcMethodHandler[bytes, bytes] = grpc.unary_unary_rpc_method_handler(segment)
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(SERVICE, {"inference": handler, "debug": handler}),
            grpc.method_handlers_generic_handler(SEGMENTATION, {"Segment": segment_handler}),
            oip_service.handlers(plane, lambda context: _admit(plane, limiter, context), _abort),
        )
    )
    server.add_insecure_port(address)
    return server
