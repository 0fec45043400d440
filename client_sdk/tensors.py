"""Paddle Serving Request/Response <-> numpy for the drop-in ServingClient (protobuf and brpc-style JSON)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from segcore.dtypes import CONTENT_DTYPES, REPEATED_FIELDS, WIRE_CODE_OF, WIRE_DTYPES
from segcore.proto.general_model_service_pb2 import Request, Response, Tensor
from segcore.servingconf import VarSpec
from segcore.wire import length_delimited, packed_field


def _elem_type(var: VarSpec, array: np.ndarray) -> int:
    """The conf's type when it can travel, else the array's own (float32 for dtypes the wire lacks)."""
    return var.type_code if var.type_code in WIRE_DTYPES else WIRE_CODE_OF.get(array.dtype, 1)


def _tensor(var: VarSpec, array: np.ndarray) -> bytes:
    elem = _elem_type(var, array)
    array = np.ascontiguousarray(array, dtype=WIRE_DTYPES[elem])
    head = Tensor(elem_type=elem, shape=array.shape, name=var.name, alias_name=var.alias)
    if elem in CONTENT_DTYPES:
        head.tensor_content = array.tobytes()
        return head.SerializeToString()
    return head.SerializeToString() + packed_field(REPEATED_FIELDS[elem][1], array.ravel())


def request_proto(feeds: Sequence[tuple[VarSpec, np.ndarray]], fetch: Sequence[str], log_id: int) -> bytes:
    """A serialized Request (large arrays as packed fields, encoded with numpy)."""
    tensors = b"".join(length_delimited(1, _tensor(var, array)) for var, array in feeds)
    return tensors + Request(fetch_var_names=list(fetch), log_id=log_id).SerializeToString()


def request_json(feeds: Sequence[tuple[VarSpec, np.ndarray]], fetch: Sequence[str], log_id: int) -> dict[str, Any]:
    """The JSON Request that Paddle Serving's HttpClient sends (same keys and order)."""
    tensors = []
    for var, array in feeds:
        elem = _elem_type(var, array)
        if elem in REPEATED_FIELDS:
            field, _, dtype = REPEATED_FIELDS[elem]
            entry: dict[str, Any] = {field: np.asarray(array, dtype=dtype).ravel().tolist()}
        else:
            # brpc maps bytes to JSON strings byte for byte (no base64); the server does the same
            entry = {"tensor_content": np.asarray(array, CONTENT_DTYPES[elem]).tobytes().decode("latin-1")}
        entry.update(shape=list(array.shape), elem_type=elem, name=var.name, alias_name=var.alias)
        tensors.append(entry)
    return {"fetch_var_names": list(fetch), "log_id": log_id, "tensor": tensors}


def _get(t: Any, key: str, default: Any) -> Any:
    return t.get(key, default) if isinstance(t, Mapping) else getattr(t, key)


def _array(t: Any) -> np.ndarray:
    elem = int(_get(t, "elem_type", 0))  # brpc's JSON omits elem_type 0 (int64)
    shape = [int(d) for d in _get(t, "shape", [])]
    if elem in REPEATED_FIELDS:
        field, _, dtype = REPEATED_FIELDS[elem]
        array = np.array(_get(t, field, []), dtype=dtype)
    elif elem in CONTENT_DTYPES:
        raw = _get(t, "tensor_content", b"")
        array = np.frombuffer(raw if isinstance(raw, bytes) else str(raw).encode("latin-1"), dtype=CONTENT_DTYPES[elem])
    else:
        raise ValueError(f"output {_get(t, 'alias_name', '?')!r} has unsupported elem_type {elem}")
    return array.reshape(shape) if shape else array


def response_to_dict(response: Response | Mapping[str, Any]) -> dict[str, Any]:
    """{alias: array[, 'alias.lod': array]} for one model output, {engine_name: {...}} for several."""
    outputs = response["outputs"] if isinstance(response, Mapping) else response.outputs
    per_engine: dict[str, dict[str, np.ndarray]] = {}
    for output in outputs:
        result: dict[str, np.ndarray] = {}
        for t in _get(output, "tensor", []):
            key = _get(t, "alias_name", "") or _get(t, "name", "")
            result[key] = _array(t)
            lod = list(_get(t, "lod", []))
            if lod:
                result[f"{key}.lod"] = np.array(lod, dtype=np.int32)
        per_engine[_get(output, "engine_name", "") or f"output_{len(per_engine)}"] = result
    if len(per_engine) == 1:
        return next(iter(per_engine.values()))
    return per_engine
