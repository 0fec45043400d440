"""segcore.dtypes: Paddle Serving element-type codes (paddle-serving-compat.md 1.3 table)."""

from __future__ import annotations

import numpy as np
import pytest

from segcore.dtypes import BFLOAT16_CODE, STRING_CODE, UNKNOWN_CODE, code_for, dtype_for

# The table in paddle-serving-compat.md 1.3, codes with a numpy dtype.
TABLE = [
    (0, np.int64),
    (1, np.float32),
    (2, np.int32),
    (3, np.float64),
    (4, np.int16),
    (5, np.float16),
    (7, np.uint8),
    (8, np.int8),
    (9, np.bool_),
    (10, np.complex64),
    (11, np.complex128),
]


@pytest.mark.parametrize(("code", "dtype"), TABLE)
def test_code_and_dtype_both_ways(code, dtype):
    assert dtype_for(code) == np.dtype(dtype)
    assert code_for(np.dtype(dtype)) == code
    assert code_for(dtype) == code  # a numpy scalar type works too


def test_special_codes():
    assert (BFLOAT16_CODE, STRING_CODE, UNKNOWN_CODE) == (6, 20, -1)


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("FP32", 1),
        ("FLOAT32", 1),
        ("INT64", 0),
        ("INT32", 2),
        ("FP64", 3),
        ("FLOAT64", 3),
        ("INT16", 4),
        ("FP16", 5),
        ("FLOAT16", 5),
        ("BF16", 6),
        ("BFLOAT16", 6),
        ("UINT8", 7),
        ("INT8", 8),
        ("BOOL", 9),
        ("COMPLEX64", 10),
        ("COMPLEX128", 11),
        # Qualified and lower-case spellings: VarType.FP32, DataType.FLOAT32, paddle.bfloat16.
        ("VarType.FP32", 1),
        ("DataType.FLOAT32", 1),
        ("paddle.bfloat16", 6),
        ("paddle.int64", 0),
        ("uint8", 7),
    ],
)
def test_code_for_paddle_names(name, code):
    assert code_for(name) == code


@pytest.mark.parametrize("value", [None, "UINT16", "STRING", "", np.dtype(np.uint16), np.dtype("U4")])
def test_code_for_unknown(value):
    assert code_for(value) == UNKNOWN_CODE


@pytest.mark.parametrize("code", [BFLOAT16_CODE, STRING_CODE, UNKNOWN_CODE, 12, 99])
def test_dtype_for_without_numpy_dtype(code):
    with pytest.raises(ValueError, match=f"element type code {code} has no numeric dtype"):
        dtype_for(code)
