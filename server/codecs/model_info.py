"""Model descriptions as JSON documents: SegServing's /v1/models entries and KServe v2 model metadata."""

from __future__ import annotations

from typing import Any

from server.codecs.kserve import tensor_metadata
from server.dataplane import ModelInfo

KSERVE_KEYS = ("name", "versions", "platform", "inputs", "outputs")


def describe(info: ModelInfo) -> dict[str, Any]:
    """The /v1/models/{name} document (its first keys are KServe v2's model metadata)."""
    spec, config = info.spec, info.spec.config
    dims = config.input_shape if config else None
    post = config.postprocess if config else None
    return {
        "name": spec.name,
        "versions": ["1"],
        "platform": info.engine,
        "inputs": [tensor_metadata(v, dims if i == 0 else None) for i, v in enumerate(spec.conf.feeds)],
        "outputs": [
            tensor_metadata(v, config.output_shapes.get(v.name) if config else None) for v in spec.conf.fetches
        ],
        "image_api": bool(config and config.preprocess),
        "output_op": post.output_op if post else None,
        "num_classes": post.num_classes if post else None,
        "class_names": post.class_names if post else None,
        "ready": info.ready,
        "workers": info.workers,
    }


def kserve_metadata(info: ModelInfo) -> dict[str, Any]:
    """GET /v2/models/{name}: KServe v2's model metadata."""
    doc = describe(info)
    return {key: doc[key] for key in KSERVE_KEYS}
