"""PaddleSeg's deploy-time transforms, applied to one decoded image.

Each transform is a pydantic model (so a deploy.yaml entry validates with a clear message) and a callable
on `Sample`. Geometric transforms record what they undid in `Sample.trans_info`, so the result can be
brought back to the original size (PaddleSeg's reverse transform). As in PaddleSeg, images are float32 HWC
from the start (resizing a uint8 image would round every pixel), and sizes are computed with PaddleSeg's
formulas; `docs/paddleseg-fidelity.md` lists where and why any behaviour differs.
"""

from __future__ import annotations

import functools
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
        interp = INTERPOLATIONS[self.interp]
        xy, fraction = corner_maps(h, w, tw, th, interp == cv2.INTER_NEAREST)
        sample.image = cv2.remap(sample.image, xy, fraction, interp, borderMode=cv2.BORDER_CONSTANT)  # type: ignore[arg-type]  # stubs lack map2=None
        return sample


@functools.lru_cache(maxsize=4)
def corner_maps(height: int, width: int, out_w: int, out_h: int, nearest: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Fixed-point cv2.remap maps that give exactly what cv2.warpAffine gives for the scaling x' = x * out_w / width,
    y' = y * out_h / height with a constant border (MediaPipe's sampling), for every interpolation. warpAffine
    inverts the matrix in double, rounds each source coordinate to 1/1024 pixel, then to 1/32 (OpenCV's
    INTER_BITS; to whole pixels for nearest), and remaps with such maps block by block; made once per size pair,
    the maps save that work (0.36 -> 0.19 ms for 640x480 -> 256x256 here). (xy: int16 H x W x 2 whole pixels,
    fraction: uint16 (y % 32) * 32 + x % 32, None for nearest.)"""
    sx, sy = out_w / width, out_h / height
    det = sx * sy
    inverse = 1.0 / det if det != 0 else 0.0
    half = 512 if nearest else 16  # warpAffine's round_delta: half a pixel, or half of 1/32 pixel
    xs = np.rint(sy * inverse * np.arange(out_w, dtype=np.float64) * 1024).astype(np.int64) + half
    ys = np.rint(sx * inverse * np.arange(out_h, dtype=np.float64) * 1024).astype(np.int64) + half
    xs, ys = (xs >> 10, ys >> 10) if nearest else (xs >> 5, ys >> 5)
    fraction = None if nearest else ((ys & 31)[:, None] * 32 + (xs & 31)[None, :]).astype(np.uint16)
    if not nearest:
        xs, ys = xs >> 5, ys >> 5
    xy = np.empty((out_h, out_w, 2), np.int16)
    xy[:, :, 0] = np.clip(xs, -32768, 32767)[None, :]
    xy[:, :, 1] = np.clip(ys, -32768, 32767)[:, None]
    for array in (xy, fraction):
        if array is not None:
            array.flags.writeable = False
    return xy, fraction


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

    def factors(self, channels: int) -> tuple[np.ndarray, np.ndarray]:
        """float32 (scale, offset) per channel: x * scale - offset is (x / 255 - mean) / std."""
        mean = np.broadcast_to(np.asarray(self.mean, np.float32), (channels,))
        std = np.broadcast_to(np.asarray(self.std, np.float32), (channels,))
        return (1.0 / (255.0 * std)).astype(np.float32), (mean / std).astype(np.float32)

    def __call__(self, sample: Sample) -> Sample:
        image = sample.image
        planar = self.to_chw(image)
        sample.image = planar[0] if image.ndim == 2 else np.ascontiguousarray(planar.transpose(1, 2, 0))
        return sample

    def to_chw(self, image: np.ndarray) -> np.ndarray:
        """C x H x W float32 of an H x W (x C) image, normalised: float32(x) * scale - offset per channel, each
        channel in one pass (an 8-bit one through a 256-entry table of those same float32 values)."""
        hwc = image if image.ndim == 3 else image[:, :, None]
        channels = hwc.shape[2]
        scale, offset = self.factors(channels)
        out = np.empty((channels, *hwc.shape[:2]), np.float32)
        if hwc.dtype == np.uint8:
            table = np.arange(256, dtype=np.float32)[:, None] * scale - offset
            for c, plane in enumerate(cv2.split(hwc) if channels > 1 else [hwc[:, :, 0]]):
                cv2.LUT(np.ascontiguousarray(plane), np.ascontiguousarray(table[:, c]), dst=out[c])
            return out
        pixels = hwc.astype(np.float32, copy=False)
        for c in range(channels):
            np.multiply(pixels[:, :, c], scale[c], out=out[c])
            np.subtract(out[c], offset[c], out=out[c])
        return out


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
