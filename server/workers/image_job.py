"""The image API's work inside a worker: options, decode + preprocess, then postprocess + encode."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from segcore import images as codec
from segcore.pipeline import SegmentationPipeline
from segcore.postprocess import InvalidOutput, SegmentationResult, TransInfo, postprocess
from segcore.proto.segmentation_pb2 import SegmentResponse
from segcore.repository import ModelSpec
from segcore.transforms import InvalidImage
from server.errors import InternalError, InvalidInput, TooLarge, UnsupportedMedia
from server.jobs import Job

PROTO_TYPE = "application/x-protobuf"
OUTPUTS = ("label", "probability", "alpha", "overlay", "json", "proto")
Finish = Callable[[dict[str, np.ndarray], dict[str, float]], tuple[bytes, str]]


def _number(params: dict[str, str], name: str, kind: Callable[[str], Any], default: Any) -> Any:
    """Query option `name` converted by `kind`, or `default` when absent; 400 naming the option if bad."""
    if name not in params:
        return default
    try:
        return kind(params[name])
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise InvalidInput(f"query option {name} must be {what}, got {params[name]!r}") from None


@dataclass(frozen=True)
class ImageOptions:
    """Query options of POST /v1/models/{name}/segment."""

    output: str = "label"
    class_id: int | None = None
    format: str = "png"
    alpha: float = 0.5
    quality: int = 90
    probability: bool = False

    @classmethod
    def parse(cls, params: dict[str, str]) -> ImageOptions:
        known = {"output", "class_id", "format", "alpha", "quality", "probability"}
        unknown = sorted(set(params) - known)
        if unknown:
            raise InvalidInput(f"unknown query option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        output = params.get("output", "label")
        if output not in OUTPUTS:
            raise InvalidInput(f"output must be one of {', '.join(OUTPUTS)}, got {output!r}")
        fmt = params.get("format", "png")
        if fmt not in ("png", "jpeg"):
            raise InvalidInput(f"format must be png or jpeg, got {fmt!r}")
        class_id = _number(params, "class_id", int, None)
        alpha = _number(params, "alpha", float, 0.5)
        quality = _number(params, "quality", int, 90)
        if not 0.0 <= alpha <= 1.0 or not 1 <= quality <= 100:
            raise InvalidInput("alpha must be in [0, 1] and quality in [1, 100]")
        flag = params.get("probability", "false").lower()
        if flag not in ("true", "false", "1", "0"):
            raise InvalidInput(f"probability must be true or false, got {flag!r}")
        return cls(output, class_id, fmt, alpha, quality, flag in ("true", "1"))

    @property
    def wants_scores(self) -> bool:
        return self.output in ("probability", "alpha") or (self.output in ("json", "proto") and self.probability)


class ImageJobCodec:
    """Turns an image job into feeds, and the model's output back into the requested encoding."""

    def __init__(self, spec: ModelSpec, limits: codec.ImageLimits) -> None:
        assert spec.config is not None and spec.config.postprocess is not None
        self.spec = spec
        self.input_name = spec.config.input_name
        self.post = spec.config.postprocess
        self.limits = limits
        self.preprocess = SegmentationPipeline.preprocessor_for(spec.config)
        self.num_classes = self.post.num_classes or (len(self.post.class_names) if self.post.class_names else None)

    def load(self, data: bytes) -> tuple[np.ndarray, np.ndarray, TransInfo]:
        """Decode an encoded image and preprocess it: (BGR image, C x H x W tensor, reverse-transform info)."""
        try:
            image = codec.decode_image(data, self.limits)
        except codec.UnsupportedImage as exc:
            raise UnsupportedMedia(str(exc)) from None
        except codec.ImageTooLarge as exc:
            raise TooLarge(str(exc)) from None
        except codec.ImageError as exc:
            raise InvalidInput(str(exc)) from None
        try:
            tensor, trans_info = self.preprocess(image)
        except (InvalidImage, ValueError) as exc:
            raise InvalidInput(f"image cannot be preprocessed for this model: {exc}") from None
        return image, tensor, trans_info

    def segment(self, outputs: dict[str, np.ndarray], trans_info: TransInfo, want_scores: bool,
                index: int = 0) -> SegmentationResult:  # fmt: skip
        """The model's output for the batch's `index`-th image, at the image's original size."""
        try:
            return postprocess(outputs[self.post.output_name][index], self.post, trans_info, want_scores)
        except InvalidOutput as exc:
            raise InternalError(str(exc)) from None

    def class_id(self, requested: int | None) -> int:
        """The class whose probability map is wanted (default: class 1 of a two-class model); 400 if none fits
        or the model outputs labels only."""
        if self.post.output_op == "argmax":
            raise InvalidInput("this model outputs labels only (argmax export): no probabilities")
        if requested is None:
            if self.num_classes == 2:
                return 1
            raise InvalidInput("this model has more than two classes: give class_id for a probability map")
        if self.num_classes is not None and not 0 <= requested < self.num_classes:
            raise InvalidInput(f"class_id must be in [0, {self.num_classes - 1}], got {requested}")
        return requested

    def prepare(self, job: Job) -> tuple[dict[str, np.ndarray], Finish]:
        options = ImageOptions.parse(job.params)
        if options.wants_scores:
            class_id = self.class_id(options.class_id)
        image, tensor, trans_info = self.load(job.body)

        def finish(outputs: dict[str, np.ndarray], timings: dict[str, float]) -> tuple[bytes, str]:
            result = self.segment(outputs, trans_info, options.wants_scores)
            if options.output == "label":
                return codec.label_png(result.label_map), "image/png"
            if options.output in ("probability", "alpha"):
                assert result.scores is not None
                return codec.probability_png(result.scores[class_id]), "image/png"
            if options.output == "overlay":
                blended = codec.overlay(image, result.label_map, options.alpha)
                if options.format == "jpeg":
                    return codec.encode_jpeg(blended, options.quality), "image/jpeg"
                return codec.encode_png(blended), "image/png"
            summary = self._summary(image, result, timings, class_id if options.probability else None)
            if options.output == "proto":
                return SegmentResponse(**summary).SerializeToString(), PROTO_TYPE
            return self._json(summary), "application/json"

        return {self.input_name: tensor[None]}, finish

    def _summary(self, image: np.ndarray, result: SegmentationResult, timings: dict[str, float],
                 class_id: int | None) -> dict[str, Any]:  # fmt: skip
        """The fields of a JSON or SegmentResponse answer (PNGs as bytes)."""
        t0 = time.perf_counter()
        summary: dict[str, Any] = {
            "model": self.spec.name,
            "width": int(image.shape[1]),
            "height": int(image.shape[0]),
            "num_classes": self.num_classes or 0,
            "class_names": self.post.class_names or [],
            "classes_present": result.classes_present(),
            "label_png": codec.label_png(result.label_map),
        }
        if class_id is not None:
            assert result.scores is not None
            summary["probability_class"] = class_id
            summary["probability_png"] = codec.probability_png(result.scores[class_id])
        spent = dict(timings, postprocess=time.perf_counter() - t0)
        summary["timings_ms"] = {k: round(v * 1000, 3) for k, v in spent.items()}
        return summary

    @staticmethod
    def _json(summary: dict[str, Any]) -> bytes:
        doc = dict(summary)
        doc["label_map"] = base64.b64encode(doc.pop("label_png")).decode("ascii")
        if "probability_png" in doc:
            doc["probability"] = base64.b64encode(doc.pop("probability_png")).decode("ascii")
        doc["num_classes"] = doc["num_classes"] or None
        doc["class_names"] = doc["class_names"] or None
        return orjson.dumps(doc)
