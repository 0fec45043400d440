"""Paddle Serving GeneralModelService requests and responses (protobuf or brpc-style JSON) <-> numpy."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from google.protobuf.message import DecodeError

from segcore.dtypes import CONTENT_DTYPES, REPEATED_FIELDS, WIRE_CODE_OF
from segcore.proto.general_model_service_pb2 import ModelOutput, Request, Response, Tensor
from segcore.servingconf import ServingConf, VarSpec
from segcore.wire import Unpacked, WireError, fixed_array, length_delimited, packed_field, split_fields
from server.errors import InvalidInput, ServingError

ENGINE_NAME = "GeneralInferOp_0"


# elem_type -> (repeated field name, field number, dtype) for numeric fields
@dataclass(frozen=True)
class TensorRequest:
    """A parsed request: feeds by real var name, the fetch vars to return, and the caller's log_id."""

    feeds: dict[str, np.ndarray]
    fetch: list[VarSpec]
    log_id: int


def _var_list(vars_: Iterable[VarSpec]) -> str:
    return ", ".join(v.alias if v.alias == v.name else f"{v.alias} ({v.name})" for v in vars_)


def resolve_fetch(names: Iterable[str], conf: ServingConf) -> list[VarSpec]:
    """Fetch vars for the requested names (aliases or real names); empty means all, in conf order."""
    wanted = list(names)
    if not wanted:
        return list(conf.fetches)
    by_name = {v.alias: v for v in conf.fetches} | {v.name: v for v in conf.fetches}
    unknown = [n for n in wanted if n not in by_name]
    if unknown:
        raise InvalidInput(
            f"unknown fetch name(s) {', '.join(map(repr, unknown))}; this model's outputs: {_var_list(conf.fetches)}"
        )
    return [by_name[n] for n in wanted]


def _feed_var(name: str, alias: str, conf: ServingConf) -> VarSpec:
    for var in conf.feeds:
        if name and name == var.name:
            return var
    for var in conf.feeds:
        if alias == var.alias or (name and name == var.alias):
            return var
    raise InvalidInput(f"unknown feed name {name or alias!r}; this model's inputs: {_var_list(conf.feeds)}")


def _array(var: VarSpec, elem_type: int, shape: list[int], values: Any, content: bytes) -> np.ndarray:
    if not shape or any(d <= 0 for d in shape):
        raise InvalidInput(f"feed {var.alias!r}: shape must be a non-empty list of positive dims, got {shape}")
    if elem_type in REPEATED_FIELDS:
        array = np.asarray(values, dtype=REPEATED_FIELDS[elem_type][2])
    elif elem_type in CONTENT_DTYPES:
        raw = content if isinstance(content, bytes) else str(content).encode("latin-1")
        if len(raw) % CONTENT_DTYPES[elem_type].itemsize:
            raise InvalidInput(
                f"feed {var.alias!r}: tensor_content length {len(raw)} is not a multiple of the element size"
            )
        array = np.frombuffer(raw, dtype=CONTENT_DTYPES[elem_type])
    else:
        raise InvalidInput(f"feed {var.alias!r}: elem_type {elem_type} is not supported (use 0 int64, 1 float32, "
                           "2 int32, 3 float64, 5 float16, 7 uint8 or 8 int8)")  # fmt: skip
    expected = int(np.prod(shape))
    if array.size != expected:
        raise InvalidInput(f"feed {var.alias!r}: {array.size} values do not fill shape {shape} ({expected} needed)")
    if var.type_code >= 0 and elem_type != var.type_code:
        raise InvalidInput(f"feed {var.alias!r}: the model expects elem_type {var.type_code}, got {elem_type}")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise InvalidInput(f"feed {var.alias!r}: contains NaN or infinity")
    return array.reshape(shape)


def _check_feeds(feeds: dict[str, np.ndarray], conf: ServingConf, input_shape: list[int | None] | None) -> None:
    missing = [v for v in conf.feeds if v.name not in feeds]
    if missing:
        raise InvalidInput(f"missing feed(s): {_var_list(missing)}")
    if input_shape is not None and len(conf.feeds) == 1:
        var, array = conf.feeds[0], feeds[conf.feeds[0].name]
        fits = array.ndim == len(input_shape) and all(
            d is None or d == a for d, a in zip(input_shape, array.shape, strict=True)
        )
        if not fits:
            want = "[" + ", ".join("?" if d is None else str(d) for d in input_shape) + "]"
            raise InvalidInput(f"feed {var.alias!r}: shape {list(array.shape)} does not fit the model input {want}")
    batches = {a.shape[0] for a in feeds.values()}
    if len(batches) > 1:
        raise InvalidInput(f"feeds have different batch sizes {sorted(batches)}")


_PACKED_FIXED = frozenset({2, 4})  # float_data, float64_data: read straight from the wire with numpy


def _tensor_fields(payload: memoryview) -> tuple[Tensor, np.ndarray | None]:
    """One Tensor message: protobuf for its small fields, numpy for packed float/double data."""
    try:
        rest, taken = split_fields(payload, _PACKED_FIXED)
    except Unpacked:  # numbers sent one by one (legal, if wasteful): protobuf's own decoding
        return Tensor.FromString(bytes(payload)), None
    tensor = Tensor.FromString(rest)
    elem_field = REPEATED_FIELDS.get(tensor.elem_type)
    if elem_field is None or elem_field[1] not in _PACKED_FIXED:
        for number, chunks in taken.items():  # not the data field of this elem_type: keep protobuf's view
            tensor.MergeFromString(b"".join(length_delimited(number, bytes(c)) for c in chunks))
        return tensor, None
    chunks = taken.get(elem_field[1]) or []
    return tensor, fixed_array(chunks, elem_field[2]) if chunks else np.empty(0, elem_field[2])


