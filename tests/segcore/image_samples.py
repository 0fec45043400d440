"""Pixels the image tests share: seeded noise with odd sizes, a pure red image, and a decoder that keeps depth."""

from __future__ import annotations

import cv2
import numpy as np

RNG = np.random.default_rng(0)
NOISE = RNG.integers(0, 256, (37, 53, 3), dtype=np.uint8)  # odd sizes catch stride and row-padding bugs
RED = np.zeros((16, 24, 3), np.uint8)
RED[:, :, 2] = 255


def decode_unchanged(data: bytes) -> np.ndarray:
    """cv2's decode keeping channels and bit depth as stored."""
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
