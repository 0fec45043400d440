"""The work of one Ray actor: the model loaded once, then batches of (source, target) paths decoded, segmented
with the server's own pipeline (segcore), rendered as `segserving segment` renders them, and written whole."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from client_sdk.batch import reason, render, write_atomic
from client_sdk.result import SegResult
from segcore.engines import EngineOptions, create_engine
from segcore.images import ImageError, decode_image
from segcore.pipeline import SegmentationPipeline
from segcore.repository import ModelRepository


class Segmenter:
    """A callable class for `Dataset.map_batches`: {"source", "target"} columns in, {"source", "error"} out
    (error "" when the result was written)."""

    def __init__(self, model: str, repository: str | None, engine: str, output: str, cpu_threads: int = 1) -> None:
        repo = ModelRepository(Path(repository)) if repository else ModelRepository()
        spec = repo.resolve(model)
        if spec.config is None:
            raise ValueError(f"model {model!r} has no segserving.yaml (convert it with deploy.yaml)")
        loaded = create_engine(spec.server_dir, spec.config, engine, EngineOptions(cpu_threads=cpu_threads))
        self.pipeline = SegmentationPipeline(spec.config, loaded)
        post = spec.config.postprocess
        self.num_classes = post.num_classes if post is not None else None
        self.output = output

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        sources, targets = [str(s) for s in batch["source"]], [str(t) for t in batch["target"]]
        errors = [""] * len(sources)
        images, ready = [], []
        for i, source in enumerate(sources):
            try:
                images.append(decode_image(Path(source).read_bytes()))
                ready.append(i)
            except (ImageError, OSError) as exc:
                errors[i] = reason(exc) if isinstance(exc, OSError) else str(exc)
        want_scores = self.output in ("probability", "cutout")
        for i, result in zip(ready, self.pipeline.segment_batch(images, want_scores=want_scores), strict=True):
            probability = result.scores[1] if want_scores and result.scores is not None else None
            seg = SegResult(result.label_map, num_classes=self.num_classes, probability=probability)
            try:
                write_atomic(Path(targets[i]), render(seg, self.output, Path(sources[i])))
            except (OSError, ValueError) as exc:
                errors[i] = reason(exc)
        return {"source": np.array(sources, dtype=object), "error": np.array(errors, dtype=object)}
