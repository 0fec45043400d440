"""Paddle Serving element-type codes and their numpy dtypes."""

from __future__ import annotations

import numpy as np

# Codes used by feed_type / fetch_type in GeneralModelConfig and elem_type on the wire.
CODE_TO_DTYPE: dict[int, np.dtype] = {
    0: np.dtype(np.int64),
    1: np.dtype(np.float32),
    2: np.dtype(np.int32),
    3: np.dtype(np.float64),
    4: np.dtype(np.int16),
    5: np.dtype(np.float16),
    7: np.dtype(np.uint8),
    8: np.dtype(np.int8),
    9: np.dtype(np.bool_),
    10: np.dtype(np.complex64),
    11: np.dtype(np.complex128),
}
BFLOAT16_CODE = 6
STRING_CODE = 20
UNKNOWN_CODE = -1

_DTYPE_TO_CODE = {dtype: code for code, dtype in CODE_TO_DTYPE.items()}

# How a GeneralModelService Tensor carries each elem_type: a packed repeated field (name, field number, dtype),
# or raw bytes in tensor_content (CONTENT_DTYPES). Other codes cannot travel as tensors.
REPEATED_FIELDS: dict[int, tuple[str, int, np.dtype]] = {
    0: ("int64_data", 1, np.dtype(np.int64)),
    1: ("float_data", 2, np.dtype(np.float32)),
    2: ("int_data", 3, np.dtype(np.int32)),
    3: ("float64_data", 4, np.dtype(np.float64)),
}
CONTENT_DTYPES: dict[int, np.dtype] = {5: np.dtype(np.float16), 7: np.dtype(np.uint8), 8: np.dtype(np.int8)}
WIRE_DTYPES: dict[int, np.dtype] = {code: dtype for code, (_, _, dtype) in REPEATED_FIELDS.items()} | CONTENT_DTYPES
WIRE_CODE_OF: dict[np.dtype, int] = {dtype: code for code, dtype in WIRE_DTYPES.items()}

# Paddle dtype names (legacy VarType names and PIR DataType names) to numpy.
_PADDLE_NAMES: dict[str, np.dtype] = {
    "INT64": np.dtype(np.int64),
    "FP32": np.dtype(np.float32),
    "FLOAT32": np.dtype(np.float32),
    "INT32": np.dtype(np.int32),
    "FP64": np.dtype(np.float64),
    "FLOAT64": np.dtype(np.float64),
    "INT16": np.dtype(np.int16),
    "FP16": np.dtype(np.float16),
    "FLOAT16": np.dtype(np.float16),
    "UINT8": np.dtype(np.uint8),
    "INT8": np.dtype(np.int8),
    "BOOL": np.dtype(np.bool_),
    "COMPLEX64": np.dtype(np.complex64),
    "COMPLEX128": np.dtype(np.complex128),
}


def code_for(dtype: np.dtype | str | None) -> int:
    """The Paddle Serving type code of a numpy dtype, or of a Paddle dtype name ('FP32', 'BF16', ...)."""
    if dtype is None:
        return UNKNOWN_CODE
    if isinstance(dtype, str):
        name = dtype.upper().rsplit(".", 1)[-1]
        if name in ("BF16", "BFLOAT16"):
            return BFLOAT16_CODE
        if name not in _PADDLE_NAMES:
            return UNKNOWN_CODE
        dtype = _PADDLE_NAMES[name]
    return _DTYPE_TO_CODE.get(np.dtype(dtype), UNKNOWN_CODE)


def dtype_for(code: int) -> np.dtype:
    """The numpy dtype for a Paddle Serving type code; ValueError if it has none."""
    try:
        return CODE_TO_DTYPE[code]
    except KeyError:
        raise ValueError(f"element type code {code} has no numeric dtype") from None
