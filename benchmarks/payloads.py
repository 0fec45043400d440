"""Request bodies for every protocol, made once from the same photo."""

from __future__ import annotations

import base64
import json
import struct
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import orjson

from client_sdk.tensors import request_json, request_proto
from segcore.preprocess import Preprocessor
from segcore.proto import oip
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
    oip_grpc: Path  # ModelInferRequest, the tensor as raw_input_contents
    oip_http: Path  # binary tensor data extension: JSON header + raw tensor
    oip_http_header: int  # its JSON header's length (Inference-Header-Content-Length)
    oip_image_grpc: Path  # ModelInferRequest, the JPEG as one BYTES element (server-side pre/postprocessing)


def photo(size: tuple[int, int] | None = None) -> np.ndarray:
    """The benchmark photo: scikit-image's astronaut (512x512), BGR; resized to `size` (width, height) if given."""
    from skimage import data

    image = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    return image if size is None else cv2.resize(image, size, interpolation=cv2.INTER_CUBIC)


def _oip_tensor_request(spec: ModelSpec, batch: np.ndarray) -> bytes:
    message = oip.ModelInferRequest(model_name=spec.name)
    message.inputs.add(name=spec.conf.feeds[0].alias, datatype="FP32", shape=list(batch.shape))
    message.raw_input_contents.append(np.ascontiguousarray(batch, "<f4").tobytes())
    for var in spec.conf.fetches:
        message.outputs.add(name=var.alias)
    return bytes(message.SerializeToString())


def prepare(spec: ModelSpec, out: Path, size: tuple[int, int] | None = None) -> Payloads:
    """Write the bodies for `spec` into `out`: JPEG (quality 95), Paddle Serving JSON and protobuf requests
    carrying the preprocessed float tensor, a SegmentRequest, and the peers' base64 JSON; the photo at `size`
    (width, height) if given."""
    assert spec.config is not None and spec.config.preprocess is not None
    out.mkdir(parents=True, exist_ok=True)
    image = photo(size)
    jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
    tensor, _ = Preprocessor(spec.config.preprocess)(image)
    feeds = [(spec.conf.feeds[0], tensor[None])]
    header = orjson.dumps({"inputs": [{"name": spec.conf.feeds[0].alias, "datatype": "FP32",
                                       "shape": list(tensor[None].shape),
                                       "parameters": {"binary_data_size": tensor.nbytes}}],
                           "outputs": [{"name": v.alias, "parameters": {"binary_data": True}}
                                       for v in spec.conf.fetches]})  # fmt: skip
    paths = Payloads(out / "photo.jpg", out / "ps_request.json", out / "ps_request.pb", out / "segment.pb",
                     out / "peer.json", out / "oip_request.pb", out / "oip_request.bin", len(header),
                     out / "oip_image_request.pb")  # fmt: skip
    paths.oip_http.write_bytes(header + np.ascontiguousarray(tensor[None], "<f4").tobytes())
    paths.oip_grpc.write_bytes(_oip_tensor_request(spec, tensor[None]))
    image_request = oip.ModelInferRequest(model_name=spec.name)
    image_request.inputs.add(name="image", datatype="BYTES", shape=[1])
    image_request.raw_input_contents.append(struct.pack("<I", len(jpeg)) + jpeg)
    image_request.outputs.add(name="label_map")
    paths.oip_image_grpc.write_bytes(image_request.SerializeToString())
    paths.jpeg.write_bytes(jpeg)
    paths.ps_json.write_text(json.dumps(request_json(feeds, [], 0)))
    paths.ps_proto.write_bytes(request_proto(feeds, [], 0))
    paths.segment_proto.write_bytes(SegmentRequest(model=spec.name, image=jpeg).SerializeToString())
    paths.peer_json.write_text(json.dumps({"image": base64.b64encode(jpeg).decode()}))
    return paths
