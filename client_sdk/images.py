"""Image inputs and outputs: anything a user holds -> encoded bytes to send; PNG bytes -> arrays."""

from __future__ import annotations

import io
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

ImageInput = str | PathLike | bytes | bytearray | memoryview | np.ndarray | Image.Image
_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"BM")


def _is_encoded(data: bytes) -> bool:
    return data.startswith(_MAGIC) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")


def to_pil(image: ImageInput, rgb: bool = False) -> Image.Image:
    """A PIL image from a path, encoded bytes, a numpy array (BGR unless rgb=True) or a PIL image."""
    if isinstance(image, Image.Image):
        return image
    if isinstance(image, (str, PathLike)):
        return Image.open(Path(image))
    if isinstance(image, (bytes, bytearray, memoryview)):
        return Image.open(io.BytesIO(bytes(image)))
    if isinstance(image, np.ndarray):
        array = image
        if array.dtype != np.uint8:
            raise TypeError(f"numpy images must be uint8, got {array.dtype}")
        if array.ndim == 3 and array.shape[2] in (3, 4) and not rgb:
            array = array[:, :, [2, 1, 0, 3][: array.shape[2]]]  # BGR(A) -> RGB(A)
        if array.ndim == 3 and array.shape[2] == 1:
            array = array[:, :, 0]
        return Image.fromarray(np.ascontiguousarray(array))
    raise TypeError(f"unsupported image input {type(image).__name__}: give a path, bytes, a numpy array or PIL image")


def encode(image: ImageInput, rgb: bool = False, quality: int = 95) -> tuple[bytes, tuple[int, int]]:
    """Bytes to send and the image's (width, height). Files and encoded bytes are sent as they are;
    arrays and PIL images are encoded losslessly as PNG (JPEG when quality < 100 and the image is large)."""
    if isinstance(image, (str, PathLike)):
        data = Path(image).read_bytes()
        return data, Image.open(io.BytesIO(data)).size
    if isinstance(image, (bytes, bytearray, memoryview)) and _is_encoded(bytes(image[:12])):
        data = bytes(image)
        return data, Image.open(io.BytesIO(data)).size
    pil = to_pil(image, rgb)
    if pil.mode not in ("RGB", "L", "RGBA"):
        pil = pil.convert("RGB")
    buffer = io.BytesIO()
    pil.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue(), pil.size


def to_array(image: ImageInput, rgb: bool = False) -> np.ndarray:
    """The image as H x W x 3 uint8 in BGR (OpenCV order), or RGB with rgb=True. A numpy input is taken to be
    in that order already."""
    if isinstance(image, np.ndarray):
        array = image if image.ndim == 3 else np.repeat(image[:, :, None], 3, axis=2)
        return np.ascontiguousarray(array[:, :, :3])
    array = np.asarray(to_pil(image).convert("RGB"))
    return array if rgb else np.ascontiguousarray(array[:, :, ::-1])


def decode_png(data: bytes) -> np.ndarray:
    """A single-channel PNG (8- or 16-bit) as a 2-D array."""
    with Image.open(io.BytesIO(data)) as png:
        return np.array(png)


def describe(image: Any) -> str:
    """A short label for progress and error messages."""
    if isinstance(image, (str, PathLike)):
        return str(image)
    if isinstance(image, np.ndarray):
        return f"array{list(image.shape)}"
    return type(image).__name__
