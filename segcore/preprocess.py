"""Turn a decoded image into the network's input tensor, following the model's deploy.yaml."""

from __future__ import annotations

import cv2
import numpy as np

from segcore.modelconfig import Preprocess
from segcore.postprocess import TransInfo
from segcore.transforms import Normalize, Sample


def as_bgr(image: np.ndarray) -> np.ndarray:
    """Accept H x W (gray), H x W x 1, H x W x 3 (BGR) or H x W x 4 (BGRA) uint8 and return H x W x 3 BGR."""
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim == 3 and image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    if image.ndim == 3 and image.shape[2] == 4:
        return np.ascontiguousarray(image[:, :, :3])
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    raise ValueError(f"image must be H x W, H x W x 1, H x W x 3 or H x W x 4, got shape {list(image.shape)}")


class Preprocessor:
    """Callable: BGR uint8 image -> (C x H x W float32 tensor, reverse-transform info). Its two steps, `geometry`
    and `tensor`, are what the stage profile (benchmarks.profile) times as "resize" and "normalize"."""

    def __init__(self, spec: Preprocess) -> None:
        self._spec = spec
        last = spec.transforms[-1] if spec.transforms else None
        self._last = last if isinstance(last, Normalize) else None
        self._geometry = list(spec.transforms[:-1] if self._last else spec.transforms)

    def geometry(self, image_bgr: np.ndarray) -> Sample:
        """To RGB and the pixel dtype, then every transform but a final Normalize."""
        image = as_bgr(image_bgr)
        if image.shape[0] == 0 or image.shape[1] == 0:
            raise ValueError("image has zero width or height")
        if self._spec.to_rgb:  # the same values as image[:, :, ::-1], but contiguous: a strided copy costs 1 ms
            image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        # float32 next, as PaddleSeg reads images (cv2.imread(...).astype("float32")): resizes do not round
        sample = Sample(image.astype(np.float32) if self._spec.pixel_dtype == "float32" else image)
        for transform in self._geometry:
            sample = transform(sample)
        return sample

    def tensor(self, sample: Sample) -> np.ndarray:
        """The final Normalize, if any, then HWC -> C x H x W float32."""
        if self._last is not None:
            return self._last.to_chw(sample.image)
        return np.ascontiguousarray(sample.image.astype(np.float32, copy=False).transpose(2, 0, 1))

    def __call__(self, image_bgr: np.ndarray) -> tuple[np.ndarray, TransInfo]:
        sample = self.geometry(image_bgr)
        return self.tensor(sample), sample.trans_info
