"""Batches of any size through an export whose batch dimension is fixed (`--input_shape 1 3 H W`)."""

from __future__ import annotations

import numpy as np

from segcore.engines.base import Engine


class FixedBatchEngine:
    """Wraps an engine whose model only takes batches of exactly `batch` items: a larger batch runs as
    several, a short one is padded with copies of its last item, and the outputs are joined and trimmed."""

    def __init__(self, engine: Engine, batch: int) -> None:
        self.engine = engine
        self.batch = batch
        self.name = engine.name
        self.input_names = engine.input_names
        self.output_names = engine.output_names

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        n = next(iter(feeds.values())).shape[0]
        if n == self.batch:
            return self.engine.run(feeds)
        parts = []
        for start in range(0, n, self.batch):
            chunk = {k: v[start : start + self.batch] for k, v in feeds.items()}
            short = self.batch - next(iter(chunk.values())).shape[0]
            if short:
                chunk = {k: np.concatenate([v, np.repeat(v[-1:], short, axis=0)]) for k, v in chunk.items()}
            parts.append(self.engine.run(chunk))
        return {name: np.concatenate([p[name] for p in parts])[:n] for name in parts[0]}
