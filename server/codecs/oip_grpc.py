"""The Open Inference Protocol's gRPC ModelInferRequest / ModelInferResponse <-> protocol-neutral tensors."""

from __future__ import annotations

from typing import Any

from google.protobuf.message import DecodeError

from segcore.proto import oip
from server.codecs.oip_tensors import (
    BYTES,
    InferRequest,
    RequestedOutput,
    Tensor,
    check_datatype,
    check_shape,
    from_list,
    from_raw,
    to_raw,
)
from server.errors import InvalidInput

# datatype -> the InferTensorContents field that carries it (FP16 travels only as raw bytes)
CONTENTS = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    BYTES: "bytes_contents",
}


def parameter(value: Any) -> Any:
    """An InferParameter's value (bool, int, str or float), or None when unset."""
    choice = value.WhichOneof("parameter_choice")
    return getattr(value, choice) if choice else None


def parse_request(body: bytes) -> InferRequest:
    try:
        message = oip.ModelInferRequest.FromString(body)
    except DecodeError as exc:
        raise InvalidInput(f"not a ModelInferRequest: {exc}") from None
    raw = list(message.raw_input_contents)
    if raw and len(raw) != len(message.inputs):
        raise InvalidInput(f"{len(raw)} raw_input_contents for {len(message.inputs)} inputs: give one per input")
    inputs = []
    for i, entry in enumerate(message.inputs):
        name = entry.name
        datatype = check_datatype(name, entry.datatype)
        shape = check_shape(name, list(entry.shape))
        if raw:
            data = from_raw(name, datatype, shape, raw[i])
        else:
            field = CONTENTS.get(datatype)
            if field is None:
                raise InvalidInput(f"input {name!r}: {datatype} data must come in raw_input_contents")
            data = from_list(name, datatype, shape, list(getattr(entry.contents, field)))
        inputs.append(Tensor(name, datatype, shape, data))
    outputs = [RequestedOutput(o.name, None, {k: parameter(v) for k, v in o.parameters.items()})
               for o in message.outputs]  # fmt: skip
    params = {k: parameter(v) for k, v in message.parameters.items()}
    return InferRequest(message.model_name, inputs, outputs, message.id, params)


def response(request: InferRequest, outputs: list[Tensor]) -> bytes:
    """A ModelInferResponse carrying every output as raw bytes (what Triton's clients read)."""
    message = oip.ModelInferResponse(model_name=request.model, model_version="1", id=request.id)
    for tensor in outputs:
        entry = message.outputs.add()
        entry.name, entry.datatype = tensor.name, tensor.datatype
        entry.shape.extend(tensor.shape)
        message.raw_output_contents.append(to_raw(tensor))
    return bytes(message.SerializeToString())
