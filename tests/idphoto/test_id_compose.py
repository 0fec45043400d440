"""Compositing math on tiny arrays."""

from __future__ import annotations

import numpy as np

from idphoto.compose import composite
from idphoto.presets import parse_background


def test_alpha_zero_one_and_half_round_half_up() -> None:
    image = np.array([[[10, 20, 30], [255, 255, 255], [1, 3, 254]]], np.uint8)
    alpha = np.array([[0.0, 1.0, 0.5]], np.float32)
    out = composite(image, alpha, parse_background("0,0,0"))
    assert out.dtype == np.uint8 and out.shape == (1, 3, 3)
    assert out[0, 0].tolist() == [0, 0, 0]  # background
    assert out[0, 1].tolist() == [255, 255, 255]  # image
    assert out[0, 2].tolist() == [1, 2, 127]  # 0.5, 1.5, 127 -> half rounds up


def test_background_colour_is_bgr_and_blends() -> None:
    image = np.zeros((1, 2, 3), np.uint8)
    out = composite(image, np.array([[0.0, 0.25]]), parse_background("blue"))  # #438EDB
    assert out[0, 0].tolist() == [0xDB, 0x8E, 0x43]
    assert out[0, 1].tolist() == [164, 107, 50]  # 0.75 * (219, 142, 67) = 164.25, 106.5, 50.25


def test_transparent_gives_bgra() -> None:
    image = np.full((2, 2, 3), 99, np.uint8)
    alpha = np.array([[0.0, 1.0], [0.5, 0.2]], np.float32)
    out = composite(image, alpha, parse_background("transparent"))
    assert out.shape == (2, 2, 4) and out.dtype == np.uint8
    assert np.all(out[..., :3] == 99)
    assert out[..., 3].tolist() == [[0, 255], [128, 51]]
