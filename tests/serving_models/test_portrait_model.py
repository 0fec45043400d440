"""The bundled portrait model against the original TFLite model run with MediaPipe's preprocessing."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data
from skimage.color import gray2rgb

from segcore.deploy_yaml import read_deploy_yaml
from segcore.engines import EngineOptions, create_engine
from segcore.pipeline import SegmentationPipeline
from segcore.repository import ModelRepository
from serving_models import ROOT

TFLITE = ROOT / "portrait" / "source" / "selfie_segmentation.tflite"


def mediapipe_reference(rgb: np.ndarray) -> np.ndarray:
    """Person probability at the image's size: MediaPipe's CPU graph (warpAffine scaling, /255, LiteRT,
    bilinear resize back), computed with the real TFLite runtime."""
    from ai_edge_litert.interpreter import Interpreter

    h, w = rgb.shape[:2]
    matrix = np.array([[256 / w, 0, 0], [0, 256 / h, 0]], dtype=np.float64)
    warped = cv2.warpAffine(rgb, matrix, (256, 256), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    interpreter = Interpreter(model_path=str(TFLITE))
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], (warped.astype(np.float32) / 255.0)[None])
    interpreter.invoke()
    prob = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0, :, :, 0]
    return cv2.resize(prob, (w, h), interpolation=cv2.INTER_LINEAR)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


@pytest.mark.parametrize("engine", ["paddle", "onnxruntime"])
@pytest.mark.parametrize("name", ["astronaut", "camera"])
def test_portrait_matches_tflite_reference(engine: str, name: str) -> None:
    image = getattr(data, name)()
    rgb = gray2rgb(image) if image.ndim == 2 else image
    spec = ModelRepository().load("portrait")
    pipeline = SegmentationPipeline(spec.config, create_engine(spec.server_dir, spec.config, engine, EngineOptions()))
    result = pipeline.segment(np.ascontiguousarray(rgb[:, :, ::-1]), want_scores=True)
    reference = mediapipe_reference(rgb)
    assert result.label_map.shape == rgb.shape[:2]
    person = result.scores[1]
    assert np.abs(person - reference).max() < 1e-3
    assert iou(person >= 0.5, reference >= 0.5) >= 0.999
    np.testing.assert_array_equal(result.label_map, (person >= 0.5).astype(np.uint8))
    assert 0.05 < (reference >= 0.5).mean() < 0.9  # a real person mask, not an empty or full one


def test_portrait_entry_is_complete() -> None:
    entry = ROOT / "portrait"
    spec = ModelRepository().load("portrait")
    assert spec.config.postprocess.class_names == ["background", "person"]
    assert spec.config.onnx is not None and spec.config.onnx.check.passed
    assert spec.config.preprocess.pixel_dtype == "uint8"  # MediaPipe warps the 8-bit image, as its reference does
    deploy = read_deploy_yaml(spec.server_dir / "deploy.yaml")
    assert (spec.server_dir / deploy.model).is_file() and (spec.server_dir / deploy.params).is_file()
    assert deploy.preprocess == spec.config.preprocess
    assert "Apache License" in (entry / "LICENSE").read_text()
    assert "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c" in (entry / "NOTICE").read_text()
    for name in ("serving_client_conf.prototxt", "serving_client_conf.stream.prototxt"):
        assert (entry / "serving_client" / name).is_file()
