"""Pictures for the client SDK tests (a real photo of a person, scaled and encoded), shared by the test modules."""

from __future__ import annotations

import io
import struct
import zlib
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data

PERSON_PX = 0.05  # a portrait of the astronaut: at least this fraction of each class in the label map


@cache
def _astronaut() -> np.ndarray:
    return data.astronaut()  # 512 x 512 RGB, a person in front of a backdrop


def photo_rgb(width: int = 301, height: int = 199) -> np.ndarray:
    """The astronaut photo as H x W x 3 RGB uint8 at any size (non-square by default)."""
    return np.asarray(Image.fromarray(_astronaut()).resize((width, height), Image.Resampling.BILINEAR))


def photo_bgr(width: int = 301, height: int = 199) -> np.ndarray:
    """The same picture in OpenCV's BGR order."""
    return np.ascontiguousarray(photo_rgb(width, height)[:, :, ::-1])


def encoded(rgb: np.ndarray, fmt: str, quality: int = 92) -> bytes:
    """The RGB array encoded as JPEG or PNG."""
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format=fmt, **({"quality": quality} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def write_photos(folder: Path, sizes: dict[str, tuple[int, int]]) -> None:
    """The photo at each name's (width, height), encoded as its suffix says (.jpg, .png, .webp), subfolders made."""
    formats = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP"}
    for name, size in sizes.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(encoded(photo_rgb(*size), formats[path.suffix.lower()]))


def truncated_jpeg(width: int = 120, height: int = 90) -> bytes:
    """A JPEG whose headers are intact (the client can read its size) but whose scan data is cut off and replaced by
    garbage: only the server, which decodes the pixels, can tell that it is broken."""
    jpeg = encoded(photo_rgb(width, height), "JPEG")
    scan = jpeg.find(b"\xff\xda")
    assert scan > 0
    return jpeg[: scan + 200] + b"\x00\x13\x37" * 400


def huge_png_header(width: int = 20_000, height: int = 10_000) -> bytes:
    """A tiny PNG that declares width x height pixels (its data is far too short): more pixels than Pillow opens
    without a DecompressionBombError, and more than the server's default --max_image_pixels."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )
