"""Alpha mattes from the model's person probability.

The model's probability is coarse (computed at 256 px) and soft across several pixels at the outline. Two steps
make it a matte: the guided filter (He et al. 2010) snaps it to the image's edges everywhere; then, in a band
around the outline, each pixel's alpha is read from where its colour lies between the nearby person colour and
the nearby background colour (a local two-colour model), weighted by how far apart those two colours are.
Where they look alike the guided filter's alpha stands.
"""

from __future__ import annotations

import cv2
import numpy as np

from idphoto.filters import guided_coefficients, guided_filter, weighted_mean, work_scale

GUIDED_RADIUS = 0.01  # guided-filter radius as a fraction of the image's longer side
GUIDED_EPS = 1e-3  # regularisation (guide in [0, 1]): lower follows image edges more closely
GUIDED_LEVELS = (0.04, 0.96)  # alpha below / above these becomes exactly 0 / 1
BAND = 0.012  # half-width of the uncertain band around the outline, as a fraction of the longer side
WINDOW = 2.0  # the colour models' window radius, in band half-widths
CONTRAST = 0.01  # squared RGB distance (channels in [0, 1]) between the two colours that earns half the weight
MIN_SUPPORT = 0.02  # a window with less than this fraction of known pixels gives no colour model
LEVELS = (0.05, 0.95)  # the final matte's levels: a flat background, an opaque body
PERSON = 0.5


def _levelled(alpha: np.ndarray, levels: tuple[float, float]) -> np.ndarray:
    low, high = levels
    return np.clip((alpha - low) / (high - low), 0.0, 1.0).astype(np.float32, copy=False)


def _distance(mask: np.ndarray) -> np.ndarray:
    """Each pixel's distance (px, saturating at 255) to the nearest zero of `mask` (uint8)."""
    return cv2.distanceTransform(mask, cv2.DIST_L2, cv2.DIST_MASK_3, dstType=cv2.CV_8U)


def guided_alpha(image_bgr: np.ndarray, probability: np.ndarray) -> np.ndarray:
    """The probability snapped to the image's edges by the guided filter, levelled; float32 in [0, 1]."""
    height, width = probability.shape
    guide = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY).astype(np.float32) / 255
    src = probability.astype(np.float32, copy=False)
    radius = max(2, round(GUIDED_RADIUS * max(height, width)))
    factor = work_scale(probability.shape)
    if factor < 1.0:  # coefficients are smooth: compute them small, apply them at full size (fast guided filter)
        small = (max(1, round(width * factor)), max(1, round(height * factor)))
        a, b = guided_coefficients(cv2.resize(guide, small, interpolation=cv2.INTER_AREA),
                                   cv2.resize(src, small, interpolation=cv2.INTER_AREA),
                                   max(1, round(radius * factor)), GUIDED_EPS)  # fmt: skip
        a = cv2.resize(a, (width, height), interpolation=cv2.INTER_LINEAR)
        b = cv2.resize(b, (width, height), interpolation=cv2.INTER_LINEAR)
        return _levelled(a * guide + b, GUIDED_LEVELS)
    return _levelled(guided_filter(guide, src, radius, GUIDED_EPS), GUIDED_LEVELS)


def refine_alpha(image_bgr: np.ndarray, probability: np.ndarray) -> np.ndarray:
    """An alpha matte in [0, 1] (float32): exactly 1 well inside the person, 0 well outside, and in the band
    around the outline the local two-colour estimate blended with the guided filter's by colour contrast."""
    base = guided_alpha(image_bgr, probability)
    band = max(2, round(BAND * max(probability.shape)))
    person = (probability >= PERSON).astype(np.uint8)
    inside = (_distance(person) > band).astype(np.float32)  # more than `band` px from the outline, either side
    outside = (_distance(1 - person) > band).astype(np.float32)
    uncertain = (inside == 0) & (outside == 0)
    alpha = inside
    if uncertain.any():
        colours = image_bgr.astype(np.float32) / 255
        radius = max(1, round(WINDOW * band))
        fg, fg_support = weighted_mean(colours, inside, radius, at=uncertain)
        bg, bg_support = weighted_mean(colours, outside, radius, at=uncertain)
        pixel = colours[uncertain]
        gap = fg - bg
        spread = (gap * gap).sum(axis=1)
        estimate = np.clip(((pixel - bg) * gap).sum(axis=1) / (spread + 1e-4), 0.0, 1.0)
        weight = spread / (spread + CONTRAST)
        weight[np.minimum(fg_support, bg_support) < MIN_SUPPORT] = 0.0
        alpha[uncertain] = weight * estimate + (1.0 - weight) * base[uncertain]
    return _levelled(alpha, LEVELS)
