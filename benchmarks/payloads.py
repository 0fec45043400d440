"""Request bodies for every protocol, made once from the same photo."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from client_sdk.tensors import request_json, request_proto
from segcore.preprocess import Preprocessor
from segcore.proto.segmentation_pb2 import SegmentRequest
from segcore.repository import ModelSpec


@dataclass(frozen=True)
class Payloads:
    """Paths of the prepared bodies."""

    jpeg: Path
    ps_json: Path
    ps_proto: Path
    segment_proto: Path
    peer_json: Path


def photo() -> np.ndarray:
    """The benchmark photo: scikit-image's astronaut (512x512), BGR."""
    from skimage import data

    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


def prepare(spec: ModelSpec, out: Path) -> Payloads:
    """Write the bodies for `spec` into `out`: JPEG (quality 95), Paddle Serving JSON and protobuf requests
    carrying the preprocessed float tensor, a SegmentRequest, and the peers' base64 JSON."""
    assert spec.config is not None and spec.config.preprocess is not None
    out.mkdir(parents=True, exist_ok=True)
    image = photo()
    jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
    tensor, _ = Preprocessor(spec.config.preprocess)(image)
    feeds = [(spec.conf.feeds[0], tensor[None])]
    paths = Payloads(out / "photo.jpg", out / "ps_request.json", out / "ps_request.pb", out / "segment.pb",
                     out / "peer.json")  # fmt: skip
    paths.jpeg.write_bytes(jpeg)
    paths.ps_json.write_text(json.dumps(request_json(feeds, [], 0)))
    paths.ps_proto.write_bytes(request_proto(feeds, [], 0))
    paths.segment_proto.write_bytes(SegmentRequest(model=spec.name, image=jpeg).SerializeToString())
    paths.peer_json.write_text(json.dumps({"image": base64.b64encode(jpeg).decode()}))
    return paths
