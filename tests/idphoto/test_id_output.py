"""JPEG/PNG encoding: 300 DPI metadata and file-size limits."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from idphoto.errors import IdPhotoError
from idphoto.output import encode_image


@pytest.fixture(scope="module")
def noisy() -> np.ndarray:
    """Hard to compress: 413 x 295 of random colour."""
    return np.random.default_rng(0).integers(0, 256, (413, 295, 3), dtype=np.uint8)


def smooth() -> np.ndarray:
    ramp = np.linspace(0, 255, 295, dtype=np.float32)
    return np.dstack([np.tile(ramp, (413, 1))] * 3).astype(np.uint8)


@pytest.mark.parametrize("fmt", ["jpeg", "png"])
def test_300_dpi_in_the_file(fmt: str) -> None:
    picture = Image.open(io.BytesIO(encode_image(smooth(), fmt)))
    assert picture.format == fmt.upper()
    assert picture.size == (295, 413)
    assert picture.info["dpi"] == pytest.approx((300, 300), abs=0.01)  # PNG stores pixels per metre


def test_colours_are_rgb_in_the_file() -> None:
    image = np.zeros((8, 8, 3), np.uint8)
    image[..., 0] = 255  # blue in BGR
    assert Image.open(io.BytesIO(encode_image(image, "png"))).getpixel((0, 0)) == (0, 0, 255)


def test_png_keeps_transparency() -> None:
    image = np.zeros((8, 8, 4), np.uint8)
    image[..., 3] = 128
    picture = Image.open(io.BytesIO(encode_image(image, "png")))
    assert picture.mode == "RGBA" and picture.getpixel((0, 0))[3] == 128


def test_max_kb_lowers_jpeg_quality_to_fit(noisy: np.ndarray) -> None:
    full = encode_image(noisy, "jpeg")
    assert len(full) > 60 * 1024
    data = encode_image(noisy, "jpeg", max_kb=60)
    assert len(data) <= 60 * 1024
    assert len(data) > 40 * 1024  # the best quality that fits, not the lowest
    assert Image.open(io.BytesIO(data)).info["dpi"] == (300, 300)
    assert encode_image(noisy, "jpeg", max_kb=10_000) == full  # room to spare: no re-encoding


def test_impossible_max_kb(noisy: np.ndarray) -> None:
    with pytest.raises(IdPhotoError, match="even JPEG quality 10") as caught:
        encode_image(noisy, "jpeg", max_kb=5)
    assert caught.value.status == 422


def test_png_over_max_kb_suggests_jpeg(noisy: np.ndarray) -> None:
    with pytest.raises(IdPhotoError, match="format=jpeg") as caught:
        encode_image(noisy, "png", max_kb=50)
    assert caught.value.status == 422
    assert encode_image(smooth(), "png", max_kb=50)  # a small PNG passes


def test_min_kb_raises_jpeg_quality_to_reach_it(noisy: np.ndarray) -> None:
    default = encode_image(noisy, "jpeg")
    floor = len(default) // 1024 + 10  # above what quality 95 gives
    data = encode_image(noisy, "jpeg", min_kb=floor)
    assert len(data) >= floor * 1024 and len(data) > len(default)
    assert encode_image(noisy, "jpeg", min_kb=1) == default  # already there: no re-encoding
    flat = np.full((64, 64, 3), 128, np.uint8)
    with pytest.raises(IdPhotoError, match=r"only \d+ KB at its best quality, under min_kb=500") as caught:
        encode_image(flat, "jpeg", min_kb=500)
    assert caught.value.status == 422
