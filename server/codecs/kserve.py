"""KServe v2 (Open Inference Protocol) over HTTP: JSON tensors, and the binary tensor data extension (a JSON
header of `Inference-Header-Content-Length` bytes followed by the tensors' raw bytes)."""

from __future__ import annotations

from typing import Any

import orjson

from segcore.dtypes import CODE_TO_DTYPE
from segcore.servingconf import VarSpec
from server.codecs.oip_tensors import (
    BYTES,
    NAME_OF,
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

HEADER_LENGTH = "Inference-Header-Content-Length"
JSON_TYPE = "application/json"
BINARY_TYPE = "application/octet-stream"


def datatype_of(type_code: int) -> str:
    """The v2 datatype name of a Paddle Serving type code ('BYTES' if it has no numeric dtype)."""
    dtype = CODE_TO_DTYPE.get(type_code)
    return NAME_OF.get(dtype, BYTES) if dtype is not None else BYTES


def tensor_metadata(var: VarSpec, dims: list[int | None] | None) -> dict[str, Any]:
    shape = [-1 if d is None else d for d in dims] if dims else [-1, *var.shape]
    return {"name": var.alias, "datatype": datatype_of(var.type_code), "shape": shape}


def _params(entry: dict[str, Any], where: str) -> dict[str, Any]:
    params = entry.get("parameters") or {}
    if not isinstance(params, dict):
        raise InvalidInput(f"{where}: 'parameters' must be an object")
    return params


def parse_request(model: str, body: bytes, header_length: int | None) -> InferRequest:
    """A v2 HTTP inference request (JSON, or JSON + binary data when `header_length` is given)."""
    if header_length is not None and not 0 < header_length <= len(body):
        raise InvalidInput(f"{HEADER_LENGTH} {header_length} does not fit a body of {len(body)} bytes")
    header, binary = (body, b"") if header_length is None else (body[:header_length], body[header_length:])
    data: Any
    try:
        doc = orjson.loads(header)
    except orjson.JSONDecodeError as exc:
        what = "body" if header_length is None else "inference header"
        raise InvalidInput(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("inputs"), list):
        raise InvalidInput("v2 inference request must be an object with an 'inputs' list")
    view, offset, inputs = memoryview(binary), 0, []
    for entry in doc["inputs"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise InvalidInput("each input must be an object with a 'name'")
        name = entry["name"]
        datatype = check_datatype(name, entry.get("datatype"))
        shape = check_shape(name, entry.get("shape"))
        size = _params(entry, f"input {name!r}").get("binary_data_size")
        if size is not None:
            if not isinstance(size, int) or size < 0 or offset + size > len(view):
                raise InvalidInput(f"input {name!r}: binary_data_size {size!r} runs past the binary data")
            data = from_raw(name, datatype, shape, view[offset : offset + size])
            offset += size
        elif "data" in entry:
            data = from_list(name, datatype, shape, entry["data"])
        else:
            raise InvalidInput(f"input {name!r} has neither 'data' nor a 'binary_data_size' parameter")
        inputs.append(Tensor(name, datatype, shape, data))
    if offset != len(view):
        raise InvalidInput(f"{len(view) - offset} bytes of binary data are not claimed by any input")
    params = _params(doc, "request")
    outputs = []
    for entry in doc.get("outputs") or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise InvalidInput("each requested output must be an object with a 'name'")
        out_params = _params(entry, f"output {entry['name']!r}")
        if "classification" in out_params:
            raise InvalidInput("the classification extension is not supported: request the tensors themselves")
        flag = out_params.get("binary_data")
        outputs.append(RequestedOutput(entry["name"], bool(flag) if flag is not None else None, out_params))
    request_id = doc.get("id")
    return InferRequest(model, inputs, outputs, str(request_id) if request_id is not None else "", params,
                        bool(params.get("binary_data_output", False)))  # fmt: skip


def response(request: InferRequest, outputs: list[Tensor]) -> tuple[bytes, str, dict[str, str]]:
    """(body, content type, headers): JSON, or JSON + binary data for the outputs that asked for it."""
    wanted = {o.name: o for o in request.outputs}
    entries, chunks = [], []
    for tensor in outputs:
        asked = wanted.get(tensor.name)
        binary = asked.binary if asked is not None and asked.binary is not None else request.binary_output
        entry: dict[str, Any] = {"name": tensor.name, "datatype": tensor.datatype, "shape": tensor.shape}
        if binary:
            raw = to_raw(tensor)
            entry["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        elif tensor.datatype == BYTES:
            assert isinstance(tensor.data, list)
            entry["data"] = [item.decode("utf-8", "replace") for item in tensor.data]
        else:
            entry["data"] = tensor.data.ravel()  # type: ignore[union-attr]
        entries.append(entry)
    doc: dict[str, Any] = {"model_name": request.model, "model_version": "1", "outputs": entries}
    if request.id:
        doc["id"] = request.id
    header = orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)
    if not chunks:
        return header, JSON_TYPE, {}
    return header + b"".join(chunks), BINARY_TYPE, {HEADER_LENGTH: str(len(header))}
