"""What every peer shares: load a repository model into a segcore pipeline, decode a base64 image."""

from __future__ import annotations

import argparse
import base64
import binascii

import cv2
import numpy as np

from segcore.engines import ENGINE_NAMES, EngineOptions, create_engine
from segcore.pipeline import SegmentationPipeline
from segcore.repository import ModelRepository


class BadRequest(ValueError):
    """The request cannot be served (missing field, not base64, not an image)."""


def load_pipeline(model: str, engine: str = "onnxruntime", threads: int = 1) -> SegmentationPipeline:
    """A model from the repository (a name, or a model dir path) on one engine instance."""
    spec = ModelRepository().resolve(model)
    if spec.config is None:
        raise SystemExit(f"model {model!r} has no segserving.yaml; convert it with SegServing first")
    options = EngineOptions(cpu_threads=threads)
    return SegmentationPipeline(spec.config, create_engine(spec.server_dir, spec.config, engine, options))


def decode_b64_image(doc: object) -> np.ndarray:
    """{"image": "<base64 JPEG/PNG>"} -> BGR uint8, as the tutorials decode it (cv2.imdecode)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("image"), str):
        raise BadRequest('the body must be JSON {"image": "<base64 encoded image>"}')
    try:
        data = base64.b64decode(doc["image"], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadRequest(f"image is not valid base64: {exc}") from None
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    except cv2.error:
        image = None
    if image is None:
        raise BadRequest("image cannot be decoded")
    return image


def add_model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="portrait", help="repository model name, or a model dir path")
    parser.add_argument("--engine", choices=ENGINE_NAMES, default="onnxruntime")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--threads", type=int, default=1, help="engine CPU threads per predictor")
