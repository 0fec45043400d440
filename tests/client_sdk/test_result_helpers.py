"""SegResult's helpers on label maps built by hand (no server): colours, alpha, saving, size checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from client_sdk import SegResult

# PaddleSeg's visualisation colours (RGB) for classes 0..3: the VOC colour map without its leading black
PADDLESEG_RGB = np.array([[128, 0, 0], [0, 128, 0], [128, 128, 0], [0, 0, 128]], dtype=np.uint8)


def _labels(height: int = 6, width: int = 8) -> np.ndarray:
    labels = np.zeros((height, width), dtype=np.uint8)
    labels[:, 2:4], labels[:, 4:6], labels[:, 6:] = 1, 2, 3
    return labels


def _image(height: int = 6, width: int = 8) -> np.ndarray:
    rng = np.random.default_rng(5)
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_size_and_masks() -> None:
    result = SegResult(_labels())
    assert result.size == (8, 6)
    np.testing.assert_array_equal(result.mask(), _labels() == 1)
    np.testing.assert_array_equal(result.mask(3), _labels() == 3)
    assert result.mask().dtype == bool


def test_overlay_uses_paddleseg_colours_in_the_order_asked_for() -> None:
    result, rgb = SegResult(_labels()), _image()
    painted = result.overlay(rgb, alpha=1.0, rgb=True)
    np.testing.assert_array_equal(painted, PADDLESEG_RGB[_labels()])
    np.testing.assert_array_equal(result.overlay(rgb[:, :, ::-1], alpha=1.0), PADDLESEG_RGB[_labels()][:, :, ::-1])
    half = result.overlay(rgb, alpha=0.5, rgb=True)
    want = np.rint(0.5 * rgb.astype(np.float64) + 0.5 * PADDLESEG_RGB[_labels()])
    np.testing.assert_array_equal(half, want.astype(np.uint8))
    # BGR in -> BGR out is the same picture as RGB in -> RGB out
    np.testing.assert_array_equal(result.overlay(np.ascontiguousarray(rgb[:, :, ::-1])), half[:, :, ::-1])
    np.testing.assert_array_equal(result.overlay(Image.fromarray(rgb), rgb=True), half)


def test_overlay_of_a_grayscale_image() -> None:
    gray = _image()[:, :, 0]
    out = SegResult(_labels()).overlay(gray, alpha=0.0)
    assert out.shape == (6, 8, 3)
    for channel in range(3):
        np.testing.assert_array_equal(out[:, :, channel], gray)


def test_alpha_and_cutout_with_and_without_probability() -> None:
    labels = (_labels() == 1).astype(np.uint8)
    prob = np.linspace(0, 1, labels.size, dtype=np.float32).reshape(labels.shape)
    hard, soft = SegResult(labels), SegResult(labels, probability=prob, probability_class=1)
    np.testing.assert_array_equal(hard.alpha(), labels.astype(np.float32))
    np.testing.assert_array_equal(soft.alpha(), prob)
    bgr = _image()
    cut = soft.cutout(bgr)
    assert cut.shape == (6, 8, 4) and cut.dtype == np.uint8
    np.testing.assert_array_equal(cut[:, :, :3], bgr)
    np.testing.assert_array_equal(cut[:, :, 3], np.rint(prob * 255).astype(np.uint8))
    np.testing.assert_array_equal(hard.cutout(bgr)[:, :, 3], labels * 255)
    np.testing.assert_array_equal(soft.cutout(Image.fromarray(bgr[:, :, ::-1]))[:, :, :3], bgr)  # decoded -> BGR
    np.testing.assert_array_equal(soft.cutout(Image.fromarray(bgr[:, :, ::-1]), rgb=True)[:, :, :3], bgr[:, :, ::-1])


def test_save_round_trip_8_and_16_bit(tmp_path: Path) -> None:
    small = SegResult(_labels())
    with Image.open(small.save(tmp_path / "small.png")) as png:
        assert png.mode == "L"
        np.testing.assert_array_equal(np.array(png), _labels())
    many = np.arange(48, dtype=np.int64).reshape(6, 8) * 40  # ids up to 1880: needs 16 bits
    with Image.open(SegResult(many).save(str(tmp_path / "many.png"))) as png:
        np.testing.assert_array_equal(np.array(png), many)


@pytest.mark.parametrize("helper", ["overlay", "cutout"])
def test_helpers_refuse_another_size(helper: str) -> None:
    result = SegResult(_labels())
    with pytest.raises(ValueError, match="8x6"):
        getattr(result, helper)(_image(6, 9))
    with pytest.raises(ValueError, match="8x6"):
        getattr(result, helper)(Image.fromarray(_image(7, 8)))
