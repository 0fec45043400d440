"""Protobuf wire-format helpers for large numeric fields.

Filling a repeated field element by element costs ~0.4 us per value (300 ms for a 3x512x512 float tensor),
so big arrays are encoded here with numpy as packed fields and spliced next to the small fields that
protobuf serializes. Field order does not matter on the wire; the result parses as one message.
"""

from __future__ import annotations

import numpy as np

_LEN = 2  # wire type of length-delimited fields


def varint(value: int) -> bytes:
    """One unsigned varint."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def length_delimited(field_number: int, payload: bytes) -> bytes:
    """Tag, length and payload of a length-delimited field (message, bytes, string, packed repeated)."""
    return varint((field_number << 3) | _LEN) + varint(len(payload)) + payload


def varints(values: np.ndarray) -> bytes:
    """Packed varint encoding of integers (negative values as 64-bit two's complement, as protobuf does)."""
    v = np.ascontiguousarray(values, dtype=np.int64).ravel().view(np.uint64)
    if v.size == 0:
        return b""
    if int(v.max()) < 0x80:  # label maps: one byte each
        return v.astype(np.uint8).tobytes()
    nbytes = np.ones(v.shape, dtype=np.int64)
    rest = v >> np.uint64(7)
    while rest.any():
        nbytes += rest > 0
        rest >>= np.uint64(7)
    width = int(nbytes.max())
    shifts = np.arange(width, dtype=np.uint64) * np.uint64(7)
    groups = ((v[:, None] >> shifts[None, :]) & np.uint64(0x7F)).astype(np.uint8)
    position = np.arange(width)[None, :]
    groups[position < (nbytes[:, None] - 1)] |= 0x80
    return groups[position < nbytes[:, None]].tobytes()


def packed_field(field_number: int, array: np.ndarray) -> bytes:
    """The packed repeated field for `array`: fixed32 for float32, fixed64 for float64, else varints."""
    if array.size == 0:
        return b""
    if array.dtype == np.float32:
        payload = np.ascontiguousarray(array, dtype="<f4").tobytes()
    elif array.dtype == np.float64:
        payload = np.ascontiguousarray(array, dtype="<f8").tobytes()
    else:
        payload = varints(array)
    return length_delimited(field_number, payload)
