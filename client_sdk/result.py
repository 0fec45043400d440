"""SegResult: what segment() returns, with helpers to use the mask."""

from __future__ import annotations

from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path

import numpy as np
from PIL import Image

from client_sdk.images import ImageInput, to_array
from segcore.palette import palette


@dataclass(frozen=True)
class SegResult:
    """A segmentation at the image's original size.

    label_map: H x W class ids. probability: H x W float32 in [0, 1] for `probability_class` (when asked for).
    timings_ms: the server's per-stage times.
    """

    label_map: np.ndarray
    model: str = ""
    class_names: list[str] | None = None
    num_classes: int | None = None
    probability: np.ndarray | None = None
    probability_class: int | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)."""
        return int(self.label_map.shape[1]), int(self.label_map.shape[0])

    def mask(self, class_id: int = 1) -> np.ndarray:
        """Boolean H x W mask of one class (default 1: the person / foreground class)."""
        return self.label_map == class_id

    def alpha(self) -> np.ndarray:
        """H x W float32 alpha: the probability map when present, else the class-1 mask as 0/1."""
        if self.probability is not None:
            return self.probability
        return self.mask(1).astype(np.float32)

    def overlay(self, image: ImageInput, alpha: float = 0.5, rgb: bool = False) -> np.ndarray:
        """The image with each class tinted in PaddleSeg's colours; BGR uint8 (RGB with rgb=True). A numpy image is
        taken to be in that order too, as in cutout() and segment()."""
        base = to_array(image, rgb=rgb).astype(np.float32)
        self._check_size(base)
        colors = palette(int(self.label_map.max()) + 1).astype(np.float32)  # RGB rows
        tinted = (1 - alpha) * base + alpha * (colors if rgb else colors[:, ::-1])[self.label_map]
        return np.clip(np.rint(tinted), 0, 255).astype(np.uint8)

    def cutout(self, image: ImageInput, rgb: bool = False) -> np.ndarray:
        """The image with the foreground's alpha as a 4th channel: BGRA uint8 (RGBA with rgb=True)."""
        base = to_array(image, rgb=rgb)
        self._check_size(base)
        a = np.clip(np.rint(self.alpha() * 255), 0, 255).astype(np.uint8)
        return np.dstack([base, a])

    def save(self, path: str | PathLike[str]) -> Path:
        """Write the label map as a single-channel PNG (16-bit when ids exceed 255)."""
        path = Path(path)
        array = self.label_map.astype(np.uint8 if self.label_map.max(initial=0) < 256 else np.uint16)
        Image.fromarray(array).save(path, format="PNG")
        return path

    def _check_size(self, image: np.ndarray) -> None:
        if image.shape[:2] != self.label_map.shape:
            raise ValueError(f"image is {image.shape[1]}x{image.shape[0]}, the result {self.size[0]}x{self.size[1]}")
