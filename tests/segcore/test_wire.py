from __future__ import annotations

import numpy as np
import pytest

from segcore.proto.general_model_service_pb2 import Request, Tensor
from segcore.wire import Unpacked, WireError, fixed_array, length_delimited, packed_field, split_fields, varint


def _tensor_bytes(values: np.ndarray) -> bytes:
    head = Tensor(elem_type=1, shape=values.shape, name="x").SerializeToString()
    return head + packed_field(2, values.ravel())


def test_split_fields_lifts_packed_floats_and_keeps_the_rest_parseable():
    values = np.linspace(-3, 3, 1000, dtype=np.float32)
    rest, taken = split_fields(_tensor_bytes(values), frozenset({2}))
    tensor = Tensor.FromString(rest)
    assert (tensor.name, list(tensor.shape), len(tensor.float_data)) == ("x", [1000], 0)
    np.testing.assert_array_equal(fixed_array(taken[2], np.dtype(np.float32)), values)


def test_split_fields_agrees_with_protobuf_on_its_own_serialization():
    message = Tensor(elem_type=1, shape=[2, 3], name="x", alias_name="a", float_data=[1.5, -2, 3, 4, 5, 6],
                     lod=[0, 2], tensor_content=b"\x00\x01")  # fmt: skip
    rest, taken = split_fields(message.SerializeToString(), frozenset({2}))
    parsed = Tensor.FromString(rest)
    parsed.float_data.extend(fixed_array(taken[2], np.dtype(np.float32)).tolist())
    assert parsed == message


def test_several_chunks_of_one_packed_field_concatenate_in_order():
    a, b = np.arange(5, dtype=np.float64), np.arange(5, 9, dtype=np.float64)
    data = packed_field(4, a) + varint(10 << 3) + varint(3) + packed_field(4, b)
    rest, taken = split_fields(data, frozenset({4}))
    np.testing.assert_array_equal(fixed_array(taken[4], np.dtype(np.float64)), np.arange(9))
    assert Tensor.FromString(rest).elem_type == 3


def test_fixed_array_copies_a_misaligned_buffer():
    values = np.arange(16, dtype=np.float32)
    data = memoryview(b"\x00" + values.tobytes())[1:]
    array = fixed_array([data], np.dtype(np.float32))
    assert array.flags.aligned
    np.testing.assert_array_equal(array, values)


def test_unpacked_numbers_are_reported_not_misread():
    one_by_one = b"".join(varint((2 << 3) | 5) + np.float32(v).tobytes() for v in (1.0, 2.0))
    with pytest.raises(Unpacked):
        split_fields(one_by_one, frozenset({2}))


@pytest.mark.parametrize(
    "data",
    [
        b"\x0a\x05ab",  # length past the end
        b"\x08\xff\xff",  # truncated varint
        b"\x0b",  # start-group wire type
        b"\x15\x00\x00",  # truncated fixed32
        b"\x02\x00",  # field number 0
    ],
)
def test_malformed_messages_raise_wire_error(data):
    with pytest.raises(WireError):
        split_fields(data, frozenset({1}))


def test_packed_length_not_a_whole_number_of_values():
    with pytest.raises(WireError, match="4-byte"):
        fixed_array([memoryview(b"\x00" * 6)], np.dtype(np.float32))


def test_request_level_split_finds_each_tensor():
    tensors = [_tensor_bytes(np.full(3, i, np.float32)) for i in range(3)]
    body = b"".join(length_delimited(1, t) for t in tensors) + Request(log_id=7).SerializeToString()
    rest, taken = split_fields(body, frozenset({1}))
    assert Request.FromString(rest).log_id == 7
    assert [bytes(t) for t in taken[1]] == tensors
