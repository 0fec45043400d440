"""The independent in-process pipeline: a model's whole image-in, PNG-out path built from OpenCV, NumPy, PyYAML
and ONNX Runtime alone, sharing no code with the server (tests/benchmarks/test_reference.py checks its imports).

    cv2.imdecode -> cv2.resize INTER_LINEAR to the network size -> RGB if the model wants it -> HWC to CHW ->
    float32 x * scale + shift (scale = 1 / (255 std), shift = -mean / std) -> ONNX Runtime -> labels
    (the model's own, argmax over classes, or probability >= 0.5 for one channel) -> cv2.resize INTER_NEAREST
    back to the photo's size -> cv2.imencode(".png") with default flags.

It reads the model's own files in its serving_server dir: model.onnx, and from segserving.yaml / deploy.yaml the
transforms (a fixed-size Resize and Normalize; anything else is refused), to_rgb and the output op. It is the plain
way to do the same work, not a bit-exact copy: SegServing's extensions (corner sampling, 8-bit pixels) and
PaddleSeg's reverse transform are ignored on purpose, so that the gap to the server's stages shows.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnxruntime as ort
import yaml


@dataclass(frozen=True)
class Facts:
    """What the pipeline needs to know about a model."""

    onnx_file: Path
    size: tuple[int, int] | None  # network input (w, h); None: the photo's own size
    mean: tuple[float, ...] | None  # None: no Normalize (raw pixel values)
    std: tuple[float, ...] | None
    to_rgb: bool
    output_op: str | None  # argmax | softmax | none | sigmoid; None: read off the output
    output_name: str | None


def _yaml(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text()) if path.is_file() else None
    return doc if isinstance(doc, dict) else {}


def _size(target: Any) -> tuple[int, int]:
    return (int(target), int(target)) if isinstance(target, int) else (int(target[0]), int(target[1]))


def read_facts(model_dir: Path) -> Facts:
    """The facts of a repository entry or serving_server dir; ValueError for transforms this does not handle."""
    server = model_dir / "serving_server" if (model_dir / "serving_server").is_dir() else model_dir
    config, deploy = _yaml(server / "segserving.yaml"), _yaml(server / "deploy.yaml").get("Deploy") or {}
    pre, post, onnx = config.get("preprocess") or {}, config.get("postprocess") or {}, config.get("onnx") or {}
    size, mean, std = None, None, None
    for entry in pre.get("transforms") or deploy.get("transforms") or [{"type": "Normalize"}]:
        if entry.get("type") == "Resize" and not entry.get("keep_ratio") and not entry.get("size_divisor"):
            size = _size(entry.get("target_size", 512))
        elif entry.get("type") == "Normalize":
            mean, std = tuple(entry.get("mean", (0.5,))), tuple(entry.get("std", (0.5,)))
        else:
            raise ValueError(f"the independent pipeline handles a fixed-size Resize and Normalize only, not {entry}")
    onnx_file = server / onnx.get("file", "model.onnx")
    if not onnx_file.is_file():
        raise FileNotFoundError(f"{server}: no ONNX copy ({onnx_file.name}); the independent pipeline needs one")
    return Facts(onnx_file, size, mean, std, bool(pre.get("to_rgb", True)),
                 post.get("output_op") or deploy.get("output_op"), post.get("output_name"))  # fmt: skip


def tune_process(threads: int = 1) -> None:
    """Run this process as the server runs a CPU worker: large buffers stay on glibc's heap (mmap threshold 64 MiB,
    trim threshold 256 MiB; a no-op where malloc is not glibc's) and OpenCV gets `threads` threads."""
    cv2.setNumThreads(threads)
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    mallopt(-3, 64 * 2**20)  # M_MMAP_THRESHOLD
    mallopt(-1, 256 * 2**20)  # M_TRIM_THRESHOLD


class Reference:
    """The pipeline for one model; each stage is a method, and calling it runs them all: bytes in, PNG out."""

    def __init__(self, model_dir: Path, threads: int = 1) -> None:
        self.facts = facts = read_facts(Path(model_dir))
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(facts.onnx_file), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        names = [o.name for o in self.session.get_outputs()]
        self.output_index = names.index(facts.output_name) if facts.output_name in names else 0
        if facts.mean is None or facts.std is None:
            self.scale, self.shift = np.ones((3, 1, 1), np.float32), np.zeros((3, 1, 1), np.float32)
        else:
            mean = np.broadcast_to(np.asarray(facts.mean, np.float64), (3,))
            std = np.broadcast_to(np.asarray(facts.std, np.float64), (3,))
            self.scale = (1.0 / (255.0 * std)).astype(np.float32).reshape(3, 1, 1)
            self.shift = (-mean / std).astype(np.float32).reshape(3, 1, 1)

    def decode(self, data: bytes) -> np.ndarray:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError("cannot decode the image")
        return image

    def resize(self, image: np.ndarray) -> np.ndarray:
        size = self.facts.size
        if size is None or (image.shape[1], image.shape[0]) == size:
            return image
        return cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)

    def normalize(self, image: np.ndarray) -> np.ndarray:
        """1 x 3 x H x W float32."""
        if self.facts.to_rgb:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        x = np.ascontiguousarray(image.transpose(2, 0, 1)).astype(np.float32)  # CHW first: per-plane factors
        x *= self.scale
        x += self.shift
        return x[None]

    def infer(self, tensor: np.ndarray) -> np.ndarray:
        """The output for the one image (no batch dim)."""
        return np.asarray(self.session.run(None, {self.input_name: tensor})[self.output_index][0])

    def labels(self, output: np.ndarray) -> np.ndarray:
        """H x W class ids at the network's size."""
        if output.dtype.kind in "iu":  # the model's own argmax
            labels = output[0] if output.ndim == 3 else output
        elif output.shape[0] == 1:  # one foreground channel: a probability, or a logit where the op is none
            labels = (output[0] >= (0.0 if self.facts.output_op == "none" else 0.5)).view(np.uint8)
        else:
            labels = output.argmax(axis=0)
        return labels.astype(np.uint8 if labels.size == 0 or labels.max() < 256 else np.uint16, copy=False)

    def resize_back(self, labels: np.ndarray, height: int, width: int) -> np.ndarray:
        if labels.shape == (height, width):
            return labels
        return cv2.resize(labels, (width, height), interpolation=cv2.INTER_NEAREST)

    def encode(self, labels: np.ndarray) -> bytes:
        ok, buffer = cv2.imencode(".png", labels)
        if not ok:
            raise ValueError("cannot encode the label map")
        return bytes(buffer.tobytes())

    def tensor(self, data: bytes) -> np.ndarray:
        """The network input for an encoded photo (decode, resize, normalize)."""
        return self.normalize(self.resize(self.decode(data)))

    def __call__(self, data: bytes) -> bytes:
        image = self.decode(data)
        labels = self.labels(self.infer(self.normalize(self.resize(image))))
        return self.encode(self.resize_back(labels, image.shape[0], image.shape[1]))
