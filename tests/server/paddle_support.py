"""Shared by the Paddle Serving protocol tests: the inputs they send, the outputs the engine gives for them, and
comparisons of Response messages (protobuf or brpc-style JSON)."""

from __future__ import annotations

from typing import Any

import numpy as np

from segcore.engines import Engine
from segcore.proto.general_model_service_pb2 import Response

MODES = ("json", "proto", "grpc")
MULTI = "legacy_multi"
RNG = np.random.default_rng(20240601)
PORTRAIT_INPUT = RNG.random((3, 256, 256), dtype=np.float32)  # one CHW image; batch=False adds the 1
MULTI_INPUT = RNG.normal(0, 1, (3, 24, 40)).astype(np.float32)  # dynamic H, W (even, for the 0.5x/2x resize)
# the aliased conversion of legacy_multi: alias != real name for every var
MULTI_FEED = ("pixels", "x")
MULTI_FETCH = (("labels", "argmax_0.tmp_0", np.int64, 0), ("probs", "softmax_0.tmp_0", np.float32, 1))


def model_arg(model: str) -> str | None:
    return None if model == "portrait" else model  # portrait is the default model: no selection sent


def sample_feed(model: str, batch: int | None = None) -> dict[str, np.ndarray]:
    array = PORTRAIT_INPUT if model == "portrait" else MULTI_INPUT
    if batch is not None:
        array = np.stack([array * (i + 1) / batch for i in range(batch)]).astype(np.float32)
    return {"image" if model == "portrait" else MULTI_FEED[0]: array}


def expected_outputs(engine: Engine, model: str, feed: dict[str, np.ndarray], batched: bool) -> dict[str, np.ndarray]:
    """The engine's outputs by alias for the feed the client sends."""
    array = next(iter(feed.values()))
    outputs = engine.run({"image" if model == "portrait" else "x": array if batched else array[None]})
    if model == "portrait":
        return {"fetch_name_0": outputs["fetch_name_0"]}
    return {alias: outputs[name] for alias, name, _, _ in MULTI_FETCH}


def response_tensors(response: Response | dict[str, Any]) -> list[Any]:
    outputs = response["outputs"] if isinstance(response, dict) else response.outputs
    assert len(outputs) == 1
    return list(outputs[0]["tensor"] if isinstance(response, dict) else outputs[0].tensor)


def field_of(obj: Any, key: str, default: Any = None) -> Any:
    return obj.get(key, default) if isinstance(obj, dict) else getattr(obj, key)


def assert_same_arrays(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    assert list(got) == list(want)
    for key, array in want.items():
        assert got[key].dtype == array.dtype, key
        assert got[key].shape == array.shape, key
        np.testing.assert_array_equal(got[key], array, strict=True, err_msg=key)


def assert_profile(response: Response | dict[str, Any], before_us: int, after_us: int) -> None:
    stamps = list(field_of(response, "profile_time", []))
    assert len(stamps) == 2
    assert before_us <= stamps[0] <= stamps[1] <= after_us  # wall-clock microseconds inside this call
