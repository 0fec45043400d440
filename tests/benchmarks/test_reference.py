"""benchmarks.reference: the independent pipeline shares no code with the server, reads a model's own files, and
does the plain stages (decode, resize, normalize, ONNX Runtime, labels, nearest back, PNG)."""

from __future__ import annotations

import ast
import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from helpers import ROOT

from benchmarks.reference import Reference, read_facts

PORTRAIT = ROOT / "serving_models" / "portrait"
ALLOWED = {"cv2", "numpy", "yaml", "onnxruntime"}


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "no relative imports"
            found.add(node.module or "")
    return found


def test_it_imports_only_the_standard_library_opencv_numpy_yaml_and_onnxruntime() -> None:
    names = _imports(ROOT / "benchmarks" / "reference.py")
    tops = {name.split(".")[0] for name in names}
    assert tops >= ALLOWED, "it is built from these directly"
    assert not {t for t in tops if t not in ALLOWED and t not in sys.stdlib_module_names and t != "__future__"}
    assert not {t for t in tops if t in ("server", "segcore", "benchmarks", "client_sdk", "convert")}


def _photo(width: int = 160, height: int = 120) -> bytes:
    rng = np.random.default_rng(0)
    image = cv2.GaussianBlur(rng.integers(0, 256, (height, width, 3)).astype(np.uint8), (9, 9), 3)
    return bytes(cv2.imencode(".png", image)[1].tobytes())


def test_facts_of_the_bundled_portrait_model() -> None:
    facts = read_facts(PORTRAIT)
    assert facts == read_facts(PORTRAIT / "serving_server")
    assert facts.onnx_file == PORTRAIT / "serving_server" / "model.onnx"
    assert (facts.size, facts.mean, facts.std, facts.to_rgb) == ((256, 256), (0.0,) * 3, (1.0,) * 3, True)
    assert (facts.output_op, facts.output_name) == ("sigmoid", "fetch_name_0")


def _entry(tmp_path: Path, transforms: list[dict], onnx: bool = True, **deploy: object) -> Path:
    server = tmp_path / "serving_server"
    server.mkdir()
    (server / "deploy.yaml").write_text(yaml.safe_dump({"Deploy": {"transforms": transforms, **deploy}}))
    if onnx:
        (server / "model.onnx").write_bytes((PORTRAIT / "serving_server" / "model.onnx").read_bytes())
    return tmp_path


def test_facts_from_deploy_yaml_alone_with_paddleseg_defaults(tmp_path: Path) -> None:
    facts = read_facts(_entry(tmp_path, [{"type": "Resize", "target_size": 96}, {"type": "Normalize"}],
                              output_op="argmax"))  # fmt: skip
    assert (facts.size, facts.mean, facts.std, facts.to_rgb, facts.output_op) == ((96, 96), (0.5,), (0.5,), True,
                                                                                  "argmax")  # fmt: skip


@pytest.mark.parametrize("transform", [{"type": "ResizeByShort", "short_size": 512},
                                       {"type": "Resize", "target_size": [64, 64], "keep_ratio": True},
                                       {"type": "Padding", "target_size": [512, 512]}])  # fmt: skip
def test_transforms_it_does_not_do_are_refused(tmp_path: Path, transform: dict) -> None:
    with pytest.raises(ValueError, match="fixed-size Resize and Normalize only"):
        read_facts(_entry(tmp_path, [transform, {"type": "Normalize"}]))


def test_a_model_without_an_onnx_copy_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no ONNX copy"):
        read_facts(_entry(tmp_path, [{"type": "Normalize"}], onnx=False))


def test_stages_of_the_portrait_model() -> None:
    pipeline = Reference(PORTRAIT)
    image = pipeline.decode(_photo())
    assert image.shape == (120, 160, 3)
    small = pipeline.resize(image)
    np.testing.assert_array_equal(small, cv2.resize(image, (256, 256), interpolation=cv2.INTER_LINEAR))
    tensor = pipeline.normalize(small)
    assert tensor.shape == (1, 3, 256, 256) and tensor.dtype == np.float32
    np.testing.assert_allclose(tensor[0], small[:, :, ::-1].transpose(2, 0, 1) / 255.0, rtol=1e-6)
    output = pipeline.infer(tensor)
    assert output.shape == (1, 256, 256)
    labels = pipeline.labels(output)
    np.testing.assert_array_equal(labels, (output[0] >= 0.5).astype(np.uint8))
    back = pipeline.resize_back(labels, 120, 160)
    np.testing.assert_array_equal(back, cv2.resize(labels, (160, 120), interpolation=cv2.INTER_NEAREST))
    png = pipeline(_photo())
    np.testing.assert_array_equal(cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED), back)


def test_labels_for_each_kind_of_output() -> None:
    pipeline = Reference(PORTRAIT)
    logits = np.array([[[-1.0, 0.0, 2.0]]], np.float32)
    pipeline.facts = dataclasses.replace(pipeline.facts, output_op="none")
    assert pipeline.labels(logits).tolist() == [[0, 1, 1]]
    scores = np.array([[[0.1, 0.7]], [[0.6, 0.2]], [[0.3, 0.1]]], np.float32)
    assert pipeline.labels(scores).tolist() == [[1, 0]] and pipeline.labels(scores).dtype == np.uint8
    own = np.array([[[3, 0, 300]]], np.int64)
    assert pipeline.labels(own).tolist() == [[3, 0, 300]]
    assert pipeline.labels(own[:, :, :2]).dtype == np.uint8


def test_a_model_that_outputs_labels(converted: Callable[[str], Path]) -> None:
    """A PaddleSeg-style export with its argmax inside: int labels, Resize [64, 48] and the default Normalize."""
    entry = converted("pir_interp")
    pipeline = Reference(entry)
    assert (pipeline.facts.size, pipeline.facts.output_op) == ((64, 48), "argmax")
    output = pipeline.infer(pipeline.tensor(_photo()))
    assert output.dtype.kind == "i" and output.shape == (48, 64)
    labels = cv2.imdecode(np.frombuffer(pipeline(_photo()), np.uint8), cv2.IMREAD_UNCHANGED)
    assert labels.shape == (120, 160) and labels.dtype == np.uint8 and set(np.unique(labels)) <= {0, 1, 2}