def parse_proto(body: bytes, conf: ServingConf, input_shape: list[int | None] | None) -> TensorRequest:
    """A serialized Request -> TensorRequest (400 on anything malformed)."""
    try:
        rest, taken = split_fields(body, frozenset({1}))
        request = Request.FromString(rest)
        tensors = [_tensor_fields(payload) for payload in taken.get(1, [])]
    except (WireError, Unpacked, DecodeError) as exc:
        raise InvalidInput(f"body is not a serialized GeneralModelService Request: {exc}") from None
    feeds = {}
    for t, data in tensors:
        var = _feed_var(t.name, t.alias_name, conf)
        values = (
            data
            if data is not None
            else getattr(t, REPEATED_FIELDS[t.elem_type][0])
            if t.elem_type in REPEATED_FIELDS
            else None
        )
        feeds[var.name] = _array(var, t.elem_type, list(t.shape), values, t.tensor_content)
    _check_feeds(feeds, conf, input_shape)
    return TensorRequest(feeds, resolve_fetch(request.fetch_var_names, conf), request.log_id)


def _json_int(value: Any, field: str) -> int:
    """An integer field of a JSON request (JSON true/false are not integers); 400 naming the field."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{field} must be an integer, got {value!r}")
    return value


def parse_json(body: bytes, conf: ServingConf, input_shape: list[int | None] | None) -> TensorRequest:
    """A JSON Request (field names as in the proto) -> TensorRequest."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("tensor"), list):
        raise InvalidInput("JSON body must be an object with a 'tensor' list (GeneralModelService Request)")
    feeds = {}
    for t in doc["tensor"]:
        if not isinstance(t, dict):
            raise InvalidInput("each entry of 'tensor' must be an object")
        elem_type = _json_int(t.get("elem_type", 0), "elem_type")
        var = _feed_var(str(t.get("name", "")), str(t.get("alias_name", "")), conf)
        values = t.get(REPEATED_FIELDS[elem_type][0], []) if elem_type in REPEATED_FIELDS else None
        if values is not None and not isinstance(values, list):
            raise InvalidInput(f"feed {var.alias!r}: {REPEATED_FIELDS[elem_type][0]} must be a list of numbers")
        try:
            feeds[var.name] = _array(var, elem_type, list(t.get("shape", [])), values, t.get("tensor_content", b""))
        except (TypeError, ValueError) as exc:
            if isinstance(exc, ServingError):
                raise
            raise InvalidInput(
                f"feed {var.alias!r}: values are not numbers of the declared elem_type ({exc})"
            ) from None
    fetch = doc.get("fetch_var_names") or []
    if not isinstance(fetch, list):
        raise InvalidInput("fetch_var_names must be a list of names")
    _check_feeds(feeds, conf, input_shape)
    log_id = _json_int(doc.get("log_id", 0) or 0, "log_id")
    if log_id < 0:
        raise InvalidInput(f"log_id must be a non-negative integer, got {log_id}")
    return TensorRequest(feeds, resolve_fetch(map(str, fetch), conf), log_id)


def _tensor_bytes(var: VarSpec, array: np.ndarray) -> bytes:
    elem = WIRE_CODE_OF.get(array.dtype)
    if elem is None:
        array, elem = array.astype(np.float32), 1
    head = Tensor(elem_type=elem, shape=array.shape, name=var.name, alias_name=var.alias)
    if elem in REPEATED_FIELDS:
        return head.SerializeToString() + packed_field(REPEATED_FIELDS[elem][1], array.ravel())
    head.tensor_content = np.ascontiguousarray(array).tobytes()
    return head.SerializeToString()


def response_proto(outputs: dict[str, np.ndarray], request: TensorRequest, profile: tuple[int, int]) -> bytes:
    """Response bytes with one ModelOutput holding the requested fetch vars."""
    tensors = b"".join(length_delimited(1, _tensor_bytes(v, outputs[v.name])) for v in request.fetch)
    model_output = tensors + ModelOutput(engine_name=ENGINE_NAME).SerializeToString()
    tail = Response(profile_time=list(profile), log_id=request.log_id).SerializeToString()
    return length_delimited(1, model_output) + tail


def response_json(outputs: dict[str, np.ndarray], request: TensorRequest, profile: tuple[int, int]) -> bytes:
    """brpc-style JSON Response: default-valued fields omitted (so elem_type is absent for int64)."""
    tensors = []
    for var in request.fetch:
        array = outputs[var.name]
        elem = WIRE_CODE_OF.get(array.dtype, 1)
        entry: dict[str, Any] = {}
        if elem in REPEATED_FIELDS:
            entry[REPEATED_FIELDS[elem][0]] = np.ascontiguousarray(
                array.astype(REPEATED_FIELDS[elem][2], copy=False)
            ).ravel()
        else:
            entry["tensor_content"] = np.ascontiguousarray(array).tobytes().decode("latin-1")
        if elem:
            entry["elem_type"] = elem
        entry.update(shape=list(array.shape), name=var.name, alias_name=var.alias)
        tensors.append(entry)
    doc: dict[str, Any] = {"outputs": [{"tensor": tensors, "engine_name": ENGINE_NAME}], "profile_time": list(profile)}
    if request.log_id:
        doc["log_id"] = request.log_id
    return orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)


def error_proto(error: ServingError, log_id: int = 0) -> bytes:
    return Response(err_no=error.err_no, err_msg=error.message, log_id=log_id).SerializeToString()


def error_json(error: ServingError, log_id: int = 0) -> bytes:
    doc: dict[str, Any] = {"err_no": error.err_no, "err_msg": error.message, "error": error.message, "code": error.code}
    if log_id:
        doc["log_id"] = log_id
    return orjson.dumps(doc)
