"""Tone corrections: a colour cast is undone whatever its colour, exposure is set from the face's highlights, the
new background is untouched, and both are off by default."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from idphoto.framing import frame_face
from idphoto.matting import refine_alpha
from idphoto.pipeline import IdPhotoOptions, make_id_photo
from idphoto.presets import BACKGROUNDS, SIZE_PRESETS
from idphoto.tone import (
    EXPOSURE_RANGE,
    HIGHLIGHT_MARGIN,
    HIGHLIGHT_PERCENTILE,
    MAX_GAIN,
    TARGET_HIGHLIGHT,
    correct,
    skin_region,
    white_balance_gains,
)

CASTS = ((1.25, 1.0, 0.8), (0.8, 1.0, 1.2), (1.0, 0.85, 1.0))  # B, G, R multipliers: blue, warm, magenta


@pytest.fixture(scope="module")
def framed(astronaut: np.ndarray, astronaut_probability: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple]:
    framing = frame_face(astronaut, astronaut_probability, SIZE_PRESETS["1inch"])
    image = framing.apply(astronaut)
    return image, refine_alpha(image, framing.apply(astronaut_probability)), framing.face_in_output()


def cast(image: np.ndarray, gains: tuple[float, float, float]) -> np.ndarray:
    return np.clip(image.astype(np.float32) * np.float32(gains), 0, 255).astype(np.uint8)


def chromaticity(image: np.ndarray) -> np.ndarray:
    """Each pixel's colour without its brightness: (B, G, R) / (B + G + R)."""
    pixels = image.reshape(-1, 3).astype(np.float64)
    return pixels / np.maximum(pixels.sum(axis=1, keepdims=True), 1)


def test_white_balance_gives_the_same_colours_whatever_the_cast(framed: tuple) -> None:
    image, alpha, face = framed
    reference, _ = correct(image, image, alpha, face, white_balance=True, brightness=False)
    for gains in CASTS:
        tinted = cast(image, gains)
        balanced, tone = correct(tinted, tinted, alpha, face, white_balance=True, brightness=False)
        assert tone.exposure == 1.0 and tone.gains != (1.0, 1.0, 1.0)
        before = np.abs(chromaticity(tinted) - chromaticity(reference)).mean()
        after = np.abs(chromaticity(balanced) - chromaticity(reference)).mean()
        assert after < before / 4, (gains, before, after)  # colour constancy (up to brightness)


def test_white_balance_gains_are_neutral_for_grey_and_capped_for_a_red_scene() -> None:
    grey = np.full((50, 50, 3), 128, np.uint8)
    assert white_balance_gains(grey) == pytest.approx((1.0, 1.0, 1.0))
    red = np.zeros((50, 50, 3), np.uint8)
    red[..., 2], red[..., :2] = 200, 20
    gains = np.array(white_balance_gains(red))
    assert gains.max() / gains.min() <= MAX_GAIN**2 + 1e-6 and gains[2] < 1 < gains[0]


def highlight(image: np.ndarray, alpha: np.ndarray, face: tuple) -> float:
    luma = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)[skin_region(alpha.shape, face, alpha)]
    return float(np.percentile(luma, HIGHLIGHT_PERCENTILE)) / 255


def test_brightness_sets_the_face_highlights_and_leaves_a_good_exposure_alone(framed: tuple) -> None:
    image, alpha, face = framed
    assert abs(highlight(image, alpha, face) - TARGET_HIGHLIGHT) <= HIGHLIGHT_MARGIN  # the portrait is well exposed
    same, tone = correct(image, image, alpha, face, white_balance=False, brightness=True)
    assert tone.exposure == 1.0 and same is image
    for factor in (0.6, 0.8):
        dark = cast(image, (factor,) * 3)
        lit, tone = correct(dark, dark, alpha, face, white_balance=False, brightness=True)
        assert EXPOSURE_RANGE[0] <= tone.exposure <= EXPOSURE_RANGE[1] and tone.exposure > 1.1
        assert abs(highlight(lit, alpha, face) - TARGET_HIGHLIGHT) <= 0.02


def test_the_pipeline_applies_tone_only_when_asked_and_keeps_the_background(
    astronaut: np.ndarray, astronaut_probability: np.ndarray
) -> None:
    tinted = cast(astronaut, CASTS[0])
    off = make_id_photo(tinted, astronaut_probability, IdPhotoOptions.parse({"background": "blue"}))
    switches = {"background": "blue", "white_balance": "true", "brightness": "yes"}
    on = make_id_photo(tinted, astronaut_probability, IdPhotoOptions.parse(switches))
    assert off.tone.gains == (1.0, 1.0, 1.0) and off.tone.exposure == 1.0
    assert on.tone.gains[0] < 1  # the blue cast turned down
    blue = np.array(BACKGROUNDS["blue"].bgr)
    for result in (off, on):
        assert np.array_equal(result.image[2, 2], blue) and np.array_equal(result.image[2, -3], blue)
    assert not np.array_equal(off.image, on.image)
    with pytest.raises(Exception, match="white_balance must be true or false"):
        IdPhotoOptions.parse({"white_balance": "maybe"})
