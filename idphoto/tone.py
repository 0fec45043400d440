"""Optional tone corrections of the person (off by default): white balance and the face's brightness.

Both change only the person's colours; the new background stays exactly the colour asked for.

- White balance estimates the light's colour from the whole source photo by the shades-of-grey method
  (Finlayson and Trezzi 2004: the Minkowski p-norm mean of each channel; p = 6 sits between grey world and
  white patch) and scales the channels so that it becomes neutral. It assumes the scene averages to grey, as a
  portrait against a plain wall does; the gains are capped so a strongly coloured scene is not over-corrected.
- Brightness corrects exposure, not skin tone: it scales the person's colours so that the highlights of the face
  (the 98th percentile of luminance over its central area: lit skin, teeth, eyes) reach 90 % of full scale, as
  in a well-exposed photo of any skin tone; capped, and only when they are off by more than a small margin.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

MINKOWSKI_P = 6.0
MAX_GAIN = 1.5  # white balance: no channel is scaled by more than this (or less than its inverse)
HIGHLIGHT_PERCENTILE = 98.0
TARGET_HIGHLIGHT = 0.9  # the face's highlights after correction, as a fraction of full scale
HIGHLIGHT_MARGIN = 0.04  # faces whose highlights are within this of the target are left as they are
EXPOSURE_RANGE = (0.7, 2.0)
SKIN_BOX = (0.25, 0.75, 0.3, 0.85)  # x0, x1, y0, y1 of the face box: cheeks, nose and mouth, no hair or eyebrows
NEUTRAL = (1.0, 1.0, 1.0)


@dataclass(frozen=True)
class ToneCorrection:
    """What was applied: white-balance gains (B, G, R) and the exposure gain on all three (1.0: none)."""

    gains: tuple[float, float, float] = NEUTRAL
    exposure: float = 1.0


def white_balance_gains(image_bgr: np.ndarray) -> tuple[float, float, float]:
    """The gains (B, G, R) that make the photo's shades-of-grey estimate of its light neutral, capped."""
    pixels = image_bgr.reshape(-1, 3).astype(np.float32) / 255
    light = np.power(np.mean(np.power(pixels, MINKOWSKI_P), axis=0), 1 / MINKOWSKI_P)
    if np.any(light <= 1e-3):
        return NEUTRAL
    gains = np.clip(light.mean() / light, 1 / MAX_GAIN, MAX_GAIN)
    gains /= np.exp(np.log(gains).mean())  # overall brightness unchanged
    return (float(gains[0]), float(gains[1]), float(gains[2]))


def exposure_gain(colours_bgr: np.ndarray, region: np.ndarray) -> float:
    """The gain that brings the highlights of `region` (a boolean mask of the face's skin) to TARGET_HIGHLIGHT;
    1.0 when they are within HIGHLIGHT_MARGIN of it or the region is empty."""
    if not region.any():
        return 1.0
    luma = cv2.cvtColor(colours_bgr, cv2.COLOR_BGR2GRAY)[region]
    highlight = max(float(np.percentile(luma, HIGHLIGHT_PERCENTILE)) / 255, 1 / 255)
    if abs(highlight - TARGET_HIGHLIGHT) <= HIGHLIGHT_MARGIN:
        return 1.0
    return float(np.clip(TARGET_HIGHLIGHT / highlight, *EXPOSURE_RANGE))


def skin_region(shape: tuple[int, int], face: tuple[float, float, float, float] | None, alpha: np.ndarray
                ) -> np.ndarray:  # fmt: skip
    """The face's central area (face = x, y, w, h in the photo's pixels), or the opaque person without a face."""
    if face is None:
        return alpha >= 0.99
    x, y, w, h = face
    x0, x1, y0, y1 = SKIN_BOX
    region = np.zeros(shape, bool)
    rows = slice(max(0, round(y + y0 * h)), max(0, round(y + y1 * h)))
    columns = slice(max(0, round(x + x0 * w)), max(0, round(x + x1 * w)))
    region[rows, columns] = True
    return region & (alpha >= 0.99)


def correct(colours_bgr: np.ndarray, source_bgr: np.ndarray, alpha: np.ndarray,
            face: tuple[float, float, float, float] | None, white_balance: bool, brightness: bool
            ) -> tuple[np.ndarray, ToneCorrection]:  # fmt: skip
    """The person's colours white-balanced and/or exposed (uint8 BGR), and what was applied."""
    gains = white_balance_gains(source_bgr) if white_balance else NEUTRAL
    out = _scaled(colours_bgr, gains)
    exposure = exposure_gain(out, skin_region(alpha.shape, face, alpha)) if brightness else 1.0
    return _scaled(out, (exposure,) * 3), ToneCorrection(gains, exposure)


def _scaled(colours_bgr: np.ndarray, gains: tuple[float, float, float]) -> np.ndarray:
    if gains == NEUTRAL:
        return colours_bgr
    return np.clip(colours_bgr.astype(np.float32) * np.asarray(gains, np.float32) + 0.5, 0, 255).astype(np.uint8)
