"""SegServing's per-model config, `segserving.yaml`, written by convert next to the model files."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from segcore.transforms import Transform

CONFIG_NAME = "segserving.yaml"
OutputOp = Literal["argmax", "softmax", "none", "sigmoid"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Preprocess(_Strict):
    """Decode-to-tensor steps: BGR->RGB, then the transforms in order, then HWC->CHW.

    pixel_dtype: what the transforms work on. float32 is PaddleSeg's (`cv2.imread(...).astype("float32")`: resizes
    do not round); uint8 is MediaPipe's (ImageToTensor warps the 8-bit image), for models whose reference it is."""

    to_rgb: bool = True
    pixel_dtype: Literal["float32", "uint8"] = "float32"
    transforms: list[Transform] = Field(default_factory=list)


class Postprocess(_Strict):
    """How the segmentation output is read: which output, what it holds, the class names."""

    output_name: str
    output_op: OutputOp
    num_classes: int | None = None
    class_names: list[str] | None = None


class ModelFiles(_Strict):
    """Program and params files, relative to the serving_server dir."""

    model_file: str
    params_file: str
    format: Literal["pir", "legacy"]


class OnnxCheck(_Strict):
    """Result of comparing the ONNX copy with the Paddle predictor on a sample input."""

    passed: bool
    sample_shape: list[int]
    label_agreement: float | None = None
    max_abs_diff: float | None = None
    tolerance: float


class OnnxInfo(_Strict):
    """The verified ONNX copy of the model."""

    file: str
    opset: int
    input_names: list[str]
    output_names: list[str]
    check: OnnxCheck
    rewrites: list[str] = Field(default_factory=list)  # program rewrites made so the export could happen


class ModelConfig(_Strict):
    """Everything SegServing knows about one served model beyond Paddle Serving's conf files."""

    version: int = 1
    name: str
    files: ModelFiles
    input_name: str
    input_shape: list[int | None] | None = None
    output_shapes: dict[str, list[int | None]] = Field(default_factory=dict)  # declared dims, None = dynamic
    preprocess: Preprocess | None = None
    postprocess: Postprocess | None = None
    onnx: OnnxInfo | None = None
    onnx_missing: str | None = None  # why the converter made no ONNX copy (one line)
    source: dict[str, str] = Field(default_factory=dict)

    def save(self, directory: Path) -> Path:
        path = Path(directory) / CONFIG_NAME
        data = self.model_dump(mode="json", exclude_none=True)
        path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
        return path

    @classmethod
    def load(cls, directory: Path) -> ModelConfig:
        path = Path(directory) / CONFIG_NAME
        try:
            return cls.model_validate(yaml.safe_load(path.read_text()))
        except (yaml.YAMLError, ValidationError) as exc:
            raise ValueError(f"{path}: invalid SegServing model config: {one_line(exc)}") from exc


def one_line(exc: Exception) -> str:
    """A validation or parse error as one readable line."""
    if isinstance(exc, ValidationError):
        parts = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith("tagged-union"))
            parts.append(f"{loc}: {err['msg']}" if loc else err["msg"])
        return "; ".join(parts)
    return " ".join(str(exc).split())
