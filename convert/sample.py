"""Deterministic sample inputs used to check a converted model (and its ONNX copy) actually runs."""

from __future__ import annotations

import numpy as np

from convert.loader import SourceModel
from segcore.dtypes import dtype_for
from segcore.modelconfig import Preprocess
from segcore.preprocess import Preprocessor

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


def sample_feeds(
    source: SourceModel, preprocess: Preprocess | None, input_shape: list[int | None] | None
) -> dict[str, np.ndarray]:
    """Two-image batch through the model's own preprocessing when it has one, else by the declared shape."""
    first = source.feeds[0]
    if preprocess is not None and len(source.feeds) == 1:
        run = Preprocessor(preprocess)
        tensors = [run(synthetic_image(360, 480, seed))[0] for seed in (0, 1)]
        if input_shape and all(d is not None for d in input_shape[1:]):
            # A fixed export shape wins over what the transforms happen to produce.
            tensors = [t for t in tensors if list(t.shape) == list(input_shape[1:])] or tensors
        if all(t.shape == tensors[0].shape for t in tensors):
            return {first.name: np.stack(tensors)}
    feeds = {}
    for i, var in enumerate(source.feeds):
        dims = list(var.dims)
        if i == 0 and input_shape:
            dims = [d if d is not None else -1 for d in input_shape]
        shape = [
            2 if j == 0 and d < 0 else (3 if j == 1 and d < 0 else (DEFAULT_HW if d < 0 else d))
            for j, d in enumerate(dims)
        ]
        rng = np.random.default_rng(i)
        dtype = dtype_for(var.type_code) if var.type_code >= 0 else np.dtype(np.float32)
        if np.issubdtype(dtype, np.floating):
            feeds[var.name] = rng.uniform(-1, 1, shape).astype(dtype)
        else:
            feeds[var.name] = rng.integers(0, 10, shape).astype(dtype)
    return feeds
