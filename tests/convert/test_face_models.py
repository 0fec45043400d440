"""convert.face_models: MediaPipe's face detector and landmark model rebuilt from a wheel, and the committed ONNX
files agreeing with LiteRT running the original .tflite files on a real face."""

from __future__ import annotations

import zipfile
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest
from skimage import data

from convert.face_models import MODELS, FaceModel, main

litert = pytest.importorskip("ai_edge_litert.interpreter")

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "idphoto" / "models" / "face"


def _wheel(path: Path, swap: bool = False) -> Path:
    """A mediapipe-like wheel holding the two committed sources (`swap`: each under the other's name)."""
    sources = [(COMMITTED / "source" / m.tflite_name).read_bytes() for m in MODELS]
    with zipfile.ZipFile(path, "w") as zf:
        for model, payload in zip(MODELS, sources[::-1] if swap else sources, strict=True):
            zf.writestr(model.member, payload)
        zf.writestr("mediapipe-0.10.21.dist-info/LICENSE", "Apache License\nVersion 2.0, January 2004\n")
    return path


def _face_crop(size: int) -> np.ndarray:
    """The astronaut's face, square, at the model's input size: RGB float32 NHWC in [0, 1]."""
    rgb = data.astronaut()[40:220, 130:310]
    return (cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0)[None]


def _litert(tflite: Path, x_nhwc: np.ndarray) -> list[np.ndarray]:
    interp = litert.Interpreter(model_path=str(tflite))
    interp.allocate_tensors()
    interp.set_tensor(interp.get_input_details()[0]["index"], x_nhwc)
    interp.invoke()
    return [interp.get_tensor(d["index"]) for d in interp.get_output_details()]


def _onnx(path: Path, x_nhwc: np.ndarray) -> list[np.ndarray]:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run(None, {"image": np.ascontiguousarray(x_nhwc.transpose(0, 3, 1, 2))})


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.onnx_name)
@pytest.mark.parametrize("scale", ["unit", "signed"])
def test_committed_onnx_matches_litert_on_a_face(model: FaceModel, scale: str) -> None:
    x = _face_crop(model.size)
    x = x * 2 - 1 if scale == "signed" else x  # the detector takes [-1, 1], the landmark model [0, 1]
    expected, got = _litert(COMMITTED / "source" / model.tflite_name, x), _onnx(COMMITTED / model.onnx_name, x)
    for want, have in zip(expected, got, strict=True):
        np.testing.assert_allclose(have, want.reshape(have.shape), atol=2e-3 * max(1.0, float(np.abs(want).max())))


def test_rebuilds_from_a_wheel(tmp_path: Path) -> None:
    out = tmp_path / "face"
    assert main(["--wheel", str(_wheel(tmp_path / "mediapipe-0.10.21-py3-none-any.whl")), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(["LICENSE", "NOTICE", "source",
                                                            *(m.onnx_name for m in MODELS)])  # fmt: skip
    notice = (out / "NOTICE").read_text()
    assert all(m.sha256 in notice and m.member in notice for m in MODELS) and "Apache License 2.0" in notice
    for model in MODELS:
        x = _face_crop(model.size)
        for rebuilt, committed in zip(_onnx(out / model.onnx_name, x), _onnx(COMMITTED / model.onnx_name, x),
                                      strict=True):  # fmt: skip
            np.testing.assert_allclose(rebuilt, committed, atol=1e-4 * max(1.0, float(np.abs(committed).max())))


def test_an_unknown_model_is_refused_and_nothing_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wheel = _wheel(tmp_path / "mediapipe-0.10.21-py3-none-any.whl", swap=True)
    out = tmp_path / "face"
    assert main(["--wheel", str(wheel), "--out", str(out)]) == 1
    assert "error: sha256 mismatch" in capsys.readouterr().err
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == [wheel.name]
