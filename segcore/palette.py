"""PaddleSeg's colour map, the one definition the server's overlays and the SDK's share (numpy only)."""

from __future__ import annotations

import functools

import numpy as np


@functools.lru_cache(maxsize=16)
def _palette(num_classes: int) -> np.ndarray:
    ids = np.arange(1, num_classes + 1, dtype=np.int64)[:, None]  # PaddleSeg drops the all-black entry 0
    shifts = np.arange(3)
    rgb = np.zeros((num_classes, 3), np.uint8)
    for bit in range(8):  # bits 3*bit + (0, 1, 2) of the id become bit 7 - bit of R, G, B
        rgb |= (((ids >> (3 * bit + shifts)) & 1) << (7 - bit)).astype(np.uint8)
    rgb.flags.writeable = False
    return rgb


def palette(num_classes: int) -> np.ndarray:
    """(num_classes, 3) uint8 RGB: PaddleSeg's colour map (PASCAL VOC palette without its black first
    entry), for class ids 0..num_classes-1."""
    if num_classes < 0:
        raise ValueError(f"num_classes must be >= 0, got {num_classes}")
    return _palette(num_classes).copy()
