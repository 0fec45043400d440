"""Encode photos as JPEG or PNG with their DPI in the metadata, optionally under a file-size limit."""

from __future__ import annotations

import io
import math

import cv2
import numpy as np
from PIL import Image

from idphoto.errors import IdPhotoError
from idphoto.sizes import DPI

CONTENT_TYPES = {"jpeg": "image/jpeg", "png": "image/png"}
JPEG_QUALITY = 95  # without a size limit
MIN_JPEG_QUALITY = 10  # the lowest quality tried to meet a size limit
KB = 1024


def _pil(image: np.ndarray) -> Image.Image:
    if image.ndim == 3 and image.shape[2] == 4:
        return Image.fromarray(cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA))
    return Image.fromarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))


def _save(picture: Image.Image, fmt: str, quality: int = JPEG_QUALITY, dpi: int = DPI) -> bytes:
    buffer = io.BytesIO()
    if fmt == "jpeg":
        picture.save(buffer, "JPEG", quality=quality, optimize=True, dpi=(dpi, dpi))
    else:
        picture.save(buffer, "PNG", dpi=(dpi, dpi))  # dpi -> the pHYs chunk
    return buffer.getvalue()


def encode_image(image: np.ndarray, fmt: str, max_kb: int | None = None, dpi: int = DPI,
                 min_kb: int | None = None) -> bytes:  # fmt: skip
    """`image` (BGR, or BGRA for PNG) as `fmt` ('jpeg' | 'png') marked `dpi`, between `min_kb` and `max_kb` KiB
    when given (upload portals set both).

    JPEG meets a maximum with the highest quality that fits (binary search, quality >= 10) and a minimum with the
    lowest quality from 95 up to 100 that reaches it; a PNG outside the limits, or a JPEG that cannot meet them,
    raises IdPhotoError(422).
    """
    if fmt not in CONTENT_TYPES:
        raise ValueError(f"format must be one of {', '.join(CONTENT_TYPES)}, got {fmt!r}")
    picture = _pil(image)
    data = _save(picture, fmt, dpi=dpi)
    if min_kb is not None and len(data) < min_kb * KB:
        return _at_least(picture, fmt, dpi, data, min_kb)
    if max_kb is None or len(data) <= max_kb * KB:
        return data
    if fmt == "png":
        raise IdPhotoError(
            422,
            f"the PNG is {math.ceil(len(data) / KB)} KB, over max_kb={max_kb}; PNG is lossless and cannot be made"
            " smaller: use format=jpeg to meet a size limit",
        )
    low, high = MIN_JPEG_QUALITY, JPEG_QUALITY - 1
    best = _save(picture, fmt, low, dpi)
    if len(best) > max_kb * KB:
        raise IdPhotoError(
            422,
            f"cannot fit the photo in max_kb={max_kb}: even JPEG quality {MIN_JPEG_QUALITY} needs"
            f" {math.ceil(len(best) / KB)} KB",
        )
    while low < high:  # invariant: quality `low` fits
        mid = (low + high + 1) // 2
        candidate = _save(picture, fmt, mid, dpi)
        if len(candidate) <= max_kb * KB:
            low, best = mid, candidate
        else:
            high = mid - 1
    return best


def _at_least(picture: Image.Image, fmt: str, dpi: int, data: bytes, min_kb: int) -> bytes:
    """The JPEG at the lowest quality above the default that reaches `min_kb`; 422 when none does."""
    if fmt == "jpeg":
        for quality in range(JPEG_QUALITY + 1, 101):
            data = _save(picture, fmt, quality, dpi)
            if len(data) >= min_kb * KB:
                return data
    raise IdPhotoError(422, f"the photo is only {len(data) / KB:.0f} KB at its best quality, under min_kb={min_kb}: "
                       "choose a larger size (more pixels) or a lower min_kb")  # fmt: skip
