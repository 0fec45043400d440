"""Deterministic sample inputs used to check a converted model (and its ONNX copy) actually runs."""

from __future__ import annotations

import numpy as np

from convert.loader import SourceModel
from segcore.modelconfig import Preprocess
from segcore.preprocess import Preprocessor
from segcore.samples import shaped_feeds, synthetic_image
from segcore.servingconf import ServingConf, VarSpec


def sample_feeds(
    source: SourceModel, preprocess: Preprocess | None, input_shape: list[int | None] | None
) -> dict[str, np.ndarray]:
    """A two-image batch (or the export's fixed batch size) through the model's own preprocessing when it has
    one, else by the declared shape."""
    first = source.feeds[0]
    batch = input_shape[0] if input_shape and input_shape[0] else 2
    if preprocess is not None and len(source.feeds) == 1:
        run = Preprocessor(preprocess)
        tensors = [run(synthetic_image(360, 480, seed))[0] for seed in range(batch)]
        if input_shape and all(d is not None for d in input_shape[1:]):
            # A fixed export shape wins over what the transforms happen to produce.
            tensors = [t for t in tensors if list(t.shape) == list(input_shape[1:])] or tensors
        if all(t.shape == tensors[0].shape for t in tensors):
            return {first.name: np.stack(tensors)}
    conf = ServingConf(tuple(VarSpec(v.name, v.name, v.type_code) for v in source.feeds))
    dims = {v.name: list(v.dims) for v in source.feeds}
    if input_shape:
        dims[first.name] = [-1 if d is None else d for d in input_shape]
    return shaped_feeds(conf, dims, batch=batch)
