"""Open Inference Protocol (KServe v2) tensors, whatever carried them (JSON, JSON + binary, gRPC): datatypes,
the request as the worker sees it, and the checks that turn a malformed tensor into a 400 naming the problem."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from server.errors import InvalidInput

DATATYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
}
BYTES = "BYTES"
NAME_OF: dict[np.dtype, str] = {dtype: name for name, dtype in DATATYPES.items()}
MAX_ELEMENTS = 2**31  # no tensor claims more elements than this, whatever its shape says


@dataclass
class Tensor:
    """One input or output: name, datatype, shape, and its values (a numpy array, or a list of bytes for BYTES)."""

    name: str
    datatype: str
    shape: list[int]
    data: np.ndarray | list[bytes]


@dataclass
class RequestedOutput:
    name: str
    binary: bool | None = None  # HTTP binary extension: None = the request's default
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class InferRequest:
    """An inference request in protocol-neutral form."""

    model: str
    inputs: list[Tensor]
    outputs: list[RequestedOutput] = field(default_factory=list)
    id: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    binary_output: bool = False  # HTTP: `binary_data_output` (outputs not named get binary data)


def check_shape(name: str, shape: Any) -> list[int]:
    """The shape as a list of positive ints; 400 naming the input otherwise."""
    if not isinstance(shape, list | tuple) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape
    ):
        raise InvalidInput(f"input {name!r}: shape must be a list of positive ints, got {shape!r}")
    count = 1
    for d in shape:
        count *= d
    if count > MAX_ELEMENTS:
        raise InvalidInput(f"input {name!r}: shape {list(shape)} has more than {MAX_ELEMENTS} elements")
    return list(shape)


def check_datatype(name: str, datatype: Any) -> str:
    if datatype != BYTES and datatype not in DATATYPES:
        raise InvalidInput(f"input {name!r}: datatype {datatype!r} is not one of {', '.join([*DATATYPES, BYTES])}")
    return str(datatype)


def elements(shape: list[int]) -> int:
    return int(np.prod(shape, dtype=np.int64)) if shape else 1


def from_raw(name: str, datatype: str, shape: list[int], raw: bytes | memoryview) -> np.ndarray | list[bytes]:
    """Values from the binary form: little-endian numbers, or for BYTES each element as a 4-byte little-endian
    length and its bytes."""
    count = elements(shape)
    if datatype == BYTES:
        return split_bytes(name, raw, count)
    dtype = DATATYPES[datatype].newbyteorder("<")
    if len(raw) != count * dtype.itemsize:
        raise InvalidInput(f"input {name!r}: {len(raw)} bytes of data do not fill shape {shape} of {datatype} "
                           f"({count * dtype.itemsize} bytes)")  # fmt: skip
    return np.frombuffer(raw, dtype=dtype).astype(dtype.newbyteorder("="), copy=False).reshape(shape)


def split_bytes(name: str, raw: bytes | memoryview, count: int) -> list[bytes]:
    view, offset = memoryview(raw), 0
    items: list[bytes] = []
    for _ in range(count):
        if offset + 4 > len(view):
            raise InvalidInput(f"input {name!r}: BYTES data ends before element {len(items) + 1} of {count}")
        (size,) = struct.unpack_from("<I", view, offset)
        offset += 4
        if offset + size > len(view):
            raise InvalidInput(f"input {name!r}: BYTES element {len(items) + 1} runs past the end of the data")
        items.append(bytes(view[offset : offset + size]))
        offset += size
    if offset != len(view):
        raise InvalidInput(f"input {name!r}: {len(view) - offset} bytes left over after {count} BYTES elements")
    return items


def to_raw(tensor: Tensor) -> bytes:
    """The binary form of an output's values."""
    if tensor.datatype == BYTES:
        assert isinstance(tensor.data, list)
        return b"".join(struct.pack("<I", len(item)) + item for item in tensor.data)
    assert isinstance(tensor.data, np.ndarray)
    return np.ascontiguousarray(tensor.data, dtype=tensor.data.dtype.newbyteorder("<")).tobytes()


def from_list(name: str, datatype: str, shape: list[int], values: Any) -> np.ndarray | list[bytes]:
    """Values from a (possibly nested) list, as JSON and gRPC's typed contents carry them."""
    if datatype == BYTES:
        flat = list(_flatten(values))
        items = [v.encode() if isinstance(v, str) else bytes(v) for v in flat]
        if len(items) != elements(shape):
            raise InvalidInput(f"input {name!r}: {len(items)} values do not fill shape {shape}")
        return items
    try:
        array = np.asarray(values, dtype=DATATYPES[datatype])
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidInput(f"input {name!r}: data is not a list of {datatype} values ({exc})") from None
    if array.size != elements(shape):
        raise InvalidInput(f"input {name!r}: {array.size} values do not fill shape {shape}")
    return array.reshape(shape)


def _flatten(values: Any) -> Any:
    if isinstance(values, list | tuple):
        for value in values:
            yield from _flatten(value)
    else:
        yield values


def output_tensor(name: str, array: np.ndarray) -> Tensor:
    """An output array as a tensor (types the protocol lacks become FP32)."""
    datatype = NAME_OF.get(array.dtype)
    if datatype is None:
        array, datatype = array.astype(np.float32), "FP32"
    return Tensor(name, datatype, list(array.shape), array)
