"""gRPC services: Paddle Serving's GeneralModelService (raw Request bytes straight to a worker, Response bytes
straight back) and SegServing's image-level Segmentation service."""

from __future__ import annotations

from typing import Any, NoReturn

import grpc
from google.protobuf.message import DecodeError

from segcore.proto.segmentation_pb2 import SegmentRequest
from server.auth import ApiKeys, credential, refusal
from server.dataplane import DataPlane
from server.errors import GRPC_METADATA_KEY, InvalidInput, ServingError, Unauthenticated, error_for
from server.jobs import JobKind

SERVICE = "baidu.paddle_serving.predictor.general_model.GeneralModelService"
SEGMENTATION = "segserving.v1.Segmentation"


async def _abort(context: grpc.aio.ServicerContext, error: ServingError) -> NoReturn:
    """End the call with the error's gRPC status, its message, and its `code` in the trailing metadata."""
    await context.abort(getattr(grpc.StatusCode, error.grpc_code), error.message,
                        trailing_metadata=((GRPC_METADATA_KEY, error.code),))  # fmt: skip
    raise AssertionError("context.abort returned")  # it raises; this tells the type checker


async def _authenticate(keys: ApiKeys, context: grpc.aio.ServicerContext) -> dict[str, Any]:
    """The call's metadata, after its `authorization` (Bearer) or `x-api-key` passed; UNAUTHENTICATED if not."""
    metadata = {k: v for k, v in context.invocation_metadata() or () if isinstance(v, str)}
    presented = credential(metadata.get("authorization"), metadata.get("x-api-key"))
    if not keys.accepts(presented):
        await _abort(context, Unauthenticated(refusal(presented)))
    return metadata


def build_server(plane: DataPlane, address: str) -> grpc.aio.Server:
    """A grpc.aio server for `plane` bound to `address` (e.g. unix:/path/grpc.sock); not started."""
    limit = plane.settings.max_body_size
    keys = plane.settings.api_keys

    async def inference(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        selected = (await _authenticate(keys, context)).get("model")
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
        await _authenticate(keys, context)
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
        )
    )
    server.add_insecure_port(address)
    return server
