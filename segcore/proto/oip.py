"""The Open Inference Protocol's gRPC messages (`inference.proto`, package `inference`), built from the compiled
descriptor `inference.desc` into a descriptor pool of their own. Triton's client registers the same names in
protobuf's default pool, and both must be able to live in one process (a client and a server in one test run).
Regenerate the descriptor with `python -m grpc_tools.protoc -I. --descriptor_set_out=segcore/proto/inference.desc
segcore/proto/inference.proto`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

SERVICE = "inference.GRPCInferenceService"
_POOL = descriptor_pool.DescriptorPool()
for _file in descriptor_pb2.FileDescriptorSet.FromString(Path(__file__).with_name("inference.desc").read_bytes()).file:
    _POOL.Add(_file)


def message(name: str) -> Any:
    """The message class `inference.<name>` (nested names with dots, e.g. 'ModelInferRequest.InferInputTensor')."""
    return message_factory.GetMessageClass(_POOL.FindMessageTypeByName(f"inference.{name}"))


ServerLiveResponse = message("ServerLiveResponse")
ServerReadyResponse = message("ServerReadyResponse")
ModelReadyRequest = message("ModelReadyRequest")
ModelReadyResponse = message("ModelReadyResponse")
ServerMetadataResponse = message("ServerMetadataResponse")
ModelMetadataRequest = message("ModelMetadataRequest")
ModelMetadataResponse = message("ModelMetadataResponse")
ModelInferRequest = message("ModelInferRequest")
ModelInferResponse = message("ModelInferResponse")
ModelStreamInferResponse = message("ModelStreamInferResponse")
ModelConfigRequest = message("ModelConfigRequest")
ModelConfigResponse = message("ModelConfigResponse")
ModelStatisticsRequest = message("ModelStatisticsRequest")
ModelStatisticsResponse = message("ModelStatisticsResponse")
RepositoryIndexRequest = message("RepositoryIndexRequest")
RepositoryIndexResponse = message("RepositoryIndexResponse")
DATA_TYPE = _POOL.FindEnumTypeByName("inference.DataType")
