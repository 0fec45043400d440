"""PaddleSeg's deploy-time transforms, applied to one decoded image.

Each transform is a pydantic model (so a deploy.yaml entry validates with a clear message) and a callable
on `Sample`. Geometric transforms record what they undid in `Sample.trans_info`, so the result can be
brought back to the original size (PaddleSeg's reverse transform). As in PaddleSeg, images are float32 HWC
from the start (resizing a uint8 image would round every pixel), and sizes are computed with PaddleSeg's
formulas; `docs/paddleseg-fidelity.md` lists where and why any behaviour differs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Annotated, Literal

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator

INTERPOLATIONS: dict[str, int] = {
    "NEAREST": cv2.INTER_NEAREST,
    "LINEAR": cv2.INTER_LINEAR,
    "CUBIC": cv2.INTER_CUBIC,
    "AREA": cv2.INTER_AREA,
    "LANCZOS4": cv2.INTER_LANCZOS4,
}


class InvalidImage(ValueError):
    """The image cannot go through the model's transforms (e.g. larger than a fixed padding)."""


@dataclass
class Sample:
    """An image on its way to the network, with the (op, (h, w)) steps needed to reverse it."""

    image: np.ndarray
    trans_info: list[tuple[str, tuple[int, int]]] = field(default_factory=list)


class _Transform(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _size_pair(value: object, what: str) -> tuple[int, int]:
    if isinstance(value, int) and value > 0:
        return (value, value)
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, int) and v > 0 for v in value):
        return (int(value[0]), int(value[1]))
    raise ValueError(f"{what} must be a positive int or a [width, height] pair, got {value!r}")


def _resize(sample: Sample, width: int, height: int, interp: int) -> Sample:
    h, w = sample.image.shape[:2]
    sample.trans_info.append(("resize", (h, w)))
    if (w, h) != (width, height):
        sample.image = cv2.resize(sample.image, (width, height), interpolation=interp)
    return sample


class Resize(_Transform):
    """Resize to target_size [w, h]; keep_ratio fits inside it; size_divisor rounds each side up."""

    type: Literal["Resize"] = "Resize"
    target_size: tuple[int, int] = (512, 512)
    keep_ratio: bool = False
    size_divisor: int | None = None
    interp: str = "LINEAR"
    # Our extension: "corner" samples like MediaPipe's warpAffine scaling (no half-pixel offset).
    pixel_center: Literal["half", "corner"] = "half"

    @field_validator("target_size", mode="before")
    @classmethod
    def _pair(cls, v: object) -> tuple[int, int]:
        return _size_pair(v, "Resize.target_size")

    _interp = field_validator("interp")(classmethod(lambda cls, v: _check_interp(v)))

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """(width, height) this transform produces for an input of the given size."""
        tw, th = self.target_size
        if self.keep_ratio:
            scale = min(max(tw, th) / max(width, height), min(tw, th) / min(width, height))
            tw, th = round(width * scale), round(height * scale)
        if self.size_divisor:
            d = self.size_divisor
            tw, th = math.ceil(tw / d) * d, math.ceil(th / d) * d
        return max(tw, 1), max(th, 1)

    def __call__(self, sample: Sample) -> Sample:
        h, w = sample.image.shape[:2]
        tw, th = self.output_size(h, w)
        if self.pixel_center == "half":
            return _resize(sample, tw, th, INTERPOLATIONS[self.interp])
        sample.trans_info.append(("resize", (h, w)))
        matrix = np.array([[tw / w, 0, 0], [0, th / h, 0]], dtype=np.float64)
        sample.image = cv2.warpAffine(
            sample.image, matrix, (tw, th), flags=INTERPOLATIONS[self.interp], borderMode=cv2.BORDER_CONSTANT
        )
        return sample


def _scaled(length: int, scale: float) -> int:
    return max(round(length * scale), 1)


def _check_interp(value: str) -> str:
    if value not in INTERPOLATIONS:
        raise ValueError(f"interp must be one of {sorted(INTERPOLATIONS)} (RANDOM is training-only), got {value!r}")
    return value


class ResizeByShort(_Transform):
    """Scale so the short side is short_size; when the long side would pass max_size, short_size is lowered
    to int(max_size / long * short) first (PaddleSeg's rule, but per image: PaddleSeg keeps it lowered)."""

    type: Literal["ResizeByShort"] = "ResizeByShort"
    short_size: int = Field(gt=0)
    max_size: float = 1e10
    interp: str = "LINEAR"

    _interp = field_validator("interp")(classmethod(lambda cls, v: _check_interp(v)))

    def __call__(self, sample: Sample) -> Sample:
        h, w = sample.image.shape[:2]
        short = self.short_size
        if self.max_size > 0 and short / min(h, w) * max(h, w) > self.max_size:
            short = max(int(self.max_size / max(h, w) * min(h, w)), 1)
        scale = short / min(h, w)
        return _resize(sample, _scaled(w, scale), _scaled(h, scale), INTERPOLATIONS[self.interp])


class ResizeByLong(_Transform):
    """Scale so the long side is long_size."""

    type: Literal["ResizeByLong"] = "ResizeByLong"
    long_size: int = Field(gt=0)

    def __call__(self, sample: Sample) -> Sample:
        h, w = sample.image.shape[:2]
        scale = self.long_size / max(h, w)
        return _resize(sample, _scaled(w, scale), _scaled(h, scale), cv2.INTER_LINEAR)


