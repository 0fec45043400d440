"""Soft, edge-aligned alpha mattes from the model's person probability (guided filter, He et al. 2010)."""

from __future__ import annotations

import cv2
import numpy as np

RADIUS_FRACTION = 0.01  # filter radius as a fraction of the image's longer side
EPS = 1e-3  # regularisation (guide in [0, 1]): lower follows image edges more closely
WORK_SIDE = 640  # larger images compute the filter coefficients on a copy this size (fast guided filter)
LEVELS = (0.04, 0.96)  # alpha below / above these becomes exactly 0 / 1: a flat background, an opaque body


def _box(x: np.ndarray, radius: int) -> np.ndarray:
    size = 2 * radius + 1
    return cv2.boxFilter(x, cv2.CV_32F, (size, size), borderType=cv2.BORDER_REFLECT)


def _coefficients(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """The window-averaged linear coefficients (a, b) of q = a * guide + b."""
    mean_i, mean_p = _box(guide, radius), _box(src, radius)
    cov = _box(guide * src, radius) - mean_i * mean_p
    var = _box(guide * guide, radius) - mean_i * mean_i
    a = cov / (var + eps)
    b = mean_p - a * mean_i
    return _box(a, radius), _box(b, radius)


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float = EPS) -> np.ndarray:
    """Filter `src` (H x W) with the edges of `guide` (H x W, values in [0, 1]); float32 out."""
    guide = guide.astype(np.float32, copy=False)
    a, b = _coefficients(guide, src.astype(np.float32, copy=False), radius, eps)
    return a * guide + b


def refine_alpha(image_bgr: np.ndarray, probability: np.ndarray) -> np.ndarray:
    """An alpha matte in [0, 1] (float32): the probability snapped to the image's edges, then levelled."""
    height, width = probability.shape
    guide = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY).astype(np.float32) / 255
    src = probability.astype(np.float32, copy=False)
    radius = max(2, round(RADIUS_FRACTION * max(height, width)))
    factor = min(1.0, WORK_SIDE / max(height, width))
    if factor < 1.0:  # coefficients are smooth: compute them small, apply them at full size
        small = (max(1, round(width * factor)), max(1, round(height * factor)))
        a, b = _coefficients(
            cv2.resize(guide, small, interpolation=cv2.INTER_AREA),
            cv2.resize(src, small, interpolation=cv2.INTER_AREA),
            max(1, round(radius * factor)),
            EPS,
        )
        a = cv2.resize(a, (width, height), interpolation=cv2.INTER_LINEAR)
        b = cv2.resize(b, (width, height), interpolation=cv2.INTER_LINEAR)
    else:
        a, b = _coefficients(guide, src, radius, EPS)
    low, high = LEVELS
    return np.clip((a * guide + b - low) / (high - low), 0.0, 1.0)
