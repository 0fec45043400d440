"""gRPC `inference.GRPCInferenceService`, the Open Inference Protocol as Triton and KServe clients speak it:
health, metadata, model config, statistics, repository index, and ModelInfer / ModelStreamInfer (request bytes go
to a worker unparsed; only the model name is read here)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf import json_format
from google.protobuf.message import DecodeError

from segcore.proto import oip
from segcore.wire import WireError, string_fields
from server.codecs import model_info
from server.dataplane import DataPlane
from server.errors import InvalidInput, ServingError, error_for
from server.jobs import JobKind

Admit = Callable[[grpc.aio.ServicerContext], Awaitable[dict[str, Any]]]
Abort = Callable[[grpc.aio.ServicerContext, ServingError], Awaitable[Any]]


def handlers(plane: DataPlane, admit: Admit, abort: Abort) -> grpc.GenericRpcHandler:
    """The service's method handlers: `admit` checks the caller (keys, rate limit), `abort` ends a call with a
    ServingError's status."""

    def unary(build: Callable[[bytes], Any], request_type: Any = None,
              counts: bool = False) -> grpc.RpcMethodHandler[bytes, bytes]:  # fmt: skip
        async def call(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            await admit(context)
            if counts:  # the answer reads the metrics: bring in what workers serving HTTP counted
                await plane.collect()
            try:
                message = request_type.FromString(request) if request_type is not None else request
                return bytes(build(message).SerializeToString())
            except DecodeError as exc:
                await abort(context, InvalidInput(f"malformed request: {exc}"))
            except ServingError as exc:
                await abort(context, exc)
            raise AssertionError("abort returned")

        return grpc.unary_unary_rpc_method_handler(call)

    def model_metadata(request: Any) -> Any:
        model_info.check_version(request.name, request.version)
        doc = model_info.kserve_metadata(plane.info(request.name))
        return json_format.ParseDict(doc, oip.ModelMetadataResponse())

    def model_ready(request: Any) -> Any:
        model_info.check_version(request.name, request.version)
        return oip.ModelReadyResponse(ready=plane.model_ready(request.name))

    def model_config(request: Any) -> Any:
        model_info.check_version(request.name, request.version)
        doc = model_info.triton_config(plane.info(request.name))
        return json_format.ParseDict({"config": doc}, oip.ModelConfigResponse())

    def statistics(request: Any) -> Any:
        names = [plane.spec(request.name).name] if request.name else list(plane.specs)
        if request.name:
            model_info.check_version(request.name, request.version)
        docs = [plane.metrics.statistics(name) for name in names]
        return json_format.ParseDict({"model_stats": docs}, oip.ModelStatisticsResponse())

    def index(request: Any) -> Any:
        models = model_info.repository_index(plane.readiness(), request.ready)
        return json_format.ParseDict({"models": models}, oip.RepositoryIndexResponse())

    def target(request: bytes) -> str:
        """The model a ModelInferRequest names (its version checked), read without parsing the rest."""
        try:
            fields = string_fields(request, frozenset({1, 2}))
        except WireError as exc:
            raise InvalidInput(f"not a ModelInferRequest: {exc}") from None
        name = fields.get(1, "")
        if not name:
            raise InvalidInput("model_name is required")
        model_info.check_version(name, fields.get(2, ""))
        return name

    async def infer(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        await admit(context)
        try:
            result = await plane.infer(target(request), JobKind.OIP_GRPC, request, {}, "grpc-oip",
                                       context.time_remaining())  # fmt: skip
        except ServingError as exc:
            await abort(context, exc)
        if result.status != 200:
            await abort(context, error_for(result.code, result.message))
        return result.body

    async def stream(requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
        await admit(context)
        async for request in requests:
            try:
                result = await plane.infer(target(request), JobKind.OIP_GRPC, request, {}, "grpc-oip",
                                           context.time_remaining())  # fmt: skip
                if result.status != 200:
                    raise error_for(result.code, result.message)
                reply = oip.ModelStreamInferResponse(infer_response=oip.ModelInferResponse.FromString(result.body))
            except ServingError as exc:
                reply = oip.ModelStreamInferResponse(error_message=exc.message)
            yield bytes(reply.SerializeToString())

    live = oip.ServerLiveResponse(live=True)
    about = json_format.ParseDict(model_info.server_metadata(), oip.ServerMetadataResponse())
    methods = {
        "ServerLive": unary(lambda _: live),
        "ServerReady": unary(lambda _: oip.ServerReadyResponse(ready=plane.ready)),
        "ModelReady": unary(model_ready, oip.ModelReadyRequest),
        "ServerMetadata": unary(lambda _: about),
        "ModelMetadata": unary(model_metadata, oip.ModelMetadataRequest),
        "ModelConfig": unary(model_config, oip.ModelConfigRequest),
        "ModelStatistics": unary(statistics, oip.ModelStatisticsRequest, counts=True),
        "RepositoryIndex": unary(index, oip.RepositoryIndexRequest),
        "ModelInfer": grpc.unary_unary_rpc_method_handler(infer),
        "ModelStreamInfer": grpc.stream_stream_rpc_method_handler(stream),
    }
    return grpc.method_handlers_generic_handler(oip.SERVICE, methods)
