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
    wide, narrow = (max(1, round(unit * passes)) for passes in PASSES)
    a_soft, seen = a[soft][:, None], observed[soft]
    # Each pass changes only the soft pixels: where alpha is 1 the person's colour is the observed one (and where
    # it is 0 the background's), and the other side's weight there is 0.
    fg, bg = observed, observed.copy()
    for radius in (wide, narrow):
        fg_mean, _ = weighted_mean(fg, a, radius, at=soft)
        bg_mean, _ = weighted_mean(bg, 1.0 - a, radius, at=soft)
        residual = seen - a_soft * fg_mean - (1.0 - a_soft) * bg_mean
        fg_soft = np.clip(fg_mean + a_soft * residual, 0.0, 1.0)
        if radius == wide:
            fg = observed.copy()
            fg[soft] = fg_soft
            bg[soft] = np.clip(bg_mean + (1.0 - a_soft) * residual, 0.0, 1.0)
    out = image_bgr.copy()
    out[soft] = np.floor(fg_soft * 255 + 0.5).astype(np.uint8)
    return out
