"""Put the person on the new background."""

from __future__ import annotations

import numpy as np

from idphoto.presets import Background


def _to_uint8(x: np.ndarray) -> np.ndarray:
    """Round half up (no truncation bias) and saturate."""
    return np.clip(np.floor(x + 0.5), 0, 255).astype(np.uint8)


def composite(image_bgr: np.ndarray, alpha: np.ndarray, background: Background) -> np.ndarray:
    """alpha * image + (1 - alpha) * background as uint8 BGR; BGRA with the alpha channel for a transparent one."""
    alpha = np.clip(alpha.astype(np.float32, copy=False), 0.0, 1.0)
    if background.rgb is None:
        return np.dstack([image_bgr, _to_uint8(alpha * 255)])
    bg = np.asarray(background.bgr, dtype=np.float32)
    return _to_uint8(bg + alpha[..., None] * (image_bgr.astype(np.float32) - bg))
