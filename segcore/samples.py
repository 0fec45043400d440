"""Deterministic sample inputs: a photo-like synthetic image and warm-up feeds for any model."""

from __future__ import annotations

import numpy as np

from segcore.dtypes import dtype_for
from segcore.servingconf import ServingConf

DEFAULT_HW = 256


def synthetic_image(height: int, width: int, seed: int) -> np.ndarray:
    """A BGR uint8 picture with gradients, a disc and mild noise: smooth like a photo, not random."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.stack([xx / width * 255, yy / height * 255, (xx + yy) / (width + height) * 255], axis=2)
    cy, cx, r = height * (0.4 + 0.1 * seed), width * 0.5, min(height, width) * 0.25
    image[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = (40.0 + 30 * seed, 160.0, 220.0)
    image += rng.normal(0, 4, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def shaped_feeds(conf: ServingConf, dims_by_name: dict[str, list[int]], batch: int = 1) -> dict[str, np.ndarray]:
    """Feeds for every conf feed var with the given dims (-1 = dynamic: batch, 3 channels, else DEFAULT_HW)."""
    feeds = {}
    for i, var in enumerate(conf.feeds):
        dims = dims_by_name.get(var.name) or [-1, *var.shape]
        shape = [batch if j == 0 and d < 0 else 3 if j == 1 and d < 0 else DEFAULT_HW if d < 0 else d
                 for j, d in enumerate(dims)]  # fmt: skip
        rng = np.random.default_rng(i)
        dtype = dtype_for(var.type_code) if var.type_code >= 0 else np.dtype(np.float32)
        if np.issubdtype(dtype, np.floating):
            feeds[var.name] = rng.uniform(-1, 1, shape).astype(dtype)
        else:
            feeds[var.name] = rng.integers(0, 10, shape).astype(dtype)
    return feeds
