"""In-process segmentation of decoded BGR images: preprocess, run the engine (images whose network inputs share a
shape as one batch), postprocess back to each image's original size. The app's standalone mode and the benchmarks'
in-process limit use it; the server's workers use its preprocessor and batch across requests themselves."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from segcore.engines import Engine
from segcore.modelconfig import ModelConfig
from segcore.postprocess import SegmentationResult, postprocess
from segcore.preprocess import Preprocessor


class ImageApiUnavailable(ValueError):
    """The model has no preprocessing/postprocessing config (converted without deploy.yaml)."""


class SegmentationPipeline:
    """Runs whole images through a model. The same code path serves the image API and the benchmarks' limit."""

    def __init__(self, config: ModelConfig, engine: Engine) -> None:
        if config.preprocess is None or config.postprocess is None:
            raise ImageApiUnavailable(
                f"model {config.name!r} has no preprocessing config; convert it from a dir with deploy.yaml"
            )
        self.config = config
        self.engine = engine
        self.preprocess = Preprocessor(config.preprocess)
        self._post = config.postprocess

    @staticmethod
    def preprocessor_for(config: ModelConfig) -> Preprocessor:
        """The preprocessing of `config` alone (workers run inference themselves, batched across requests)."""
        if config.preprocess is None:
            raise ImageApiUnavailable(f"model {config.name!r} has no preprocessing config")
        return Preprocessor(config.preprocess)

    def infer(self, tensors: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Run preprocessed C x H x W tensors of one shape as one batch; returns per-item outputs."""
        batch = np.stack(tensors) if len(tensors) > 1 else tensors[0][None]
        outputs = self.engine.run({self.config.input_name: batch})
        out = outputs[self._post.output_name]
        return [out[i] for i in range(len(tensors))]

    def segment(self, image_bgr: np.ndarray, want_scores: bool = False) -> SegmentationResult:
        """Segment one BGR uint8 image; the result is at the image's original size."""
        return self.segment_batch([image_bgr], want_scores)[0]

    def segment_batch(self, images: Sequence[np.ndarray], want_scores: bool = False) -> list[SegmentationResult]:
        """Segment several images; those whose network inputs share a shape run as one batch."""
        prepared = [self.preprocess(img) for img in images]
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, (tensor, _) in enumerate(prepared):
            by_shape.setdefault(tensor.shape, []).append(i)
        outputs: list[np.ndarray | None] = [None] * len(images)
        for indices in by_shape.values():
            for i, out in zip(indices, self.infer([prepared[i][0] for i in indices]), strict=True):
                outputs[i] = out
        return [
            postprocess(out, self._post, info, want_scores)
            for out, (_, info) in zip(outputs, prepared, strict=True)
            if out is not None
        ]
