"""KServe v2 (Open Inference Protocol) JSON requests and responses <-> numpy."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

from segcore.dtypes import CODE_TO_DTYPE
from segcore.servingconf import ServingConf, VarSpec
from server.codecs.paddle_tensor import TensorRequest, resolve_fetch
from server.errors import InvalidInput

DATATYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
}
_NAME_OF = {dtype: name for name, dtype in DATATYPES.items()}


def datatype_of(type_code: int) -> str:
    """The v2 datatype name of a Paddle Serving type code ('BYTES' if it has no numeric dtype)."""
    dtype = CODE_TO_DTYPE.get(type_code)
    return _NAME_OF.get(dtype, "BYTES") if dtype is not None else "BYTES"


def tensor_metadata(var: VarSpec, dims: list[int | None] | None) -> dict[str, Any]:
    shape = [-1 if d is None else d for d in dims] if dims else [-1, *var.shape]
    return {"name": var.alias, "datatype": datatype_of(var.type_code), "shape": shape}


def parse_request(body: bytes, conf: ServingConf) -> tuple[TensorRequest, str | None]:
    """A v2 JSON inference request -> (TensorRequest, request id)."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("inputs"), list):
        raise InvalidInput("v2 inference request must be an object with an 'inputs' list")
    by_name = {v.alias: v for v in conf.feeds} | {v.name: v for v in conf.feeds}
    feeds: dict[str, np.ndarray] = {}
    for entry in doc["inputs"]:
        name = entry.get("name") if isinstance(entry, dict) else None
        if name not in by_name:
            raise InvalidInput(f"unknown input {name!r}; this model's inputs: {', '.join(v.alias for v in conf.feeds)}")
        var = by_name[name]
        datatype, shape = entry.get("datatype"), entry.get("shape")
        if datatype not in DATATYPES:
            raise InvalidInput(f"input {name!r}: datatype {datatype!r} is not one of {', '.join(DATATYPES)}")
        if (
            not isinstance(shape, list)
            or not shape
            or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape)
        ):
            raise InvalidInput(f"input {name!r}: shape must be a list of positive ints, got {shape!r}")
        try:
            array = np.asarray(entry.get("data"), dtype=DATATYPES[datatype])
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"input {name!r}: data is not a list of {datatype} values ({exc})") from None
        if array.size != int(np.prod(shape)):
            raise InvalidInput(f"input {name!r}: {array.size} values do not fill shape {shape}")
        if var.type_code >= 0 and DATATYPES[datatype] != CODE_TO_DTYPE.get(var.type_code):
            raise InvalidInput(f"input {name!r}: the model expects {datatype_of(var.type_code)}, got {datatype}")
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise InvalidInput(f"input {name!r}: contains NaN or infinity")
        feeds[var.name] = array.reshape(shape)
    missing = [v.alias for v in conf.feeds if v.name not in feeds]
    if missing:
        raise InvalidInput(f"missing input(s): {', '.join(missing)}")
    outputs = doc.get("outputs") or []
    names = [o.get("name") for o in outputs if isinstance(o, dict)]
    request_id = doc.get("id")
    return TensorRequest(feeds, resolve_fetch(map(str, names), conf), 0), (str(request_id) if request_id else None)


def response(model: str, outputs: dict[str, np.ndarray], request: TensorRequest, request_id: str | None) -> bytes:
    doc: dict[str, Any] = {"model_name": model, "model_version": "1", "outputs": []}
    if request_id:
        doc["id"] = request_id
    for var in request.fetch:
        array = outputs[var.name]
        name = _NAME_OF.get(array.dtype)
        if name is None:
            array, name = array.astype(np.float32), "FP32"
        doc["outputs"].append({"name": var.alias, "datatype": name, "shape": list(array.shape), "data": array.ravel()})
    return orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)
