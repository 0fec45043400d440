"""Decontamination: on a soft edge the person's own colour is recovered, without the old background's share."""

from __future__ import annotations

import numpy as np

from idphoto.foreground import estimate_foreground

PERSON = np.array((30, 60, 120), np.float32)  # BGR: brown hair
OLD = np.array((60, 200, 60), np.float32)  # a green wall


def test_soft_pixels_get_the_person_colour_and_the_rest_is_untouched() -> None:
    alpha = np.clip((np.arange(600, dtype=np.float32) - 300) / 8, 0, 1)[None, :].repeat(40, axis=0)  # 8 px ramp
    image = np.floor(alpha[..., None] * PERSON + (1 - alpha[..., None]) * OLD + 0.5).astype(np.uint8)
    colours = estimate_foreground(image, alpha)
    assert colours.dtype == np.uint8 and colours.shape == image.shape
    solid = (alpha == 0) | (alpha == 1)
    assert np.array_equal(colours[solid], image[solid])
    soft = (alpha > 0.1) & (alpha < 1)
    error = np.abs(colours[soft].astype(np.float32) - PERSON).max()
    before = np.abs(image[soft].astype(np.float32) - PERSON).mean()
    assert error <= 4 and before > 30  # the observed colours carried the green; the estimate does not


def test_a_hard_matte_leaves_the_image_as_it_is() -> None:
    image = np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    alpha = np.zeros((30, 40), np.float32)
    alpha[:, 20:] = 1
    assert estimate_foreground(image, alpha) is image
