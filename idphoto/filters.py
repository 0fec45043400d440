"""Edge-aware and weighted local filters that the matting steps build on (box windows: constant time per pixel)."""

from __future__ import annotations

import cv2
import numpy as np

WORK_SIDE = 640  # larger images compute window statistics on a copy this size: they are smooth by construction
REMAP_COLUMNS = 4096
WORK_RADIUS = 8  # wider windows are averaged on a copy scaled so their radius is this many pixels


def box(x: np.ndarray, radius: int) -> np.ndarray:
    """Mean over a (2 * radius + 1)^2 window, float32, borders reflected."""
    size = 2 * radius + 1
    return cv2.boxFilter(x, cv2.CV_32F, (size, size), borderType=cv2.BORDER_REFLECT)


def guided_coefficients(guide: np.ndarray, src: np.ndarray, radius: int, eps: float
                        ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """The window-averaged linear coefficients (a, b) of q = a * guide + b (He et al., guided filter)."""
    mean_i, mean_p = box(guide, radius), box(src, radius)
    cov = box(guide * src, radius) - mean_i * mean_p
    var = box(guide * guide, radius) - mean_i * mean_i
    a = cov / (var + eps)
    b = mean_p - a * mean_i
    return box(a, radius), box(b, radius)


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Filter `src` (H x W) with the edges of `guide` (H x W, values in [0, 1]); float32 out."""
    guide = guide.astype(np.float32, copy=False)
    a, b = guided_coefficients(guide, src.astype(np.float32, copy=False), radius, eps)
    return a * guide + b


def work_scale(shape: tuple[int, ...]) -> float:
    """The factor (at most 1) that brings an image of `shape` down to WORK_SIDE on its longer side."""
    return min(1.0, WORK_SIDE / max(shape[0], shape[1]))


def weighted_mean(x: np.ndarray, weight: np.ndarray, radius: int, at: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """The `weight`-weighted mean of `x` (H x W x C) over each pixel's window, and the window's mean weight.

    Where the window holds no weight the mean is 0; callers check the returned weight. Large images and wide
    windows are averaged on a smaller copy (area-averaged, so window sums are kept) and brought back to full size.
    With `at` (a boolean H x W mask) only those pixels' values are returned, (N x C) and (N,), which skips
    bringing whole maps back to full size.
    """
    height, width = weight.shape
    factor = min(work_scale(weight.shape), WORK_RADIUS / radius)
    weighted = x * weight[..., None]  # before any downscaling: area averages keep the weighted sums
    if factor < 1.0:
        small = (max(1, round(width * factor)), max(1, round(height * factor)))
        weighted = cv2.resize(weighted, small, interpolation=cv2.INTER_AREA)
        weight = cv2.resize(weight, small, interpolation=cv2.INTER_AREA)
        radius = max(1, round(radius * factor))
    total = box(weight, radius)
    sums = box(weighted, radius)
    if at is not None:  # divide only where asked
        sums_at, total_at = (sums[at], total[at]) if factor == 1.0 else _sample(sums, total, at, (width, height))
        return sums_at / np.maximum(total_at, 1e-6)[:, None], total_at
    mean = sums / np.maximum(total, 1e-6)[..., None]
    if factor < 1.0:
        mean = cv2.resize(mean, (width, height), interpolation=cv2.INTER_LINEAR)
        total = cv2.resize(total, (width, height), interpolation=cv2.INTER_LINEAR)
    return mean, total


def _sample(sums: np.ndarray, total: np.ndarray, at: np.ndarray, full: tuple[int, int]
            ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Bilinear samples of window sums computed at a smaller size, at the full-size pixels `at` (pixel centres
    aligned as cv2.resize aligns them)."""
    ys, xs = np.nonzero(at)
    n = len(ys)
    columns = max(1, min(n, REMAP_COLUMNS))  # cv2.remap takes maps under 32767 on a side: lay the points out in rows
    rows = -(-n // columns)
    fx, fy = sums.shape[1] / full[0], sums.shape[0] / full[1]
    map_x = np.zeros(rows * columns, np.float32)
    map_y = np.zeros(rows * columns, np.float32)
    map_x[:n] = (xs + 0.5) * fx - 0.5
    map_y[:n] = (ys + 0.5) * fy - 0.5
    maps = map_x.reshape(rows, columns), map_y.reshape(rows, columns)
    border = cv2.BORDER_REPLICATE
    sampled = cv2.remap(sums, *maps, cv2.INTER_LINEAR, borderMode=border).reshape(rows * columns, -1)[:n]
    weights = cv2.remap(total, *maps, cv2.INTER_LINEAR, borderMode=border).reshape(rows * columns)[:n]
    return sampled, weights
