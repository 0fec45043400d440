from __future__ import annotations

import numpy as np
import pytest

from segcore.proto.general_model_service_pb2 import Request, Tensor
from segcore.servingconf import ServingConf, VarSpec
from segcore.wire import length_delimited, varint
from server.codecs.paddle_tensor import parse_proto
from server.errors import ServingError

CONF = ServingConf((VarSpec("x", "image", -1),), (VarSpec("out", "out", 1),))


def _body(tensor: Tensor, tail: bytes = b"") -> bytes:
    return Request(tensor=[tensor], fetch_var_names=["out"], log_id=9).SerializeToString() + tail


@pytest.mark.parametrize("dtype,elem,field", [(np.float32, 1, "float_data"), (np.float64, 3, "float64_data"),
                                              (np.int64, 0, "int64_data"), (np.int32, 2, "int_data")])  # fmt: skip
def test_numeric_feeds_equal_protobufs_reading(dtype, elem, field):
    values = (np.arange(24) - 7).astype(dtype).reshape(1, 2, 3, 4)
    tensor = Tensor(elem_type=elem, shape=values.shape, name="x", **{field: values.ravel().tolist()})
    request = parse_proto(_body(tensor), CONF, None)
    assert request.log_id == 9 and [v.name for v in request.fetch] == ["out"]
    np.testing.assert_array_equal(request.feeds["x"], values)
    assert request.feeds["x"].dtype == dtype


def test_floats_sent_one_by_one_are_read_too():
    values = np.arange(6, dtype=np.float32)
    head = Tensor(elem_type=1, shape=[1, 6], alias_name="image").SerializeToString()
    unpacked = b"".join(varint((2 << 3) | 5) + v.tobytes() for v in values)
    body = length_delimited(1, head + unpacked)
    np.testing.assert_array_equal(parse_proto(body, CONF, None).feeds["x"], values[None])


def test_tensor_at_an_odd_offset_parses_to_an_aligned_array():
    values = np.linspace(0, 1, 12, dtype=np.float32).reshape(1, 12)
    tensor = Tensor(elem_type=1, shape=values.shape, name="x", float_data=values.ravel().tolist())
    for pad in range(4):  # a fetch name of each length moves the tensor payload by a byte
        body = Request(fetch_var_names=["o" * pad] if pad else []).SerializeToString() + length_delimited(
            1, tensor.SerializeToString()
        )
        conf = ServingConf(CONF.feeds, (VarSpec("o" * pad, "o" * pad, 1),)) if pad else CONF
        feed = parse_proto(body, conf, None).feeds["x"]
        assert feed.flags.aligned
        np.testing.assert_array_equal(feed, values)


@pytest.mark.parametrize("body,needle", [
    (b"\xff\xff\xff\xff", "not a serialized GeneralModelService Request"),
    (length_delimited(1, b"\x50\x01\x12\x03abc"), "not a whole number"),  # float32 tensor, 3 data bytes
    (b"\x08\x01", "not a serialized GeneralModelService Request"),  # tensor field as a varint
])  # fmt: skip
def test_malformed_bodies_are_400_with_the_reason(body, needle):
    with pytest.raises(ServingError) as info:
        parse_proto(body, CONF, None)
    assert info.value.status == 400 and needle in info.value.message


def test_value_count_is_still_checked_against_the_shape():
    tensor = Tensor(elem_type=1, shape=[1, 4], name="x", float_data=[1, 2, 3])
    with pytest.raises(ServingError, match="3 values do not fill shape"):
        parse_proto(_body(tensor), CONF, None)