class LimitLong(_Transform):
    """Scale down to max_long / up to min_long when the long side is outside those limits."""

    type: Literal["LimitLong"] = "LimitLong"
    max_long: int | None = None
    min_long: int | None = None

    def __call__(self, sample: Sample) -> Sample:
        h, w = sample.image.shape[:2]
        long_side = max(h, w)
        target = long_side
        if self.max_long is not None and long_side > self.max_long:
            target = self.max_long
        elif self.min_long is not None and long_side < self.min_long:
            target = self.min_long
        if target == long_side:
            return sample
        scale = target / long_side
        return _resize(sample, _scaled(w, scale), _scaled(h, scale), cv2.INTER_LINEAR)


class Padding(_Transform):
    """Pad bottom and right to target_size [w, h] with im_padding_value."""

    type: Literal["Padding"] = "Padding"
    target_size: tuple[int, int] = (512, 512)
    im_padding_value: float | tuple[float, float, float] = 127.5
    label_padding_value: int = 255

    @field_validator("target_size", mode="before")
    @classmethod
    def _pair(cls, v: object) -> tuple[int, int]:
        return _size_pair(v, "Padding.target_size")

    def __call__(self, sample: Sample) -> Sample:
        h, w = sample.image.shape[:2]
        tw, th = self.target_size
        if h > th or w > tw:
            raise InvalidImage(f"image of {w}x{h} is larger than the model's Padding target {tw}x{th}")
        sample.trans_info.append(("padding", (h, w)))
        if (h, w) == (th, tw):
            return sample
        value = self.im_padding_value
        values = [float(value)] * 3 if isinstance(value, (int, float)) else [float(v) for v in value]
        image = sample.image
        if image.dtype == np.uint8 and any(v != int(v) for v in values):  # pixel_dtype uint8 and 127.5
            image = image.astype(np.float32)
        sample.image = cv2.copyMakeBorder(image, 0, th - h, 0, tw - w, cv2.BORDER_CONSTANT, value=values)
        return sample


class PaddingByAspectRatio(_Transform):
    """Pad bottom or right to the given width / height ratio (PaddleSeg: int() of the new side)."""

    type: Literal["PaddingByAspectRatio"] = "PaddingByAspectRatio"
    aspect_ratio: float = Field(default=1.0, gt=0)
    im_padding_value: float | tuple[float, float, float] = 127.5
    label_padding_value: int = 255

    def __call__(self, sample: Sample) -> Sample:
        h, w = sample.image.shape[:2]
        ratio = w / h
        if ratio == self.aspect_ratio:
            return sample
        if ratio > self.aspect_ratio:
            h = int(w / self.aspect_ratio)
        else:
            w = int(h * self.aspect_ratio)
        return Padding(target_size=(w, h), im_padding_value=self.im_padding_value)(sample)


class Normalize(_Transform):
    """(x / 255 - mean) / std per channel; converts to float32."""

    type: Literal["Normalize"] = "Normalize"
    mean: tuple[float, ...] = (0.5,)
    std: tuple[float, ...] = (0.5,)

    @field_validator("std")
    @classmethod
    def _nonzero(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if any(s == 0 for s in v):
            raise ValueError("Normalize.std must not contain 0")
        return v

    def __call__(self, sample: Sample) -> Sample:
        channels = sample.image.shape[2] if sample.image.ndim == 3 else 1
        mean = np.broadcast_to(np.asarray(self.mean, np.float32), (channels,))
        std = np.broadcast_to(np.asarray(self.std, np.float32), (channels,))
        scale = (1.0 / (255.0 * std)).astype(np.float32)
        offset = (mean / std).astype(np.float32)
        sample.image = sample.image.astype(np.float32, copy=False) * scale - offset
        return sample


Transform = Annotated[
    Resize | ResizeByShort | ResizeByLong | LimitLong | Padding | PaddingByAspectRatio | Normalize,
    Field(discriminator="type"),
]
TRANSFORM_TYPES = (
    "Resize", "ResizeByShort", "ResizeByLong", "LimitLong", "Padding", "PaddingByAspectRatio", "Normalize"
)  # fmt: skip
# PaddleSeg 2.8's other registered transforms, and why a deploy.yaml cannot use them.
_TRAINING_ONLY = (
    "RandomHorizontalFlip", "RandomVerticalFlip", "ResizeRangeScaling", "ResizeStepScaling", "RandomPaddingCrop",
    "RandomCenterCrop", "RandomNoise", "RandomBlur", "RandomRotation", "RandomScaleAspect", "RandomDistort",
    "RandomAffine", "GenerateInstanceTargets",
)  # fmt: skip
REFUSED = {name: "a random training-time augmentation; remove it from Deploy.transforms" for name in _TRAINING_ONLY}
REFUSED["ScalePadding"] = (
    "it pads to a centred square without recording it, so no mask can be mapped back to the image (PaddleSeg's "
    "own reverse transform cannot either); use Padding or PaddingByAspectRatio"
)
_ADAPTER: TypeAdapter[Transform] = TypeAdapter(Transform)


def parse_transform(spec: dict[str, object]) -> Transform:
    """Validate one deploy.yaml transform entry; ValueError naming the problem if it is not usable."""
    if not isinstance(spec, dict) or "type" not in spec:
        raise ValueError(f"transform entry must be a mapping with a 'type', got {spec!r}")
    if spec["type"] in REFUSED:
        raise ValueError(f"transform {spec['type']} is not supported: {REFUSED[spec['type']]}")
    if spec["type"] not in TRANSFORM_TYPES:
        raise ValueError(f"unknown transform type {spec['type']!r}; supported: {', '.join(TRANSFORM_TYPES)}")
    return _ADAPTER.validate_python(spec)
