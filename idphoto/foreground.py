"""Foreground colours for a matte's soft pixels, so the old background does not bleed into the new one.

A pixel on the outline is alpha * person + (1 - alpha) * old background. Compositing the observed colour on a
new background keeps the old background's share: the halo. This estimates the person's own colour there by
blur fusion (Forte and Pitié, "Approximate fast foreground colour estimation", ICIP 2021): alpha-weighted local
means of the person and of the background, corrected so that the pixel's compositing equation holds, in a wide
pass and then a narrow one.
"""

from __future__ import annotations

import numpy as np

from idphoto.filters import weighted_mean

RADIUS = 0.004  # the narrow pass's window radius, as a fraction of the image's longer side
PASSES = (30.0, 1.0)  # window radii of the two passes, in RADIUS units: wide (colours from afar), then local


def estimate_foreground(image_bgr: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The person's colours (BGR uint8): the image's own where alpha is 0 or 1, estimated where it is between."""
    soft = (alpha > 0) & (alpha < 1)
    if not soft.any():
        return image_bgr
    observed = image_bgr.astype(np.float32) / 255
    a = alpha.astype(np.float32, copy=False)
    unit = max(1.0, RADIUS * max(alpha.shape))
    (wide, narrow) = (max(1, round(unit * passes)) for passes in PASSES)
    fg, bg = _pass(observed, a, wide)  # means on a small copy (weighted_mean), the residual at full size
    fg_mean, _ = weighted_mean(fg, a, narrow, at=soft)  # the last pass only where it is used
    bg_mean, _ = weighted_mean(bg, 1.0 - a, narrow, at=soft)
    a_soft = a[soft][:, None]
    residual = observed[soft] - a_soft * fg_mean - (1.0 - a_soft) * bg_mean
    out = image_bgr.copy()
    out[soft] = np.floor(np.clip(fg_mean + a_soft * residual, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)
    return out


def _pass(observed: np.ndarray, a: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray]:
    """The first blur-fusion step: local alpha-weighted means of the observed colours, then each pixel's
    residual shared by alpha between person and background."""
    fg_mean, _ = weighted_mean(observed, a, radius)
    bg_mean, _ = weighted_mean(observed, 1.0 - a, radius)
    a3 = a[..., None]
    residual = observed - a3 * fg_mean - (1.0 - a3) * bg_mean
    return np.clip(fg_mean + a3 * residual, 0.0, 1.0), np.clip(bg_mean + (1.0 - a3) * residual, 0.0, 1.0)
